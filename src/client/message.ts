/**
 * What SDK users hand to a producer and get from a consumer: Message (topic, body, tags, keys,
 * user properties) and MessageExt (a stored message with its ids, queue and offsets), plus
 * MessageQueue, the (topic, brokerName, queueId) triple that names one queue in a cluster.
 *
 * Tags, keys, delay level and the message id travel as RocketMQ's system properties (TAGS, KEYS —
 * keys joined by one space —, DELAY, UNIQ_KEY); user properties are the rest.
 *
 * Compressed bodies: a producer deflates a large body (zlib, as Java's Deflater writes it) and sets
 * SYSFLAG's COMPRESSED bit; bits 8–10 name the algorithm (RocketMQ 5.x: 3 = zlib; 4.x leaves them
 * 0, which also means zlib). Consumers get the body inflated. A body we cannot inflate (LZ4 or
 * ZSTD, or bytes that are not a zlib stream) is handed out as stored, COMPRESSED bit still set,
 * so the application can tell — one bad message must not stop a queue.
 */
import { inflateSync } from 'node:zlib';
import { TsmqError } from '../common/errors.js';
import {
  createOffsetMsgId,
  type DecodedRecord,
  decodeHost,
  decodeProperties,
  describeDecodeResult,
  getProperty,
  KEY_SEPARATOR,
  locateRecord,
  MessageProperty,
  newRecordLayout,
  propertyEntry,
  recordField,
  SysFlag,
  systemPropertyEntry,
} from '../message/index.js';

export interface Message {
  topic: string;
  body: Buffer | string;
  tags?: string;
  /** Index keys for `tsmq query --key`; several are joined by a space on the wire. */
  keys?: string | readonly string[];
  /** User properties; names must not be RocketMQ's reserved ones (TAGS, KEYS, …). */
  properties?: Record<string, string>;
  /** RocketMQ delay level (1..18 by default); 0 or absent: deliver at once. */
  delayLevel?: number;
  /** Deliver at this time (a RocketMQ 5 timer message; at most the broker's timerMaxDelaySec ahead). */
  deliverAt?: number | Date;
  /** Deliver this many ms after the broker stores it (a timer message). */
  delayMs?: number;
  /** Whether the broker must store before answering (WAIT). Default true. */
  waitStoreMsgOK?: boolean;
  /** Message flag (an int the application owns). */
  flag?: number;
}

export interface MessageQueue {
  readonly topic: string;
  readonly brokerName: string;
  readonly queueId: number;
}

/** A stable map key for a queue. */
export function mqKey(mq: MessageQueue): string {
  return `${mq.topic}@${mq.brokerName}@${mq.queueId}`;
}

/** RocketMQ's MessageQueue order: topic, then broker name, then queue id. */
export function compareQueues(a: MessageQueue, b: MessageQueue): number {
  if (a.topic !== b.topic) return a.topic < b.topic ? -1 : 1;
  if (a.brokerName !== b.brokerName) return a.brokerName < b.brokerName ? -1 : 1;
  return a.queueId - b.queueId;
}

/** A message as stored and delivered. */
export interface MessageExt {
  topic: string;
  /** The body as the producer gave it (inflated if it travelled compressed). */
  body: Buffer;
  tags: string | undefined;
  keys: string[];
  /** Every property, system ones included, as stored. */
  properties: Map<string, string>;
  /** The client-made unique id (UNIQ_KEY), or the offsetMsgId when the message has none. */
  msgId: string;
  /** The broker-made id: store host + commit-log offset. */
  offsetMsgId: string;
  brokerName: string;
  queueId: number;
  queueOffset: number;
  commitLogOffset: number;
  bornTimestamp: number;
  storeTimestamp: number;
  reconsumeTimes: number;
  /** SYSFLAG as stored (COMPRESSED set if the body travelled compressed). */
  sysFlag: number;
  flag: number;
  storeSize: number;
}

const RESERVED = new Set<string>(Object.values(MessageProperty));

/** The wire properties of a message to send: system ones from the fields, then the user's. */
export function messageProperties(msg: Message, uniqId: string): Record<string, string> {
  const props: Record<string, string> = {};
  if (msg.properties) {
    for (const [k, v] of Object.entries(msg.properties)) {
      if (RESERVED.has(k)) {
        throw new TsmqError('ARGUMENT_INVALID', `the property name ${k} is reserved by the system`);
      }
      props[k] = v;
    }
  }
  if (msg.tags !== undefined && msg.tags !== '') props[MessageProperty.TAGS] = msg.tags;
  if (typeof msg.keys === 'string') {
    if (msg.keys.length > 0) props[MessageProperty.KEYS] = msg.keys;
  } else if (msg.keys != null) {
    const kept = msg.keys.filter((k) => k.length > 0);
    if (kept.length > 0) props[MessageProperty.KEYS] = kept.join(KEY_SEPARATOR);
  }
  if (msg.delayLevel !== undefined && msg.delayLevel > 0) {
    props[MessageProperty.DELAY] = String(msg.delayLevel);
  }
  if (msg.deliverAt !== undefined) {
    props[MessageProperty.TIMER_DELIVER_MS] = String(Math.round(Number(msg.deliverAt)));
  }
  if (msg.delayMs !== undefined) props[MessageProperty.TIMER_DELAY_MS] = String(msg.delayMs);
  props[MessageProperty.WAIT] = msg.waitStoreMsgOK === false ? 'false' : 'true';
  props[MessageProperty.UNIQ_KEY] = uniqId;
  return props;
}

/**
 * `encodeProperties(messageProperties(msg, uniqId))`, built as one string without the object in
 * between (every send encodes its properties): the same entries in the same order, the same
 * errors (ARGUMENT_INVALID for a reserved name, PROPERTY_INVALID for an empty key or a separator).
 */
export function encodeMessageProperties(msg: Message, uniqId: string): string {
  let s = '';
  const user = msg.properties;
  if (user) {
    for (const k of Object.keys(user)) {
      if (RESERVED.has(k)) {
        throw new TsmqError('ARGUMENT_INVALID', `the property name ${k} is reserved by the system`);
      }
      s += propertyEntry(k, user[k]!);
    }
  }
  if (msg.tags !== undefined && msg.tags !== '') s += systemPropertyEntry(MessageProperty.TAGS, msg.tags);
  const keys = msg.keys;
  if (typeof keys === 'string') {
    if (keys.length > 0) s += systemPropertyEntry(MessageProperty.KEYS, keys);
  } else if (keys != null) {
    const kept = keys.filter((k) => k.length > 0);
    if (kept.length > 0) s += systemPropertyEntry(MessageProperty.KEYS, kept.join(KEY_SEPARATOR));
  }
  if (msg.delayLevel !== undefined && msg.delayLevel > 0) {
    s += systemPropertyEntry(MessageProperty.DELAY, String(msg.delayLevel));
  }
  if (msg.deliverAt !== undefined) {
    s += systemPropertyEntry(MessageProperty.TIMER_DELIVER_MS, String(Math.round(Number(msg.deliverAt))));
  }
  if (msg.delayMs !== undefined)
    s += systemPropertyEntry(MessageProperty.TIMER_DELAY_MS, String(msg.delayMs));
  s += msg.waitStoreMsgOK === false ? WAIT_FALSE_ENTRY : WAIT_TRUE_ENTRY;
  return s + systemPropertyEntry(MessageProperty.UNIQ_KEY, uniqId);
}

const WAIT_TRUE_ENTRY = systemPropertyEntry(MessageProperty.WAIT, 'true');
const WAIT_FALSE_ENTRY = systemPropertyEntry(MessageProperty.WAIT, 'false');

export function bodyBuffer(body: Buffer | string): Buffer {
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}

/** Largest body inflating may produce (a bound against a compressed bomb), bytes. */
export const INFLATED_BODY_BYTES_MAX = 64 * 1024 * 1024;

/**
 * The body a consumer sees: inflated when SYSFLAG says zlib-compressed, else a copy of the stored
 * bytes (never a view into the pull buffer). See the file header for what cannot be inflated.
 */
export function storedBodyToUser(body: Uint8Array, sysFlag: number): Buffer {
  if ((sysFlag & SysFlag.COMPRESSED) !== 0) {
    const type = sysFlag & SysFlag.COMPRESSION_TYPE_MASK;
    if (type === 0 || type === SysFlag.COMPRESSION_ZLIB) {
      try {
        return inflateSync(body, { maxOutputLength: INFLATED_BODY_BYTES_MAX });
      } catch {
        // Not a zlib stream (or too big): hand it out as stored; the COMPRESSED bit says so.
      }
    }
  }
  return Buffer.from(body);
}

/** A decoded record as the SDK hands it out. The body is copied out of the pull buffer. */
export function toMessageExt(r: DecodedRecord, brokerName: string): MessageExt {
  const properties = decodeProperties(r.properties);
  const offsetMsgId = createOffsetMsgId(r.storeHost, r.physicalOffset);
  const keys = properties.get(MessageProperty.KEYS);
  return {
    topic: r.topic,
    body: storedBodyToUser(r.body, r.sysFlag),
    tags: properties.get(MessageProperty.TAGS),
    keys: keys ? keys.split(KEY_SEPARATOR).filter((k) => k.length > 0) : [],
    properties,
    msgId: properties.get(MessageProperty.UNIQ_KEY) ?? offsetMsgId,
    offsetMsgId,
    brokerName,
    queueId: r.queueId,
    queueOffset: r.queueOffset,
    commitLogOffset: r.physicalOffset,
    bornTimestamp: r.bornTimestamp,
    storeTimestamp: r.storeTimestamp,
    reconsumeTimes: r.reconsumeTimes,
    sysFlag: r.sysFlag,
    flag: r.flag,
    storeSize: r.totalSize,
  };
}

/**
 * A pulled message. The fixed fields are read when it is decoded; the properties string, the
 * properties (a Map), the tags, keys and both ids are worked out from the record on first use,
 * since most handlers never look at most of them. Enumerable like a plain MessageExt
 * (JSON.stringify and spreading see every field; `toJSON` builds them).
 *
 * The body is a view of the pull's buffer, not a copy (an inflated body is its own buffer): one
 * allocation per pull instead of one per message. A message kept keeps its pull's bytes (one
 * batch, tens of KiB by default); copy the body (`Buffer.from(msg.body)`) to keep it alone.
 */
class PulledMessage implements MessageExt {
  private rawProps: string | undefined;
  private props: Map<string, string> | undefined;
  private offsetId: string | undefined;
  private keyList: string[] | undefined;

  constructor(
    /** Settable: a retried message shows the topic it was first sent to. */
    public topic: string,
    readonly body: Buffer,
    /** The pull's buffer, where the properties (`key\u0001value\u0002` …) and store host lie. */
    private readonly record: Buffer,
    private readonly propAt: number,
    private readonly propEnd: number,
    /** Where STOREHOST lies in `record`, negative (−1 − where) for an IPv6 one. */
    private readonly storeHostAt: number,
    readonly brokerName: string,
    readonly queueId: number,
    readonly queueOffset: number,
    readonly commitLogOffset: number,
    readonly bornTimestamp: number,
    readonly storeTimestamp: number,
    public reconsumeTimes: number,
    readonly sysFlag: number,
    readonly flag: number,
    readonly storeSize: number,
  ) {}

  /** The properties as stored. */
  private get rawProperties(): string {
    this.rawProps ??=
      this.propAt === this.propEnd ? '' : this.record.toString('utf8', this.propAt, this.propEnd);
    return this.rawProps;
  }

  get properties(): Map<string, string> {
    this.props ??= decodeProperties(this.rawProperties);
    return this.props;
  }

  get tags(): string | undefined {
    return this.props
      ? this.props.get(MessageProperty.TAGS)
      : getProperty(this.rawProperties, MessageProperty.TAGS);
  }

  get keys(): string[] {
    if (this.keyList === undefined) {
      const keys = this.props
        ? this.props.get(MessageProperty.KEYS)
        : getProperty(this.rawProperties, MessageProperty.KEYS);
      this.keyList = keys ? keys.split(KEY_SEPARATOR).filter((k) => k.length > 0) : [];
    }
    return this.keyList;
  }

  get msgId(): string {
    const uniq = this.props
      ? this.props.get(MessageProperty.UNIQ_KEY)
      : getProperty(this.rawProperties, MessageProperty.UNIQ_KEY);
    return uniq ?? this.offsetMsgId;
  }

  get offsetMsgId(): string {
    if (this.offsetId === undefined) {
      const at = this.storeHostAt;
      const host = at >= 0 ? decodeHost(this.record, at, false) : decodeHost(this.record, -1 - at, true);
      this.offsetId = createOffsetMsgId(host, this.commitLogOffset);
    }
    return this.offsetId;
  }

  toJSON(): MessageExt {
    return {
      topic: this.topic,
      body: this.body,
      tags: this.tags,
      keys: this.keys,
      properties: this.properties,
      msgId: this.msgId,
      offsetMsgId: this.offsetMsgId,
      brokerName: this.brokerName,
      queueId: this.queueId,
      queueOffset: this.queueOffset,
      commitLogOffset: this.commitLogOffset,
      bornTimestamp: this.bornTimestamp,
      storeTimestamp: this.storeTimestamp,
      reconsumeTimes: this.reconsumeTimes,
      sysFlag: this.sysFlag,
      flag: this.flag,
      storeSize: this.storeSize,
    };
  }
}

export interface DecodeMessagesOptions {
  /**
   * Verify each record's body CRC and record CRC. Default false: the broker verified every record
   * it read from disk, and TCP checksums the way here (RocketMQ's client does not check either).
   */
  checkCrc?: boolean;
}

const layout = newRecordLayout();

/** Whether buf[a, a + n) equals buf[b, b + n); for short runs such as a topic, a loop beats compare(). */
function sameBytes(buf: Buffer, a: number, b: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (buf[a + i] !== buf[b + i]) return false;
  return true;
}

/**
 * Decodes a PULL_MESSAGE / QUERY_MESSAGE body (whole records, concatenated). Every record's
 * framing is checked (lengths, magic, topic); anything else throws CORRUPT_RECORD.
 */
export function decodeMessages(
  body: Buffer | undefined,
  brokerName: string,
  opts: DecodeMessagesOptions = {},
): MessageExt[] {
  if (!body || body.length === 0) return [];
  const decodeOpts = { checkCrc: opts.checkCrc === true };
  const out: MessageExt[] = [];
  // A pull's records share their topic: decode it once per run of equal bytes.
  let topic = '';
  let topicAt = -1;
  let topicLen = 0;
  let pos = 0;
  while (pos < body.length) {
    const failed = locateRecord(body, pos, decodeOpts, layout);
    if (failed !== undefined) {
      throw new TsmqError('CORRUPT_RECORD', `at byte ${pos}: ${describeDecodeResult(failed)}`);
    }
    const l = layout;
    const len = l.propLenAt - l.topicAt;
    if (topicAt < 0 || len !== topicLen || !sameBytes(body, topicAt, l.topicAt, len)) {
      topic = body.toString('utf8', l.topicAt, l.propLenAt);
    }
    topicAt = l.topicAt;
    topicLen = len;
    out.push(
      new PulledMessage(
        topic,
        (l.sysFlag & SysFlag.COMPRESSED) !== 0
          ? storedBodyToUser(body.subarray(l.bodyAt, l.topicLenAt), l.sysFlag)
          : body.subarray(l.bodyAt, l.topicLenAt),
        body,
        l.propAt,
        l.end,
        l.storeV6 ? -1 - (l.storeTsAt + 8) : l.storeTsAt + 8,
        brokerName,
        recordField.queueId(body, l),
        recordField.queueOffset(body, l),
        recordField.physicalOffset(body, l),
        recordField.bornTimestamp(body, l),
        recordField.storeTimestamp(body, l),
        recordField.reconsumeTimes(body, l),
        l.sysFlag,
        recordField.flag(body, l),
        l.totalSize,
      ),
    );
    pos = l.end;
  }
  return out;
}
