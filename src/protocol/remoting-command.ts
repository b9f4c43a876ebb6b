/**
 * A remoting command: one request, response or one-way call, as it travels in one frame. The
 * header fields are RocketMQ's; `extFields` is the operation's typed header flattened to strings
 * (RocketMQ's "custom header"), `body` the operation's payload.
 *
 * Commands are plain objects. Every command made here (by the helpers below or by the decoders)
 * has the same nine keys in the same order, present even when undefined, so that they share one
 * shape in V8 and compare equal with `assert.deepStrictEqual` when their values do.
 */
import { assert } from '../common/errors.js';
import { type LanguageName, RemotingFlag, type SerializeTypeCode } from './codes.js';

export interface RemotingCommand {
  /** A RequestCode in a request, a ResponseCode in a response. int32 (int16 in a binary header). */
  code: number;
  language: LanguageName;
  /** The sender's version ordinal (RocketMQ's MQVersion); int32 (int16 in a binary header). */
  version: number;
  /** Request id, echoed by the response. int32, may be negative after wrapping. */
  opaque: number;
  /** Bit field: see RemotingFlag. int32. */
  flag: number;
  /** Error text of a response. An empty remark travels as absent in a binary header. */
  remark?: string;
  /** The operation's header fields. An empty map travels as absent in a binary header. */
  extFields?: Record<string, string>;
  /** The payload. An empty body travels as absent: the decoders never return an empty Buffer. */
  body?: Buffer;
  /** How the header is (to be) written: 0 JSON, 1 ROCKETMQ binary. */
  serializeType: SerializeTypeCode;
}

/** What a peer says about itself when we do not say otherwise. See LanguageCode for why JAVA. */
export const DEFAULT_LANGUAGE: LanguageName = 'JAVA';
/** The version ordinal we send by default. 0 is "unknown" to RocketMQ; brokers should set theirs. */
export const DEFAULT_VERSION = 0;

export function isResponse(cmd: Pick<RemotingCommand, 'flag'>): boolean {
  return (cmd.flag & RemotingFlag.RESPONSE) !== 0;
}

export function isOneway(cmd: Pick<RemotingCommand, 'flag'>): boolean {
  return (cmd.flag & RemotingFlag.ONEWAY) !== 0;
}

/** Builds a command with the canonical key order; the decoders use it too. */
export function makeCommand(
  code: number,
  language: LanguageName,
  version: number,
  opaque: number,
  flag: number,
  remark: string | undefined,
  extFields: Record<string, string> | undefined,
  body: Buffer | undefined,
  serializeType: SerializeTypeCode,
): RemotingCommand {
  return { code, language, version, opaque, flag, remark, extFields, body, serializeType };
}

/**
 * Sets an own property even for the key `__proto__`, which plain assignment would turn into a
 * prototype change. The decoders build extFields with it, since the keys come from the network.
 */
export function setOwn(o: Record<string, string>, key: string, value: string): void {
  if (key === '__proto__') {
    Object.defineProperty(o, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    o[key] = value;
  }
}

export interface RequestOptions {
  language?: LanguageName;
  version?: number;
  /** Defaults to `nextOpaque()`. */
  opaque?: number;
  /** Mark the request one-way: the peer sends no response. */
  oneway?: boolean;
  /** Defaults to JSON, which every RocketMQ peer reads (ali-ons reads nothing else). */
  serializeType?: SerializeTypeCode;
  remark?: string;
}

export function createRequest(
  code: number,
  extFields?: Record<string, string>,
  body?: Buffer,
  opts: RequestOptions = {},
): RemotingCommand {
  return makeCommand(
    code,
    opts.language ?? DEFAULT_LANGUAGE,
    opts.version ?? DEFAULT_VERSION,
    opts.opaque ?? nextOpaque(),
    opts.oneway === true ? RemotingFlag.ONEWAY : 0,
    opts.remark,
    extFields,
    body,
    opts.serializeType ?? 0,
  );
}

export interface ResponseOptions {
  language?: LanguageName;
  version?: number;
}

/**
 * The response to `request`: same opaque, the response flag (and no other bit, as in RocketMQ),
 * and the request's serialize type — a peer that wrote JSON may read nothing else.
 */
export function createResponse(
  request: Pick<RemotingCommand, 'opaque' | 'serializeType'>,
  code: number,
  remark?: string,
  extFields?: Record<string, string>,
  body?: Buffer,
  opts: ResponseOptions = {},
): RemotingCommand {
  return makeCommand(
    code,
    opts.language ?? DEFAULT_LANGUAGE,
    opts.version ?? DEFAULT_VERSION,
    request.opaque,
    RemotingFlag.RESPONSE,
    remark,
    extFields,
    body,
    request.serializeType,
  );
}

/**
 * A counter of opaque ids: int32, wrapping from 2^31−1 to −2^31, and never 0 — some clients
 * (ali-ons) read an opaque of 0 as "none" and would answer our request under a fresh id.
 */
export class OpaqueCounter {
  private last: number;

  /** The first `next()` returns `first` (or 1 if `first` is 0). */
  constructor(first = 1) {
    assert(Number.isInteger(first) && (first | 0) === first, `opaque start ${first} is not an int32`);
    this.last = (first - 1) | 0;
  }

  next(): number {
    this.last = (this.last + 1) | 0;
    if (this.last === 0) this.last = 1;
    return this.last;
  }
}

const processOpaques = new OpaqueCounter();

/** The next opaque id of this process (shared by every client and server in it). */
export function nextOpaque(): number {
  return processOpaques.next();
}
