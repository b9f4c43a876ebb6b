/**
 * The vocabulary the consumers share: message models, where a new group starts, what a handler
 * returns, and the allocation-strategy signature. Values are RocketMQ's names, so heartbeats and
 * admin tools read the same words a Java client sends.
 */
import type { MessageExt, MessageQueue } from '../message.js';

/**
 * CLUSTERING: each queue is consumed by one member of the group; offsets live on the broker.
 * BROADCASTING: every member consumes every queue; offsets live in a local file per member.
 */
export type MessageModel = 'CLUSTERING' | 'BROADCASTING';

/** Where a group with no committed offset for a queue starts reading it. */
export type ConsumeFromWhere = 'LAST_OFFSET' | 'FIRST_OFFSET' | 'TIMESTAMP';

/** The wire names a heartbeat carries (RocketMQ's ConsumeFromWhere enum). */
export const CONSUME_FROM_WIRE: Record<ConsumeFromWhere, string> = {
  LAST_OFFSET: 'CONSUME_FROM_LAST_OFFSET',
  FIRST_OFFSET: 'CONSUME_FROM_FIRST_OFFSET',
  TIMESTAMP: 'CONSUME_FROM_TIMESTAMP',
};

/** What a push handler reports: done, or give me these messages again later. */
export type ConsumeResult = 'SUCCESS' | 'RETRY_LATER';

export interface ConsumeContext {
  /** The queue the messages came from (all messages of one call share it). */
  readonly queue: MessageQueue;
  /**
   * Concurrent CLUSTERING handlers may set it before failing: the delay level of the messages'
   * next delivery. 0 (default) lets the broker choose (3 + reconsumeTimes: 10 s, 30 s, 1 m … 2 h
   * with the default levels), n ≥ 1 picks level n, -1 sends them to the dead-letter queue at once.
   */
  delayLevelWhenNextConsume?: number;
}

/**
 * A push consumer's message handler. Resolving with nothing or 'SUCCESS' acknowledges every
 * message of the call; 'RETRY_LATER' or a rejection hands them back for redelivery. (The type is
 * a Promise only: a union with plain values would stop TypeScript from inferring 'SUCCESS' as a
 * literal in `async () => 'SUCCESS'`. A plain function works the same at run time.)
 */
export type MessageHandler = (
  msgs: MessageExt[],
  ctx: ConsumeContext,
  // biome-ignore lint/suspicious/noConfusingVoidType: so that `async (msgs) => { ... }` fits.
) => Promise<ConsumeResult | void>;

/** What an allocation strategy is given. Both lists are sorted and the same on every member. */
export interface AllocateContext {
  readonly group: string;
  readonly currentClientId: string;
  /** Every readable queue of the topic, sorted by (topic, brokerName, queueId). */
  readonly queues: readonly MessageQueue[];
  /** Every member's client id, sorted. */
  readonly clientIds: readonly string[];
}

/** Picks the queues `currentClientId` consumes. Must be a pure function of its context. */
export type AllocateStrategy = (ctx: AllocateContext) => MessageQueue[];

export type AllocateStrategyName = 'AVERAGE' | 'AVERAGE_BY_CIRCLE' | 'CONSISTENT_HASH';
