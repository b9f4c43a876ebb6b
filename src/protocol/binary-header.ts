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

// Most keys (SEND_MESSAGE_V2's "a" … "n") and values are a few ASCII bytes, where a call into
// Buffer's native UTF-8 code (about a thousand instructions, measured) costs more than the work;
// these helpers do short ASCII strings in JavaScript and hand everything else to Buffer. Where
// each path pays was measured on a SEND_MESSAGE_V2 header: writing up to 32 units in a loop, and
// reading up to 8 bytes.

/** Strings up to this many UTF-16 units are written by a loop when they are ASCII. */
const WRITE_IN_JS_MAX = 32;

/**
 * Writes `s` as UTF-8 at `p` of `out`, which has room for 3 bytes per UTF-16 unit of `s`; returns
 * the bytes written.
 */
function writeUtf8(out: Buffer, s: string, p: number): number {
  const n = s.length;
  if (n <= WRITE_IN_JS_MAX) {
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      out[p + i] = c;
    }
    if (i === n) return n;
  }
  return out.write(s, p, 'utf8');
}

/** Strings up to this many bytes are read by a loop when they are ASCII. */
const READ_IN_JS_MAX = 8;

function readUtf8(buf: Buffer, start: number, end: number): string {
  if (end - start <= READ_IN_JS_MAX) {
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

function putInt16(out: Buffer, n: number, p: number): void {
  out[p] = n >>> 8;
  out[p + 1] = n;
}

function putInt32(out: Buffer, n: number, p: number): void {
  out[p] = n >>> 24;
  out[p + 1] = n >>> 16;
  out[p + 2] = n >>> 8;
  out[p + 3] = n;
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

/**
 * Where headers are written before they are copied out at their exact size: encoding is
 * synchronous, so one buffer serves every call, and grows (never shrinks) for a larger header.
 */
let scratch = Buffer.allocUnsafeSlow(16 * 1024);

/** `scratch` with room for `bytes` past `used` (what is written so far is kept). */
function room(used: number, bytes: number): Buffer {
  if (used + bytes > scratch.length) {
    const bigger = Buffer.allocUnsafeSlow(Math.max(2 * scratch.length, used + bytes));
    scratch.copy(bigger, 0, 0, used);
    scratch = bigger;
  }
  return scratch;
}

/**
 * The header's bytes, after `reserve` bytes left for the caller (the frame prefix). One pass:
 * the header is written to `scratch` with room for the worst case of each string (3 UTF-8 bytes
 * per UTF-16 unit), then copied to a buffer of its size. The extFields are walked with for…in,
 * which V8 reads through the object's enum cache whatever its shape (the commands of every
 * request code pass here); they are plain objects, so for…in sees what Object.keys would.
 */
export function encodeBinaryHeaderWithReserve(cmd: RemotingCommand, reserve: number): Buffer {
  checkInt16(cmd.code, 'code');
  checkInt16(cmd.version, 'version');
  assert((cmd.opaque | 0) === cmd.opaque, `remoting command opaque ${cmd.opaque} is not an int32`);
  assert((cmd.flag | 0) === cmd.flag, `remoting command flag ${cmd.flag} is not an int32`);
  assert(languageFromName(cmd.language) !== undefined, `unknown language ${String(cmd.language)}`);
  const language = LanguageCode[cmd.language];

  const remark = cmd.remark;
  let out = room(0, reserve + BINARY_HEADER_FIXED_BYTES + (remark ? 3 * remark.length : 0));
  let p = reserve;
  putInt16(out, cmd.code, p);
  out[p + 2] = language;
  putInt16(out, cmd.version, p + 3);
  putInt32(out, cmd.opaque, p + 5);
  putInt32(out, cmd.flag, p + 9);
  p += 17;
  const remarkBytes = remark ? writeUtf8(out, remark, p) : 0;
  putInt32(out, remarkBytes, p - 4);
  p += remarkBytes;
  const extAt = p;
  p += 4;
  const ext = cmd.extFields;
  if (ext != null) {
    for (const key in ext) {
      const value = ext[key];
      if (value == null) continue; // as Java skips null values
      out = room(p, 6 + 3 * (key.length + value.length));
      const keyBytes = writeUtf8(out, key, p + 2);
      if (keyBytes > INT16_MAX) throw invalid(`extFields key of ${keyBytes} bytes is over ${INT16_MAX}`);
      putInt16(out, keyBytes, p);
      p += 2 + keyBytes;
      const valueBytes = writeUtf8(out, value, p + 4);
      putInt32(out, valueBytes, p);
      p += 4 + valueBytes;
    }
  }
  putInt32(out, p - extAt - 4, extAt);
  const header = Buffer.allocUnsafe(p);
  out.copy(header, reserve, reserve, p);
  return header;
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
    const keyBytes = ((buf[p]! << 24) | (buf[p + 1]! << 16)) >> 16; // int16, sign-extended
    p += 2;
    if (keyBytes < 0 || keyBytes > end - p) {
      throw invalid(`extFields key length ${keyBytes} does not fit the ${end - p} bytes left`);
    }
    const key = readUtf8(buf, p, p + keyBytes);
    p += keyBytes;
    if (end - p < 4)
      throw invalid(`extFields entry at ${p - keyBytes - 2 - start} is cut inside its value length`);
    const valueBytes = (buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!;
    p += 4;
    if (valueBytes < 0 || valueBytes > end - p) {
      throw invalid(`extFields value length ${valueBytes} does not fit the ${end - p} bytes left`);
    }
    setOwn(ext, key, readUtf8(buf, p, p + valueBytes));
    p += valueBytes;
  }
  return ext;
}
