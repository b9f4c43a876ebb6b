/**
 * Creates a consumer group's retry or DLQ topic on first need (RocketMQ's
 * createTopicInSendMessageBackMethod): read + write, `queues` queues, and the name servers hear of
 * it at once so consumers find its route.
 */
import { Perm, type TopicConfig } from '../../namesrv/index.js';
import { topicConfig } from '../topic-config.js';
import type { BrokerContext } from './context.js';

export async function ensureGroupTopic(
  ctx: BrokerContext,
  topic: string,
  queues: number,
): Promise<TopicConfig> {
  const known = ctx.topics.get(topic);
  if (known) return known;
  const created = await ctx.topics.upsert(
    topicConfig(topic, { readQueueNums: queues, writeQueueNums: queues, perm: Perm.READ | Perm.WRITE }),
  );
  ctx.logger.info({ topic: created }, `topic ${topic} created for its consumer group`);
  ctx.topicsChanged();
  return created;
}
