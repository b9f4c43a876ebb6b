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

/** Encodes inner messages as a producer does (used by tests and clients). */
export function encodeBatchBody(messages: readonly BatchInnerMessage[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of messages) {
    const props = Buffer.from(m.properties, 'utf8');
    if (props.length > 0xffff)
      throw new RangeError(`properties are ${props.length} bytes; the limit is 65535`);
    const total = INNER_FIXED_BYTES + m.body.length + props.length;
    const b = Buffer.alloc(total);
    b.writeInt32BE(total, 0);
    b.writeInt32BE(m.flag, 12);
    b.writeInt32BE(m.body.length, 16);
    m.body.copy(b, 20);
    b.writeUInt16BE(props.length, 20 + m.body.length);
    props.copy(b, 22 + m.body.length);
    parts.push(b);
  }
  return Buffer.concat(parts);
}
