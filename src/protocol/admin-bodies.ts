/**
 * The JSON bodies of the broker's query and admin commands, both ways: the broker encodes them, the
 * client SDK's admin API decodes them (and the other way round for the two request bodies). Field
 * names and shapes are RocketMQ 4.x's (Java classes in parentheses), so RocketMQ's own tools read
 * what tsmq writes. Bodies are UTF-8 JSON; keys are written in fastjson's order (alphabetical) so
 * the bytes look like a Java broker's.
 *
 * MessageQueue-keyed maps — the one place where the wire is not standard JSON
 * --------------------------------------------------------------------------
 * ConsumeStats and TopicStatsTable are `HashMap<MessageQueue, …>` in Java, and fastjson writes a
 * map key that is an object as that object, unquoted:
 *
 *   {"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:{"brokerOffset":20,…},…}}
 *
 * JSON.parse rejects this. tsmq writes it anyway, byte-compatible with a Java broker, because every
 * existing reader expects exactly this form: mqadmin (consumerProgress, topicStatus), the
 * dashboard and the exporters decode these bodies with fastjson into HashMap<MessageQueue, …>, and
 * fastjson cannot read an array or a map with string keys into that type. Readers here use
 * `parseLaxJson`, which accepts any JSON value as an object key and turns a non-string key into its
 * JSON text; the decoders then read a key either as such an object or as a string holding a
 * MessageQueue's JSON (what a serializer that quotes its keys produces). Decoded, the map is an
 * array of {queue, offsets} entries sorted by topic, broker name and queue id.
 *
 * Bodies (request code → body; "←" marks a request body, everything else is a response body)
 * -------------------------------------------------------------------------------------------
 * GET_CONSUME_STATS 208 → ConsumeStats:
 *   {"consumeTps":1.5,"offsetTable":{MQ:{"brokerOffset":20,"consumerOffset":12,
 *     "lastTimestamp":1700000000123,"pullOffset":16},…}}
 *   brokerOffset: the queue's max offset (one past the last dispatched message); consumerOffset:
 *   the group's committed offset (0 if none); lastTimestamp: store time of the message before
 *   consumerOffset (0 if none); pullOffset (RocketMQ 5): where the group's last pull ended, or
 *   consumerOffset when unknown (also what a 4.x body without the field decodes to). consumeTps:
 *   messages per second the group pulled over the last minute. lag = brokerOffset − consumerOffset.
 *
 * GET_TOPIC_STATS_INFO 202 → TopicStatsTable:
 *   {"offsetTable":{MQ:{"lastUpdateTimestamp":1700000000999,"maxOffset":20,"minOffset":0},…}}
 *   lastUpdateTimestamp: store time of the queue's last message (0 if empty).
 *
 *   MQ = {"brokerName":"broker-a","queueId":0,"topic":"T"}   (MessageQueue)
 *
 * GET_BROKER_RUNTIME_INFO 28 → KVTable: {"table":{"putTps":"1.00 0.17 0.02",…}}, every value a string.
 *
 * QUERY_TOPIC_CONSUME_BY_WHO 300 → GroupList: {"groupList":["g1","g2"]}
 *
 * GET_CONSUMER_CONNECTION_LIST 203 → ConsumerConnection:
 *   {"connectionSet":[{"clientAddr":"10.0.0.5:53012","clientId":"10.0.0.5@123","language":"JAVA",
 *     "version":401}],
 *    "consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY",
 *    "messageModel":"CLUSTERING",
 *    "subscriptionTable":{"T":{"codeSet":[65],"expressionType":"TAG","subString":"A","subVersion":1,
 *      "tagsSet":["A"],"topic":"T"}}}
 *
 * ← UPDATE_AND_CREATE_SUBSCRIPTIONGROUP 200, and GET_SUBSCRIPTIONGROUP_CONFIG 352 →
 *   SubscriptionGroupConfig (defaults in SUBSCRIPTION_GROUP_DEFAULTS; a request may omit any field
 *   but groupName; fields of later RocketMQ versions, e.g. groupSysFlag, are ignored):
 *   {"brokerId":0,"consumeBroadcastEnable":true,"consumeEnable":true,"consumeFromMinEnable":true,
 *    "consumeMessageOrderly":false,"groupName":"g","notifyConsumerIdsChangedEnable":true,
 *    "retryMaxTimes":16,"retryQueueNums":1,"whichBrokerWhenConsumeSlowly":1}
 *
 * GET_ALL_SUBSCRIPTIONGROUP_CONFIG 201 → SubscriptionGroupWrapper, also the shape of
 *   <storeRoot>/config/subscriptionGroup.json:
 *   {"dataVersion":{"counter":3,"timestamp":1700000000000},"subscriptionGroupTable":{"g":{…}}}
 *
 * GET_TOPIC_CONFIG 351 → TopicConfigAndQueueMapping (a TopicConfig; no static-topic mapping):
 *   {"order":false,"perm":6,"readQueueNums":8,"topicFilterType":"SINGLE_TAG","topicName":"T",
 *    "topicSysFlag":0,"writeQueueNums":8}
 *
 * QUERY_MESSAGE 12 and VIEW_MESSAGE_BY_ID 33 answer raw commit-log records (src/message/record.ts),
 * not JSON. Offsets and timestamps are Java longs; decoders reject values beyond 2^53 rather than
 * round them.
 */
import type { SubscriptionData } from './heartbeat-data.js';

/** Thrown by the decoders below for a body that does not have the expected shape. */
export class AdminBodyError extends Error {
  override name = 'AdminBodyError';
}

// ------------------------------------------------------------------ lax JSON (fastjson's dialect)

/** Nesting a lax parse accepts at most; deeper input is refused rather than overflowing the stack. */
const LAX_JSON_DEPTH_MAX = 64;

/**
 * Parses JSON, or fastjson's dialect of it in which an object key may be any JSON value (an object
 * for MessageQueue-keyed maps, a bare integer for integer-keyed ones). Such a key becomes its JSON
 * text: `{{"a":1}:2}` parses as `{'{"a":1}': 2}`, `{0:"x"}` as `{'0': 'x'}`. Standard JSON goes
 * through JSON.parse unchanged. Throws AdminBodyError for anything else.
 */
export function parseLaxJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return new LaxParser(text).parseDocument();
  }
}

const NUMBER_RE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

class LaxParser {
  private pos = 0;
  constructor(private readonly text: string) {}

  parseDocument(): unknown {
    const v = this.value(0);
    this.space();
    if (this.pos !== this.text.length) this.fail('unexpected text after the value');
    return v;
  }

  private fail(why: string): never {
    throw new AdminBodyError(`not JSON at character ${this.pos}: ${why}`);
  }

  private space(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      this.pos++;
    }
  }

  private value(depth: number): unknown {
    if (depth > LAX_JSON_DEPTH_MAX) this.fail(`nested deeper than ${LAX_JSON_DEPTH_MAX} levels`);
    this.space();
    const c = this.text[this.pos];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return this.string();
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    NUMBER_RE.lastIndex = this.pos;
    const m = NUMBER_RE.exec(this.text);
    if (!m) this.fail(c === undefined ? 'unexpected end' : `unexpected ${JSON.stringify(c)}`);
    this.pos += m[0].length;
    return Number(m[0]);
  }

  private string(): string {
    const t = this.text;
    const start = this.pos;
    let i = start + 1;
    while (i < t.length && t[i] !== '"') i += t[i] === '\\' ? 2 : 1;
    if (i >= t.length) this.fail('unterminated string');
    this.pos = i + 1;
    try {
      return JSON.parse(t.slice(start, i + 1)) as string;
    } catch (e) {
      this.pos = start;
      return this.fail(`bad string: ${(e as Error).message}`);
    }
  }

  private object(depth: number): Record<string, unknown> {
    this.pos++; // {
    const out: Record<string, unknown> = {};
    this.space();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.space();
      const key = this.text[this.pos] === '"' ? this.string() : JSON.stringify(this.value(depth + 1));
      this.space();
      if (this.text[this.pos] !== ':') this.fail('expected ":"');
      this.pos++;
      // defineProperty: a "__proto__" key is data, as JSON.parse treats it.
      Object.defineProperty(out, key, {
        value: this.value(depth + 1),
        enumerable: true,
        writable: true,
        configurable: true,
      });
      this.space();
      const c = this.text[this.pos++];
      if (c === '}') return out;
      if (c !== ',') this.fail('expected "," or "}"');
    }
  }

  private array(depth: number): unknown[] {
    this.pos++; // [
    const out: unknown[] = [];
    this.space();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      this.space();
      const c = this.text[this.pos++];
      if (c === ']') return out;
      if (c !== ',') this.fail('expected "," or "]"');
    }
  }
}

// ------------------------------------------------------------------ field readers

type Obj = Record<string, unknown>;

function parseBody(body: Buffer | undefined, what: string): unknown {
  if (!body || body.length === 0) throw new AdminBodyError(`the ${what} body is empty`);
  try {
    return parseLaxJson(body.toString('utf8'));
  } catch (e) {
    throw new AdminBodyError(`the ${what} body is not JSON: ${(e as Error).message}`);
  }
}

function asObject(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new AdminBodyError(`${what} is not an object`);
  }
  return v as Obj;
}

function asString(v: unknown, what: string, dflt?: string): string {
  if (v === undefined || v === null) {
    if (dflt !== undefined) return dflt;
    throw new AdminBodyError(`${what} is missing`);
  }
  if (typeof v !== 'string') throw new AdminBodyError(`${what} is not a string`);
  return v;
}

/** A Java int or long: a safe integer (a long beyond 2^53 is refused, not rounded). */
function asInt(v: unknown, what: string, dflt?: number): number {
  if (v === undefined || v === null) {
    if (dflt !== undefined) return dflt;
    throw new AdminBodyError(`${what} is missing`);
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    throw new AdminBodyError(`${what} is not an integer: ${JSON.stringify(v)}`);
  }
  return v;
}

function asNumber(v: unknown, what: string, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new AdminBodyError(`${what} is not a number`);
  return v;
}

function asBool(v: unknown, what: string, dflt: boolean): boolean {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw new AdminBodyError(`${what} is not true or false`);
  return v;
}

function asArray(v: unknown, what: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new AdminBodyError(`${what} is not an array`);
  return v;
}

const utf8 = (text: string) => Buffer.from(text, 'utf8');

/** A Java double as fastjson writes it: always with a fraction (`0.0`, `12.5`). */
function javaDouble(n: number): string {
  if (!Number.isFinite(n)) return '0.0';
  const s = String(n);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

// ------------------------------------------------------------------ MessageQueue-keyed tables

export interface MessageQueue {
  topic: string;
  brokerName: string;
  queueId: number;
}

/** One entry of a MessageQueue-keyed map. */
export interface MessageQueueEntry<T> {
  queue: MessageQueue;
  offsets: T;
}

/** RocketMQ's MessageQueue order: topic, then broker name, then queue id. */
export function compareMessageQueues(a: MessageQueue, b: MessageQueue): number {
  if (a.topic !== b.topic) return a.topic < b.topic ? -1 : 1;
  if (a.brokerName !== b.brokerName) return a.brokerName < b.brokerName ? -1 : 1;
  return a.queueId - b.queueId;
}

/** A MessageQueue as fastjson writes it (and as a map key, unquoted). */
function messageQueueJson(q: MessageQueue): string {
  return JSON.stringify({ brokerName: q.brokerName, queueId: q.queueId, topic: q.topic });
}

function decodeMessageQueue(v: unknown, what: string): MessageQueue {
  const o = asObject(v, what);
  return {
    topic: asString(o.topic, `${what}.topic`),
    brokerName: asString(o.brokerName, `${what}.brokerName`),
    queueId: asInt(o.queueId, `${what}.queueId`),
  };
}

/** Writes `{MQ:value,…}` with object keys, as fastjson does (see the header comment). */
function encodeQueueTable<T>(entries: readonly MessageQueueEntry<T>[], value: (v: T) => string): string {
  return `{${entries.map((e) => `${messageQueueJson(e.queue)}:${value(e.offsets)}`).join(',')}}`;
}

/** Reads a MessageQueue-keyed map whose keys parseLaxJson left as JSON text. */
function decodeQueueTable<T>(
  v: unknown,
  what: string,
  value: (v: unknown, what: string) => T,
): MessageQueueEntry<T>[] {
  if (v === undefined || v === null) return [];
  const o = asObject(v, what);
  const out: MessageQueueEntry<T>[] = [];
  for (const [key, val] of Object.entries(o)) {
    let parsedKey: unknown;
    try {
      parsedKey = JSON.parse(key);
    } catch {
      throw new AdminBodyError(`${what} has a key that is not a MessageQueue: ${JSON.stringify(key)}`);
    }
    const queue = decodeMessageQueue(parsedKey, `${what} key`);
    out.push({ queue, offsets: value(val, `${what}[${queue.topic}/${queue.queueId}]`) });
  }
  return out.sort((a, b) => compareMessageQueues(a.queue, b.queue));
}

// ------------------------------------------------------------------ ConsumeStats (208)

export interface OffsetWrapper {
  /** The queue's max offset on the broker. */
  brokerOffset: number;
  /** The group's committed offset; 0 if it committed none. */
  consumerOffset: number;
  /** Where the group's last pull of the queue ended (RocketMQ 5); consumerOffset when unknown. */
  pullOffset: number;
  /** Store time of the last consumed message (at consumerOffset − 1); 0 if none. */
  lastTimestamp: number;
}

export interface ConsumeStats {
  offsetTable: MessageQueueEntry<OffsetWrapper>[];
  /** Messages per second the group pulled recently. */
  consumeTps: number;
}

export function encodeConsumeStats(s: ConsumeStats): Buffer {
  const table = encodeQueueTable(s.offsetTable, (w) =>
    JSON.stringify({
      brokerOffset: w.brokerOffset,
      consumerOffset: w.consumerOffset,
      lastTimestamp: w.lastTimestamp,
      pullOffset: w.pullOffset,
    }),
  );
  return utf8(`{"consumeTps":${javaDouble(s.consumeTps)},"offsetTable":${table}}`);
}

export function decodeConsumeStats(body: Buffer | undefined): ConsumeStats {
  const o = asObject(parseBody(body, 'ConsumeStats'), 'ConsumeStats');
  return {
    offsetTable: decodeQueueTable(o.offsetTable, 'offsetTable', (v, what) => {
      const w = asObject(v, what);
      const consumerOffset = asInt(w.consumerOffset, `${what}.consumerOffset`, 0);
      return {
        brokerOffset: asInt(w.brokerOffset, `${what}.brokerOffset`, 0),
        consumerOffset,
        pullOffset: asInt(w.pullOffset, `${what}.pullOffset`, consumerOffset),
        lastTimestamp: asInt(w.lastTimestamp, `${what}.lastTimestamp`, 0),
      };
    }),
    consumeTps: asNumber(o.consumeTps, 'consumeTps', 0),
  };
}

export interface QueueLag {
  queue: MessageQueue;
  brokerOffset: number;
  consumerOffset: number;
  /** brokerOffset − consumerOffset, never negative. */
  lag: number;
  lastTimestamp: number;
}

/**
 * The backlog of a consumer group, per queue and in total (RocketMQ's computeTotalDiff): messages
 * stored but not yet committed as consumed. A queue whose committed offset is ahead of the broker's
 * (a reset, or a deleted and recreated topic) counts as 0, not as a negative backlog.
 */
export function computeConsumeLag(s: ConsumeStats): { queues: QueueLag[]; totalDiff: number } {
  let totalDiff = 0;
  const queues = s.offsetTable.map(({ queue, offsets: w }) => {
    const lag = Math.max(0, w.brokerOffset - w.consumerOffset);
    totalDiff += lag;
    return {
      queue,
      brokerOffset: w.brokerOffset,
      consumerOffset: w.consumerOffset,
      lag,
      lastTimestamp: w.lastTimestamp,
    };
  });
  return { queues, totalDiff };
}

// ------------------------------------------------------------------ TopicStatsTable (202)

export interface TopicOffset {
  minOffset: number;
  maxOffset: number;
  /** Store time of the queue's last message; 0 if it is empty. */
  lastUpdateTimestamp: number;
}

export interface TopicStatsTable {
  offsetTable: MessageQueueEntry<TopicOffset>[];
}

export function encodeTopicStatsTable(t: TopicStatsTable): Buffer {
  const table = encodeQueueTable(t.offsetTable, (o) =>
    JSON.stringify({
      lastUpdateTimestamp: o.lastUpdateTimestamp,
      maxOffset: o.maxOffset,
      minOffset: o.minOffset,
    }),
  );
  return utf8(`{"offsetTable":${table}}`);
}

export function decodeTopicStatsTable(body: Buffer | undefined): TopicStatsTable {
  const o = asObject(parseBody(body, 'TopicStatsTable'), 'TopicStatsTable');
  return {
    offsetTable: decodeQueueTable(o.offsetTable, 'offsetTable', (v, what) => {
      const w = asObject(v, what);
      return {
        minOffset: asInt(w.minOffset, `${what}.minOffset`, 0),
        maxOffset: asInt(w.maxOffset, `${what}.maxOffset`, 0),
        lastUpdateTimestamp: asInt(w.lastUpdateTimestamp, `${what}.lastUpdateTimestamp`, 0),
      };
    }),
  };
}

// ------------------------------------------------------------------ KVTable (28), GroupList (300)

export interface KVTable {
  table: Record<string, string>;
}

export function encodeKVTable(t: KVTable): Buffer {
  return utf8(JSON.stringify({ table: t.table }));
}

export function decodeKVTable(body: Buffer | undefined): KVTable {
  const o = asObject(parseBody(body, 'KVTable'), 'KVTable');
  const table: Record<string, string> = {};
  for (const [k, v] of Object.entries(asObject(o.table ?? {}, 'table'))) {
    table[k] = asString(v, `table.${k}`);
  }
  return { table };
}

export interface GroupList {
  groupList: string[];
}

export function encodeGroupList(g: GroupList): Buffer {
  return utf8(JSON.stringify({ groupList: g.groupList }));
}

export function decodeGroupList(body: Buffer | undefined): GroupList {
  const o = asObject(parseBody(body, 'GroupList'), 'GroupList');
  return { groupList: asArray(o.groupList, 'groupList').map((g, i) => asString(g, `groupList[${i}]`)) };
}

// ------------------------------------------------------------------ ConsumerConnection (203)

export interface Connection {
  clientId: string;
  /** The client's address as the broker sees it, "ip:port". */
  clientAddr: string;
  /** RocketMQ's LanguageCode name ("JAVA", "NODE_JS", …). */
  language: string;
  version: number;
}

export interface ConsumerConnection {
  connectionSet: Connection[];
  /** topic → the subscription the group's heartbeats registered. */
  subscriptionTable: Record<string, SubscriptionData>;
  consumeType: string;
  messageModel: string;
  consumeFromWhere: string;
}

export function encodeConsumerConnection(c: ConsumerConnection): Buffer {
  const subs: Record<string, unknown> = {};
  for (const [topic, s] of Object.entries(c.subscriptionTable)) {
    subs[topic] = {
      codeSet: s.codeSet,
      expressionType: s.expressionType,
      subString: s.subString,
      subVersion: s.subVersion,
      tagsSet: s.tagsSet,
      topic: s.topic,
    };
  }
  return utf8(
    JSON.stringify({
      connectionSet: c.connectionSet.map((x) => ({
        clientAddr: x.clientAddr,
        clientId: x.clientId,
        language: x.language,
        version: x.version,
      })),
      consumeFromWhere: c.consumeFromWhere,
      consumeType: c.consumeType,
      messageModel: c.messageModel,
      subscriptionTable: subs,
    }),
  );
}

function decodeSubscriptionData(v: unknown, what: string): SubscriptionData {
  const o = asObject(v, what);
  return {
    topic: asString(o.topic, `${what}.topic`),
    subString: asString(o.subString, `${what}.subString`, '*'),
    tagsSet: asArray(o.tagsSet, `${what}.tagsSet`).map((t, i) => asString(t, `${what}.tagsSet[${i}]`)),
    codeSet: asArray(o.codeSet, `${what}.codeSet`).map((c, i) => asInt(c, `${what}.codeSet[${i}]`)),
    subVersion: asInt(o.subVersion, `${what}.subVersion`, 0),
    expressionType: asString(o.expressionType, `${what}.expressionType`, 'TAG'),
  };
}

export function decodeConsumerConnection(body: Buffer | undefined): ConsumerConnection {
  const o = asObject(parseBody(body, 'ConsumerConnection'), 'ConsumerConnection');
  const subscriptionTable: Record<string, SubscriptionData> = {};
  for (const [topic, s] of Object.entries(asObject(o.subscriptionTable ?? {}, 'subscriptionTable'))) {
    subscriptionTable[topic] = decodeSubscriptionData(s, `subscriptionTable.${topic}`);
  }
  return {
    connectionSet: asArray(o.connectionSet, 'connectionSet').map((v, i) => {
      const w = `connectionSet[${i}]`;
      const c = asObject(v, w);
      return {
        clientId: asString(c.clientId, `${w}.clientId`),
        clientAddr: asString(c.clientAddr, `${w}.clientAddr`, ''),
        language: asString(c.language, `${w}.language`, 'JAVA'),
        version: asInt(c.version, `${w}.version`, 0),
      };
    }),
    subscriptionTable,
    consumeType: asString(o.consumeType, 'consumeType', ''),
    messageModel: asString(o.messageModel, 'messageModel', ''),
    consumeFromWhere: asString(o.consumeFromWhere, 'consumeFromWhere', ''),
  };
}

// ------------------------------------------------------------------ SubscriptionGroupConfig (200, 201, 352)

export interface SubscriptionGroupConfig {
  groupName: string;
  /** false: the group's pulls are refused with NO_PERMISSION. */
  consumeEnable: boolean;
  consumeFromMinEnable: boolean;
  /** false: a BROADCASTING consumer of the group is refused with NO_PERMISSION. */
  consumeBroadcastEnable: boolean;
  consumeMessageOrderly: boolean;
  /** Queues of the group's %RETRY% topic. */
  retryQueueNums: number;
  /** Redeliveries before a message goes to the dead-letter topic. */
  retryMaxTimes: number;
  /** The broker (0 = master) consumers are pointed at. */
  brokerId: number;
  /** The broker consumers are pointed at when they fall behind. */
  whichBrokerWhenConsumeSlowly: number;
  /** false: the group's members get no NOTIFY_CONSUMER_IDS_CHANGED. */
  notifyConsumerIdsChangedEnable: boolean;
}

/** RocketMQ's defaults of SubscriptionGroupConfig. */
export const SUBSCRIPTION_GROUP_DEFAULTS: Readonly<Omit<SubscriptionGroupConfig, 'groupName'>> =
  Object.freeze({
    consumeEnable: true,
    consumeFromMinEnable: true,
    consumeBroadcastEnable: true,
    consumeMessageOrderly: false,
    retryQueueNums: 1,
    retryMaxTimes: 16,
    brokerId: 0,
    whichBrokerWhenConsumeSlowly: 1,
    notifyConsumerIdsChangedEnable: true,
  });

/** Most queues a group's retry topic may have (the limit of a topic's queues on a broker). */
export const RETRY_QUEUE_NUMS_MAX = 1024;
/** Longest group name RocketMQ accepts. */
export const GROUP_NAME_LENGTH_MAX = 255;

/** Why a consumer group name is unacceptable (RocketMQ's rule: [%|a-zA-Z0-9_-], 1..255), or undefined. */
export function validateGroupName(name: string): string | undefined {
  if (name.length === 0) return 'the group name is empty';
  if (name.length > GROUP_NAME_LENGTH_MAX) {
    return `the group name is ${name.length} characters long; the limit is ${GROUP_NAME_LENGTH_MAX}`;
  }
  if (!/^[%|a-zA-Z0-9_-]+$/.test(name)) {
    return `the group name ${JSON.stringify(name)} contains characters outside [%|a-zA-Z0-9_-]`;
  }
  return undefined;
}

/** A config with RocketMQ's defaults for every field `over` does not set. */
export function subscriptionGroupConfig(
  groupName: string,
  over: Partial<Omit<SubscriptionGroupConfig, 'groupName'>> = {},
): SubscriptionGroupConfig {
  return { groupName, ...SUBSCRIPTION_GROUP_DEFAULTS, ...over };
}

function fieldsOf(c: SubscriptionGroupConfig): Obj {
  return {
    brokerId: c.brokerId,
    consumeBroadcastEnable: c.consumeBroadcastEnable,
    consumeEnable: c.consumeEnable,
    consumeFromMinEnable: c.consumeFromMinEnable,
    consumeMessageOrderly: c.consumeMessageOrderly,
    groupName: c.groupName,
    notifyConsumerIdsChangedEnable: c.notifyConsumerIdsChangedEnable,
    retryMaxTimes: c.retryMaxTimes,
    retryQueueNums: c.retryQueueNums,
    whichBrokerWhenConsumeSlowly: c.whichBrokerWhenConsumeSlowly,
  };
}

export function encodeSubscriptionGroupConfig(c: SubscriptionGroupConfig): Buffer {
  return utf8(JSON.stringify(fieldsOf(c)));
}

/**
 * Reads one config from a parsed JSON value: groupName required and valid, every other field
 * optional (RocketMQ's default when absent) but of the right type and range.
 */
export function subscriptionGroupConfigFrom(
  v: unknown,
  what = 'SubscriptionGroupConfig',
): SubscriptionGroupConfig {
  const o = asObject(v, what);
  const groupName = asString(o.groupName, `${what}.groupName`);
  const invalid = validateGroupName(groupName);
  if (invalid) throw new AdminBodyError(`${what}.groupName: ${invalid}`);
  const d = SUBSCRIPTION_GROUP_DEFAULTS;
  const c = subscriptionGroupConfig(groupName, {
    consumeEnable: asBool(o.consumeEnable, `${what}.consumeEnable`, d.consumeEnable),
    consumeFromMinEnable: asBool(
      o.consumeFromMinEnable,
      `${what}.consumeFromMinEnable`,
      d.consumeFromMinEnable,
    ),
    consumeBroadcastEnable: asBool(
      o.consumeBroadcastEnable,
      `${what}.consumeBroadcastEnable`,
      d.consumeBroadcastEnable,
    ),
    consumeMessageOrderly: asBool(
      o.consumeMessageOrderly,
      `${what}.consumeMessageOrderly`,
      d.consumeMessageOrderly,
    ),
    retryQueueNums: asInt(o.retryQueueNums, `${what}.retryQueueNums`, d.retryQueueNums),
    retryMaxTimes: asInt(o.retryMaxTimes, `${what}.retryMaxTimes`, d.retryMaxTimes),
    brokerId: asInt(o.brokerId, `${what}.brokerId`, d.brokerId),
    whichBrokerWhenConsumeSlowly: asInt(
      o.whichBrokerWhenConsumeSlowly,
      `${what}.whichBrokerWhenConsumeSlowly`,
      d.whichBrokerWhenConsumeSlowly,
    ),
    notifyConsumerIdsChangedEnable: asBool(
      o.notifyConsumerIdsChangedEnable,
      `${what}.notifyConsumerIdsChangedEnable`,
      d.notifyConsumerIdsChangedEnable,
    ),
  });
  if (c.retryQueueNums < 1 || c.retryQueueNums > RETRY_QUEUE_NUMS_MAX) {
    throw new AdminBodyError(
      `${what}.retryQueueNums must be in [1, ${RETRY_QUEUE_NUMS_MAX}], got ${c.retryQueueNums}`,
    );
  }
  if (c.retryMaxTimes < -1 || c.retryMaxTimes > 0x7fffffff) {
    throw new AdminBodyError(`${what}.retryMaxTimes must be in [-1, 2^31-1], got ${c.retryMaxTimes}`);
  }
  if (c.brokerId < 0 || c.whichBrokerWhenConsumeSlowly < 0) {
    throw new AdminBodyError(`${what}.brokerId and whichBrokerWhenConsumeSlowly must not be negative`);
  }
  return c;
}

export function decodeSubscriptionGroupConfig(body: Buffer | undefined): SubscriptionGroupConfig {
  return subscriptionGroupConfigFrom(parseBody(body, 'SubscriptionGroupConfig'));
}

export interface SubscriptionGroupWrapper {
  subscriptionGroupTable: Record<string, SubscriptionGroupConfig>;
  dataVersion: { timestamp: number; counter: number };
}

export function encodeSubscriptionGroupWrapper(w: SubscriptionGroupWrapper): Buffer {
  const table: Obj = {};
  for (const [name, c] of Object.entries(w.subscriptionGroupTable)) table[name] = fieldsOf(c);
  return utf8(
    JSON.stringify({
      dataVersion: { counter: w.dataVersion.counter, timestamp: w.dataVersion.timestamp },
      subscriptionGroupTable: table,
    }),
  );
}

/** Reads a wrapper from a parsed JSON value; every config is checked as subscriptionGroupConfigFrom does. */
export function subscriptionGroupWrapperFrom(v: unknown): SubscriptionGroupWrapper {
  const o = asObject(v, 'SubscriptionGroupWrapper');
  const table: Record<string, SubscriptionGroupConfig> = {};
  for (const [name, c] of Object.entries(
    asObject(o.subscriptionGroupTable ?? {}, 'subscriptionGroupTable'),
  )) {
    const config = subscriptionGroupConfigFrom(c, `subscriptionGroupTable.${name}`);
    if (config.groupName !== name) {
      throw new AdminBodyError(
        `subscriptionGroupTable.${name} holds the config of group ${config.groupName}`,
      );
    }
    table[name] = config;
  }
  const dv = asObject(o.dataVersion ?? {}, 'dataVersion');
  return {
    subscriptionGroupTable: table,
    dataVersion: {
      timestamp: asInt(dv.timestamp, 'dataVersion.timestamp', 0),
      counter: asInt(dv.counter, 'dataVersion.counter', 0),
    },
  };
}

export function decodeSubscriptionGroupWrapper(body: Buffer | undefined): SubscriptionGroupWrapper {
  return subscriptionGroupWrapperFrom(parseBody(body, 'SubscriptionGroupWrapper'));
}

// ------------------------------------------------------------------ TopicConfigAndQueueMapping (351)

/** A topic's config as GET_TOPIC_CONFIG answers it (RocketMQ's TopicConfig fields). */
export interface TopicConfigAndQueueMapping {
  topicName: string;
  readQueueNums: number;
  writeQueueNums: number;
  perm: number;
  topicFilterType: string;
  topicSysFlag: number;
  order: boolean;
}

export function encodeTopicConfigAndQueueMapping(t: TopicConfigAndQueueMapping): Buffer {
  return utf8(
    JSON.stringify({
      order: t.order,
      perm: t.perm,
      readQueueNums: t.readQueueNums,
      topicFilterType: t.topicFilterType,
      topicName: t.topicName,
      topicSysFlag: t.topicSysFlag,
      writeQueueNums: t.writeQueueNums,
    }),
  );
}

export function decodeTopicConfigAndQueueMapping(body: Buffer | undefined): TopicConfigAndQueueMapping {
  const o = asObject(parseBody(body, 'TopicConfig'), 'TopicConfig');
  return {
    topicName: asString(o.topicName, 'topicName'),
    readQueueNums: asInt(o.readQueueNums, 'readQueueNums', 16),
    writeQueueNums: asInt(o.writeQueueNums, 'writeQueueNums', 16),
    perm: asInt(o.perm, 'perm', 6),
    topicFilterType: asString(o.topicFilterType, 'topicFilterType', 'SINGLE_TAG'),
    topicSysFlag: asInt(o.topicSysFlag, 'topicSysFlag', 0),
    order: asBool(o.order, 'order', false),
  };
}

// ------------------------------------------------------------------ queue locks (orderly consumption)

/**
 * LOCK_BATCH_MQ 41 ← LockBatchRequestBody, UNLOCK_BATCH_MQ 42 ← UnlockBatchRequestBody:
 *   {"clientId":"10.0.0.5@123","consumerGroup":"g","mqSet":[{"brokerName":"b","queueId":0,"topic":"T"}],
 *    "onlyThisBroker":false}
 * LOCK_BATCH_MQ → LockBatchResponseBody:
 *   {"lockOKMQSet":[MQ,…],"lockVersions":[{"brokerName":"b","lockVersion":1795700000000001,
 *    "queueId":0,"topic":"T"},…]}
 *   lockOKMQSet is RocketMQ's: the queues now held by the asking client. lockVersions is tsmq's
 *   addition (fencing; RocketMQ clients ignore it): for each granted queue, the version of the
 *   grant. It changes only when the queue changes hands, so a holder that renews keeps it; an
 *   orderly consumer sends it with its offset commits (UPDATE_CONSUMER_OFFSET ext field
 *   `lockVersion`) and the broker refuses a commit whose version is not the current holder's.
 */
export interface LockBatchRequest {
  consumerGroup: string;
  clientId: string;
  mqSet: MessageQueue[];
  onlyThisBroker: boolean;
}

export interface LockedQueue extends MessageQueue {
  lockVersion: number;
}

export interface LockBatchResponse {
  lockOKMQSet: MessageQueue[];
  lockVersions: LockedQueue[];
}

export function encodeLockBatchRequest(r: LockBatchRequest): Buffer {
  return utf8(
    `{"clientId":${JSON.stringify(r.clientId)},"consumerGroup":${JSON.stringify(r.consumerGroup)},` +
      `"mqSet":[${r.mqSet.map(messageQueueJson).join(',')}],"onlyThisBroker":${r.onlyThisBroker}}`,
  );
}

export function decodeLockBatchRequest(body: Buffer | undefined): LockBatchRequest {
  const o = asObject(parseBody(body, 'lock request'), 'LockBatchRequestBody');
  return {
    consumerGroup: asString(o.consumerGroup, 'consumerGroup'),
    clientId: asString(o.clientId, 'clientId'),
    mqSet: asArray(o.mqSet, 'mqSet').map((q, i) => decodeMessageQueue(q, `mqSet[${i}]`)),
    onlyThisBroker: asBool(o.onlyThisBroker, 'onlyThisBroker', false),
  };
}

export function encodeLockBatchResponse(r: LockBatchResponse): Buffer {
  const versions = r.lockVersions.map(
    (q) =>
      `{"brokerName":${JSON.stringify(q.brokerName)},"lockVersion":${q.lockVersion},"queueId":${q.queueId},"topic":${JSON.stringify(q.topic)}}`,
  );
  return utf8(
    `{"lockOKMQSet":[${r.lockOKMQSet.map(messageQueueJson).join(',')}],"lockVersions":[${versions.join(',')}]}`,
  );
}

export function decodeLockBatchResponse(body: Buffer | undefined): LockBatchResponse {
  const o = asObject(parseBody(body, 'lock response'), 'LockBatchResponseBody');
  return {
    lockOKMQSet: asArray(o.lockOKMQSet, 'lockOKMQSet').map((q, i) =>
      decodeMessageQueue(q, `lockOKMQSet[${i}]`),
    ),
    lockVersions: asArray(o.lockVersions, 'lockVersions').map((q, i) => ({
      ...decodeMessageQueue(q, `lockVersions[${i}]`),
      lockVersion: asInt(asObject(q, `lockVersions[${i}]`).lockVersion, `lockVersions[${i}].lockVersion`),
    })),
  };
}

// ------------------------------------------------------------------ offset reset (backtracking)

/**
 * INVOKE_BROKER_TO_RESET_OFFSET 222 (admin → broker; header topic, group, timestamp, isForce) and
 * RESET_CONSUMER_CLIENT_OFFSET 220 (broker → each live consumer; same header) both carry
 * ResetOffsetBody, a MessageQueue-keyed map of the new offsets (object keys, see the top):
 *   {"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:120,…}}
 * timestamp: ms since the epoch (the first message stored at or after it), or tsmq's -1 = the
 * earliest and -2 = the latest offset of each queue.
 */
export interface ResetOffsetBody {
  offsetTable: MessageQueueEntry<number>[];
}

export const RESET_TO_EARLIEST = -1;
export const RESET_TO_LATEST = -2;

export function encodeResetOffsetBody(b: ResetOffsetBody): Buffer {
  return utf8(`{"offsetTable":${encodeQueueTable(b.offsetTable, (v) => String(v))}}`);
}

export function decodeResetOffsetBody(body: Buffer | undefined): ResetOffsetBody {
  const o = asObject(parseBody(body, 'reset offset'), 'ResetOffsetBody');
  return { offsetTable: decodeQueueTable(o.offsetTable, 'offsetTable', (v, what) => asInt(v, what)) };
}
