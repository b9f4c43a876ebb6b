/**
 * Creates a consumer group's retry or DLQ topic on first need (RocketMQ's
 * createTopicInSendMessageBackMethod): read + write, `queues` queues (an existing one with fewer,
 * say after the group's retryQueueNums grew, gets more), and the name servers hear of it at once so
 * consumers find its route. A sentence instead when the name is not a valid topic (too long).
 */
import { Perm, type TopicConfig } from '../../namesrv/index.js';
import { topicConfig, validateTopicName } from '../topic-config.js';
import type { BrokerContext } from './context.js';

export async function ensureGroupTopic(
  ctx: BrokerContext,
  topic: string,
  queues: number,
): Promise<TopicConfig | string> {
  const known = ctx.topics.get(topic);
  if (known && known.writeQueueNums >= queues && known.readQueueNums >= queues) return known;
  const invalid = validateTopicName(topic);
  if (invalid) return `the group's topic ${topic} is not a valid topic name: ${invalid}`;
  const created = await ctx.topics.upsert(
    known
      ? {
          ...known,
          readQueueNums: Math.max(known.readQueueNums, queues),
          writeQueueNums: Math.max(known.writeQueueNums, queues),
        }
      : topicConfig(topic, { readQueueNums: queues, writeQueueNums: queues, perm: Perm.READ | Perm.WRITE }),
  );
  ctx.logger.info({ topic: created }, `topic ${topic} ${known ? 'grown' : 'created'} for its consumer group`);
  ctx.topicsChanged();
  return created;
}
