/**
 * The JSON header (serialize type 0), the one every RocketMQ peer speaks. UTF-8 JSON text, one
 * object. RocketMQ's Java side writes it with fastjson, which sorts keys and leaves out nulls, so
 * a 4.x Java client sends exactly this (whitespace-free, keys in this order):
 *
 *     {"code":310,                          int: RequestCode / ResponseCode
 *      "extFields":{"a":"PG","b":"T"},      map<string,string>; absent when there is none
 *      "flag":0,                            int: bit 0 response, bit 1 one-way
 *      "language":"JAVA",                   the LanguageCode NAME, not its number
 *      "opaque":7,                          int: request id
 *      "remark":"text",                     string; absent when null
 *      "serializeTypeCurrentRPC":"JSON",    always "JSON" in a JSON header
 *      "version":401}                       int: MQVersion ordinal
 *
 * We write the same bytes for the same command, so a capture of ours diffs cleanly against one of
 * Java's. `body` is not in the header (it is transient in Java); extFields keep the caller's
 * insertion order (Java's is its HashMap's, which no one relies on).
 *
 * Reading is tolerant, because real peers differ: Java's reader (fastjson into the RemotingCommand
 * bean) requires no key, ignores unknown keys, and takes the serialize type from the frame, not
 * from `serializeTypeCurrentRPC`. ali-ons writes keys in its own order, no
 * `serializeTypeCurrentRPC`, and extFields values as JSON numbers and booleans; other clients
 * write `"remark":null` and `"extFields":null`. What we accept, field by field:
 *
 *     field                   absent / null     accepted                       otherwise
 *     code, version,          0                 an int32 number, or a string   HEADER_INVALID
 *       opaque, flag                            of decimal digits in range
 *     language                JAVA (Java's      a known name, or a known       OTHER (Java reads
 *                             default)          number                         null here)
 *     remark                  absent            a string; a number or boolean  HEADER_INVALID
 *                                               becomes its text
 *     extFields               absent            an object; string values kept, HEADER_INVALID (not
 *                                               numbers and booleans become    an object)
 *                                               their text, null values are
 *                                               dropped, objects and arrays
 *                                               become their JSON text
 *     serializeTypeCurrentRPC ignored           ignored                        ignored
 *     any other key           ignored
 *
 * The header as a whole must be valid UTF-8-decoded JSON whose top level is an object; anything
 * else is HEADER_INVALID. (Bytes that are not UTF-8 decode to U+FFFD, as Java's decoder does.)
 *
 * Numbers: JSON.parse reads numbers as doubles, so an integer beyond 2^53 inside extFields loses
 * digits. Java peers send every extFields value as a string; ali-ons sends numbers that are
 * already JavaScript numbers. Neither loses anything.
 */
import { assert, TsmqError } from '../common/errors.js';
import { type LanguageName, languageFromName, languageFromNumber } from './codes.js';
import { makeCommand, type RemotingCommand, setOwn } from './remoting-command.js';

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

function checkInt32(n: number, field: string): void {
  assert((n | 0) === n, `remoting command ${field} ${n} is not an int32`);
}

/** The header as JSON text, exactly as a 4.x Java peer would write it. */
export function jsonHeaderText(cmd: RemotingCommand): string {
  checkInt32(cmd.code, 'code');
  checkInt32(cmd.version, 'version');
  checkInt32(cmd.opaque, 'opaque');
  checkInt32(cmd.flag, 'flag');
  assert(languageFromName(cmd.language) !== undefined, `unknown language ${String(cmd.language)}`);
  let s = `{"code":${cmd.code}`;
  if (cmd.extFields != null) s += `,"extFields":${JSON.stringify(cmd.extFields)}`;
  s += `,"flag":${cmd.flag},"language":"${cmd.language}","opaque":${cmd.opaque}`;
  if (cmd.remark != null) s += `,"remark":${JSON.stringify(cmd.remark)}`;
  s += `,"serializeTypeCurrentRPC":"JSON","version":${cmd.version}}`;
  return s;
}

/**
 * The header as UTF-8 bytes, after `reserve` bytes left for the caller (the frame codec puts the
 * frame prefix there, so that prefix and header go out as one buffer).
 */
export function encodeJsonHeaderWithReserve(cmd: RemotingCommand, reserve: number): Buffer {
  const text = jsonHeaderText(cmd);
  const n = Buffer.byteLength(text, 'utf8');
  const out = Buffer.allocUnsafe(reserve + n);
  out.write(text, reserve, 'utf8');
  return out;
}

/** The header as UTF-8 JSON bytes. */
export function encodeJsonHeader(cmd: RemotingCommand): Buffer {
  return encodeJsonHeaderWithReserve(cmd, 0);
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

function invalid(message: string, cause?: unknown): TsmqError {
  return new TsmqError(
    'HEADER_INVALID',
    `JSON header: ${message}`,
    cause === undefined ? undefined : { cause },
  );
}

const DIGITS = /^-?[0-9]{1,10}$/;

function int32Field(o: Record<string, unknown>, key: string): number {
  const v = o[key];
  if (typeof v === 'number') {
    if ((v | 0) === v) return v | 0; // | 0 turns -0 into 0
  } else if (v === undefined || v === null) {
    return 0;
  } else if (typeof v === 'string' && DIGITS.test(v)) {
    const n = Number(v);
    if ((n | 0) === n) return n;
  }
  throw invalid(`${key} is not an int32: ${describe(v)}`);
}

function languageField(v: unknown): LanguageName {
  if (typeof v === 'string') return languageFromName(v) ?? 'OTHER';
  if (v === undefined || v === null) return 'JAVA';
  if (typeof v === 'number') return languageFromNumber(v) ?? 'OTHER';
  return 'OTHER';
}

/** A scalar JSON value as Java's fastjson would turn it into a String field. */
function asText(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
    case 'boolean':
      return String(v);
    case 'object':
      return v === null ? undefined : JSON.stringify(v);
    default:
      return undefined;
  }
}

function extFieldsField(v: unknown): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(`extFields is not an object: ${describe(v)}`);
  // The object is fresh from JSON.parse and ours alone: fix its values in place. Usually they are
  // all strings already and this only looks.
  const ext = v as Record<string, unknown>;
  for (const key of Object.keys(ext)) {
    const value = ext[key];
    if (typeof value === 'string') continue;
    const text = asText(value);
    if (text === undefined) delete ext[key];
    else setOwn(ext as Record<string, string>, key, text);
  }
  return ext as Record<string, string>;
}

function describe(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? 'an array' : String(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/**
 * Reads a JSON header (bytes `start` to `end` of `buf`). The command's body is undefined and its
 * serializeType 0. Throws TsmqError HEADER_INVALID, and nothing else, on any bad input.
 */
export function decodeJsonHeader(buf: Buffer, start = 0, end = buf.length): RemotingCommand {
  let parsed: unknown;
  try {
    parsed = JSON.parse(buf.toString('utf8', start, end));
  } catch (e) {
    throw invalid('not valid JSON', e);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalid(`the top level is not an object: ${describe(parsed)}`);
  }
  const o = parsed as Record<string, unknown>;
  let remark: string | undefined;
  if (o.remark !== undefined && o.remark !== null) {
    if (typeof o.remark === 'object') throw invalid(`remark is not a string: ${describe(o.remark)}`);
    remark = asText(o.remark);
  }
  return makeCommand(
    int32Field(o, 'code'),
    languageField(o.language),
    int32Field(o, 'version'),
    int32Field(o, 'opaque'),
    int32Field(o, 'flag'),
    remark,
    extFieldsField(o.extFields),
    undefined,
    0,
  );
}
