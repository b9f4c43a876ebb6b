/**
 * Shared by the remoting codec tests: a seeded random source, random commands, random chunking,
 * and the invariant every decoded command must satisfy. Not a test file itself.
 */
import assert from 'node:assert/strict';
import {
  LANGUAGE_NAMES,
  type LanguageName,
  type RemotingCommand,
  type SerializeTypeCode,
} from '../src/protocol/index.js';
import type { Rng } from './prng.js';

export { BASE_SEED, Rng, seeded } from './prng.js';

// Characters that stress escaping and UTF-8: quotes, backslashes, control characters, the
// RocketMQ property separators, 2-, 3- and 4-byte UTF-8 (an emoji is a surrogate pair).
const PIECES = [
  'a',
  'Z',
  '0',
  ' ',
  '"',
  '\\',
  '/',
  '\n',
  '\t',
  '\u0000',
  '\u0001',
  '\u0002',
  '\u007f',
  'é',
  'ß',
  '中',
  '文',
  '✓',
  '\u2028',
  '\ufeff',
  '😀',
  '𝄞',
  '{',
  '}',
  ':',
  ',',
];
const KEYS = ['a', 'b', 'topic', 'queueId', '__proto__', 'constructor', 'toString', '', 'ключ', '🔑'];

/** A well-formed (no lone surrogates) random string of up to `max` pieces. */
export function randomText(rng: Rng, max: number): string {
  const n = rng.int(0, max);
  let s = '';
  for (let i = 0; i < n; i++) s += rng.pick(PIECES);
  return s;
}

/** Sets own properties even for `__proto__`. */
export function record(entries: Iterable<readonly [string, string]>): Record<string, string> {
  const o: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (k === '__proto__') {
      Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
    } else {
      o[k] = v;
    }
  }
  return o;
}

export function randomExtFields(rng: Rng): Record<string, string> | undefined {
  if (rng.bool(0.2)) return undefined;
  const entries: [string, string][] = [];
  const n = rng.int(0, 16);
  for (let i = 0; i < n; i++) {
    const key = rng.bool(0.3) ? rng.pick(KEYS) : randomText(rng, 8);
    entries.push([key, randomText(rng, rng.bool(0.05) ? 400 : 12)]);
  }
  return record(entries);
}

/**
 * A random command that `serializeType` can express: int16 code and version for the binary
 * header, any int32 for JSON. Bodies: absent, empty, up to 2 KiB, and now and then a large one
 * (64 KiB up to `maxBodyBytes`, default 1 MiB).
 */
export function randomCommand(
  rng: Rng,
  serializeType: SerializeTypeCode,
  opts: { maxBodyBytes?: number } = {},
): RemotingCommand {
  const small = serializeType === 1;
  const maxBody = opts.maxBodyBytes ?? 1024 * 1024;
  let body: Buffer | undefined;
  const b = rng.int(0, 9);
  if (b === 0) body = Buffer.alloc(0);
  else if (b <= 3) body = undefined;
  else if (b === 9 && rng.bool(0.05)) body = rng.bytes(rng.int(Math.min(64 * 1024, maxBody), maxBody));
  else body = rng.bytes(rng.int(1, Math.min(2048, maxBody)));
  return {
    code: small ? rng.int16() : rng.int32(),
    language: rng.pick(LANGUAGE_NAMES) as LanguageName,
    version: small ? rng.int16() : rng.int32(),
    opaque: rng.int32(),
    flag: rng.int32(),
    remark: rng.bool(0.4) ? undefined : randomText(rng, 30),
    extFields: randomExtFields(rng),
    body,
    serializeType,
  };
}

/**
 * The command as it reads back: what the wire cannot tell from absent (an empty body; in a
 * binary header an empty remark or map) becomes undefined, and the key order is canonical.
 */
export function normalize(cmd: RemotingCommand): RemotingCommand {
  const binary = cmd.serializeType === 1;
  const ext = cmd.extFields;
  const emptyExt = ext !== undefined && Object.keys(ext).length === 0;
  return {
    code: cmd.code,
    language: cmd.language,
    version: cmd.version,
    opaque: cmd.opaque,
    flag: cmd.flag,
    remark: binary && cmd.remark === '' ? undefined : cmd.remark,
    extFields: binary && emptyExt ? undefined : ext,
    body: cmd.body === undefined || cmd.body.length === 0 ? undefined : cmd.body,
    serializeType: cmd.serializeType,
  };
}

/** Cuts `buf` into chunks of random sizes (mostly small, sometimes large). */
export function randomChunks(rng: Rng, buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let p = 0;
  while (p < buf.length) {
    const n = rng.bool(0.7) ? rng.int(1, 16) : rng.int(1, 4096);
    out.push(buf.subarray(p, Math.min(buf.length, p + n)));
    p += n;
  }
  return out;
}

/** Cuts `buf` into 1-byte chunks, each its own copy (as a socket would hand them over). */
export function byteChunks(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i++) out.push(Buffer.from([buf[i]!]));
  return out;
}

const INT32 = (n: number) => Number.isInteger(n) && (n | 0) === n;

/** The own keys of every RemotingCommand, in order (one shape for V8, and for JSON output). */
export const COMMAND_KEYS = [
  'code',
  'language',
  'version',
  'opaque',
  'flag',
  'remark',
  'extFields',
  'body',
  'serializeType',
];

/** What every decoded command satisfies, whatever bytes it came from. */
export function assertWellFormed(cmd: RemotingCommand): void {
  assert.deepEqual(Object.keys(cmd), COMMAND_KEYS);
  assert.ok(INT32(cmd.code) && INT32(cmd.version) && INT32(cmd.opaque) && INT32(cmd.flag));
  assert.ok(LANGUAGE_NAMES.includes(cmd.language), `language ${cmd.language}`);
  assert.ok(cmd.remark === undefined || typeof cmd.remark === 'string');
  if (cmd.extFields !== undefined) {
    assert.equal(typeof cmd.extFields, 'object');
    assert.equal(Object.getPrototypeOf(cmd.extFields), Object.prototype);
    for (const k of Object.keys(cmd.extFields)) assert.equal(typeof cmd.extFields[k], 'string');
  }
  assert.ok(cmd.body === undefined || (Buffer.isBuffer(cmd.body) && cmd.body.length > 0));
  assert.ok(cmd.serializeType === 0 || cmd.serializeType === 1);
}
