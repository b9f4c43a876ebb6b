/**
 * GET_CONSUME_STATS (208), admin: how far a consumer group is behind, per queue. Header
 * (GetConsumeStatsRequestHeader): consumerGroup; topic (optional: without it, every topic the group
 * has committed offsets for). Body: ConsumeStats (src/protocol/admin-bodies.ts; its offsetTable is
 * keyed by MessageQueue objects, as RocketMQ writes it).
 *
 * For each topic that exists — and, when the group has live consumers, that they subscribe to (as
 * RocketMQ skips a topic the online group no longer consumes) — and each of its read queues:
 *
 *   brokerOffset    the queue's max offset (GET_MAX_OFFSET's answer)
 *   consumerOffset  the group's committed offset, 0 if none
 *   pullOffset      where the group's last pull of the queue ended since the broker started,
 *                   consumerOffset if it has not pulled it
 *   lastTimestamp   store time of the message at consumerOffset − 1, 0 if none
 *
 * consumeTps sums the group's pull rate over those topics in the last minute (../stats.ts). A group
 * or topic the broker knows nothing of gets SUCCESS with an empty table, as in RocketMQ (the admin
 * client decides what an empty table means); a missing consumerGroup is SYSTEM_ERROR.
 */
import {
  compareMessageQueues,
  createResponse,
  encodeConsumeStats,
  type MessageQueueEntry,
  type OffsetWrapper,
  optStr,
  RequestCode,
  ResponseCode,
  str,
} from '../../protocol/index.js';
import type { MessageStore } from '../../store/index.js';
import type { BrokerProcessor } from './context.js';
import { parseOr, storeUnavailable } from './offset-header.js';

/** Store time of the message at a queue offset, 0 if there is none (or it cannot be read). */
export async function storeTimeOrZero(store: MessageStore, topic: string, queueId: number, offset: number) {
  if (offset < 0) return 0;
  try {
    return (await store.storeTimestampOf(topic, queueId, offset)) ?? 0;
  } catch {
    return 0;
  }
}

export const getConsumeStats: BrokerProcessor = {
  code: RequestCode.GET_CONSUME_STATS,
  async handle(ctx, request) {
    const p = parseOr(request, (f) => ({
      consumerGroup: str(f, 'consumerGroup'),
      topic: optStr(f, 'topic')?.trim() ?? '',
    }));
    if (!p.ok) return p.response;
    const { consumerGroup: group, topic } = p.header;
    const store = ctx.store();
    if (!store) return storeUnavailable(request);
    const topics = topic !== '' ? [topic] : ctx.offsets.topicsOfGroup(group);
    const online = ctx.clients.consumerGroup(group);
    const offsetTable: MessageQueueEntry<OffsetWrapper>[] = [];
    let consumeTps = 0;
    for (const t of topics) {
      const tc = ctx.topics.get(t);
      if (!tc) continue;
      if (online && online.subscriptions.size > 0 && !online.subscriptions.has(t)) continue;
      for (let queueId = 0; queueId < tc.readQueueNums; queueId++) {
        const consumerOffset = ctx.offsets.query(group, t, queueId) ?? 0;
        offsetTable.push({
          queue: { topic: t, brokerName: ctx.config.brokerName, queueId },
          offsets: {
            brokerOffset: store.dispatchedMaxOffsetInQueue(t, queueId),
            consumerOffset,
            pullOffset: ctx.offsets.pullOffset(group, t, queueId) ?? consumerOffset,
            lastTimestamp: await storeTimeOrZero(store, t, queueId, consumerOffset - 1),
          },
        });
      }
      consumeTps += ctx.stats.groupGetTps(group, t);
    }
    offsetTable.sort((a, b) => compareMessageQueues(a.queue, b.queue));
    const body = encodeConsumeStats({ offsetTable, consumeTps });
    return createResponse(request, ResponseCode.SUCCESS, undefined, undefined, body);
  },
};
