/**
 * The one error catalogue of tsmq. Every expected failure a caller can see has a stable numeric
 * code here and a row in docs/errors.md (a test keeps the two in step). Bugs are not catalogued:
 * they are assertion failures (see `assert` below) and crash loudly.
 *
 * Ranges: 1000–1099 message validation, 1100–1199 store state and I/O, 1200–1299 remoting
 * (frames, connections, calls), 1300–1399 configuration. Later layers (broker, client) take
 * their own ranges.
 */
export const ErrorCode = {
  /** The message (body + properties + topic) is larger than the configured maximum. */
  MESSAGE_TOO_LARGE: 1001,
  /** The message body is empty. */
  MESSAGE_BODY_EMPTY: 1002,
  /** The topic is empty. */
  TOPIC_EMPTY: 1003,
  /** The topic is longer than 127 bytes. */
  TOPIC_TOO_LONG: 1004,
  /** The topic has characters outside `[%|a-zA-Z0-9_-]`. */
  TOPIC_INVALID: 1005,
  /** The encoded properties are longer than 32767 bytes. */
  PROPERTIES_TOO_LARGE: 1006,
  /** The queue id is not an integer in [0, 65535]. */
  QUEUE_ID_INVALID: 1007,
  /** A property key or value holds one of the separator characters \u0001 or \u0002. */
  PROPERTY_INVALID: 1008,
  /** A message id (offsetMsgId) is not 32 or 56 hex digits, or its port or offset is out of range. */
  INVALID_MESSAGE_ID: 1009,
  /** The DELAY property (delay level) is not a whole number ≥ 0. */
  DELAY_LEVEL_INVALID: 1010,
  /**
   * A timer property (TIMER_DELIVER_MS, TIMER_DELAY_MS, TIMER_DELAY_SEC) is not a whole number, its
   * delivery time is further ahead than timerMaxDelaySec, or the broker has timers off.
   */
  TIMER_MESSAGE_INVALID: 1011,

  /** Disk use is above the top watermark; appends are refused until retention frees space. */
  DISK_FULL: 1100,
  /** A write or fsync of the commit log failed; the store refuses appends until it is restarted. */
  STORE_IO_ERROR: 1101,
  /** The store is closed or not yet open. */
  STORE_CLOSED: 1102,
  /** A record read from disk failed validation (size, magic or CRC) and is not served. */
  CORRUPT_RECORD: 1103,
  /** Another process holds the store directory's lock. */
  STORE_LOCKED: 1104,
  /** The files on disk do not form a valid store (for example a gap between segments). */
  STORE_LAYOUT_INVALID: 1105,
  /** A read asked for an offset outside the stored range. */
  OFFSET_OUT_OF_RANGE: 1106,
  /** The store is a newer on-disk version than this program understands. */
  STORE_VERSION_UNSUPPORTED: 1107,
  /** Too many bytes wait to be written (the disk is slow): the append is refused, retry later. */
  STORE_BUSY: 1108,

  /** A remoting frame is longer than the frame limit (16 MiB by default). */
  FRAME_TOO_LARGE: 1200,
  /** A remoting frame's lengths are inconsistent (negative, or header longer than the frame). */
  FRAME_INVALID: 1201,
  /** A remoting header could not be parsed (bad JSON, bad binary layout, unknown serialize type). */
  HEADER_INVALID: 1202,
  /** A remote call got no response within its timeout. */
  REMOTING_TIMEOUT: 1203,
  /** The connection closed before the response arrived. */
  CONNECTION_CLOSED: 1204,
  /** Connecting to the remote address failed or timed out. */
  CONNECT_FAILED: 1205,
  /** Too many calls are in flight on this client or connection; the call was refused at once. */
  TOO_MANY_IN_FLIGHT: 1206,

  /** A configuration value or line (broker.conf, flags) does not fit its key. */
  CONFIG_INVALID: 1300,

  // 1400: clients (SDK, admin, CLI).
  /** No name server knows a route for the topic (it does not exist, or no broker serves it), or no queue of it is writable/readable. */
  NO_ROUTE: 1400,
  /** The broker answered a client call with an error response code; the error carries the code and the broker's remark. */
  BROKER_ERROR: 1401,
  /** The producer, consumer or admin client is not started, is already started, or is shut down. */
  CLIENT_STATE_INVALID: 1402,
  /** An argument given to the client SDK or the CLI is invalid (a group name, an option, a message without topic or body). */
  ARGUMENT_INVALID: 1403,
  /** No configured name server answered; the client tried each of them in turn. */
  NAMESRV_UNAVAILABLE: 1404,
  /** A send failed on every attempt (the first try and its retries on other brokers); the cause is the last failure. */
  SEND_FAILED: 1405,
  /** A subscription expression is invalid, or a consumer subscribes in a way its group cannot serve. */
  SUBSCRIPTION_INVALID: 1406,
  /** No message matches the given id or key. */
  MESSAGE_NOT_FOUND: 1407,
} as const;

export type ErrorCodeName = keyof typeof ErrorCode;
export type ErrorCodeValue = (typeof ErrorCode)[ErrorCodeName];

const namesByCode = new Map<number, ErrorCodeName>(
  Object.entries(ErrorCode).map(([name, code]) => [code, name as ErrorCodeName]),
);

/** An expected failure with a catalogued code. `cause` carries the underlying error, if any. */
export class TsmqError extends Error {
  readonly code: ErrorCodeValue;
  readonly codeName: ErrorCodeName;

  constructor(codeName: ErrorCodeName, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TsmqError';
    this.codeName = codeName;
    this.code = ErrorCode[codeName];
  }
}

export function errorCodeName(code: number): ErrorCodeName | undefined {
  return namesByCode.get(code);
}

export function isTsmqError(e: unknown, codeName?: ErrorCodeName): e is TsmqError {
  return e instanceof TsmqError && (codeName === undefined || e.codeName === codeName);
}

/** For bugs only: a broken invariant crashes loudly instead of corrupting data. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}
