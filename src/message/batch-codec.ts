/**
 * The body of SEND_BATCH_MESSAGE: the inner messages laid end to end, each as RocketMQ's
 * MessageDecoder.encodeMessage writes it (big-endian; only flag, body and properties travel —
 * topic and queue come from the request header):
 *
 *   +--------+-----------+------------------------------------------------------------+
 *   | offset | size      | field                                                      |
 *   +--------+-----------+------------------------------------------------------------+
 *   |      0 |         4 | TOTALSIZE   size of this inner message, these 4 included   |
 *   |      4 |         4 | MAGICCODE   0 (not checked)                                |
 *   |      8 |         4 | BODYCRC     0 (not checked; the broker computes the CRC)   |
 *   |     12 |         4 | FLAG        the message's user flag                        |
 *   |     16 |         4 | BODYLEN = b                                                |
 *   |     20 |         b | BODY                                                       |
 *   |   20+b |         2 | PROPLEN = p (unsigned)                                     |
 *   |   22+b |         p | PROPERTIES  name\u0001value\u0002..., UTF-8                |
 *   +--------+-----------+------------------------------------------------------------+
 *
 * No version and no checksum: it is RocketMQ's format, carried inside a frame the transport has
 * already delimited. Decoding is pure and never reads past the buffer: a total size that is not
 * 22 + b + p, or that runs past the end, fails the whole batch.
 */

export interface BatchInnerMessage {
  flag: number;
  body: Buffer;
  properties: string;
}

const INNER_FIXED_BYTES = 22;

export type BatchDecodeResult = { ok: true; messages: BatchInnerMessage[] } | { ok: false; error: string };

export function decodeBatchBody(buf: Buffer, maxMessages = 1 << 16): BatchDecodeResult {
  const messages: BatchInnerMessage[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (messages.length >= maxMessages) {
      return { ok: false, error: `the batch holds more than ${maxMessages} messages` };
    }
    if (buf.length - pos < INNER_FIXED_BYTES) {
      return { ok: false, error: `batch message ${messages.length} is truncated at byte ${pos}` };
    }
    const total = buf.readInt32BE(pos);
    const flag = buf.readInt32BE(pos + 12);
    const bodyLen = buf.readInt32BE(pos + 16);
    if (bodyLen < 0 || pos + 20 + bodyLen + 2 > buf.length) {
      return {
        ok: false,
        error: `batch message ${messages.length} has a body length ${bodyLen} past the end`,
      };
    }
    const propLen = buf.readUInt16BE(pos + 20 + bodyLen);
    const expected = INNER_FIXED_BYTES + bodyLen + propLen;
    if (total !== expected || pos + total > buf.length) {
      return {
        ok: false,
        error: `batch message ${messages.length} says it is ${total} bytes but its fields make ${expected}`,
      };
    }
    const body = buf.subarray(pos + 20, pos + 20 + bodyLen);
    const properties = buf.toString('utf8', pos + 22 + bodyLen, pos + 22 + bodyLen + propLen);
    messages.push({ flag, body, properties });
    pos += total;
  }
  return { ok: true, messages };
}

/** The encoded size of an inner message, bytes, given its properties' UTF-8 length. */
export function batchInnerBytes(bodyBytes: number, propertiesBytes: number): number {
  return INNER_FIXED_BYTES + bodyBytes + propertiesBytes;
}

/**
 * Writes one inner message at `pos` of `buf` and returns where the next one starts, or -1 (and
 * writes nothing that counts) when it does not fit in `buf` or its properties are over 65535
 * bytes. One copy of the body, the properties encoded straight into place: no buffer per message.
 */
export function writeBatchInner(
  buf: Buffer,
  pos: number,
  flag: number,
  body: Uint8Array,
  properties: string,
): number {
  const bodyLen = body.length;
  const propsAt = pos + 20 + bodyLen + 2;
  // A UTF-16 unit is at most 3 UTF-8 bytes: a string short enough is written without measuring.
  const room = buf.length - propsAt;
  if (room < 0) return -1;
  let propLen: number;
  if (properties.length * 3 <= room) propLen = buf.write(properties, propsAt, 'utf8');
  else {
    propLen = Buffer.byteLength(properties, 'utf8');
    if (propLen > room) return -1;
    buf.write(properties, propsAt, 'utf8');
  }
  if (propLen > 0xffff) return -1;
  const total = INNER_FIXED_BYTES + bodyLen + propLen;
  buf.writeInt32BE(total, pos);
  buf.writeInt32BE(0, pos + 4);
  buf.writeInt32BE(0, pos + 8);
  buf.writeInt32BE(flag, pos + 12);
  buf.writeInt32BE(bodyLen, pos + 16);
  buf.set(body, pos + 20);
  buf.writeUInt16BE(propLen, pos + 20 + bodyLen);
  return pos + total;
}

/** Encodes inner messages as a producer does (used by tests and clients), into one buffer. */
export function encodeBatchBody(messages: readonly BatchInnerMessage[]): Buffer {
  let bound = 0;
  for (const m of messages) bound += INNER_FIXED_BYTES + m.body.length + m.properties.length * 3;
  const out = Buffer.allocUnsafe(bound);
  let pos = 0;
  for (const m of messages) {
    const next = writeBatchInner(out, pos, m.flag, m.body, m.properties);
    if (next < 0) {
      const bytes = Buffer.byteLength(m.properties, 'utf8');
      throw new RangeError(`properties are ${bytes} bytes; the limit is 65535`);
    }
    pos = next;
  }
  return out.subarray(0, pos);
}
