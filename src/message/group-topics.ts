/**
 * The topics a consumer group owns on every broker (RocketMQ's MixAll names):
 *
 *   topic             queues               holds
 *   ----------------- -------------------- -------------------------------------------------------
 *   %RETRY%<group>    retryQueueNums (1)   messages the group failed to consume, re-stored by the
 *                                          broker (CONSUMER_SEND_MSG_BACK) to be delivered again
 *                                          after a growing delay; every CLUSTERING member reads it
 *   %DLQ%<group>      1                    messages that failed maxReconsumeTimes (16) times, kept
 *                                          for an operator; nobody reads it unless asked to
 *
 * A re-stored message keeps its body, flag, born time and host and every property (its UNIQ_KEY
 * message id among them), and gains RETRY_TOPIC (the topic it was first sent to) and
 * ORIGIN_MESSAGE_ID; one moved to the DLQ also gains DLQ_ORIGIN_TOPIC and DLQ_ORIGIN_MESSAGE_ID.
 */

import { MessageProperty } from './properties.js';

/** Properties a re-stored message must not carry: they would delay or redirect it again. */
export const RETRY_DROPPED_PROPERTIES = [
  MessageProperty.DELAY,
  MessageProperty.TIMER_DELAY_SEC,
  MessageProperty.TIMER_DELAY_MS,
  MessageProperty.TIMER_DELIVER_MS,
  MessageProperty.TIMER_OUT_MS,
  MessageProperty.REAL_TOPIC,
  MessageProperty.REAL_QID,
] as const;

export const RETRY_TOPIC_PREFIX = '%RETRY%';
export const DLQ_TOPIC_PREFIX = '%DLQ%';
/** Queues of a DLQ topic (RocketMQ's DLQ_NUMS_PER_GROUP). */
export const DLQ_QUEUE_NUMS = 1;

export function retryTopicOf(group: string): string {
  return RETRY_TOPIC_PREFIX + group;
}

export function dlqTopicOf(group: string): string {
  return DLQ_TOPIC_PREFIX + group;
}

export function isRetryTopic(topic: string): boolean {
  return topic.startsWith(RETRY_TOPIC_PREFIX);
}

export function isDlqTopic(topic: string): boolean {
  return topic.startsWith(DLQ_TOPIC_PREFIX);
}

/** The group whose retry or DLQ topic this is; undefined for any other topic. */
export function groupOfTopic(topic: string): string | undefined {
  if (isRetryTopic(topic)) return topic.slice(RETRY_TOPIC_PREFIX.length) || undefined;
  if (isDlqTopic(topic)) return topic.slice(DLQ_TOPIC_PREFIX.length) || undefined;
  return undefined;
}
