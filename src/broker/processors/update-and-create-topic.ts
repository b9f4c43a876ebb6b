/**
 * UPDATE_AND_CREATE_TOPIC (17), admin: creates or replaces a topic on this broker, then tells the
 * name servers. Header (CreateTopicRequestHeader): topic, defaultTopic, readQueueNums,
 * writeQueueNums, perm, topicFilterType, topicSysFlag, order. An invalid name or queue count is
 * SYSTEM_ERROR with the reason, as RocketMQ's AdminBrokerProcessor answers it.
 */

import { TOPIC_FILTER_TYPES, type TopicFilterType } from '../../namesrv/index.js';
import { createResponse, RequestCode, ResponseCode } from '../../protocol/index.js';
import { topicConfig, validateTopicName } from '../topic-config.js';
import type { BrokerProcessor } from './context.js';

/** Most queues one topic may have on one broker. */
export const TOPIC_QUEUE_NUMS_MAX = 1024;

function int(v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  return /^\d+$/.test(v.trim()) ? Number(v) : Number.NaN;
}

export const updateAndCreateTopic: BrokerProcessor = {
  code: RequestCode.UPDATE_AND_CREATE_TOPIC,
  async handle(ctx, request) {
    const ext = request.extFields ?? {};
    const topic = ext.topic;
    if (topic === undefined)
      return createResponse(request, ResponseCode.SYSTEM_ERROR, 'the custom field <topic> is null');
    const invalid = validateTopicName(topic);
    if (invalid) return createResponse(request, ResponseCode.SYSTEM_ERROR, invalid);
    if (ctx.topics.isReservedForSend(topic)) {
      return createResponse(
        request,
        ResponseCode.SYSTEM_ERROR,
        `the topic[${topic}] is conflict with system reserved words.`,
      );
    }
    const readQueueNums = int(ext.readQueueNums, 16);
    const writeQueueNums = int(ext.writeQueueNums, 16);
    const perm = int(ext.perm, 6);
    const topicSysFlag = int(ext.topicSysFlag, 0);
    for (const [name, n] of [
      ['readQueueNums', readQueueNums],
      ['writeQueueNums', writeQueueNums],
    ] as const) {
      if (!(n >= 1 && n <= TOPIC_QUEUE_NUMS_MAX)) {
        return createResponse(
          request,
          ResponseCode.SYSTEM_ERROR,
          `${name} must be an integer in [1, ${TOPIC_QUEUE_NUMS_MAX}], got ${ext[name]}`,
        );
      }
    }
    if (!(perm >= 0 && perm <= 15) || !Number.isInteger(topicSysFlag)) {
      return createResponse(
        request,
        ResponseCode.SYSTEM_ERROR,
        `perm or topicSysFlag is not valid: ${ext.perm} ${ext.topicSysFlag}`,
      );
    }
    const filter = (ext.topicFilterType ?? 'SINGLE_TAG') as TopicFilterType;
    if (!TOPIC_FILTER_TYPES.includes(filter)) {
      return createResponse(
        request,
        ResponseCode.SYSTEM_ERROR,
        `topicFilterType must be SINGLE_TAG or MULTI_TAG, got ${filter}`,
      );
    }
    const tc = await ctx.topics.upsert(
      topicConfig(topic, {
        readQueueNums,
        writeQueueNums,
        perm,
        topicFilterType: filter,
        topicSysFlag,
        order: ext.order === 'true',
      }),
    );
    ctx.logger.info({ topic: tc, from: request.language }, `topic ${topic} created or updated`);
    ctx.topicsChanged();
    return createResponse(request, ResponseCode.SUCCESS);
  },
};
