/**
 * Reading topics for the admin tools (dead letters, unresolved transactions): the route of a topic
 * that may not exist, and a queue's messages from an offset, pulled with the built-in
 * TOOLS_CONSUMER group, which commits nothing, so reading changes no one's progress.
 */
import { TsmqError } from '../common/errors.js';
import { parseTagExpression } from '../message/index.js';
import type { TopicRouteData } from '../protocol/index.js';
import type { ClientInstance } from './client-instance.js';
import type { ConsumerApi } from './consumer/pull-api.js';
import type { MessageExt, MessageQueue } from './message.js';

/** The group every broker knows and that commits nothing (RocketMQ's MixAll.TOOLS_CONSUMER_GROUP). */
export const TOOLS_CONSUMER_GROUP = 'TOOLS_CONSUMER';

const ALL = parseTagExpression('*')!;

/** The topic's route, or undefined when no name server knows it. */
export async function routeIfAny(
  instance: ClientInstance,
  topic: string,
): Promise<TopicRouteData | undefined> {
  try {
    return await instance.route(topic, true);
  } catch (e) {
    if (e instanceof TsmqError && e.codeName === 'NO_ROUTE') return undefined;
    throw e;
  }
}

/** The queue's messages from `from` (or its min offset, if later) to its end, at most `max`. */
export async function readQueue(
  api: ConsumerApi,
  queue: MessageQueue,
  from: number,
  max: number,
): Promise<MessageExt[]> {
  const out: MessageExt[] = [];
  let offset = Math.max(from, await api.minOffset(queue));
  const end = await api.maxOffset(queue);
  while (offset < end && out.length < max) {
    const r = await api.pull({
      group: TOOLS_CONSUMER_GROUP,
      queue,
      offset,
      maxMsgNums: Math.min(32, max - out.length),
      expression: '*',
      filter: ALL,
      subVersion: 0,
      suspendTimeoutMs: 0,
    });
    if (r.status !== 'FOUND' && r.status !== 'NO_MATCHED_MSG') break;
    for (const m of r.msgs) if (out.length < max) out.push(m);
    if (r.nextBeginOffset <= offset) break;
    offset = r.nextBeginOffset;
  }
  return out;
}
