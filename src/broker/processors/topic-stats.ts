/**
 * GET_TOPIC_STATS_INFO (202), admin: every queue's offsets of a topic on this broker. Header
 * (GetTopicStatsInfoRequestHeader): topic. Body: TopicStatsTable (src/protocol/admin-bodies.ts; its
 * offsetTable is keyed by MessageQueue objects, as RocketMQ writes it), one entry per queue id
 * below max(readQueueNums, writeQueueNums):
 *
 *   minOffset             the first offset still kept (GET_MIN_OFFSET)
 *   maxOffset             one past the last dispatched message (GET_MAX_OFFSET)
 *   lastUpdateTimestamp   store time of the message at maxOffset − 1, 0 if the queue is empty
 *
 * An unknown topic is TOPIC_NOT_EXIST 17; a missing header field SYSTEM_ERROR. (RocketMQ lists the
 * write queues only; a topic whose read queues outnumber its write queues shows them all here.)
 */
import {
  createResponse,
  encodeTopicStatsTable,
  type MessageQueueEntry,
  RequestCode,
  ResponseCode,
  str,
  type TopicOffset,
} from '../../protocol/index.js';
import { storeTimeOrZero } from './consume-stats.js';
import type { BrokerProcessor } from './context.js';
import { parseOr, storeUnavailable } from './offset-header.js';

export const getTopicStatsInfo: BrokerProcessor = {
  code: RequestCode.GET_TOPIC_STATS_INFO,
  async handle(ctx, request) {
    const p = parseOr(request, (f) => ({ topic: str(f, 'topic') }));
    if (!p.ok) return p.response;
    const { topic } = p.header;
    const tc = ctx.topics.get(topic);
    if (!tc) return createResponse(request, ResponseCode.TOPIC_NOT_EXIST, `topic[${topic}] not exist`);
    const store = ctx.store();
    if (!store) return storeUnavailable(request);
    const offsetTable: MessageQueueEntry<TopicOffset>[] = [];
    const queues = Math.max(tc.readQueueNums, tc.writeQueueNums);
    for (let queueId = 0; queueId < queues; queueId++) {
      const maxOffset = store.dispatchedMaxOffsetInQueue(topic, queueId);
      offsetTable.push({
        queue: { topic, brokerName: ctx.config.brokerName, queueId },
        offsets: {
          minOffset: store.minOffsetInQueue(topic, queueId),
          maxOffset,
          lastUpdateTimestamp:
            maxOffset > 0 ? await storeTimeOrZero(store, topic, queueId, maxOffset - 1) : 0,
        },
      });
    }
    const body = encodeTopicStatsTable({ offsetTable });
    return createResponse(request, ResponseCode.SUCCESS, undefined, undefined, body);
  },
};
