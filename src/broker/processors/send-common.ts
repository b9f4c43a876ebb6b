/**
 * The checks and the reply every send processor shares, in RocketMQ's order and with its codes:
 *
 *   check                                           code                      remark
 *   ----------------------------------------------- ------------------------- -------------------------------
 *   header field missing or not a number            SYSTEM_ERROR 1            the custom field <x> is null
 *   store not open (starting / closing)             SERVICE_NOT_AVAILABLE 14  broker is starting / closing
 *   topic name invalid                              SYSTEM_ERROR 1            (what is wrong)
 *   topic reserved (TBW102, the cluster name)       SYSTEM_ERROR 1            ...conflict with system reserved words
 *   topic the broker alone writes (schedule, timer,  NO_PERMISSION 16          Sending message to topic[X] is forbidden.
 *     transaction topics)
 *   topic missing and not auto-created              TOPIC_NOT_EXIST 17        topic[X] not exist, apply first please!
 *   topic without WRITE perm                        NO_PERMISSION 16          the topic[X] sending message is forbidden
 *   queueId >= max(read, write queue nums)          SYSTEM_ERROR 1            request queueId[n] is illegal, ...
 *   queueId < 0                                     (none: a random write queue is picked)
 *   store: empty/oversize body, bad properties      MESSAGE_ILLEGAL 13
 *   bad DELAY, bad or too distant timer, timers off MESSAGE_ILLEGAL 13        the message is illegal: (why)
 *   store: DISK_FULL, closed                        SERVICE_NOT_AVAILABLE 14  service not available now, maybe disk full
 *   topic or client over its rate limit             FLOW_CONTROL 215          [FLOW_CONTROL]topic X is over ...
 *   waited > waitTimeMillsInSendQueue, queue full   SYSTEM_BUSY 2             [TIMEOUT_CLEAN_QUEUE]broker busy, ...
 *   store: STORE_BUSY (too much unwritten)          SYSTEM_BUSY 2             [PC_SYNCHRONIZED]broker busy, ...
 *   store: STORE_IO_ERROR, anything else            SYSTEM_ERROR 1
 *
 * Sources: apache/rocketmq AbstractSendMessageProcessor.msgCheck and
 * SendMessageProcessor.handlePutMessageResult; BrokerFastFailure answers page-cache pressure with
 * SYSTEM_BUSY and the "[PC_SYNCHRONIZED]" prefix, which producers retry elsewhere.
 */
import { isTsmqError } from '../../common/errors.js';
import type { HostAddress } from '../../common/types.js';
import {
  createUniqId,
  DLQ_QUEUE_NUMS,
  decodeProperties,
  dlqTopicOf,
  encodeProperties,
  getProperty,
  groupOfTopic,
  isCanonicalProperties,
  isRetryTopic,
  MessageProperty,
  NAME_VALUE_SEPARATOR,
  PROPERTY_SEPARATOR,
  RETRY_DROPPED_PROPERTIES,
} from '../../message/index.js';
import { Perm, type TopicConfig } from '../../namesrv/index.js';
import type { SendMessageRequestHeader } from '../../protocol/index.js';
import { createResponse, type RemotingCommand, ResponseCode } from '../../protocol/index.js';
import type { RemotingChannel } from '../../remoting/index.js';
import type { MessageStore } from '../../store/index.js';
import { SCHEDULE_TOPIC, TIMER_TOPIC } from '../schedule/put-message.js';
import { validateTopicName } from '../topic-config.js';
import type { BrokerContext } from './context.js';
import { ensureGroupTopic } from './group-topics.js';

/**
 * Topics only the broker writes to (RocketMQ's TopicValidator.NOT_ALLOWED_SEND_TOPIC_SET, with
 * the timer topic): a message sent there directly would bypass the delay and transaction
 * machinery that reads them.
 */
const NOT_ALLOWED_SEND_TOPICS: ReadonlySet<string> = new Set([
  SCHEDULE_TOPIC,
  TIMER_TOPIC,
  'RMQ_SYS_TRANS_HALF_TOPIC',
  'RMQ_SYS_TRANS_OP_HALF_TOPIC',
  'TRANS_CHECK_MAX_TIME_TOPIC',
]);

export type Checked =
  | { ok: true; store: MessageStore; topic: TopicConfig; queueId: number }
  | { ok: false; response: RemotingCommand };

function reject(request: RemotingCommand, code: number, remark: string): Checked {
  return { ok: false, response: createResponse(request, code, remark) };
}

/** Runs the checks above up to (not including) the store; creates the topic if allowed. */
export async function checkSend(
  ctx: BrokerContext,
  request: RemotingCommand,
  h: SendMessageRequestHeader,
): Promise<Checked> {
  const store = ctx.store();
  if (!store) return reject(request, ResponseCode.SERVICE_NOT_AVAILABLE, 'the broker is starting or closing');
  const invalid = validateTopicName(h.topic);
  if (invalid) return reject(request, ResponseCode.SYSTEM_ERROR, invalid);
  if (ctx.topics.isReservedForSend(h.topic)) {
    return reject(
      request,
      ResponseCode.SYSTEM_ERROR,
      `the topic[${h.topic}] is conflict with system reserved words.`,
    );
  }
  if (NOT_ALLOWED_SEND_TOPICS.has(h.topic)) {
    return reject(request, ResponseCode.NO_PERMISSION, `Sending message to topic[${h.topic}] is forbidden.`);
  }
  // A topic that exists is the common case: no promise to wait for.
  const existing = ctx.topics.get(h.topic);
  const found = existing
    ? { config: existing, created: false }
    : await ctx.topics.createOnSend(h.topic, h.defaultTopic, h.defaultTopicQueueNums);
  if (!found) {
    return reject(
      request,
      ResponseCode.TOPIC_NOT_EXIST,
      `topic[${h.topic}] not exist, apply first please! (autoCreateTopicEnable=${ctx.config.autoCreateTopicEnable} on broker ${ctx.config.brokerName})`,
    );
  }
  if (found.created) {
    ctx.logger.info({ topic: found.config }, `topic ${h.topic} auto-created on send`);
    ctx.topicsChanged();
  }
  const topic = found.config;
  if ((topic.perm & Perm.WRITE) === 0) {
    return reject(request, ResponseCode.NO_PERMISSION, `the topic[${h.topic}] sending message is forbidden`);
  }
  let queueId = h.queueId;
  const idValid = Math.max(topic.readQueueNums, topic.writeQueueNums);
  if (queueId >= idValid) {
    return reject(
      request,
      ResponseCode.SYSTEM_ERROR,
      `request queueId[${queueId}] is illegal, topic ${h.topic} has ${topic.writeQueueNums} write and ${topic.readQueueNums} read queues`,
    );
  }
  if (queueId < 0) queueId = ctx.random(Math.max(1, topic.writeQueueNums));
  return { ok: true, store, topic, queueId };
}

/**
 * Adds what the broker stamps on each message: UNIQ_KEY when absent, and CLUSTER. `canonical`:
 * the caller has just checked isCanonicalProperties(properties), so it is not checked again.
 */
export function stampProperties(
  ctx: BrokerContext,
  properties: string | undefined,
  canonical = false,
): { properties: string; uniqKey: string } {
  const text = properties ?? '';
  const cluster = ctx.config.brokerClusterName;
  // What producers send (a canonical string without CLUSTER) gets the entries appended, which is
  // what decoding, setting and encoding would give; anything else takes that longer way.
  let uniqKey = getProperty(text, MessageProperty.UNIQ_KEY);
  if (
    uniqKey !== '' &&
    (canonical || isCanonicalProperties(text)) &&
    getProperty(text, MessageProperty.CLUSTER) === undefined &&
    cluster.indexOf(NAME_VALUE_SEPARATOR) === -1 &&
    cluster.indexOf(PROPERTY_SEPARATOR) === -1
  ) {
    let stamped = text;
    if (uniqKey === undefined) {
      uniqKey = createUniqId();
      stamped += `${MessageProperty.UNIQ_KEY}${NAME_VALUE_SEPARATOR}${uniqKey}${PROPERTY_SEPARATOR}`;
    }
    stamped += `${MessageProperty.CLUSTER}${NAME_VALUE_SEPARATOR}${cluster}${PROPERTY_SEPARATOR}`;
    return { properties: stamped, uniqKey };
  }
  const props = decodeProperties(text);
  uniqKey = props.get(MessageProperty.UNIQ_KEY);
  if (!uniqKey) {
    uniqKey = createUniqId();
    props.set(MessageProperty.UNIQ_KEY, uniqKey);
  }
  props.set(MessageProperty.CLUSTER, ctx.config.brokerClusterName);
  return { properties: encodeProperties(props), uniqKey };
}

/** The client's address as a record's born host; undefined if the socket does not tell. */
export function bornHostOf(channel: RemotingChannel): HostAddress | undefined {
  const a = channel.socket.remoteAddress;
  const p = channel.socket.remotePort;
  return a && p !== undefined ? { address: a, port: p } : undefined;
}

/** Maps a store failure to the response RocketMQ gives for the matching PutMessageStatus. */
export function storeFailure(ctx: BrokerContext, request: RemotingCommand, e: unknown): RemotingCommand {
  const message = e instanceof Error ? e.message : String(e);
  if (isTsmqError(e)) {
    switch (e.codeName) {
      case 'MESSAGE_TOO_LARGE':
      case 'MESSAGE_BODY_EMPTY':
      case 'PROPERTIES_TOO_LARGE':
      case 'PROPERTY_INVALID':
      case 'TOPIC_EMPTY':
      case 'TOPIC_TOO_LONG':
      case 'TOPIC_INVALID':
      case 'QUEUE_ID_INVALID':
      case 'DELAY_LEVEL_INVALID':
      case 'TIMER_MESSAGE_INVALID':
        return createResponse(request, ResponseCode.MESSAGE_ILLEGAL, `the message is illegal: ${message}`);
      case 'DISK_FULL':
        return createResponse(
          request,
          ResponseCode.SERVICE_NOT_AVAILABLE,
          `service not available now, maybe disk full: ${message}`,
        );
      case 'STORE_CLOSED':
        return createResponse(
          request,
          ResponseCode.SERVICE_NOT_AVAILABLE,
          `service not available now: ${message}`,
        );
      case 'STORE_BUSY':
        return createResponse(
          request,
          ResponseCode.SYSTEM_BUSY,
          `[PC_SYNCHRONIZED]broker busy, start flow control for a while: ${message}`,
        );
      default:
        break;
    }
  }
  ctx.logger.error({ err: e }, 'store put failed');
  return createResponse(request, ResponseCode.SYSTEM_ERROR, `store put failed: ${message}`);
}

export type DeadLetterRoute =
  | { ok: true; topic: string; queueId: number; properties: string }
  | { ok: false; code: number; remark: string };

/**
 * A message a client sends straight to a group's retry topic (what RocketMQ's Java client does
 * when CONSUMER_SEND_MSG_BACK fails, and its orderly consumer always does) is checked as the
 * broker checks a send-back (RocketMQ's handleRetryAndDLQ): the group must exist
 * (SUBSCRIPTION_GROUP_NOT_EXIST), and one whose reconsumeTimes reached maxReconsumeTimes (the
 * header's, else the group's retryMaxTimes) goes to %DLQ%<group> queue 0 at once, its DELAY and timer properties
 * dropped. Undefined for every other message: it is stored where it was sent.
 */
export async function retryToDeadLetter(
  ctx: BrokerContext,
  h: SendMessageRequestHeader,
  properties: string,
): Promise<DeadLetterRoute | undefined> {
  if (!isRetryTopic(h.topic)) return undefined;
  const name = groupOfTopic(h.topic) ?? '';
  const group = ctx.subscriptionGroups.findOrCreate(name);
  if (!group) {
    return {
      ok: false,
      code: ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST,
      remark: `subscription group not exist, ${name}`,
    };
  }
  const maxTimes = h.maxReconsumeTimes ?? group.retryMaxTimes;
  if ((h.reconsumeTimes ?? 0) < maxTimes) return undefined;
  const topic = dlqTopicOf(name);
  const tc = await ensureGroupTopic(ctx, topic, DLQ_QUEUE_NUMS);
  if (typeof tc === 'string') return { ok: false, code: ResponseCode.SYSTEM_ERROR, remark: tc };
  const props = decodeProperties(properties);
  for (const k of RETRY_DROPPED_PROPERTIES) props.delete(k);
  const first = props.get(MessageProperty.RETRY_TOPIC);
  if (first !== undefined) props.set(MessageProperty.DLQ_ORIGIN_TOPIC, first);
  const id = props.get(MessageProperty.ORIGIN_MESSAGE_ID) ?? props.get(MessageProperty.UNIQ_KEY);
  if (id !== undefined) props.set(MessageProperty.DLQ_ORIGIN_MESSAGE_ID, id);
  ctx.logger.warn(
    { group: name, topic: first, reconsumeTimes: h.reconsumeTimes, maxReconsumeTimes: maxTimes },
    `a message sent to ${h.topic} moved to the dead-letter queue ${topic}`,
  );
  return { ok: true, topic, queueId: 0, properties: encodeProperties(props) };
}

export type Admitted = { ok: true; release: () => void } | { ok: false; response: RemotingCommand };

/**
 * The flow-control gate every send passes after its checks (../flow-control.ts): the topic's and
 * the client's rate limits (FLOW_CONTROL 215, "[FLOW_CONTROL]…"), then a place in the send queue
 * (SYSTEM_BUSY 2, "[TIMEOUT_CLEAN_QUEUE]broker busy…"). Call `release` once the store answered.
 */
export async function admitSend(
  ctx: BrokerContext,
  request: RemotingCommand,
  channel: RemotingChannel,
  topic: string,
  msgs: number,
  bytes: number,
): Promise<Admitted> {
  const limited = ctx.rateLimits.tryAcquire(topic, channel.socket.remoteAddress, msgs, bytes);
  if (limited) {
    return {
      ok: false,
      response: createResponse(
        request,
        ResponseCode.FLOW_CONTROL,
        `[FLOW_CONTROL]${limited}; try again later`,
      ),
    };
  }
  const waiting = ctx.sendAdmission.acquire();
  const busy = waiting === undefined ? undefined : await waiting;
  if (busy !== undefined)
    return { ok: false, response: createResponse(request, ResponseCode.SYSTEM_BUSY, busy) };
  return { ok: true, release: () => ctx.sendAdmission.release() };
}
