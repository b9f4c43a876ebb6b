/**
 * The commit-log record codec: one message laid out as RocketMQ lays it out in its commit log.
 * Pure functions over bytes — no files, no sockets, no clocks beyond a default born time.
 *
 * A message record. Every integer is big-endian two's complement. Offsets below are for the
 * common case (V1 magic, IPv4 born and store hosts):
 *
 *     offset   size
 *    +-------+------+-----------------------------------------------------------------+
 *    |     0 |    4 | TOTALSIZE        length of the whole record, this field included |
 *    |     4 |    4 | MAGICCODE        V1 0xDAA320A7 | V2 0xDAA320AB                   |
 *    |     8 |    4 | BODYCRC          crc32(body) & 0x7FFFFFFF                        |
 *    |    12 |    4 | QUEUEID                                                          |
 *    |    16 |    4 | FLAG             the producer's flag, opaque to us               |
 *    |    20 |    8 | QUEUEOFFSET      n-th message of its consume queue (a count)     |
 *    |    28 |    8 | PHYSICALOFFSET   commit-log byte offset of this very record      |
 *    |    36 |    4 | SYSFLAG          0x10: BORNHOST is IPv6, 0x20: STOREHOST is IPv6 |
 *    |    40 |    8 | BORNTIMESTAMP    ms since the epoch                              |
 *    |    48 |    8 | BORNHOST         IPv4 4 + port 4 (IPv6: 16 + 4 = 20 bytes)       |
 *    |    56 |    8 | STORETIMESTAMP   ms since the epoch                              |
 *    |    64 |    8 | STOREHOST        IPv4 4 + port 4 (IPv6: 16 + 4 = 20 bytes)       |
 *    |    72 |    4 | RECONSUMETIMES                                                   |
 *    |    76 |    8 | PREPARED_TRANSACTION_OFFSET                                      |
 *    |    84 |    4 | BODYLEN = b                                                      |
 *    |    88 |    b | BODY                                                             |
 *    |  88+b |    1 | TOPICLEN = t     (V2: 2 bytes)                                   |
 *    |  89+b |    t | TOPIC            UTF-8, no NUL byte, never empty                 |
 *    | 89+b+t|    2 | PROPLEN = p      signed, so p <= 32767                           |
 *    | 91+b+t|    p | PROPERTIES       UTF-8 `key\u0001value\u0002` repeated           |
 *    +-------+------+-----------------------------------------------------------------+
 *    TOTALSIZE = 91 + b + t + p, plus 12 per IPv6 host, plus 1 for V2.
 *
 * Versions: V1 has a 1-byte topic length, V2 (RocketMQ's answer to topics over 127 bytes) a
 * 2-byte one. We write only V1 and refuse topics over 127 bytes; we read both.
 *
 * The end of a segment. When the next record does not fit in what is left of a segment (with
 * room to spare for this marker), the writer fills the rest with a blank record and rolls over:
 *
 *    +-------------------+-----------------------+------------------------------------+
 *    | LENGTH 4          | BLANK_MAGIC 4         | LENGTH - 8 bytes, contents ignored |
 *    | bytes to seg. end | 0xCBD43194            |                                    |
 *    +-------------------+-----------------------+------------------------------------+
 *
 * What a crash leaves behind. Segment files are preallocated with zeros and appended in order,
 * so the worst a crash can do is a torn tail: the last record cut at any byte, followed by
 * zeros. `decodeRecord` never takes such a record for a whole one, even without the CRC check,
 * because wherever the cut falls the zeros land somewhere that cannot be zero in a whole record:
 *
 *    cut inside ...              reads as ...                         result
 *    TOTALSIZE, nothing written  TOTALSIZE 0                          'end'
 *    TOTALSIZE, partly written   a size, then a zero MAGICCODE        'corrupt'
 *    MAGICCODE                   a bad MAGICCODE                      'corrupt'
 *    BODYCRC .. BODYLEN          any BODYLEN, then a zero TOPICLEN    'corrupt' (empty topic)
 *    BODY                        a zero TOPICLEN (and a bad CRC)      'corrupt'
 *    TOPICLEN / TOPIC            an empty topic, or a NUL in it       'corrupt'
 *    PROPLEN / PROPERTIES        lengths that do not add up, or       'corrupt'
 *                                properties ending in a 0 byte
 *
 * The last line holds because `prepareRecord` makes sure non-empty properties end with the
 * separator \u0002, and the decoder refuses properties whose last byte is 0. (With empty
 * properties the record ends in PROPLEN = 00 00; a cut there loses only zeros, so what is on
 * disk is the whole record, and it decodes as such.) If the buffer simply ends before the
 * record does, the decoder answers 'need-more' instead.
 *
 * The record CRC. The body CRC covers only the body, so a flipped bit in a header field, the
 * topic or the properties would go unnoticed. When the store asks for it (tsmq's default),
 * `prepareRecord` reserves RocketMQ's `__CRC32#` property as the last 20 bytes of the record:
 *
 *    ... PROPERTIES | `__CRC32#`  | 10 ASCII digits |  |   (end of record)
 *                   |<----------------- 20 bytes ---------------->|
 *
 * The digits are the zero-padded decimal CRC32 (unsigned) of every record byte before them —
 * header, body, topic, the other properties and the `__CRC32#` key. The decoder verifies
 * it whenever present (and then skips the body CRC, which it covers). It is an ordinary property
 * to clients, as in RocketMQ with enabledAppendPropCRC.
 */
import { crc32 } from 'node:zlib';
import { dataViewOf } from '../common/bytes.js';
import { crc32Range } from '../common/crc32.js';
import { assert, TsmqError } from '../common/errors.js';
import { native } from '../common/native.js';
import type { HostAddress } from '../common/types.js';
import { decodeHost, encodeHost } from './host.js';
import { NV_CODE, PROPERTY_SEPARATOR, PS_CODE } from './properties.js';

export { decodeHost, encodeHost } from './host.js';
export {
  decodeProperties,
  encodeProperties,
  getProperty,
  isCanonicalProperties,
  KEY_SEPARATOR,
  MessageProperty,
  NAME_VALUE_SEPARATOR,
  PROPERTY_SEPARATOR,
  propertyEntry,
  systemPropertyEntry,
} from './properties.js';

// ---------------------------------------------------------------------------------------------
// Constants and limits
// ---------------------------------------------------------------------------------------------

/** Magic of a V1 record (1-byte topic length), as a signed int32. */
export const MAGIC_V1 = 0xdaa320a7 | 0;
/** Magic of a V2 record (2-byte topic length), as a signed int32. */
export const MAGIC_V2 = 0xdaa320ab | 0;
/** Magic of the blank record that pads the end of a segment, as a signed int32. */
export const BLANK_MAGIC = 0xcbd43194 | 0;
/** A blank record is at least its length and its magic. */
export const BLANK_RECORD_MIN_BYTES = 8;
/** Bytes of a V1 record with IPv4 hosts, not counting body, topic and properties. */
export const RECORD_FIXED_BYTES_V4 = 91;
/** Longest topic, in UTF-8 bytes, that fits a V1 record. */
export const MAX_TOPIC_BYTES = 127;
/** Longest encoded properties, in UTF-8 bytes (the length field is a signed 16-bit integer). */
export const MAX_PROPERTIES_BYTES = 32767;
/** Default limit on a message body, in bytes (RocketMQ's maxMessageSize). */
/** Key of the record-CRC property (see the file header). */
export const RECORD_CRC_PROPERTY = '__CRC32#';
/** Bytes the record-CRC property takes at the end of a record: key, \u0001, 10 digits, \u0002. */
export const RECORD_CRC_RESERVED_BYTES = 20;
const RECORD_CRC_HEAD = Buffer.from(`${RECORD_CRC_PROPERTY}\u0001`, 'latin1');
const RECORD_CRC_PLACEHOLDER = Buffer.from(`${RECORD_CRC_PROPERTY}\u00010000000000\u0002`, 'latin1');

export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/**
 * Room a record may take beyond its body: the fixed fields (at most 116 bytes with two IPv6
 * hosts), the topic (127) and the properties (32767) always fit in 64 KiB.
 */
export const RECORD_HEADROOM_BYTES = 64 * 1024;
/** Default largest record the decoder accepts. */
export const DEFAULT_MAX_RECORD_BYTES = DEFAULT_MAX_MESSAGE_BYTES + RECORD_HEADROOM_BYTES;

/** The largest record a store with this body limit can write. */
export function maxRecordBytesFor(maxMessageBytes: number): number {
  return maxMessageBytes + RECORD_HEADROOM_BYTES;
}

/** Bits of SYSFLAG. */
export const SysFlag = {
  COMPRESSED: 0x1,
  MULTI_TAGS: 0x2,
  TRANSACTION_NOT_TYPE: 0,
  TRANSACTION_PREPARED_TYPE: 0x4,
  TRANSACTION_COMMIT_TYPE: 0x8,
  TRANSACTION_ROLLBACK_TYPE: 0xc,
  BORNHOST_V6: 0x10,
  STOREHOST_V6: 0x20,
  NEED_UNWRAP: 0x40,
  INNER_BATCH: 0x80,
  /** Compression algorithm of a COMPRESSED body, in bits 8–10. */
  COMPRESSION_TYPE_MASK: 0x700,
  COMPRESSION_LZ4: 0x100,
  COMPRESSION_ZSTD: 0x200,
  COMPRESSION_ZLIB: 0x300,
} as const;

export type TransactionType = 0 | 0x4 | 0x8 | 0xc;

/** The transaction type bits (2–3) of a SYSFLAG. */
export function transactionType(sysFlag: number): TransactionType {
  return (sysFlag & 0xc) as TransactionType;
}

// ---------------------------------------------------------------------------------------------
// Raw integer access. Indexing a Uint8Array wraps stores modulo 256 and never throws, and these
// small functions inline; callers check bounds once per record instead of once per field.
// ---------------------------------------------------------------------------------------------

const TWO_32 = 4294967296;

function put32(b: Buffer, p: number, v: number): void {
  b[p] = v >>> 24;
  b[p + 1] = v >>> 16;
  b[p + 2] = v >>> 8;
  b[p + 3] = v;
}

/** The 64-bit big-endian integer at `at` of a DataView (exact while a safe integer). */
function getI64(view: DataView<ArrayBufferLike>, at: number): number {
  return view.getInt32(at) * TWO_32 + view.getUint32(at + 4);
}

/** A 64-bit integer (a safe integer), big-endian, at `at` of a DataView. */
function setI64(view: DataView<ArrayBufferLike>, at: number, v: number): void {
  const hi = Math.floor(v / TWO_32);
  view.setInt32(at, hi);
  view.setInt32(at + 4, v - hi * TWO_32);
}

function readI32(b: Buffer, p: number): number {
  return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
}

function readI64(b: Buffer, p: number): number {
  return readI32(b, p) * TWO_32 + (readI32(b, p + 4) >>> 0);
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/** A message to append, before the store gives it a position. */
export interface AppendMessage {
  topic: string;
  queueId: number;
  body: Uint8Array;
  /** Encoded properties (see `encodeProperties`). */
  properties?: string;
  flag?: number;
  sysFlag?: number;
  /** Default: Date.now() when prepared. */
  bornTimestamp?: number;
  /** Default: 127.0.0.1:0. */
  bornHost?: HostAddress;
  reconsumeTimes?: number;
  preparedTransactionOffset?: number;
}

/**
 * A validated message with everything that does not depend on its position encoded. The buffers
 * may be shared between records (cached topic and host bytes): never mutate them.
 */
export interface PreparedRecord {
  readonly msg: AppendMessage;
  /** Exact size of the record `writeRecord` will write. */
  readonly size: number;
  readonly topicBytes: Buffer;
  /** The properties as written (ending in \u0002), without the record-CRC property. */
  readonly properties: string;
  /** UTF-8 bytes of `properties`, plus the reserved record-CRC property when `recordCrc`. */
  readonly propertiesLength: number;
  /** `properties` is ASCII: it can be written byte for byte. */
  readonly propertiesAscii: boolean;
  /** 8 (IPv4) or 20 (IPv6) bytes. */
  readonly bornHostBytes: Buffer;
  /** The message's sysFlag with BORNHOST_V6 and STOREHOST_V6 set to match the hosts. */
  readonly sysFlag: number;
  readonly bodyCrc: number;
  /** `msg.bornTimestamp` or the time of preparation. */
  readonly bornTimestamp: number;
  /** Whether `size` counts a 20-byte (IPv6) store host; `writeRecord` checks it. */
  readonly storeHostV6: boolean;
  /** The properties end with the reserved record-CRC property, filled in by `writeRecord`. */
  readonly recordCrc: boolean;
  /**
   * BODYCRC and the record CRC's digits are left for `fillRecordCrcs` (`bodyCrc` is then 0):
   * the store has them computed off the main thread just before the record is written.
   */
  readonly crcsDeferred: boolean;
}

/** Removes a `__CRC32#` property (a message re-put from the log carries its old one). */
function withoutRecordCrc(props: string): string {
  const at = props.indexOf(`${RECORD_CRC_PROPERTY}\u0001`);
  if (at < 0 || (at > 0 && props.charCodeAt(at - 1) !== PS_CODE)) return props;
  const end = props.indexOf(PROPERTY_SEPARATOR, at);
  return props.slice(0, at) + (end < 0 ? '' : props.slice(end + 1));
}

const TOPIC_CACHE_MAX = 10_000;
const TOPIC_PATTERN = /^[%|a-zA-Z0-9_-]+$/;
/** Validated topics and their bytes, oldest first; evicted first-in first-out. */
const topicCache = new Map<string, Buffer>();

function topicBytesOf(topic: string): Buffer {
  const cached = topicCache.get(topic);
  if (cached !== undefined) return cached;
  if (topic.length === 0) throw new TsmqError('TOPIC_EMPTY', 'the topic is empty');
  const bytes = Buffer.from(topic, 'utf8');
  if (bytes.length > MAX_TOPIC_BYTES) {
    throw new TsmqError(
      'TOPIC_TOO_LONG',
      `the topic is ${bytes.length} bytes long; the limit is ${MAX_TOPIC_BYTES} bytes`,
    );
  }
  if (!TOPIC_PATTERN.test(topic)) {
    throw new TsmqError(
      'TOPIC_INVALID',
      `the topic ${JSON.stringify(topic)} has characters outside [%|a-zA-Z0-9_-]`,
    );
  }
  if (topicCache.size >= TOPIC_CACHE_MAX) topicCache.delete(topicCache.keys().next().value!);
  topicCache.set(topic, bytes);
  return bytes;
}

const DEFAULT_BORN_HOST_BYTES = encodeHost({ address: '127.0.0.1', port: 0 });
/**
 * Encoded born hosts by address, then port. Clients are few and keep their connections, so this
 * stays small; it is dropped whole if it ever grows past the bound.
 */
const BORN_HOST_CACHE_MAX = 4096;
const bornHostCache = new Map<string, Map<number, Buffer>>();
let bornHostCacheSize = 0;

function bornHostBytesOf(h: HostAddress): Buffer {
  let byPort = bornHostCache.get(h.address);
  let b = byPort?.get(h.port);
  if (b !== undefined) return b;
  b = encodeHost(h);
  if (bornHostCacheSize >= BORN_HOST_CACHE_MAX) {
    bornHostCache.clear();
    bornHostCacheSize = 0;
    byPort = undefined;
  }
  if (byPort === undefined) {
    byPort = new Map();
    bornHostCache.set(h.address, byPort);
  }
  byPort.set(h.port, b);
  bornHostCacheSize++;
  return b;
}

function isInt32(n: number): boolean {
  return (n | 0) === n;
}

/**
 * Validates a message and encodes everything but its position. Size rule: the body may be at
 * most `maxMessageBytes`; the topic (≤ 127 bytes) and properties (≤ 32767 bytes) have their own
 * limits, so a record is never larger than `maxRecordBytesFor(maxMessageBytes)`.
 *
 * Non-empty properties that do not end with \u0002 get one appended (equivalent when decoded):
 * a record then never ends in a 0 byte, which is what lets the decoder see a torn tail.
 *
 * `storeHostV6` says which store host `writeRecord` will be given (it changes the size).
 * `now` is the born timestamp of a message without one (default: Date.now()); the store passes
 * its store timestamp, so that one clock read serves both.
 * With `deferCrcs` the body is not checksummed here: whoever writes the record must call
 * `fillRecordCrcs` on it before anyone can read it.
 * Throws TsmqError TOPIC_EMPTY, TOPIC_TOO_LONG, TOPIC_INVALID, QUEUE_ID_INVALID,
 * MESSAGE_BODY_EMPTY, MESSAGE_TOO_LARGE or PROPERTIES_TOO_LARGE.
 */
export function prepareRecord(
  msg: AppendMessage,
  maxMessageBytes: number,
  storeHostV6 = false,
  recordCrc = false,
  deferCrcs = false,
  now?: number,
): PreparedRecord {
  const topicBytes = topicBytesOf(msg.topic);
  const queueId = msg.queueId;
  if ((queueId & 0xffff) !== queueId) {
    throw new TsmqError(
      'QUEUE_ID_INVALID',
      `the queue id is ${queueId}; it must be an integer in [0, 65535]`,
    );
  }
  const bodyLen = msg.body.length;
  if (bodyLen === 0) throw new TsmqError('MESSAGE_BODY_EMPTY', 'the message body is empty');
  if (bodyLen > maxMessageBytes) {
    throw new TsmqError(
      'MESSAGE_TOO_LARGE',
      `the message body is ${bodyLen} bytes; the limit is ${maxMessageBytes} bytes`,
    );
  }
  let props = msg.properties ?? '';
  // One-character search first: '#' is rare in properties, and the cheap test spares the
  // substring search (which costs several times more) for almost every message.
  if (props.indexOf('#') >= 0 && props.includes(RECORD_CRC_PROPERTY)) props = withoutRecordCrc(props);
  if (props.length > 0 && props.charCodeAt(props.length - 1) !== PS_CODE) props += PROPERTY_SEPARATOR;
  // Written straight into the log buffer later: no intermediate Buffer per message.
  const propsUtf8 = props.length === 0 ? 0 : Buffer.byteLength(props, 'utf8');
  const propertiesLength = propsUtf8 + (recordCrc ? RECORD_CRC_RESERVED_BYTES : 0);
  if (propertiesLength > MAX_PROPERTIES_BYTES) {
    throw new TsmqError(
      'PROPERTIES_TOO_LARGE',
      `the encoded properties are ${propertiesLength} bytes; the limit is ${MAX_PROPERTIES_BYTES} bytes`,
    );
  }

  const bornHostBytes = msg.bornHost === undefined ? DEFAULT_BORN_HOST_BYTES : bornHostBytesOf(msg.bornHost);

  // Fields a caller fills from its own parsing: a value that does not fit is a bug upstream,
  // and catching it here means writeRecord can never fail halfway through a record.
  const flag = msg.flag ?? 0;
  const reconsumeTimes = msg.reconsumeTimes ?? 0;
  const bornTimestamp = msg.bornTimestamp ?? now ?? Date.now();
  const prepared = msg.preparedTransactionOffset ?? 0;
  let sysFlag = msg.sysFlag ?? 0;
  assert(isInt32(flag) && isInt32(reconsumeTimes) && isInt32(sysFlag), 'flag fields must be int32');
  assert(
    Number.isSafeInteger(bornTimestamp) && Number.isSafeInteger(prepared),
    'i64 fields must be integers',
  );

  sysFlag &= ~(SysFlag.BORNHOST_V6 | SysFlag.STOREHOST_V6);
  if (bornHostBytes.length === 20) sysFlag |= SysFlag.BORNHOST_V6;
  if (storeHostV6) sysFlag |= SysFlag.STOREHOST_V6;

  const size =
    RECORD_FIXED_BYTES_V4 +
    (bornHostBytes.length - 8) +
    (storeHostV6 ? 12 : 0) +
    bodyLen +
    topicBytes.length +
    propertiesLength;

  return {
    msg,
    size,
    topicBytes,
    properties: props,
    propertiesLength,
    propertiesAscii: propsUtf8 === props.length,
    bornHostBytes,
    sysFlag,
    bodyCrc: deferCrcs ? 0 : crc32Of(msg.body, 0, bodyLen) & 0x7fffffff,
    bornTimestamp,
    storeHostV6,
    recordCrc,
    crcsDeferred: deferCrcs,
  };
}

/**
 * Writes a prepared record at `pos`: exactly `rec.size` bytes. `storeHostBytes` is 8 or 20
 * bytes (see `encodeHost`) and must match the `storeHostV6` the record was prepared with.
 * `sharedTarget`: `target` is a view of a SharedArrayBuffer (see below).
 */
export function writeRecord(
  target: Buffer,
  pos: number,
  rec: PreparedRecord,
  queueOffset: number,
  physicalOffset: number,
  storeTimestamp: number,
  storeHostBytes: Buffer,
  sharedTarget = false,
): void {
  const size = rec.size;
  if (pos < 0 || pos + size > target.length) assert(false, 'record does not fit in the target buffer');
  if (storeHostBytes.length !== (rec.storeHostV6 ? 20 : 8)) {
    assert(
      false,
      `a ${storeHostBytes.length}-byte store host, but the record was prepared with storeHostV6 = ${rec.storeHostV6}`,
    );
  }
  const msg = rec.msg;
  // Fixed fields through a DataView of the target (see bytes.ts).
  const view = dataViewOf(target);
  const o = pos;
  view.setInt32(o, size);
  view.setInt32(o + 4, MAGIC_V1);
  view.setInt32(o + 8, rec.bodyCrc);
  view.setInt32(o + 12, msg.queueId);
  view.setInt32(o + 16, msg.flag ?? 0);
  setI64(view, o + 20, queueOffset);
  setI64(view, o + 28, physicalOffset);
  view.setInt32(o + 36, rec.sysFlag);
  setI64(view, o + 40, rec.bornTimestamp);
  let p = copySmall(rec.bornHostBytes, target, pos + 48);
  setI64(view, p, storeTimestamp);
  p = copySmall(storeHostBytes, target, p + 8);
  view.setInt32(p, msg.reconsumeTimes ?? 0);
  setI64(view, p + 4, msg.preparedTransactionOffset ?? 0);
  const body = msg.body;
  view.setInt32(p + 12, body.length);
  p += 16;
  // V8 copies into shared memory with relaxed atomic word moves (TypedArray.set: ~250 ns per KiB);
  // Buffer.fill with a buffer pattern as long as the range is Node's plain memcpy (~95 ns per KiB).
  if (sharedTarget && body.length >= 256) target.fill(body, p, p + body.length);
  else target.set(body, p);
  p += body.length;
  const bodyEnd = p;
  const topic = rec.topicBytes;
  target[p++] = topic.length;
  p = copySmall(topic, target, p);
  const plen = rec.propertiesLength;
  target[p] = plen >>> 8;
  target[p + 1] = plen;
  p += 2;
  const props = rec.properties;
  if (props.length > 0) {
    // One native copy: cheaper than a charCodeAt loop (each typed-array store costs as much as
    // the call's overhead spread over a few bytes) once properties pass a dozen bytes.
    p += target.write(props, p, rec.propertiesAscii ? 'latin1' : 'utf8');
  }
  if (rec.recordCrc) {
    copySmall(RECORD_CRC_PLACEHOLDER, target, p);
    if (!rec.crcsDeferred) writeRecordCrc(target, pos, size, bodyEnd - body.length, bodyEnd);
  }
}

/**
 * Completes a record written by `writeRecord` from a record prepared with `deferCrcs`: computes
 * BODYCRC and, when `recordCrc` (the record was prepared with it), the record CRC's digits, in
 * that order (the record CRC covers the BODYCRC field). Reads only what `writeRecord` wrote, so
 * it can run in another thread over shared memory, given the record's position.
 */
export function fillRecordCrcs(target: Buffer, pos: number, recordCrc: boolean): void {
  const view = dataViewOf(target);
  const size = view.getInt32(pos);
  const sysFlag = view.getInt32(pos + 36);
  const bodyLenAt =
    pos +
    BODYLEN_AT +
    ((sysFlag & SysFlag.BORNHOST_V6) !== 0 ? 12 : 0) +
    ((sysFlag & SysFlag.STOREHOST_V6) !== 0 ? 12 : 0);
  const bodyAt = bodyLenAt + 4;
  const bodyEnd = bodyAt + view.getInt32(bodyLenAt);
  assert(size > 0 && bodyEnd <= pos + size && pos + size <= target.length, 'not a written record');
  view.setInt32(pos + 8, crc32Of(target, bodyAt, bodyEnd) & 0x7fffffff);
  if (recordCrc) writeRecordCrc(target, pos, size, bodyAt, bodyEnd);
}

/**
 * `fillRecordCrcs` for records `jobs[0, n)` of `target`, each `2 * position + recordCrc` (the
 * commit log's CRC jobs): one call into the native addon when it is built, else one by one.
 */
export function fillRecordCrcsOf(target: Buffer, jobs: Int32Array, n: number): void {
  if (native !== undefined) native.fillRecordCrcs(target, jobs, n);
  else for (let i = 0; i < n; i++) fillRecordCrcs(target, jobs[i]! >>> 1, (jobs[i]! & 1) === 1);
}

/**
 * The record CRC of the record of `size` bytes at `pos` whose body is [bodyAt, bodyEnd): over
 * everything before the digits but the body, written as the digits (the last 11 bytes but one).
 */
function writeRecordCrc(target: Buffer, pos: number, size: number, bodyAt: number, bodyEnd: number): void {
  const head = crc32Range(target, pos, bodyAt);
  writeCrcDigits(target, pos + size - 11, crc32Range(target, bodyEnd, pos + size - 11, head));
}

/**
 * CRC-32 of a body, buf[start, end): the native addon's when it is built (~0.17 µs per KiB against
 * zlib's ~0.42 on this machine's Node), else zlib's. The short regions of the record CRC stay with
 * crc32Range, where a native call's own cost would be most of the work.
 */
function crc32Of(buf: Uint8Array, start: number, end: number): number {
  return native !== undefined ? native.crc32(buf, start, end, 0) : crc32(buf.subarray(start, end));
}

/** Copies a short array byte by byte: cheaper than TypedArray.set for a few bytes. */
function copySmall(src: Uint8Array, target: Buffer, at: number): number {
  const n = src.length;
  if (n > 64) {
    target.set(src, at);
    return at + n;
  }
  for (let i = 0; i < n; i++) target[at + i] = src[i]!;
  return at + n;
}

function writeCrcDigits(target: Buffer, at: number, crc: number): void {
  // Two 5-digit halves keep the arithmetic in small integers (crc itself can exceed int32).
  let hi = Math.floor(crc / 100000);
  let lo = crc - hi * 100000;
  for (let i = 9; i >= 5; i--) {
    const q = (lo / 10) | 0;
    target[at + i] = 0x30 + lo - q * 10;
    lo = q;
  }
  for (let i = 4; i >= 0; i--) {
    const q = (hi / 10) | 0;
    target[at + i] = 0x30 + hi - q * 10;
    hi = q;
  }
}

/** The record CRC's digits at `at` (10 bytes), or -1 if they are not 10 ASCII digits. */
function readCrcDigits(buf: Buffer, at: number): number {
  let v = 0;
  for (let i = 0; i < 10; i++) {
    const d = buf[at + i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** Writes the 8-byte blank record that pads a segment's last `length` bytes (the rest is left as is). */
export function writeBlankRecord(target: Buffer, pos: number, length: number): void {
  assert(length >= BLANK_RECORD_MIN_BYTES && isInt32(length), `bad blank record length ${length}`);
  assert(pos >= 0 && pos + BLANK_RECORD_MIN_BYTES <= target.length, 'blank record does not fit');
  put32(target, pos, length);
  put32(target, pos + 4, BLANK_MAGIC);
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

export interface DecodedRecord {
  totalSize: number;
  magic: number;
  bodyCrc: number;
  queueId: number;
  flag: number;
  queueOffset: number;
  physicalOffset: number;
  sysFlag: number;
  bornTimestamp: number;
  bornHost: HostAddress;
  storeTimestamp: number;
  storeHost: HostAddress;
  reconsumeTimes: number;
  preparedTransactionOffset: number;
  /** A view into the decoded buffer, not a copy. */
  body: Buffer;
  topic: string;
  /** The raw encoded properties (see `decodeProperties`, `getProperty`). */
  properties: string;
  /** The whole record: a view into the decoded buffer, not a copy. */
  raw: Buffer;
}

export interface BlankRecord {
  kind: 'blank';
  /** Bytes from the blank record's start to the end of its segment. */
  size: number;
}

export type DecodeResult =
  | { kind: 'record'; record: DecodedRecord }
  | BlankRecord
  /** TOTALSIZE is 0: a zero-filled region, no more data. */
  | { kind: 'end' }
  /** With `validateOnly`: the record at pos is whole and valid; nothing was decoded. */
  | { kind: 'valid'; size: number }
  /** The buffer ends before the record does; `needed` is the total bytes required from pos. */
  | { kind: 'need-more'; needed: number }
  | { kind: 'corrupt'; reason: string };

export interface DecodeOptions {
  /** Check BODYCRC against the body. Default true. */
  checkCrc?: boolean;
  /** The PHYSICALOFFSET the record must carry. */
  expectedPhysicalOffset?: number;
  /** Largest acceptable message record. Default DEFAULT_MAX_RECORD_BYTES. */
  maxRecordBytes?: number;
  /**
   * Every record of this log carries the record CRC: one without it is corrupt (a damaged
   * `__CRC32#` key must not downgrade the check to the body CRC). Checked when checkCrc is on.
   */
  requireRecordCrc?: boolean;
  /** Validate only (recovery's scan): answer 'valid' instead of building the record. */
  validateOnly?: boolean;
}

/** Whether `__CRC32#\u0001` is at `at`: a loop, since a native compare() call costs more for 9 bytes. */
function hasCrcHead(buf: Buffer, at: number): boolean {
  for (let i = 0; i < RECORD_CRC_HEAD.length; i++) if (buf[at + i] !== RECORD_CRC_HEAD[i]) return false;
  return true;
}

/** Whether a whole record (TOTALSIZE bytes at pos) ends with the record-CRC property. */
export function hasRecordCrc(buf: Buffer, pos: number, totalSize: number): boolean {
  const end = pos + totalSize;
  return (
    totalSize > RECORD_FIXED_BYTES_V4 + RECORD_CRC_RESERVED_BYTES &&
    buf[end - 1] === PS_CODE &&
    hasCrcHead(buf, end - 20) &&
    readCrcDigits(buf, end - 11) >= 0
  );
}

const END: DecodeResult = { kind: 'end' };
const corrupt = (reason: string): DecodeResult => ({ kind: 'corrupt', reason });

/** Offset of BODYLEN from the record start, per combination of IPv6 hosts. */
const BODYLEN_AT = 84;

/**
 * Where the parts of a record lie in its buffer, as `locateRecord` found them: absolute positions,
 * each part running up to the next one's start (the body ends at `topicLenAt`, the topic at
 * `propLenAt`, the properties at `end`).
 */
export interface RecordLayout {
  pos: number;
  totalSize: number;
  magic: number;
  sysFlag: number;
  /** Where BORNHOST starts; STORETIMESTAMP follows it (8 or 20 bytes later). */
  bornHostAt: number;
  bornV6: boolean;
  storeTsAt: number;
  storeV6: boolean;
  bodyAt: number;
  topicLenAt: number;
  topicAt: number;
  propLenAt: number;
  propAt: number;
  end: number;
}

export function newRecordLayout(): RecordLayout {
  return {
    pos: 0,
    totalSize: 0,
    magic: 0,
    sysFlag: 0,
    bornHostAt: 0,
    bornV6: false,
    storeTsAt: 0,
    storeV6: false,
    bodyAt: 0,
    topicLenAt: 0,
    topicAt: 0,
    propLenAt: 0,
    propAt: 0,
    end: 0,
  };
}

/** `decodeRecord`'s layout; it decodes from it before returning, so one object serves every call. */
const scratchLayout = newRecordLayout();

/**
 * Checks the record at `pos` as `decodeRecord` does (framing always; the CRCs unless checkCrc is
 * false) without building anything: on a whole, valid message record it fills `out` and answers
 * undefined; otherwise it answers what `decodeRecord` would ('blank', 'end', 'need-more',
 * 'corrupt'). For readers that take only some fields, or build their own objects.
 */
export function locateRecord(
  buf: Buffer,
  pos: number,
  opts: DecodeOptions | undefined,
  out: RecordLayout,
): DecodeResult | undefined {
  if (!(Number.isInteger(pos) && pos >= 0)) return corrupt(`invalid position ${pos}`);
  const avail = buf.length - pos;
  if (avail < 4) return { kind: 'need-more', needed: 4 };
  const totalSize = readI32(buf, pos);
  if (totalSize === 0) return END;
  if (totalSize < BLANK_RECORD_MIN_BYTES) return corrupt(`TOTALSIZE ${totalSize} is too small`);
  if (avail < 8) return { kind: 'need-more', needed: 8 };
  const magic = readI32(buf, pos + 4);
  if (magic === BLANK_MAGIC) return { kind: 'blank', size: totalSize };
  const v2 = magic === MAGIC_V2;
  if (!v2 && magic !== MAGIC_V1) return corrupt(`bad MAGICCODE 0x${(magic >>> 0).toString(16)}`);
  const maxRecordBytes = opts?.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  if (totalSize > maxRecordBytes) {
    return corrupt(`TOTALSIZE ${totalSize} exceeds the limit of ${maxRecordBytes} bytes`);
  }
  const topicLenBytes = v2 ? 2 : 1;
  if (totalSize < RECORD_FIXED_BYTES_V4 + topicLenBytes - 1) {
    return corrupt(`TOTALSIZE ${totalSize} is below the minimum record size`);
  }
  if (avail < totalSize) return { kind: 'need-more', needed: totalSize };

  const sysFlag = readI32(buf, pos + 36);
  const bornV6 = (sysFlag & SysFlag.BORNHOST_V6) !== 0;
  const storeV6 = (sysFlag & SysFlag.STOREHOST_V6) !== 0;
  const bornHostLen = bornV6 ? 20 : 8;
  const storeHostLen = storeV6 ? 20 : 8;
  const end = pos + totalSize;
  const bodyLenAt = pos + BODYLEN_AT + (bornHostLen - 8) + (storeHostLen - 8);
  // Each length is checked against what is left before reading past it.
  if (bodyLenAt + 4 + topicLenBytes + 2 > end) return corrupt('TOTALSIZE too small for its IPv6 hosts');
  const bodyLen = readI32(buf, bodyLenAt);
  const bodyAt = bodyLenAt + 4;
  if (bodyLen < 0 || bodyAt + bodyLen + topicLenBytes + 2 > end) {
    return corrupt(`BODYLEN ${bodyLen} does not fit TOTALSIZE ${totalSize}`);
  }
  const topicLenAt = bodyAt + bodyLen;
  const topicLen = v2 ? (buf[topicLenAt]! << 8) | buf[topicLenAt + 1]! : buf[topicLenAt]!;
  if (topicLen === 0) return corrupt('the topic is empty');
  const topicAt = topicLenAt + topicLenBytes;
  if (topicAt + topicLen + 2 > end)
    return corrupt(`TOPICLEN ${topicLen} does not fit TOTALSIZE ${totalSize}`);
  const propLenAt = topicAt + topicLen;
  const propLen = (buf[propLenAt]! << 8) | buf[propLenAt + 1]!;
  const propAt = propLenAt + 2;
  if (propLen > MAX_PROPERTIES_BYTES || propAt + propLen !== end) {
    return corrupt(
      `lengths (body ${bodyLen}, topic ${topicLen}, properties ${propLen}) do not add up to TOTALSIZE ${totalSize}`,
    );
  }
  for (let i = topicAt; i < propLenAt; i++) {
    if (buf[i] === 0) return corrupt('the topic holds a NUL byte');
  }
  if (propLen > 0 && buf[end - 1] === 0) return corrupt('the properties end in a NUL byte (torn record?)');

  const expected = opts?.expectedPhysicalOffset;
  if (expected !== undefined) {
    const physicalOffset = readI64(buf, pos + 28);
    if (physicalOffset !== expected) {
      return corrupt(`PHYSICALOFFSET ${physicalOffset} where ${expected} was expected`);
    }
  }
  if (opts?.checkCrc !== false) {
    const withCrc =
      propLen >= RECORD_CRC_RESERVED_BYTES &&
      hasRecordCrc(buf, pos, totalSize) &&
      (propLen === RECORD_CRC_RESERVED_BYTES || buf[end - 21] === PS_CODE);
    if (!withCrc && opts?.requireRecordCrc) return corrupt('the record CRC property is missing or damaged');
    if (withCrc) {
      // Covers every byte before the digits except the body (which BODYCRC covers).
      const stored = readCrcDigits(buf, end - 11);
      const actual = crc32Range(buf, topicLenAt, end - 11, crc32Range(buf, pos, bodyAt));
      if (stored !== actual) return corrupt(`record CRC ${stored} but the record's CRC is ${actual}`);
    }
    const bodyCrc = readI32(buf, pos + 8);
    const actual = crc32Of(buf, bodyAt, topicLenAt) & 0x7fffffff;
    if (actual !== bodyCrc) return corrupt(`BODYCRC ${bodyCrc} but the body's CRC is ${actual}`);
  }

  out.pos = pos;
  out.totalSize = totalSize;
  out.magic = magic;
  out.sysFlag = sysFlag;
  out.bornHostAt = pos + 48;
  out.bornV6 = bornV6;
  out.storeTsAt = pos + 48 + bornHostLen;
  out.storeV6 = storeV6;
  out.bodyAt = bodyAt;
  out.topicLenAt = topicLenAt;
  out.topicAt = topicAt;
  out.propLenAt = propLenAt;
  out.propAt = propAt;
  out.end = end;
  return undefined;
}

/** Field readers over a located record (see `locateRecord`): big-endian, as the layout says. */
export const recordField = {
  queueId: (buf: Buffer, l: RecordLayout) => readI32(buf, l.pos + 12),
  flag: (buf: Buffer, l: RecordLayout) => readI32(buf, l.pos + 16),
  queueOffset: (buf: Buffer, l: RecordLayout) => readI64(buf, l.pos + 20),
  physicalOffset: (buf: Buffer, l: RecordLayout) => readI64(buf, l.pos + 28),
  bornTimestamp: (buf: Buffer, l: RecordLayout) => readI64(buf, l.pos + 40),
  storeTimestamp: (buf: Buffer, l: RecordLayout) => readI64(buf, l.storeTsAt),
  reconsumeTimes: (buf: Buffer, l: RecordLayout) => readI32(buf, l.storeTsAt + 8 + (l.storeV6 ? 20 : 8)),
  preparedTransactionOffset: (buf: Buffer, l: RecordLayout) =>
    readI64(buf, l.storeTsAt + 12 + (l.storeV6 ? 20 : 8)),
} as const;

/**
 * Decodes the record at `pos`. Never throws: bad bytes come back as 'corrupt' with a reason.
 * A blank record is reported with its size (only its 8-byte head needs to be in `buf`).
 */
export function decodeRecord(buf: Buffer, pos: number, opts?: DecodeOptions): DecodeResult {
  const l = scratchLayout;
  const failed = locateRecord(buf, pos, opts, l);
  if (failed !== undefined) return failed;
  if (opts?.validateOnly) return { kind: 'valid', size: l.totalSize };
  const end = l.end;
  const record: DecodedRecord = {
    totalSize: l.totalSize,
    magic: l.magic,
    bodyCrc: readI32(buf, pos + 8),
    queueId: recordField.queueId(buf, l),
    flag: recordField.flag(buf, l),
    queueOffset: recordField.queueOffset(buf, l),
    physicalOffset: recordField.physicalOffset(buf, l),
    sysFlag: l.sysFlag,
    bornTimestamp: recordField.bornTimestamp(buf, l),
    bornHost: decodeHost(buf, l.bornHostAt, l.bornV6),
    storeTimestamp: recordField.storeTimestamp(buf, l),
    storeHost: decodeHost(buf, l.storeTsAt + 8, l.storeV6),
    reconsumeTimes: recordField.reconsumeTimes(buf, l),
    preparedTransactionOffset: recordField.preparedTransactionOffset(buf, l),
    body: buf.subarray(l.bodyAt, l.topicLenAt),
    topic: buf.toString('utf8', l.topicAt, l.propLenAt),
    properties: l.propAt === end ? '' : buf.toString('utf8', l.propAt, end),
    raw: buf.subarray(pos, end),
  };
  return { kind: 'record', record };
}

/**
 * Decodes a buffer that holds whole message records and nothing else (a pull body). Throws
 * CORRUPT_RECORD on anything else: a bad or truncated record, zeros, or a blank record.
 */
export function decodeRecords(
  buf: Buffer,
  opts?: Omit<DecodeOptions, 'expectedPhysicalOffset'>,
): DecodedRecord[] {
  const out: DecodedRecord[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const r = decodeRecord(buf, pos, opts);
    if (r.kind !== 'record') {
      throw new TsmqError('CORRUPT_RECORD', `at byte ${pos}: ${describeDecodeResult(r)}`);
    }
    out.push(r.record);
    pos += r.record.totalSize;
  }
  return out;
}

/** What a decode result that is not a record means, for an error message. */
export function describeDecodeResult(r: DecodeResult): string {
  switch (r.kind) {
    case 'corrupt':
      return r.reason;
    case 'need-more':
      return `truncated record (${r.needed} bytes needed)`;
    case 'end':
      return 'zero TOTALSIZE';
    case 'blank':
      return `unexpected blank record of ${r.size} bytes`;
    case 'record':
    case 'valid':
      return 'record';
  }
}

export type StreamItem = DecodedRecord | BlankRecord;

/**
 * Decodes records from a stream of arbitrary chunks, keeping a partial record between pushes.
 * A blank record is reported and the rest of its length skipped, as in a segment. Zeros where a
 * record should start, or a bad record, throw CORRUPT_RECORD (and the decoder stays failed).
 *
 * Records are views into the chunk they arrived in, or into a private buffer when they spanned
 * chunks: do not reuse a chunk's memory while its records are in use.
 */
export class RecordStreamDecoder {
  private pending: Buffer | null = null;
  private pendingLen = 0;
  private needed = 0;
  private skip = 0;
  private failure: TsmqError | null = null;
  private consumed = 0;
  private readonly opts: DecodeOptions;

  constructor(opts: Omit<DecodeOptions, 'expectedPhysicalOffset'> = {}) {
    this.opts = { ...opts };
  }

  /** Bytes held back as the start of an incomplete record. */
  get pendingBytes(): number {
    return this.pendingLen;
  }

  push(chunk: Buffer): StreamItem[] {
    if (this.failure) throw this.failure;
    const out: StreamItem[] = [];
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, len - pos);
        this.skip -= n;
        pos += n;
        this.consumed += n;
        continue;
      }
      if (this.pending !== null) {
        // Complete the held-back record with just the bytes the decoder asked for.
        const n = Math.min(this.needed - this.pendingLen, len - pos);
        chunk.copy(this.pending, this.pendingLen, pos, pos + n);
        this.pendingLen += n;
        pos += n;
        if (this.pendingLen < this.needed) break;
        const r = decodeRecord(this.pending.subarray(0, this.pendingLen), 0, this.opts);
        if (r.kind === 'need-more') {
          this.hold(this.pending, 0, this.pendingLen, r.needed);
          continue;
        }
        const held = this.pendingLen;
        this.pending = null;
        this.pendingLen = 0;
        this.take(r, held, out);
        continue;
      }
      const r = decodeRecord(chunk, pos, this.opts);
      if (r.kind === 'need-more') {
        this.hold(chunk, pos, len, r.needed);
        break;
      }
      pos += this.take(r, len - pos, out);
    }
    return out;
  }

  /** Call at the end of the stream: throws CORRUPT_RECORD if a record was left incomplete. */
  finish(): void {
    if (this.failure) throw this.failure;
    if (this.pendingLen > 0 || this.skip > 0) {
      this.fail(`stream ends inside a record at byte ${this.consumed}`);
    }
  }

  /** Keeps bytes [from, to) of `src` as the start of a record of at least `needed` bytes. */
  private hold(src: Buffer, from: number, to: number, needed: number): void {
    const next = Buffer.allocUnsafe(needed);
    src.copy(next, 0, from, to);
    this.pending = next;
    this.pendingLen = to - from;
    this.needed = needed;
  }

  /** Handles a complete decode result; returns how many of the `available` bytes it used. */
  private take(r: DecodeResult, available: number, out: StreamItem[]): number {
    if (r.kind === 'record') {
      out.push(r.record);
      this.consumed += r.record.totalSize;
      return r.record.totalSize;
    }
    if (r.kind === 'blank') {
      out.push({ kind: 'blank', size: r.size });
      const used = Math.min(r.size, available);
      this.consumed += used;
      this.skip = r.size - used;
      return used;
    }
    return this.fail(`at byte ${this.consumed}: ${describeDecodeResult(r)}`);
  }

  private fail(message: string): never {
    this.failure = new TsmqError('CORRUPT_RECORD', message);
    throw this.failure;
  }
}

// ---------------------------------------------------------------------------------------------
// Dispatch view
// ---------------------------------------------------------------------------------------------

/**
 * What the dispatcher needs of a record; filled in place to avoid an allocation per record.
 * The properties it uses are kept as positions in `buf` and hashed straight from the bytes: the
 * strings (`tags`, `keys`, `uniqKey`) are only built when asked for. `buf` may be a view of the
 * commit log's write memory, valid only while the record is being dispatched: read what you need
 * then, never later.
 */
export class DispatchInfo {
  size = 0;
  queueId = 0;
  queueOffset = 0;
  physicalOffset = 0;
  sysFlag = 0;
  storeTimestamp = 0;
  topic = '';
  /** Where the properties are in `buf`, for `dispatchProperties`. */
  buf: Buffer = Buffer.alloc(0);
  propStart = 0;
  propEnd = 0;
  /** Value bounds of the TAGS, KEYS and UNIQ_KEY properties in `buf` (last occurrence wins); -1: absent. */
  tagsAt = -1;
  tagsEnd = -1;
  keysAt = -1;
  keysEnd = -1;
  uniqKeyAt = -1;
  uniqKeyEnd = -1;
  /** Java hashCode of the TAGS value (0 without one): the consume-queue tag code. */
  tagsHash = 0;
  /** Java hashCode of `${topic}#${UNIQ_KEY}`, the index key of the unique id (when there is one). */
  uniqIndexKeyHash = 0;

  /** The TAGS, KEYS and UNIQ_KEY properties, or undefined. */
  get tags(): string | undefined {
    return this.tagsAt < 0 ? undefined : this.buf.toString('utf8', this.tagsAt, this.tagsEnd);
  }
  get keys(): string | undefined {
    return this.keysAt < 0 ? undefined : this.buf.toString('utf8', this.keysAt, this.keysEnd);
  }
  get uniqKey(): string | undefined {
    return this.uniqKeyAt < 0 ? undefined : this.buf.toString('utf8', this.uniqKeyAt, this.uniqKeyEnd);
  }
}

export function newDispatchInfo(): DispatchInfo {
  return new DispatchInfo();
}

/** The whole properties string of a record read by `readDispatchInfo`. */
export function dispatchProperties(info: DispatchInfo): string {
  return info.propEnd > info.propStart ? info.buf.toString('utf8', info.propStart, info.propEnd) : '';
}

/** Last topic decoded by `readDispatchInfo`, to skip re-decoding a topic that repeats. */
let lastTopicBytes = Buffer.alloc(0);
let lastTopic = '';
/** Java hashCode of `${lastTopic}#`, where the index key of a UNIQ_KEY starts. */
let lastTopicKeyHash = 0;

// Property keys the dispatcher looks for, as bytes.
const KEY_TAGS = Buffer.from('TAGS');
const KEY_KEYS = Buffer.from('KEYS');
const KEY_UNIQ = Buffer.from('UNIQ_KEY');

function bytesEqual(buf: Buffer, at: number, len: number, key: Buffer): boolean {
  if (len !== key.length) return false;
  for (let i = 0; i < len; i++) if (buf[at + i] !== key[i]) return false;
  return true;
}

/** 31^1..31^4 modulo 2^32, for hashing four characters at a time. */
const P31_2 = 961;
const P31_3 = 29791;
const P31_4 = 923521;
/** Bytes below 3 are the property separators 1 and 2 (and 0, never in a valid record). */
const SEPARATOR_LIMIT = 0x03030303;

/** Whether one of the four bytes of `w` is below 3 (exact for any word; see "hasless"). */
function hasSeparatorByte(w: number): boolean {
  return ((w - SEPARATOR_LIMIT) & ~w & 0x80808080) !== 0;
}

/** Index of the first `code` byte at or after `from`, or `end`; skips 4 bytes a step. */
function findByte(
  buf: Buffer,
  view: DataView<ArrayBufferLike>,
  from: number,
  end: number,
  code: number,
): number {
  let i = from;
  while (i + 4 <= end && !hasSeparatorByte(view.getInt32(i))) i += 4;
  while (i < end && buf[i] !== code) i++;
  return i;
}

/**
 * Java's String.hashCode continued from `h` over the value at buf[from, ...) that ends at the next
 * \u0002 (or `end`): over the bytes, four at a time, while they are ASCII (one byte is then one
 * UTF-16 code unit), over the decoded string otherwise. Returns the hash; `valueEnd` is set to
 * where the value ends.
 */
function hashValue(
  buf: Buffer,
  view: DataView<ArrayBufferLike>,
  from: number,
  end: number,
  h: number,
): number {
  let x = h;
  let high = 0;
  let i = from;
  for (; i + 4 <= end; i += 4) {
    const w = view.getInt32(i);
    if (hasSeparatorByte(w)) break;
    high |= w;
    x =
      (Math.imul(x, P31_4) +
        Math.imul(w >>> 24, P31_3) +
        Math.imul((w >>> 16) & 0xff, P31_2) +
        ((w >>> 8) & 0xff) * 31 +
        (w & 0xff)) |
      0;
  }
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c === PS_CODE) break;
    high |= c;
    x = (Math.imul(x, 31) + c) | 0;
  }
  valueEnd = i;
  if ((high & 0x80808080) !== 0) x = javaHashContinue(buf.toString('utf8', from, i), h);
  return x;
}
let valueEnd = 0;

function javaHashContinue(s: string, h: number): number {
  let x = h;
  for (let i = 0; i < s.length; i++) x = (Math.imul(x, 31) + s.charCodeAt(i)) | 0;
  return x;
}

/**
 * Reads the dispatcher's fields of a record that `decodeRecord` already found valid (call it with
 * `validateOnly` first): no validation here, and no strings but the topic (when it changes): the
 * three properties the dispatcher uses are found by one scan over the property bytes, and the two
 * it hashes (TAGS, UNIQ_KEY) are hashed from their bytes.
 */
export function readDispatchInfo(buf: Buffer, pos: number, size: number, out: DispatchInfo): void {
  readDispatchHeader(buf, pos, size, out);
  scanDispatchProperties(out);
}

/**
 * The fixed fields, the topic and where the properties are (`readDispatchInfo` without the
 * property scan): the property fields are reset, for `scanDispatchProperties` or
 * `applyDispatchHint` to fill in.
 */
export function readDispatchHeader(buf: Buffer, pos: number, size: number, out: DispatchInfo): void {
  const view = dataViewOf(buf);
  const sysFlag = view.getInt32(pos + 36);
  const bornHostLen = (sysFlag & SysFlag.BORNHOST_V6) !== 0 ? 20 : 8;
  const storeHostLen = (sysFlag & SysFlag.STOREHOST_V6) !== 0 ? 20 : 8;
  const bodyLenAt = pos + BODYLEN_AT + (bornHostLen - 8) + (storeHostLen - 8);
  const topicLenAt = bodyLenAt + 4 + view.getInt32(bodyLenAt);
  const v2 = view.getInt32(pos + 4) === MAGIC_V2;
  const topicLen = v2 ? view.getUint16(topicLenAt) : buf[topicLenAt]!;
  const topicAt = topicLenAt + (v2 ? 2 : 1);
  out.size = size;
  out.queueId = view.getInt32(pos + 12);
  out.queueOffset = getI64(view, pos + 20);
  out.physicalOffset = getI64(view, pos + 28);
  out.sysFlag = sysFlag;
  out.storeTimestamp = getI64(view, pos + 48 + bornHostLen);
  if (!bytesEqual(buf, topicAt, topicLen, lastTopicBytes)) {
    lastTopic = buf.toString('utf8', topicAt, topicAt + topicLen);
    lastTopicBytes = Buffer.from(buf.subarray(topicAt, topicAt + topicLen));
    lastTopicKeyHash = javaHashContinue(`${lastTopic}#`, 0);
  }
  out.topic = lastTopic;
  out.buf = buf;
  out.propStart = topicAt + topicLen + 2;
  out.propEnd = pos + size;
  out.tagsAt = -1;
  out.tagsEnd = -1;
  out.keysAt = -1;
  out.keysEnd = -1;
  out.uniqKeyAt = -1;
  out.uniqKeyEnd = -1;
  out.tagsHash = 0;
  out.uniqIndexKeyHash = 0;
}

/** The property half of `readDispatchInfo`, after `readDispatchHeader` filled in `info`. */
export function scanDispatchProperties(out: DispatchInfo): void {
  const buf = out.buf;
  const view = dataViewOf(buf);
  const end = out.propEnd;
  // key \u0001 value \u0002 ... : find each pair's bounds, compare keys by bytes.
  let k = out.propStart;
  while (k < end) {
    const sep = findByte(buf, view, k, end, NV_CODE);
    if (sep >= end) break;
    const klen = sep - k;
    let v: number;
    if (klen === 4 && bytesEqual(buf, k, 4, KEY_TAGS)) {
      out.tagsHash = hashValue(buf, view, sep + 1, end, 0);
      v = valueEnd;
      out.tagsAt = sep + 1;
      out.tagsEnd = v;
    } else if (klen === 8 && bytesEqual(buf, k, 8, KEY_UNIQ)) {
      out.uniqIndexKeyHash = hashValue(buf, view, sep + 1, end, lastTopicKeyHash);
      v = valueEnd;
      out.uniqKeyAt = sep + 1;
      out.uniqKeyEnd = v;
    } else {
      v = findByte(buf, view, sep + 1, end, PS_CODE);
      if (klen === 4 && bytesEqual(buf, k, 4, KEY_KEYS)) {
        out.keysAt = sep + 1;
        out.keysEnd = v;
      }
    }
    k = v + 1;
  }
}

/*
 * Dispatch hints: a record's whole DispatchInfo, worked out by the CRC thread (crc-thread.ts)
 * while it checksums the record, so that the dispatcher on the main thread need not read the
 * record's bytes at all (they have left its caches by then: reading them cost more than the rest
 * of dispatching). Float64 fields, DISPATCH_HINT_FIELDS per record:
 *
 *   0  position of the record in its batch's arena      9  uniqIndexKeyHash
 *   1  size                                            10  propStart      (relative to the record)
 *   2  queueId                                         11  tags start     (-1: no TAGS)
 *   3  queueOffset                                     12  tags end
 *   4  physicalOffset                                  13  keys start     (-1: no KEYS)
 *   5  sysFlag                                         14  keys end
 *   6  storeTimestamp                                  15  uniq start     (-1: no UNIQ_KEY)
 *   7  topic: index into the batch's topic list        16  uniq end
 *   8  tagsHash
 *
 * They are a cache of what `readDispatchInfo` finds in the same bytes, computed by the same code.
 */
export const DISPATCH_HINT_FIELDS = 17;

const relative = (at: number, pos: number) => (at < 0 ? -1 : at - pos);
const absolute = (rel: number, pos: number) => (rel < 0 ? -1 : pos + rel);

/**
 * Reads the (valid, whole) record at `pos` of `buf` and stores its hint at `hints[i]`; its topic
 * goes into `topics` (each topic once) and the hint holds its index there.
 */
export function writeDispatchHint(
  hints: Float64Array,
  i: number,
  topics: string[],
  buf: Buffer,
  pos: number,
  scratch: DispatchInfo,
): void {
  readDispatchInfo(buf, pos, readI32(buf, pos), scratch);
  let t = topics.length - 1;
  if (t < 0 || topics[t] !== scratch.topic) {
    t = topics.indexOf(scratch.topic);
    if (t < 0) t = topics.push(scratch.topic) - 1;
  }
  const h = i * DISPATCH_HINT_FIELDS;
  hints[h] = pos;
  hints[h + 1] = scratch.size;
  hints[h + 2] = scratch.queueId;
  hints[h + 3] = scratch.queueOffset;
  hints[h + 4] = scratch.physicalOffset;
  hints[h + 5] = scratch.sysFlag;
  hints[h + 6] = scratch.storeTimestamp;
  hints[h + 7] = t;
  hints[h + 8] = scratch.tagsHash;
  hints[h + 9] = scratch.uniqIndexKeyHash;
  hints[h + 10] = scratch.propStart - pos;
  hints[h + 11] = relative(scratch.tagsAt, pos);
  hints[h + 12] = relative(scratch.tagsEnd, pos);
  hints[h + 13] = relative(scratch.keysAt, pos);
  hints[h + 14] = relative(scratch.keysEnd, pos);
  hints[h + 15] = relative(scratch.uniqKeyAt, pos);
  hints[h + 16] = relative(scratch.uniqKeyEnd, pos);
}

/**
 * Fills in `out` from hint `i` for the record at `pos` of `buf` (the same bytes the hint was made
 * from, seen through another view), as `readDispatchInfo` would.
 */
export function applyDispatchHint(
  hints: Float64Array,
  i: number,
  topics: readonly string[],
  buf: Buffer,
  pos: number,
  out: DispatchInfo,
): void {
  const h = i * DISPATCH_HINT_FIELDS;
  const size = hints[h + 1]! | 0;
  out.size = size;
  out.queueId = hints[h + 2]! | 0;
  out.queueOffset = hints[h + 3]!;
  out.physicalOffset = hints[h + 4]!;
  out.sysFlag = hints[h + 5]! | 0;
  out.storeTimestamp = hints[h + 6]!;
  out.topic = topics[hints[h + 7]!]!;
  out.tagsHash = hints[h + 8]! | 0;
  out.uniqIndexKeyHash = hints[h + 9]! | 0;
  out.buf = buf;
  out.propStart = pos + (hints[h + 10]! | 0);
  out.propEnd = pos + size;
  out.tagsAt = absolute(hints[h + 11]!, pos);
  out.tagsEnd = absolute(hints[h + 12]!, pos);
  out.keysAt = absolute(hints[h + 13]!, pos);
  out.keysEnd = absolute(hints[h + 14]!, pos);
  out.uniqKeyAt = absolute(hints[h + 15]!, pos);
  out.uniqKeyEnd = absolute(hints[h + 16]!, pos);
}
