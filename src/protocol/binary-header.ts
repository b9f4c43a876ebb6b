/**
 * The binary header (serialize type 1, "ROCKETMQ"): RocketMQ's compact alternative to JSON, chosen
 * by a Java peer with `rocketmq.serialize.type=ROCKETMQ`. Every integer is big-endian two's
 * complement; strings are UTF-8 with no terminator.
 *
 *     offset   size
 *    +-------+------+---------------------------------------------------------------+
 *    |     0 |    2 | CODE         int16                                            |
 *    |     2 |    1 | LANGUAGE     LanguageCode number (JAVA 0 … NODE_JS 13)        |
 *    |     3 |    2 | VERSION      int16                                            |
 *    |     5 |    4 | OPAQUE       int32                                            |
 *    |     9 |    4 | FLAG         int32                                            |
 *    |    13 |    4 | REMARKLEN=r  int32; 0 means no remark                         |
 *    |    17 |    r | REMARK                                                        |
 *    |  17+r |    4 | EXTLEN=e     int32; 0 means no extFields                      |
 *    |  21+r |    e | EXTFIELDS    entries back to back, filling exactly e bytes:   |
 *    |       |      |              +--------+-----+--------+-------+                |
 *    |       |      |              | KEYLEN | KEY | VALLEN | VALUE |                |
 *    |       |      |              | int16  |     | int32  |       |                |
 *    |       |      |              +--------+-----+--------+-------+                |
 *    +-------+------+---------------------------------------------------------------+
 *    header length = 21 + r + e
 *
 * No version or checksum: the format is RocketMQ's and TCP carries it. What it cannot say:
 * - A code or version outside int16. Java truncates them silently (POP_MESSAGE 200050 arrives
 *   as 3442); we refuse to encode them (HEADER_INVALID), so send such commands with JSON.
 * - An empty remark or an empty extFields map: both travel as length 0 and read back as absent.
 * - A key of more than 32767 UTF-8 bytes (refused on encode).
 *
 * Reading is bounds-checked at every length: a negative length, one that runs past the header, or
 * an entry that runs past EXTLEN is HEADER_INVALID, and nothing is read out of range. As Java
 * does, we ignore bytes after EXTFIELDS, read a duplicate key as its last value, and read an
 * unknown LANGUAGE number as OTHER (Java reads it as null).
 */
import { assert, TsmqError } from '../common/errors.js';
import { LanguageCode, languageFromName, languageFromNumber } from './codes.js';
import { makeCommand, type RemotingCommand, setOwn } from './remoting-command.js';

/** The header's size without remark and extFields. */
export const BINARY_HEADER_FIXED_BYTES = 21;

const INT16_MIN = -0x8000;
const INT16_MAX = 0x7fff;

// Most keys (SEND_MESSAGE_V2's "a" … "n") and many values are a few ASCII bytes, where a call into
// Buffer's native UTF-8 code costs more than the work; these helpers do short ASCII strings in
// JavaScript and hand everything else to Buffer. Measured on a SEND_MESSAGE_V2 header with 14
// fields: encode and decode both about twice as fast.
const SHORT = 8;

function utf8Bytes(s: string): number {
  if (s.length <= SHORT) {
    let i = 0;
    while (i < s.length && s.charCodeAt(i) < 0x80) i++;
    if (i === s.length) return i;
  }
  return Buffer.byteLength(s, 'utf8');
}

/** Writes `s` at `p` (the caller has sized `out` for it); returns the bytes written. */
function writeUtf8(out: Buffer, s: string, p: number): number {
  if (s.length <= SHORT) {
    let i = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      out[p + i] = c;
    }
    if (i === s.length) return i;
  }
  return out.write(s, p, 'utf8');
}

function readUtf8(buf: Buffer, start: number, end: number): string {
  if (end - start <= SHORT) {
    let s = '';
    for (let i = start; i < end; i++) {
      const c = buf[i]!;
      if (c >= 0x80) return buf.toString('utf8', start, end);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return buf.toString('utf8', start, end);
}

function invalid(message: string): TsmqError {
  return new TsmqError('HEADER_INVALID', `binary header: ${message}`);
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

function checkInt16(n: number, field: string): void {
  if (!Number.isInteger(n) || n < INT16_MIN || n > INT16_MAX) {
    throw invalid(`${field} ${n} does not fit in an int16; send this command with a JSON header`);
  }
}

/** The header's bytes, after `reserve` bytes left for the caller (the frame prefix). */
export function encodeBinaryHeaderWithReserve(cmd: RemotingCommand, reserve: number): Buffer {
  checkInt16(cmd.code, 'code');
  checkInt16(cmd.version, 'version');
  assert((cmd.opaque | 0) === cmd.opaque, `remoting command opaque ${cmd.opaque} is not an int32`);
  assert((cmd.flag | 0) === cmd.flag, `remoting command flag ${cmd.flag} is not an int32`);
  assert(languageFromName(cmd.language) !== undefined, `unknown language ${String(cmd.language)}`);

  const remark = cmd.remark;
  const remarkBytes = remark ? Buffer.byteLength(remark, 'utf8') : 0;
  const ext = cmd.extFields;
  let extBytes = 0;
  if (ext != null) {
    for (const key of Object.keys(ext)) {
      const value = ext[key];
      if (value == null) continue; // as Java skips null values
      const keyBytes = utf8Bytes(key);
      if (keyBytes > INT16_MAX) throw invalid(`extFields key of ${keyBytes} bytes is over ${INT16_MAX}`);
      extBytes += 6 + keyBytes + utf8Bytes(value);
    }
  }

  const out = Buffer.allocUnsafe(reserve + BINARY_HEADER_FIXED_BYTES + remarkBytes + extBytes);
  let p = reserve;
  out.writeInt16BE(cmd.code, p);
  out[p + 2] = LanguageCode[cmd.language];
  out.writeInt16BE(cmd.version, p + 3);
  out.writeInt32BE(cmd.opaque, p + 5);
  out.writeInt32BE(cmd.flag, p + 9);
  out.writeInt32BE(remarkBytes, p + 13);
  p += 17;
  if (remarkBytes > 0) p += out.write(remark!, p, 'utf8');
  out.writeInt32BE(extBytes, p);
  p += 4;
  if (extBytes > 0) {
    for (const key of Object.keys(ext!)) {
      const value = ext![key];
      if (value == null) continue;
      const keyBytes = writeUtf8(out, key, p + 2);
      out.writeInt16BE(keyBytes, p);
      p += 2 + keyBytes;
      const valueBytes = writeUtf8(out, value, p + 4);
      out.writeInt32BE(valueBytes, p);
      p += 4 + valueBytes;
    }
  }
  assert(p === out.length, `binary header size ${p - reserve} != computed ${out.length - reserve}`);
  return out;
}

/** The header's bytes. */
export function encodeBinaryHeader(cmd: RemotingCommand): Buffer {
  return encodeBinaryHeaderWithReserve(cmd, 0);
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/**
 * Reads a binary header (bytes `start` to `end` of `buf`). The command's body is undefined and its
 * serializeType 1. Throws TsmqError HEADER_INVALID, and nothing else, on any bad input.
 */
export function decodeBinaryHeader(buf: Buffer, start = 0, end = buf.length): RemotingCommand {
  assert(0 <= start && start <= end && end <= buf.length, `header range ${start}..${end} of ${buf.length}`);
  if (end - start < BINARY_HEADER_FIXED_BYTES) {
    throw invalid(`${end - start} bytes, fewer than the ${BINARY_HEADER_FIXED_BYTES} of an empty header`);
  }
  const code = buf.readInt16BE(start);
  const language = languageFromNumber(buf[start + 2]!) ?? 'OTHER';
  const version = buf.readInt16BE(start + 3);
  const opaque = buf.readInt32BE(start + 5);
  const flag = buf.readInt32BE(start + 9);
  let p = start + 13;

  // After the fixed part, `end - p >= 8` holds (4 bytes of REMARKLEN, 4 of EXTLEN): check each
  // length against what is left before trusting it.
  const remarkBytes = buf.readInt32BE(p);
  p += 4;
  if (remarkBytes < 0 || remarkBytes > end - p - 4) {
    throw invalid(`remark length ${remarkBytes} does not fit the ${end - p - 4} bytes left`);
  }
  const remark = remarkBytes > 0 ? buf.toString('utf8', p, p + remarkBytes) : undefined;
  p += remarkBytes;

  const extBytes = buf.readInt32BE(p);
  p += 4;
  if (extBytes < 0 || extBytes > end - p) {
    throw invalid(`extFields length ${extBytes} does not fit the ${end - p} bytes left`);
  }
  const extFields = extBytes > 0 ? decodeExtFields(buf, p, p + extBytes) : undefined;

  return makeCommand(code, language, version, opaque, flag, remark, extFields, undefined, 1);
}

function decodeExtFields(buf: Buffer, start: number, end: number): Record<string, string> {
  const ext: Record<string, string> = {};
  let p = start;
  while (p < end) {
    if (end - p < 2) throw invalid(`extFields entry at ${p - start} is cut inside its key length`);
    const keyBytes = buf.readInt16BE(p);
    p += 2;
    if (keyBytes < 0 || keyBytes > end - p) {
      throw invalid(`extFields key length ${keyBytes} does not fit the ${end - p} bytes left`);
    }
    const key = readUtf8(buf, p, p + keyBytes);
    p += keyBytes;
    if (end - p < 4)
      throw invalid(`extFields entry at ${p - keyBytes - 2 - start} is cut inside its value length`);
    const valueBytes = buf.readInt32BE(p);
    p += 4;
    if (valueBytes < 0 || valueBytes > end - p) {
      throw invalid(`extFields value length ${valueBytes} does not fit the ${end - p} bytes left`);
    }
    setOwn(ext, key, readUtf8(buf, p, p + valueBytes));
    p += valueBytes;
  }
  return ext;
}
