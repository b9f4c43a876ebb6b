/**
 * The producer's wire work, as pure functions: checking a message before any network, turning it
 * into a SEND_MESSAGE_V2 or SEND_BATCH_MESSAGE request, and reading the broker's answer.
 *
 * Checks (all ARGUMENT_INVALID, before any network, as RocketMQ's Validators):
 *   topic    1..127 characters of [%|a-zA-Z0-9_-], not a system topic (TBW102, the schedule and
 *            transaction topics: brokers refuse them)
 *   body     not empty; at most maxMessageBytes before compression (a batch: its encoded body)
 *   props    no reserved names (TAGS, KEYS, UNIQ_KEY, …), no \u0001/\u0002, ≤ 32767 bytes encoded
 *   delay    an integer ≥ 0 (a batch: none at all)
 *   flag     an int32
 *
 * Compression: a single message's body of at least compressOverBytes is deflated (zlib, level 5,
 * RocketMQ's compressMsgBodyOverHowmuch and compressLevel) and sent only if that made it smaller,
 * with SYSFLAG COMPRESSED | ZLIB (RocketMQ 5.x's bits; 4.x readers look at COMPRESSED only and
 * inflate zlib too). Batches are never compressed: one SYSFLAG covers every message of a batch.
 *
 * The answer, as RocketMQ's processSendResponse reads it:
 *
 *   response code            result
 *   SUCCESS 0                SEND_OK
 *   FLUSH_DISK_TIMEOUT 10    FLUSH_DISK_TIMEOUT   (stored, not yet on disk)
 *   FLUSH_SLAVE_TIMEOUT 12   FLUSH_SLAVE_TIMEOUT  (stored, not yet on the slave)
 *   SLAVE_NOT_AVAILABLE 11   SLAVE_NOT_AVAILABLE  (stored, no slave to copy to)
 *   any other                BrokerResponseError; retried elsewhere when in RETRYABLE_RESPONSE_CODES
 */
import { deflateSync } from 'node:zlib';
import { isTsmqError, TsmqError } from '../common/errors.js';
import {
  createUniqId,
  encodeBatchBody,
  encodeProperties,
  MAX_PROPERTIES_BYTES,
  MessageProperty,
  SysFlag,
} from '../message/index.js';
import {
  createRequest,
  decimal,
  encodeSendHeader,
  type RemotingCommand,
  RequestCode,
  ResponseCode,
} from '../protocol/index.js';
import { BrokerResponseError } from './errors.js';
import { bodyBuffer, encodeMessageProperties, type Message, type MessageQueue } from './message.js';

export type SendStatus = 'SEND_OK' | 'FLUSH_DISK_TIMEOUT' | 'FLUSH_SLAVE_TIMEOUT' | 'SLAVE_NOT_AVAILABLE';

export interface SendResult {
  status: SendStatus;
  /** The client-made id (UNIQ_KEY): what consumers see as msgId. */
  msgId: string;
  /** The broker-made id: store host + commit-log offset. */
  offsetMsgId: string;
  /** Where the message went (the queue id as the broker answered it). */
  messageQueue: MessageQueue;
  queueOffset: number;
  /** The broker's MSG_REGION, when it sends one. */
  regionId?: string;
}

/** A batch's result: msgId and offsetMsgId are comma-joined as RocketMQ returns them. */
export interface BatchSendResult extends SendResult {
  /** Each message's UNIQ_KEY, in the order given. */
  msgIds: string[];
  /** Each message's offsetMsgId, in the order given; their queue offsets are consecutive. */
  offsetMsgIds: string[];
}

/** Broker answers a producer retries on another broker (RocketMQ's retryResponseCodes). */
export const RETRYABLE_RESPONSE_CODES: ReadonlySet<number> = new Set([
  ResponseCode.TOPIC_NOT_EXIST,
  ResponseCode.SERVICE_NOT_AVAILABLE,
  ResponseCode.SYSTEM_ERROR,
  ResponseCode.SYSTEM_BUSY,
  ResponseCode.FLOW_CONTROL,
  ResponseCode.NO_PERMISSION,
  ResponseCode.NO_BUYER_ID,
  ResponseCode.NOT_IN_CURRENT_UNIT,
  ResponseCode.GO_AWAY,
]);

/** Transport failures: the broker may be gone or slow; another attempt may succeed. */
const TRANSPORT_ERRORS = new Set([
  'CONNECT_FAILED',
  'CONNECTION_CLOSED',
  'REMOTING_TIMEOUT',
  'TOO_MANY_IN_FLIGHT',
]);

/** Whether a failed attempt is worth another (see the table in the file header). */
export function isRetryableSendError(e: unknown): boolean {
  if (e instanceof BrokerResponseError) return RETRYABLE_RESPONSE_CODES.has(e.responseCode);
  return isTsmqError(e) && TRANSPORT_ERRORS.has(e.codeName);
}

/** Topics producers may not send to: templates and the broker's own system topics. */
const SYSTEM_TOPICS = new Set([
  'TBW102',
  'SCHEDULE_TOPIC_XXXX',
  'RMQ_SYS_TRANS_HALF_TOPIC',
  'RMQ_SYS_TRANS_OP_HALF_TOPIC',
  'TRANS_CHECK_MAX_TIME_TOPIC',
]);

export const TOPIC_CHARS_MAX = 127;
const TOPIC_PATTERN = /^[%|a-zA-Z0-9_-]+$/;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

function invalid(message: string): TsmqError {
  return new TsmqError('ARGUMENT_INVALID', message);
}

/** Throws ARGUMENT_INVALID unless `topic` is a name RocketMQ accepts for sending. */
export function checkTopic(topic: unknown, createTopicKey: string): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0) throw invalid('the message has no topic');
  if (topic.length > TOPIC_CHARS_MAX) {
    throw invalid(`the topic is ${topic.length} characters long; the limit is ${TOPIC_CHARS_MAX}`);
  }
  if (!TOPIC_PATTERN.test(topic)) {
    throw invalid(`the topic ${JSON.stringify(topic)} has characters outside [%|a-zA-Z0-9_-]`);
  }
  if (topic === createTopicKey || SYSTEM_TOPICS.has(topic)) {
    throw invalid(`the topic ${topic} is a system topic; messages may not be sent to it`);
  }
}

/** What every send shares, from the producer's options. */
export interface SendLimits {
  maxMessageBytes: number;
  /** Bodies of at least this many bytes are deflated (single messages only). */
  compressOverBytes: number;
  createTopicKey: string;
  /** The IP in the message ids this client makes. */
  clientIp: string;
}

/** A message checked and encoded, ready for any number of attempts (they share its id). */
export interface PreparedMessage {
  topic: string;
  body: Buffer;
  sysFlag: number;
  flag: number;
  properties: string;
  msgId: string;
}

/** The last topic checkTopic passed, and the createTopicKey it was checked against. */
let lastTopic: string | undefined;
let lastTopicKey: string | undefined;

function checkCommon(msg: Message, limits: SendLimits, what: string, nowMs = Date.now()): Buffer {
  if (msg === null || typeof msg !== 'object') throw invalid(`${what} is not a message object`);
  // Sends come in runs to one topic: a topic just checked is not checked again.
  if (msg.topic !== lastTopic || limits.createTopicKey !== lastTopicKey) {
    checkTopic(msg.topic, limits.createTopicKey);
    lastTopic = msg.topic;
    lastTopicKey = limits.createTopicKey;
  }
  const raw: unknown = msg.body;
  let body: Buffer;
  if (typeof raw === 'string' || Buffer.isBuffer(raw)) body = bodyBuffer(raw);
  else if (raw instanceof Uint8Array) body = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  else throw invalid(`${what} has no body (a Buffer or a string)`);
  if (body.length === 0) throw invalid(`${what} has an empty body`);
  if (body.length > limits.maxMessageBytes) {
    throw invalid(
      `${what} body is ${body.length} bytes; the limit is ${limits.maxMessageBytes} (maxMessageBytes)`,
    );
  }
  const delay = msg.delayLevel;
  if (delay !== undefined && !(Number.isInteger(delay) && delay >= 0)) {
    throw invalid(`${what} has delayLevel ${delay}; it must be an integer ≥ 0`);
  }
  const at = msg.deliverAt === undefined ? undefined : Number(msg.deliverAt);
  if (at !== undefined && !(Number.isFinite(at) && at >= 0)) {
    throw invalid(`${what} has deliverAt ${String(msg.deliverAt)}; it must be a time (epoch ms or a Date)`);
  }
  if (at !== undefined && nowMs - at > DELIVER_AT_PAST_MAX_MS) {
    throw invalid(
      `${what} has deliverAt ${new Date(at).toISOString()}, more than 3 days ago; it is ms since the epoch (not seconds)`,
    );
  }
  const delayMs = msg.delayMs;
  if (delayMs !== undefined && !(Number.isSafeInteger(delayMs) && delayMs >= 0)) {
    throw invalid(`${what} has delayMs ${delayMs}; it must be an integer ≥ 0`);
  }
  const timed = at !== undefined || delayMs !== undefined;
  if (timed && ((delay ?? 0) > 0 || (at !== undefined && delayMs !== undefined))) {
    throw invalid(`${what} gives more than one of delayLevel, deliverAt and delayMs; give one`);
  }
  const flag = msg.flag;
  if (flag !== undefined && !(Number.isInteger(flag) && flag >= INT32_MIN && flag <= INT32_MAX)) {
    throw invalid(`${what} has flag ${flag}; it must be a 32-bit integer`);
  }
  return body;
}

/** The wire properties of a message: reserved names and separators are ARGUMENT_INVALID. */
function encodedProperties(msg: Message, msgId: string, what: string): string {
  let text: string;
  try {
    text = encodeMessageProperties(msg, msgId);
  } catch (e) {
    if (isTsmqError(e, 'PROPERTY_INVALID')) throw invalid(`${what}: ${e.message}`);
    throw e;
  }
  // A UTF-16 unit is at most 3 UTF-8 bytes: most texts are short enough not to need counting.
  const bytes = text.length * 3 <= MAX_PROPERTIES_BYTES ? 0 : Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_PROPERTIES_BYTES) {
    throw invalid(`${what} properties are ${bytes} bytes encoded; the limit is ${MAX_PROPERTIES_BYTES}`);
  }
  return text;
}

/**
 * How far in the past a deliverAt may lie: brokers deliver a past time at once, but refuse one
 * further back than their timerMaxDelaySec (3 days by default) — mostly seconds given for ms.
 */
export const DELIVER_AT_PAST_MAX_MS = 3 * 24 * 3600 * 1000;

/** A message id a sender may give (SendOptions.msgId). */
const GIVEN_ID = /^[0-9A-Za-z_-]{1,128}$/;

/**
 * Checks one message and encodes it (compressing a large body unless `compress` is false, as for
 * a message bound for an auto-batch). Throws ARGUMENT_INVALID.
 */
export function prepareMessage(
  msg: Message,
  limits: SendLimits,
  nowMs = Date.now(),
  givenId?: string,
  compress = true,
): PreparedMessage {
  let body = checkCommon(msg, limits, 'the message', nowMs);
  if (givenId !== undefined && !(typeof givenId === 'string' && GIVEN_ID.test(givenId))) {
    throw invalid(
      `the message id ${JSON.stringify(String(givenId).slice(0, 64))} is not 1 to 128 of [0-9A-Za-z_-]`,
    );
  }
  const msgId = givenId ?? createUniqId(nowMs, limits.clientIp);
  const properties = encodedProperties(msg, msgId, 'the message');
  let sysFlag = 0;
  if (compress && body.length >= limits.compressOverBytes) {
    const deflated = deflateSync(body, { level: 5 });
    if (deflated.length < body.length) {
      body = deflated;
      sysFlag |= SysFlag.COMPRESSED | SysFlag.COMPRESSION_ZLIB;
    }
  }
  return { topic: msg.topic, body, sysFlag, flag: msg.flag ?? 0, properties, msgId };
}

/** A batch checked and encoded into one SEND_BATCH_MESSAGE body. */
export interface PreparedBatch extends PreparedMessage {
  msgIds: string[];
}

/** Checks a batch (one topic, no delay, one waitStoreMsgOK, total ≤ maxMessageBytes) and encodes it. */
export function prepareBatch(
  msgs: readonly Message[],
  limits: SendLimits,
  nowMs = Date.now(),
): PreparedBatch {
  if (!Array.isArray(msgs) || msgs.length === 0) throw invalid('a batch needs at least one message');
  const first = msgs[0]!;
  const wait = first?.waitStoreMsgOK !== false;
  const msgIds: string[] = [];
  const inner = msgs.map((m, i) => {
    const what = `batch message ${i}`;
    const body = checkCommon(m, limits, what);
    if (m.topic !== first.topic) {
      throw invalid(`${what} is for topic ${m.topic}, the batch for ${first.topic}: a batch has one topic`);
    }
    if ((m.delayLevel ?? 0) > 0 || m.deliverAt !== undefined || m.delayMs !== undefined) {
      throw invalid(`${what} has a delay level or a delivery time; batches may not`);
    }
    if ((m.waitStoreMsgOK !== false) !== wait) {
      throw invalid(`${what} differs from the first in waitStoreMsgOK; a batch has one`);
    }
    const msgId = createUniqId(nowMs, limits.clientIp);
    msgIds.push(msgId);
    return { flag: m.flag ?? 0, body, properties: encodedProperties(m, msgId, what) };
  });
  const body = encodeBatchBody(inner);
  if (body.length > limits.maxMessageBytes) {
    throw invalid(
      `the batch is ${body.length} bytes encoded; the limit is ${limits.maxMessageBytes} (maxMessageBytes): split it`,
    );
  }
  return {
    topic: first.topic,
    body,
    sysFlag: 0,
    flag: 0,
    // What applies to every message; the broker adds it to each one's properties.
    properties: encodeProperties({ [MessageProperty.WAIT]: wait ? 'true' : 'false' }),
    msgId: msgIds.join(','),
    msgIds,
  };
}

export interface RequestContext {
  group: string;
  createTopicKey: string;
  defaultTopicQueueNums: number;
  batch: boolean;
  bornTimestamp?: number;
}

/** The SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE request of one attempt at `mq`. */
export function sendRequest(p: PreparedMessage, mq: MessageQueue, ctx: RequestContext): RemotingCommand {
  const header = encodeSendHeader(
    {
      producerGroup: ctx.group,
      topic: p.topic,
      defaultTopic: ctx.createTopicKey,
      defaultTopicQueueNums: ctx.defaultTopicQueueNums,
      queueId: mq.queueId,
      sysFlag: p.sysFlag,
      bornTimestamp: ctx.bornTimestamp ?? Date.now(),
      flag: p.flag,
      properties: p.properties,
      reconsumeTimes: 0,
      unitMode: false,
      batch: ctx.batch,
      brokerName: mq.brokerName,
    },
    true,
  );
  return createRequest(
    ctx.batch ? RequestCode.SEND_BATCH_MESSAGE : RequestCode.SEND_MESSAGE_V2,
    header,
    p.body,
  );
}

const STATUS_BY_CODE = new Map<number, SendStatus>([
  [ResponseCode.SUCCESS, 'SEND_OK'],
  [ResponseCode.FLUSH_DISK_TIMEOUT, 'FLUSH_DISK_TIMEOUT'],
  [ResponseCode.FLUSH_SLAVE_TIMEOUT, 'FLUSH_SLAVE_TIMEOUT'],
  [ResponseCode.SLAVE_NOT_AVAILABLE, 'SLAVE_NOT_AVAILABLE'],
]);

function headerInt(res: RemotingCommand, key: string, addr: string): number {
  const raw = res.extFields?.[key];
  const n = raw === undefined ? Number.NaN : decimal(raw);
  if (!Number.isSafeInteger(n)) {
    throw new TsmqError('HEADER_INVALID', `the send answer from ${addr} has no valid ${key}: ${raw}`);
  }
  return n;
}

/** Reads a send answer (table in the file header); a non-storing code throws BrokerResponseError. */
export function parseSendResponse(
  res: RemotingCommand,
  mq: MessageQueue,
  msgId: string,
  addr: string,
): SendResult {
  const status = STATUS_BY_CODE.get(res.code);
  if (status === undefined) throw new BrokerResponseError(addr, res, `send to ${mq.topic}`);
  const offsetMsgId = res.extFields?.msgId;
  if (offsetMsgId === undefined) {
    throw new TsmqError('HEADER_INVALID', `the send answer from ${addr} has no msgId`);
  }
  const region = res.extFields?.[MessageProperty.MSG_REGION];
  return {
    status,
    msgId,
    offsetMsgId,
    messageQueue: { topic: mq.topic, brokerName: mq.brokerName, queueId: headerInt(res, 'queueId', addr) },
    queueOffset: headerInt(res, 'queueOffset', addr),
    ...(region && { regionId: region }),
  };
}

/** Reads a batch's answer: the offsetMsgIds come comma-joined, one per message. */
export function parseBatchResponse(
  res: RemotingCommand,
  mq: MessageQueue,
  batch: PreparedBatch,
  addr: string,
): BatchSendResult {
  const r = parseSendResponse(res, mq, batch.msgId, addr);
  const offsetMsgIds = r.offsetMsgId.split(',').filter((s) => s.length > 0);
  return { ...r, msgIds: batch.msgIds, offsetMsgIds };
}

/**
 * Splits the answer to an auto-batch (a SEND_BATCH_MESSAGE of single sends) into one SendResult
 * per message: the reply names the first message's queue offset and joins the offsetMsgIds with
 * commas, so message i is at queueOffset + i with the i-th offsetMsgId. A non-storing code throws
 * BrokerResponseError; a count of offsetMsgIds that is not one per message throws HEADER_INVALID.
 */
export function splitBatchResponse(
  res: RemotingCommand,
  mq: MessageQueue,
  msgIds: readonly string[],
  addr: string,
): SendResult[] {
  const r = parseSendResponse(res, mq, '', addr);
  const offsetMsgIds = r.offsetMsgId.split(',');
  if (offsetMsgIds.length !== msgIds.length) {
    throw new TsmqError(
      'HEADER_INVALID',
      `the batch answer from ${addr} names ${offsetMsgIds.length} stored messages for ${msgIds.length} sent`,
    );
  }
  const results = new Array<SendResult>(msgIds.length);
  for (let i = 0; i < msgIds.length; i++) {
    const one: SendResult = {
      status: r.status,
      msgId: msgIds[i]!,
      offsetMsgId: offsetMsgIds[i]!,
      messageQueue: r.messageQueue,
      queueOffset: r.queueOffset + i,
    };
    if (r.regionId !== undefined) one.regionId = r.regionId;
    results[i] = one;
  }
  return results;
}
