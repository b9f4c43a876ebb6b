/**
 * CONSUMER_SEND_MSG_BACK (36): a consumer failed a message; the broker stores a copy of it to be
 * delivered again later (RocketMQ's AbstractSendMessageProcessor.consumerSendMsgBack).
 *
 * Header (ConsumerSendMsgBackRequestHeader): offset (the commit-log offset of the failed message),
 * group, delayLevel, originMsgId, originTopic, unitMode, maxReconsumeTimes (optional: the group's
 * retryMaxTimes applies without it), and tsmq's optional lockVersion (an orderly consumer's queue
 * lock; the broker refuses a stale one like an offset commit, ../queue-locks.ts).
 *
 *   check / case                                      answer or destination
 *   ------------------------------------------------- ------------------------------------------
 *   header field missing or not a number              SYSTEM_ERROR "the custom field <x> is null"
 *   store not open                                    SERVICE_NOT_AVAILABLE
 *   group unknown and not auto-created                SUBSCRIPTION_GROUP_NOT_EXIST
 *   no record at the offset                           SYSTEM_ERROR "look message by offset failed"
 *   the message there is in a broker-only topic (a    SYSTEM_ERROR naming it
 *     waiting delayed message, a transaction half…),
 *     another group's, or not originTopic/originMsgId
 *   lockVersion stale (the queue was locked again)    NO_PERMISSION
 *   the group's retryQueueNums is 0                   SUCCESS, nothing stored (retries are off)
 *   reconsumeTimes ≥ maxReconsumeTimes, or            %DLQ%<group> queue 0, at once
 *     delayLevel < 0
 *   otherwise                                         %RETRY%<group>, a random one of its queues,
 *                                                     after delay level delayLevel, or
 *                                                     3 + reconsumeTimes when it is 0 (10 s, 30 s,
 *                                                     1 m … 2 h with the default levels)
 *
 * The copy (../../message/group-topics.ts) has reconsumeTimes + 1, RETRY_TOPIC (the first topic,
 * kept through every retry) and ORIGIN_MESSAGE_ID; a DLQ copy also DLQ_ORIGIN_TOPIC and
 * DLQ_ORIGIN_MESSAGE_ID. It is stored through the broker's put entry (../schedule/put-message.ts),
 * so a retry waits in SCHEDULE_TOPIC_XXXX like any delayed message and survives a restart.
 * Properties that would delay it a second time (DELAY, the timer properties) are dropped first.
 */

import type { HostAddress } from '../../common/types.js';
import {
  type AppendMessage,
  CHECK_MAX_TOPIC,
  createOffsetMsgId,
  DLQ_QUEUE_NUMS,
  decodeProperties,
  dlqTopicOf,
  encodeProperties,
  getProperty,
  HALF_TOPIC,
  isDlqTopic,
  isRetryTopic,
  MessageProperty,
  OP_TOPIC,
  RETRY_DROPPED_PROPERTIES,
  retryTopicOf,
} from '../../message/index.js';
import { createResponse, int, optInt, optStr, RequestCode, ResponseCode, str } from '../../protocol/index.js';
import { SCHEDULE_TOPIC, TIMER_TOPIC } from '../schedule/put-message.js';
import type { BrokerProcessor } from './context.js';
import { ensureGroupTopic } from './group-topics.js';
import { parseOr, storeUnavailable } from './offset-header.js';
import { storeFailure } from './send-common.js';

/**
 * Whether the record at the offset is the message the consumer failed: it may not be in a topic
 * only the broker reads (a waiting delayed or timer message, a transaction half or op, another
 * group's retry or dead letters), and it must match the origin topic and message id the consumer
 * names, when it names them (a recovered, rewritten log tail could hold another message there).
 */
export function notTheFailedMessage(
  record: { topic: string; properties: string; storeHost: HostAddress; physicalOffset: number },
  h: { group: string; originTopic?: string | undefined; originMsgId?: string | undefined },
): string | undefined {
  const t = record.topic;
  if (BROKER_ONLY_TOPICS.has(t) || isDlqTopic(t) || (isRetryTopic(t) && t !== retryTopicOf(h.group))) {
    return `the message at offset ${record.physicalOffset} is in ${t}, which consumers of ${h.group} do not consume`;
  }
  if (
    h.originTopic !== undefined &&
    h.originTopic !== '' &&
    t !== h.originTopic &&
    t !== retryTopicOf(h.group)
  ) {
    return `the message at offset ${record.physicalOffset} is in ${t}, not ${h.originTopic}`;
  }
  if (h.originMsgId !== undefined && h.originMsgId !== '') {
    const uniq = getProperty(record.properties, MessageProperty.UNIQ_KEY);
    const offsetId = createOffsetMsgId(record.storeHost, record.physicalOffset);
    if (h.originMsgId !== uniq && h.originMsgId !== offsetId) {
      return `the message at offset ${record.physicalOffset} is not message ${h.originMsgId}`;
    }
  }
  return undefined;
}

/** Topics whose messages no consumer is given (they wait, or they are the broker's bookkeeping). */
const BROKER_ONLY_TOPICS: ReadonlySet<string> = new Set([
  SCHEDULE_TOPIC,
  TIMER_TOPIC,
  HALF_TOPIC,
  OP_TOPIC,
  CHECK_MAX_TOPIC,
]);

export const consumerSendMsgBack: BrokerProcessor = {
  code: RequestCode.CONSUMER_SEND_MSG_BACK,
  async handle(ctx, request) {
    const p = parseOr(request, (f) => ({
      offset: int(f, 'offset'),
      group: str(f, 'group'),
      delayLevel: int(f, 'delayLevel'),
      originMsgId: optStr(f, 'originMsgId'),
      originTopic: optStr(f, 'originTopic'),
      maxReconsumeTimes: optInt(f, 'maxReconsumeTimes'),
      lockVersion: optInt(f, 'lockVersion'),
    }));
    if (!p.ok) return p.response;
    const h = p.header;
    const store = ctx.store();
    if (!store) return storeUnavailable(request);
    const group = ctx.subscriptionGroups.findOrCreate(h.group);
    if (!group) {
      return createResponse(
        request,
        ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST,
        `subscription group not exist, ${h.group}`,
      );
    }
    let record: Awaited<ReturnType<typeof store.getMessageByPhysicalOffset>>;
    try {
      record = await store.getMessageByPhysicalOffset(h.offset);
    } catch (e) {
      return createResponse(
        request,
        ResponseCode.SYSTEM_ERROR,
        `look message by offset failed, ${h.offset}: ${(e as Error).message}`,
      );
    }
    const mismatch = notTheFailedMessage(record, h);
    if (mismatch) return createResponse(request, ResponseCode.SYSTEM_ERROR, mismatch);
    if (h.lockVersion !== undefined) {
      const queue = { topic: record.topic, brokerName: ctx.config.brokerName, queueId: record.queueId };
      const check = ctx.locks.checkVersion(h.group, queue, h.lockVersion);
      if (!check.ok) return createResponse(request, ResponseCode.NO_PERMISSION, check.reason);
    }
    if (group.retryQueueNums <= 0) return createResponse(request, ResponseCode.SUCCESS, 'retries are off');

    const props = decodeProperties(record.properties);
    for (const k of RETRY_DROPPED_PROPERTIES) props.delete(k);
    const firstTopic = props.get(MessageProperty.RETRY_TOPIC) ?? h.originTopic ?? record.topic;
    props.set(MessageProperty.RETRY_TOPIC, firstTopic);
    const msgId =
      props.get(MessageProperty.UNIQ_KEY) ?? h.originMsgId ?? createOffsetMsgId(record.storeHost, h.offset);
    if (!props.has(MessageProperty.ORIGIN_MESSAGE_ID)) props.set(MessageProperty.ORIGIN_MESSAGE_ID, msgId);

    const maxTimes = h.maxReconsumeTimes ?? group.retryMaxTimes;
    const dead = record.reconsumeTimes >= maxTimes || h.delayLevel < 0;
    let topic: string;
    let queueId: number;
    let delayLevel = 0;
    if (dead) {
      topic = dlqTopicOf(h.group);
      const tc = await ensureGroupTopic(ctx, topic, DLQ_QUEUE_NUMS);
      if (typeof tc === 'string') return createResponse(request, ResponseCode.SYSTEM_ERROR, tc);
      queueId = 0;
      props.set(MessageProperty.DLQ_ORIGIN_TOPIC, firstTopic);
      props.set(MessageProperty.DLQ_ORIGIN_MESSAGE_ID, msgId);
    } else {
      topic = retryTopicOf(h.group);
      const tc = await ensureGroupTopic(ctx, topic, group.retryQueueNums);
      if (typeof tc === 'string') return createResponse(request, ResponseCode.SYSTEM_ERROR, tc);
      queueId = ctx.random(Math.max(1, tc.writeQueueNums));
      delayLevel = h.delayLevel === 0 ? 3 + record.reconsumeTimes : h.delayLevel;
    }
    const msg: AppendMessage = {
      topic,
      queueId,
      body: record.body,
      properties: encodeProperties(props),
      flag: record.flag,
      sysFlag: record.sysFlag,
      bornTimestamp: record.bornTimestamp,
      bornHost: record.bornHost,
      reconsumeTimes: record.reconsumeTimes + 1,
    };
    try {
      await ctx.messagePut.put(msg, { delayLevel });
    } catch (e) {
      return storeFailure(ctx, request, e);
    }
    ctx.stats.onPut(1);
    if (dead) {
      ctx.logger.warn(
        {
          group: h.group,
          msgId,
          topic: firstTopic,
          reconsumeTimes: record.reconsumeTimes,
          maxReconsumeTimes: maxTimes,
        },
        `message moved to the dead-letter queue ${topic}`,
      );
    }
    return createResponse(request, ResponseCode.SUCCESS);
  },
};
