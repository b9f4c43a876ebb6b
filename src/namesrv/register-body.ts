/**
 * What a broker sends with REGISTER_BROKER (and QUERY_DATA_VERSION): its topic configs and the
 * data version that changes whenever they do. Pure codecs, both directions — the name server
 * decodes, our broker (and the tests) encode. Learned from RocketMQ's RegisterBrokerBody,
 * TopicConfigSerializeWrapper, TopicConfig and DataVersion (4.9.x and 5.x); written anew.
 *
 * The body arrives in one of three forms, told apart by the header's `compressed` flag and, for
 * JSON, by its shape (RocketMQ picks by the request's version number, V3_0_11; the shape says
 * the same thing and does not depend on what version a non-Java broker claims):
 *
 * 1. JSON RegisterBrokerBody (compressed=false, every broker since 3.0.11):
 *
 *      {"topicConfigSerializeWrapper":{
 *          "topicConfigTable":{"TopicA":{"topicName":"TopicA","readQueueNums":8,"writeQueueNums":8,
 *                                        "perm":6,"topicFilterType":"SINGLE_TAG","topicSysFlag":0,
 *                                        "order":false}, ...},
 *          "dataVersion":{"timestamp":1700000000000,"counter":3[,"stateVersion":0]}
 *          [,"topicQueueMappingInfoMap":{...},...]},          ← 5.x static topics, ignored
 *       "filterServerList":[]}
 *
 *    fastjson may write integer map keys unquoted inside it; see fastjson.ts.
 *
 * 2. JSON TopicConfigSerializeWrapper alone (brokers older than 3.0.11): the inner object above.
 *
 * 3. Compressed (compressed=true): a zlib stream (RFC 1950, what java.util.zip.Deflater writes)
 *    of big-endian length-prefixed parts:
 *
 *      ┌─────────┬──────────────────┬─────────┬─ n × ─────────────────────────┬─────────┬──────────────────┐
 *      │ int32 L │ DataVersion JSON │ int32 n │ int32 L │ TopicConfig line │ int32 L │ filterServerList │
 *      │         │ (L bytes)        │         │         │ (L bytes, UTF-8) │         │ JSON array       │
 *      └─────────┴──────────────────┴─────────┴─────────┴──────────────────┴─────────┴──────────────────┘
 *      [5.x brokers append int32 m and m × (int32 L, TopicQueueMappingInfo JSON); ignored]
 *
 *    A TopicConfig line is `topicName readQueueNums writeQueueNums perm topicFilterType[ attrs]`,
 *    separated by single spaces, where attrs (5.x) is the attributes map as JSON. The line does
 *    not carry topicSysFlag or order: they read as 0 and false, as in RocketMQ.
 *
 * No body at all means no topics and data version {timestamp: 0, counter: 0}.
 */
import zlib from 'node:zlib';
import { crc32Range } from '../common/crc32.js';
import { parseFastjson } from '../protocol/index.js';
import { fail, ok, type Parsed } from './parsed.js';

/** Version of a broker's topic configs; equal versions mean the configs did not change. */
export interface DataVersion {
  timestamp: number;
  counter: number;
  /** 5.x controller mode: bumped on a master change. 0 when absent. */
  stateVersion?: number;
}

export const TOPIC_FILTER_TYPES = ['SINGLE_TAG', 'MULTI_TAG'] as const;
export type TopicFilterType = (typeof TOPIC_FILTER_TYPES)[number];

/** Perm bits of a topic or a broker (RocketMQ's PermName). */
export const Perm = { PRIORITY: 8, READ: 4, WRITE: 2, INHERIT: 1 } as const;

export interface TopicConfig {
  topicName: string;
  readQueueNums: number;
  writeQueueNums: number;
  perm: number;
  topicFilterType: TopicFilterType;
  topicSysFlag: number;
  order: boolean;
  /** 5.x topic attributes (e.g. `+message.type`); absent from 4.x brokers. */
  attributes?: Record<string, string>;
}

export interface RegisterBrokerBody {
  topicConfigs: TopicConfig[];
  dataVersion: DataVersion;
  filterServerList: string[];
}

/** RocketMQ's TopicConfig defaults, for fields a body leaves out. */
export const TOPIC_CONFIG_DEFAULTS = {
  readQueueNums: 16,
  writeQueueNums: 16,
  perm: Perm.READ | Perm.WRITE,
  topicFilterType: 'SINGLE_TAG',
  topicSysFlag: 0,
  order: false,
} as const satisfies Omit<TopicConfig, 'topicName'>;

/** The largest inflated compressed body we accept: a bound on what a small frame can expand to. */
export const REGISTER_BODY_INFLATED_BYTES_MAX = 64 * 1024 * 1024;

/**
 * The header's bodyCrc32 for a body (RocketMQ's UtilAll.crc32): CRC-32 with the sign bit cleared
 * so that it fits a Java int, 0 for no body. The name server checks it unless it is 0.
 */
export function bodyCrc32(body: Buffer | undefined): number {
  return body === undefined ? 0 : crc32Range(body, 0, body.length) & 0x7fffffff;
}

export function emptyDataVersion(): DataVersion {
  return { timestamp: 0, counter: 0 };
}

export function dataVersionEquals(a: DataVersion, b: DataVersion): boolean {
  return (
    a.timestamp === b.timestamp && a.counter === b.counter && (a.stateVersion ?? 0) === (b.stateVersion ?? 0)
  );
}

/** Thrown inside this file only; the exported decoders turn it into a `Parsed` failure. */
class BodyFormatError extends Error {}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function intField(o: Record<string, unknown>, key: string, fallback: number, where: string): number {
  const v = o[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    throw new BodyFormatError(`${where}.${key} is not an integer: ${JSON.stringify(v)}`);
  }
  return v;
}

function readDataVersion(v: unknown, where: string): DataVersion {
  if (v === undefined || v === null) return emptyDataVersion();
  if (!isRecord(v)) throw new BodyFormatError(`${where} is not an object`);
  const dv: DataVersion = {
    timestamp: intField(v, 'timestamp', 0, where),
    counter: intField(v, 'counter', 0, where),
  };
  if (v.stateVersion !== undefined && v.stateVersion !== null) {
    dv.stateVersion = intField(v, 'stateVersion', 0, where);
  }
  return dv;
}

function readFilterType(v: unknown, where: string): TopicFilterType {
  if (v === undefined || v === null) return TOPIC_CONFIG_DEFAULTS.topicFilterType;
  if (!(TOPIC_FILTER_TYPES as readonly unknown[]).includes(v)) {
    throw new BodyFormatError(`${where}.topicFilterType is not one of ${TOPIC_FILTER_TYPES.join(', ')}`);
  }
  return v as TopicFilterType;
}

function readAttributes(v: unknown): Record<string, string> | undefined {
  if (!isRecord(v)) return undefined;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)]));
}

function checkTopicName(name: unknown, where: string): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new BodyFormatError(`${where} has no topic name`);
  }
  return name;
}

function readTopicConfig(key: string, v: unknown): TopicConfig {
  const where = `topicConfigTable[${JSON.stringify(key)}]`;
  if (!isRecord(v)) throw new BodyFormatError(`${where} is not an object`);
  const order = v.order ?? false;
  if (typeof order !== 'boolean') throw new BodyFormatError(`${where}.order is not a boolean`);
  const tc: TopicConfig = {
    // fastjson writes the name twice (key and field); RocketMQ uses the field.
    topicName: checkTopicName(v.topicName ?? key, where),
    readQueueNums: intField(v, 'readQueueNums', TOPIC_CONFIG_DEFAULTS.readQueueNums, where),
    writeQueueNums: intField(v, 'writeQueueNums', TOPIC_CONFIG_DEFAULTS.writeQueueNums, where),
    perm: intField(v, 'perm', TOPIC_CONFIG_DEFAULTS.perm, where),
    topicFilterType: readFilterType(v.topicFilterType, where),
    topicSysFlag: intField(v, 'topicSysFlag', TOPIC_CONFIG_DEFAULTS.topicSysFlag, where),
    order,
  };
  const attributes = readAttributes(v.attributes);
  if (attributes) tc.attributes = attributes;
  return tc;
}

/** Reads a TopicConfigSerializeWrapper object: topicConfigTable and dataVersion. */
function readWrapper(w: unknown, where: string): Pick<RegisterBrokerBody, 'topicConfigs' | 'dataVersion'> {
  if (w === undefined || w === null) return { topicConfigs: [], dataVersion: emptyDataVersion() };
  if (!isRecord(w)) throw new BodyFormatError(`${where} is not an object`);
  const table = w.topicConfigTable ?? {};
  if (!isRecord(table)) throw new BodyFormatError(`${where}.topicConfigTable is not an object`);
  return {
    topicConfigs: Object.entries(table).map(([k, v]) => readTopicConfig(k, v)),
    dataVersion: readDataVersion(w.dataVersion, `${where}.dataVersion`),
  };
}

function readFilterServerList(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) {
    throw new BodyFormatError('filterServerList is not an array of strings');
  }
  return v as string[];
}

function parseJsonText(text: string, what: string): unknown {
  try {
    return parseFastjson(text);
  } catch (e) {
    throw new BodyFormatError(`${what} is not JSON: ${(e as Error).message}`);
  }
}

function decodeJsonBody(body: Buffer): RegisterBrokerBody {
  const root = parseJsonText(body.toString('utf8'), 'register body');
  if (!isRecord(root)) throw new BodyFormatError('register body is not a JSON object');
  if ('topicConfigSerializeWrapper' in root) {
    return {
      ...readWrapper(root.topicConfigSerializeWrapper, 'topicConfigSerializeWrapper'),
      filterServerList: readFilterServerList(root.filterServerList),
    };
  }
  // A broker older than 3.0.11 sends the wrapper alone.
  return { ...readWrapper(root, 'register body'), filterServerList: [] };
}

/** Parses one compressed-form TopicConfig line (see the file header). */
function decodeTopicConfigLine(line: string): TopicConfig {
  const parts = line.split(' ');
  if (parts.length < 5) throw new BodyFormatError(`topic config line ${JSON.stringify(line)} has < 5 fields`);
  const num = (i: number, name: string): number => {
    const s = parts[i]!;
    if (!/^[+-]?\d{1,10}$/.test(s))
      throw new BodyFormatError(`topic config line: ${name} ${JSON.stringify(s)}`);
    return Number(s);
  };
  const tc: TopicConfig = {
    topicName: checkTopicName(parts[0], 'topic config line'),
    readQueueNums: num(1, 'readQueueNums'),
    writeQueueNums: num(2, 'writeQueueNums'),
    perm: num(3, 'perm'),
    topicFilterType: readFilterType(parts[4], 'topic config line'),
    topicSysFlag: 0,
    order: false,
  };
  const rest = parts.slice(5).join(' ');
  if (rest.length > 0) {
    // As in RocketMQ, attributes that do not parse (a space in a key or value) are dropped.
    try {
      const attributes = readAttributes(parseFastjson(rest));
      if (attributes) tc.attributes = attributes;
    } catch {}
  }
  return tc;
}

export function encodeTopicConfigLine(tc: TopicConfig): string {
  const head = `${tc.topicName} ${tc.readQueueNums} ${tc.writeQueueNums} ${tc.perm} ${tc.topicFilterType}`;
  return tc.attributes ? `${head} ${JSON.stringify(tc.attributes)}` : head;
}

function decodeCompressedBody(body: Buffer): RegisterBrokerBody {
  let data: Buffer;
  try {
    data = zlib.inflateSync(body, { maxOutputLength: REGISTER_BODY_INFLATED_BYTES_MAX });
  } catch (e) {
    throw new BodyFormatError(`compressed register body does not inflate: ${(e as Error).message}`);
  }
  let pos = 0;
  const int32 = (what: string): number => {
    if (pos + 4 > data.length) throw new BodyFormatError(`compressed register body ends before ${what}`);
    const v = data.readInt32BE(pos);
    pos += 4;
    if (v < 0) throw new BodyFormatError(`compressed register body: negative ${what} ${v}`);
    return v;
  };
  const bytes = (n: number, what: string): string => {
    if (pos + n > data.length) throw new BodyFormatError(`compressed register body ends inside ${what}`);
    const s = data.toString('utf8', pos, pos + n);
    pos += n;
    return s;
  };
  const dataVersion = readDataVersion(
    parseJsonText(bytes(int32('data version length'), 'data version'), 'data version'),
    'dataVersion',
  );
  const n = int32('topic count');
  const topicConfigs: TopicConfig[] = [];
  for (let i = 0; i < n; i++) {
    topicConfigs.push(decodeTopicConfigLine(bytes(int32('topic config length'), 'topic config')));
  }
  const filterServerList = readFilterServerList(
    parseJsonText(bytes(int32('filter server list length'), 'filter server list'), 'filter server list'),
  );
  return { topicConfigs, dataVersion, filterServerList };
}

/** Decodes a REGISTER_BROKER body in any of its forms (see the file header). */
export function decodeRegisterBrokerBody(
  body: Buffer | undefined,
  compressed: boolean,
): Parsed<RegisterBrokerBody> {
  if (body === undefined || body.length === 0) {
    return ok({ topicConfigs: [], dataVersion: emptyDataVersion(), filterServerList: [] });
  }
  try {
    return ok(compressed ? decodeCompressedBody(body) : decodeJsonBody(body));
  } catch (e) {
    if (e instanceof BodyFormatError) return fail(e.message);
    throw e;
  }
}

/** Decodes a DataVersion JSON body (QUERY_DATA_VERSION). */
export function decodeDataVersion(body: Buffer | undefined): Parsed<DataVersion> {
  if (body === undefined || body.length === 0) return fail('no data version in the body');
  try {
    return ok(readDataVersion(parseJsonText(body.toString('utf8'), 'data version'), 'dataVersion'));
  } catch (e) {
    if (e instanceof BodyFormatError) return fail(e.message);
    throw e;
  }
}

export function encodeDataVersion(dv: DataVersion): Buffer {
  return Buffer.from(JSON.stringify(dv), 'utf8');
}

function topicConfigJson(tc: TopicConfig): Record<string, unknown> {
  const o: Record<string, unknown> = {
    topicName: tc.topicName,
    readQueueNums: tc.readQueueNums,
    writeQueueNums: tc.writeQueueNums,
    perm: tc.perm,
    topicFilterType: tc.topicFilterType,
    topicSysFlag: tc.topicSysFlag,
    order: tc.order,
  };
  if (tc.attributes) o.attributes = tc.attributes;
  return o;
}

function int32BE(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n, 0);
  return b;
}

/** Encodes a register body as a broker sends it: form 1 (JSON) or form 3 (compressed). */
export function encodeRegisterBrokerBody(body: RegisterBrokerBody, compressed = false): Buffer {
  if (!compressed) {
    const json = {
      topicConfigSerializeWrapper: {
        // fromEntries, not assignment: a topic named "__proto__" stays a plain key.
        topicConfigTable: Object.fromEntries(
          body.topicConfigs.map((tc) => [tc.topicName, topicConfigJson(tc)]),
        ),
        dataVersion: body.dataVersion,
      },
      filterServerList: body.filterServerList,
    };
    return Buffer.from(JSON.stringify(json), 'utf8');
  }
  const parts: Buffer[] = [];
  const put = (s: string) => {
    const b = Buffer.from(s, 'utf8');
    parts.push(int32BE(b.length), b);
  };
  put(JSON.stringify(body.dataVersion));
  parts.push(int32BE(body.topicConfigs.length));
  for (const tc of body.topicConfigs) put(encodeTopicConfigLine(tc));
  put(JSON.stringify(body.filterServerList));
  return zlib.deflateSync(Buffer.concat(parts), { level: zlib.constants.Z_BEST_COMPRESSION });
}
