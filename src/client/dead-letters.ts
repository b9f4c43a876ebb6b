/**
 * Reading a consumer group's dead-letter queue and sending its messages back to where they came
 * from (`tsmq dlq list|resend`). A DLQ message (../message/group-topics.ts) is a copy of a message
 * the group failed maxReconsumeTimes times; its DLQ_ORIGIN_TOPIC (else RETRY_TOPIC) names the
 * topic it was sent to and its UNIQ_KEY is the id its producer got.
 *
 * Reading pulls every queue of %DLQ%<group> from its min offset with the built-in TOOLS_CONSUMER
 * group, which commits nothing, so listing changes no one's progress. A re-send is a new message
 * on the original topic with the same body, tags, keys, user properties and message id (consumers
 * that deduplicate by id see the same one); reconsume times start again at 0. The DLQ copy stays
 * where it is (as in RocketMQ, nothing is deleted from a queue): select what to re-send by id.
 */
import { TsmqError } from '../common/errors.js';
import { DLQ_TOPIC_PREFIX, dlqTopicOf, MessageProperty } from '../message/index.js';
import type { ClientInstance } from './client-instance.js';
import { ConsumerApi } from './consumer/pull-api.js';
import type { Message, MessageExt } from './message.js';
import { readQueue, routeIfAny } from './tools-read.js';

export { TOOLS_CONSUMER_GROUP } from './tools-read.js';

export interface DeadLetter {
  /** The message as stored in the DLQ (topic %DLQ%<group>). */
  msg: MessageExt;
  /** The topic it was first sent to. */
  originTopic: string;
  /** The id its producer got. */
  originMsgId: string;
}

const RESERVED = new Set<string>(Object.values(MessageProperty));

function deadLetterOf(msg: MessageExt): DeadLetter {
  const p = msg.properties;
  const originTopic = p.get(MessageProperty.DLQ_ORIGIN_TOPIC) ?? p.get(MessageProperty.RETRY_TOPIC) ?? '';
  const originMsgId =
    p.get(MessageProperty.DLQ_ORIGIN_MESSAGE_ID) ?? p.get(MessageProperty.ORIGIN_MESSAGE_ID) ?? msg.msgId;
  return { msg, originTopic, originMsgId };
}

/**
 * The messages of the group's DLQ, oldest first per queue, at most `max` (default 1,000) in all.
 * A group whose DLQ does not exist (nothing ever failed for good) has none.
 */
export async function readDeadLetters(
  instance: ClientInstance,
  group: string,
  max = 1000,
): Promise<DeadLetter[]> {
  if (group.startsWith(DLQ_TOPIC_PREFIX)) group = group.slice(DLQ_TOPIC_PREFIX.length);
  const topic = dlqTopicOf(group);
  const route = await routeIfAny(instance, topic);
  if (!route) return [];
  const api = new ConsumerApi(instance);
  const out: DeadLetter[] = [];
  for (const queue of instance.subscribeQueues(topic, route)) {
    if (out.length >= max) break;
    for (const m of await readQueue(api, queue, 0, max - out.length)) out.push(deadLetterOf(m));
  }
  return out;
}

/**
 * The message to send to re-deliver a dead letter: its body, tags, keys and user properties, to
 * its original topic (send it with `{ msgId: originMsgId }` to keep its id).
 */
export function deadLetterToMessage(d: DeadLetter): Message {
  if (!d.originTopic) {
    throw new TsmqError(
      'ARGUMENT_INVALID',
      `dead letter ${d.msg.msgId} names no original topic (no DLQ_ORIGIN_TOPIC or RETRY_TOPIC property)`,
    );
  }
  const properties: Record<string, string> = {};
  for (const [k, v] of d.msg.properties) if (!RESERVED.has(k) && !k.startsWith('__')) properties[k] = v;
  return {
    topic: d.originTopic,
    body: d.msg.body,
    ...(d.msg.tags !== undefined && { tags: d.msg.tags }),
    ...(d.msg.keys.length > 0 && { keys: d.msg.keys }),
    ...(Object.keys(properties).length > 0 && { properties }),
    flag: d.msg.flag,
  };
}
