/**
 * Decides which queues of each subscribed topic this consumer owns (RocketMQ's RebalanceImpl and
 * RebalanceService) and hands the answer to the consumer, which starts and stops queues:
 *
 *   model         queues of a topic                 members                        assignment
 *   ------------- --------------------------------- ------------------------------ ------------------
 *   CLUSTERING    readable queues of its route,     GET_CONSUMER_LIST_BY_GROUP,    the strategy's
 *                 sorted                            sorted                         share (allocate.ts)
 *   BROADCASTING  idem                              —                              every queue
 *
 * When: at start, every rebalanceIntervalMs (20 s), when a broker sends NOTIFY_CONSUMER_IDS_CHANGED
 * and after each route refresh. Runs never overlap; requests that arrive during a run coalesce
 * into one more run. A topic whose members or offsets could not be read is retried after
 * retryDelayMs, keeping its current queues meanwhile; a topic with no route keeps its queues until
 * the next run (the group's %RETRY% topic, which brokers create on the first heartbeat, is looked
 * up again after retryDelayMs).
 */

import { isTsmqError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { isRetryTopic } from '../../message/index.js';
import type { ClientInstance } from '../client-instance.js';
import { type MessageQueue, mqKey } from '../message.js';
import type { AllocateStrategy, MessageModel } from './types.js';

export interface RebalanceOptions {
  instance: ClientInstance;
  group: string;
  messageModel: MessageModel;
  allocate: AllocateStrategy;
  /** The subscribed topics. */
  topics: () => readonly string[];
  /** Makes `assigned` the topic's owned queues; resolves false if some queue could not start. */
  apply: (topic: string, assigned: MessageQueue[]) => Promise<boolean>;
  intervalMs: number;
  /** Delay before retrying a run that failed part-way, ms. */
  retryDelayMs: number;
  logger: Logger;
}

export class Rebalancer {
  private running: Promise<void> | undefined;
  private again = false;
  private interval: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Completed runs (for tests and stats). */
  runs = 0;
  /** Lookups of the group's retry topic that found no route (every 100th is logged). */
  private retryMisses = 0;

  constructor(private readonly o: RebalanceOptions) {}

  start(): void {
    this.interval = setInterval(() => this.request(), this.o.intervalMs);
    this.interval.unref();
  }

  /** Asks for a run soon; returns the promise of the run that will cover this request. */
  request(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.loop();
    return this.running;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.interval);
    clearTimeout(this.retry);
  }

  /** Resolves when no run is in progress. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.again = false;
        await this.runOnce();
        this.runs++;
      } while (this.again && !this.stopped);
    } finally {
      this.running = undefined;
    }
  }

  private async runOnce(): Promise<void> {
    let complete = true;
    for (const topic of this.o.topics()) {
      if (this.stopped) return;
      try {
        if (!(await this.rebalanceTopic(topic))) complete = false;
      } catch (e) {
        complete = false;
        this.o.logger.warn({ group: this.o.group, topic, err: (e as Error).message }, 'rebalance failed');
      }
    }
    if (!complete && !this.stopped && !this.retry) {
      this.retry = setTimeout(() => {
        this.retry = undefined;
        void this.request();
      }, this.o.retryDelayMs);
      this.retry.unref();
    }
  }

  /** Returns false when the topic should be retried soon. */
  private async rebalanceTopic(topic: string): Promise<boolean> {
    const { instance, group } = this.o;
    let route = instance.cachedRoute(topic);
    if (!route) {
      try {
        route = await instance.route(topic);
      } catch (e) {
        if (isTsmqError(e, 'NO_ROUTE')) {
          // The group's retry topic appears moments after the first heartbeat (the broker creates
          // it, then registers it with the name servers): look again soon, quietly.
          if (isRetryTopic(topic)) {
            this.retryMisses++;
            if (this.retryMisses % 100 !== 0) return false;
          }
          this.o.logger.warn({ group, topic }, 'no route for a subscribed topic; its queues wait');
          return true;
        }
        throw e;
      }
    }
    const all = instance.subscribeQueues(topic, route);
    if (this.o.messageModel === 'BROADCASTING') return this.o.apply(topic, all);

    const ids = await instance.consumerIds(group, topic);
    if (!ids.includes(instance.clientId)) {
      // The broker has not seen our heartbeat (yet, or since it restarted): say hello and retry
      // rather than give every queue away.
      this.o.logger.info({ group, topic }, 'this client is not in its group yet; heartbeating');
      await instance.heartbeat();
      return false;
    }
    const mine = this.o.allocate({
      group,
      currentClientId: instance.clientId,
      queues: all,
      clientIds: [...ids].sort(),
    });
    // A custom strategy may return anything: keep real queues of the topic, once each.
    const known = new Map(all.map((q) => [mqKey(q), q]));
    const assigned = new Map<string, MessageQueue>();
    for (const q of mine) {
      const k = mqKey(q);
      const real = known.get(k);
      if (real) assigned.set(k, real);
    }
    return this.o.apply(topic, [...assigned.values()]);
  }
}
