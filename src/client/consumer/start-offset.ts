/**
 * Where consumption of a newly assigned queue begins (RocketMQ's computePullFromWhere): the
 * group's stored offset if it has one; otherwise the consumer's ConsumeFromWhere —
 *
 *   LAST_OFFSET    the queue's max offset: only messages sent from now on (a %RETRY% topic
 *                  starts at its min instead, so no retry is skipped)
 *   FIRST_OFFSET   the queue's min offset: everything still kept
 *   TIMESTAMP      the first message stored at or after consumeTimestamp (default now − 30 min)
 */
import { isRetryTopic } from '../../message/index.js';
import type { MessageQueue } from '../message.js';
import type { OffsetStore } from './offset-store.js';
import type { ConsumerApi } from './pull-api.js';
import type { ConsumeFromWhere } from './types.js';

/** How far back TIMESTAMP reaches by default (RocketMQ: half an hour). */
export const DEFAULT_CONSUME_TIMESTAMP_AGO_MS = 30 * 60 * 1000;

export async function computeStartOffset(
  api: ConsumerApi,
  store: OffsetStore,
  mq: MessageQueue,
  from: ConsumeFromWhere,
  timestampMs: number,
): Promise<number> {
  const stored = await store.readStored(mq);
  if (stored !== undefined && stored >= 0) return stored;
  switch (from) {
    case 'LAST_OFFSET':
      return isRetryTopic(mq.topic) ? api.minOffset(mq) : api.maxOffset(mq);
    case 'FIRST_OFFSET':
      return api.minOffset(mq);
    case 'TIMESTAMP':
      return api.searchOffset(mq, timestampMs);
  }
}
