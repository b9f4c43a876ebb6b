/**
 * The lite pull consumer (RocketMQ's DefaultLitePullConsumer): the application asks for messages
 * with poll() instead of registering a handler, Kafka-style.
 *
 *   const c = new LitePullConsumer({ group: 'g', namesrvAddr });
 *   c.subscribe('Orders', '*');          // the group shares the queues (rebalance), or
 *   c.assign(await c.fetchMessageQueues('Orders'));   // exactly these queues, no rebalance
 *   await c.start();
 *   for (;;) { const msgs = await c.poll(); ... }     // [] after pollTimeoutMs without messages
 *
 * Each owned queue has a background pull loop that prefetches (long polling) into the consumer's
 * ready list, up to pullThresholdForQueue messages / pullThresholdSizeForQueue MiB per queue and
 * pullThresholdForAll messages in all; poll() hands out one fetched batch (≤ pullBatchSize
 * messages of one queue), queues in fetch order, each queue's batches in offset order.
 *
 * Positions. Per queue the consumer tracks where the next poll continues (the consume offset: one
 * past what poll() returned, or past messages the tag filter skipped). commitSync() writes every
 * queue's consume offset to the offset store and persists it (broker, or the local file when
 * BROADCASTING). With autoCommit, poll() does the same every autoCommitIntervalMs — covering what
 * earlier polls returned — and shutdown() does it last. seek() moves a queue's position (its
 * prefetched messages are discarded); committed() reads the stored offset.
 *
 * pause() stops fetching a queue and holds back its prefetched batches from poll() until resume().
 * In assign mode the consumer does not join its group on the brokers (no heartbeat): members of a
 * subscribing group would otherwise count it and hand it queues it never reads.
 */

import { TsmqError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { SUB_ALL, type TagSubscription } from '../../message/index.js';
import type { ConsumerData } from '../../protocol/index.js';
import { ClientInstance, type ClientOptions, type ConsumerMember } from '../client-instance.js';
import { compareQueues, type MessageExt, type MessageQueue, mqKey } from '../message.js';
import { intOption, oneOf } from '../options.js';
import { WarnThrottle } from '../warn-throttle.js';
import { allocateStrategy } from './allocate.js';
import { defaultOffsetStoreDir, LocalFileOffsetStore } from './local-offset-store.js';
import { type OffsetStore, RemoteOffsetStore } from './offset-store.js';
import { CONSUME_FROM, LIMITS, MESSAGE_MODELS } from './options.js';
import { delay, ProcessQueue } from './process-queue.js';
import { ConsumerApi, describeQueue, type PullResult } from './pull-api.js';
import { Rebalancer } from './rebalance.js';
import { computeStartOffset, DEFAULT_CONSUME_TIMESTAMP_AGO_MS } from './start-offset.js';
import {
  type MessageSelector,
  makeSubscription,
  type Subscription,
  subscriptionData,
  validateGroup,
  validateTopic,
} from './subscription.js';
import {
  type AllocateStrategy,
  type AllocateStrategyName,
  CONSUME_FROM_WIRE,
  type ConsumeFromWhere,
  type MessageModel,
} from './types.js';

export interface LitePullConsumerOptions extends ClientOptions {
  group: string;
  /** Default CLUSTERING. */
  messageModel?: MessageModel;
  /** Where a group with no committed offset starts. Default LAST_OFFSET. */
  consumeFromWhere?: ConsumeFromWhere;
  /** For TIMESTAMP, ms since the epoch. Default: 30 minutes before the queue is assigned. */
  consumeTimestamp?: number;
  /** Queue allocation in subscribe mode. Default AVERAGE. */
  allocate?: AllocateStrategyName | AllocateStrategy;
  /** Commit what poll() returned every autoCommitIntervalMs (checked in poll) and at shutdown. Default true. */
  autoCommit?: boolean;
  autoCommitIntervalMs?: number;
  /** Messages asked per pull, and so the most one poll() returns. Default 10. */
  pullBatchSize?: number;
  /** poll()'s default timeout, ms. Default 5,000. */
  pollTimeoutMs?: number;
  /** Prefetched messages per queue above which its pulls wait. Default 1000. */
  pullThresholdForQueue?: number;
  /** Prefetched body MiB per queue above which its pulls wait. Default 100. */
  pullThresholdSizeForQueue?: number;
  /** Prefetched messages in all above which every pull waits. Default 10,000. */
  pullThresholdForAll?: number;
  /** How long a broker may hold a pull that found nothing, ms. Default 20,000. */
  brokerSuspendMaxTimeMillis?: number;
  /** Wait after a failed pull, ms. Default 1,000. */
  pullTimeDelayMillsWhenException?: number;
  /** Offset persistence period, ms. Default 5,000. */
  persistConsumerOffsetIntervalMs?: number;
  /** Periodic rebalance in subscribe mode, ms. Default 20,000. */
  rebalanceIntervalMs?: number;
  /** BROADCASTING offset files' root. Default ~/.tsmq_offsets. */
  offsetStoreDir?: string;
  /** Verify the CRCs of every pulled message. Default false (see PushConsumerOptions.checkCrc). */
  checkCrc?: boolean;
}

interface LiteQueue {
  readonly mq: MessageQueue;
  /** The current fetch generation; a seek replaces it (the old one's results are discarded). */
  pq: ProcessQueue;
  /** One past what poll() returned: what a commit writes. */
  consumeOffset: number;
  /** Batches of the current generation not yet polled. */
  pending: number;
}

interface Batch {
  readonly lq: LiteQueue;
  readonly pq: ProcessQueue;
  readonly msgs: MessageExt[];
  /** Where the queue continues after this batch. */
  readonly nextOffset: number;
}

/** A flow-controlled or paused queue checks again after this long, ms. */
const RECHECK_DELAY_MS = 50;
const FLOW_CONTROL_LOG_EVERY = 1000;
const ALL: TagSubscription = { all: true };

type State = 'new' | 'starting' | 'running' | 'stopping' | 'closed';

export class LitePullConsumer {
  readonly group: string;
  readonly messageModel: MessageModel;
  private readonly instance: ClientInstance;
  private readonly api: ConsumerApi;
  private readonly store: OffsetStore;
  private readonly logger: Logger;
  /** Thins the "pull failed" warnings (a broker that is down fails every queue's pulls). */
  private readonly pullWarnings = new WarnThrottle();
  private readonly subs = new Map<string, Subscription>();
  private assigned: MessageQueue[] | undefined;
  private readonly table = new Map<string, LiteQueue>();
  private readonly paused = new Set<string>();
  private readonly rebalancer: Rebalancer;
  private ready: Batch[] = [];
  private readyCount = 0;
  private readonly waiters = new Set<() => void>();
  private persistTimer: NodeJS.Timeout | undefined;
  private lastCommitMs = Date.now();
  private state: State = 'new';
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private flowControlTimes = 0;

  private readonly consumeFromWhere: ConsumeFromWhere;
  private readonly consumeTimestamp: number | undefined;
  readonly autoCommit: boolean;
  private readonly autoCommitIntervalMs: number;
  private readonly pullBatchSize: number;
  private readonly checkCrc: boolean;
  private readonly pollTimeoutMs: number;
  private readonly thresholdForQueue: number;
  private readonly thresholdBytes: number;
  private readonly thresholdForAll: number;
  private readonly suspendMs: number;
  private readonly pullErrorDelayMs: number;
  private readonly persistIntervalMs: number;

  constructor(opts: LitePullConsumerOptions) {
    validateGroup(opts.group);
    this.group = opts.group;
    this.messageModel = oneOf('messageModel', opts.messageModel, 'CLUSTERING', MESSAGE_MODELS);
    this.consumeFromWhere = oneOf('consumeFromWhere', opts.consumeFromWhere, 'LAST_OFFSET', CONSUME_FROM);
    if (opts.consumeTimestamp !== undefined && !Number.isSafeInteger(opts.consumeTimestamp)) {
      throw new TsmqError('ARGUMENT_INVALID', 'consumeTimestamp must be ms since the epoch');
    }
    this.consumeTimestamp = opts.consumeTimestamp;
    const allocate = allocateStrategy(opts.allocate);
    this.autoCommit = opts.autoCommit ?? true;
    const ms = (name: string, v: number | undefined, d: number, min = 1) =>
      intOption(name, v, d, min, LIMITS.intervalMsMax);
    this.autoCommitIntervalMs = ms('autoCommitIntervalMs', opts.autoCommitIntervalMs, 5_000, 0);
    this.pullBatchSize = intOption('pullBatchSize', opts.pullBatchSize, 10, 1, LIMITS.batchMax);
    this.checkCrc = opts.checkCrc === true;
    this.pollTimeoutMs = ms('pollTimeoutMs', opts.pollTimeoutMs, 5_000, 0);
    this.thresholdForQueue = intOption(
      'pullThresholdForQueue',
      opts.pullThresholdForQueue,
      1000,
      1,
      LIMITS.thresholdCountMax,
    );
    this.thresholdBytes =
      intOption('pullThresholdSizeForQueue', opts.pullThresholdSizeForQueue, 100, 1, LIMITS.thresholdMiBMax) *
      1024 *
      1024;
    this.thresholdForAll = intOption('pullThresholdForAll', opts.pullThresholdForAll, 10_000, 1, 1_000_000);
    this.suspendMs = ms('brokerSuspendMaxTimeMillis', opts.brokerSuspendMaxTimeMillis, 20_000);
    this.pullErrorDelayMs = ms(
      'pullTimeDelayMillsWhenException',
      opts.pullTimeDelayMillsWhenException,
      1_000,
      0,
    );
    this.persistIntervalMs = ms(
      'persistConsumerOffsetIntervalMs',
      opts.persistConsumerOffsetIntervalMs,
      5_000,
    );
    const rebalanceIntervalMs = ms('rebalanceIntervalMs', opts.rebalanceIntervalMs, 20_000);

    const instanceName = opts.instanceName ?? (this.messageModel === 'BROADCASTING' ? 'DEFAULT' : undefined);
    this.instance = new ClientInstance({ ...opts, ...(instanceName !== undefined && { instanceName }) });
    this.logger = this.instance.logger.child({ consumerGroup: this.group });
    this.api = new ConsumerApi(this.instance);
    this.store =
      this.messageModel === 'BROADCASTING'
        ? new LocalFileOffsetStore(
            opts.offsetStoreDir ?? defaultOffsetStoreDir(),
            this.instance.clientId,
            this.group,
          )
        : new RemoteOffsetStore(this.api, this.group, this.logger);
    this.rebalancer = new Rebalancer({
      instance: this.instance,
      group: this.group,
      messageModel: this.messageModel,
      allocate,
      topics: () => [...this.subs.keys()],
      apply: (topic, mqs) => this.apply(topic, mqs),
      intervalMs: rebalanceIntervalMs,
      retryDelayMs: Math.max(this.pullErrorDelayMs, 100),
      logger: this.logger,
    });
  }

  get clientId(): string {
    return this.instance.clientId;
  }

  /** Joins the group's rebalance for `topic` with a TAG expression; before start(). */
  subscribe(topic: string, expression: string | MessageSelector = '*'): this {
    if (this.state !== 'new') {
      throw new TsmqError('CLIENT_STATE_INVALID', 'subscribe() must be called before start()');
    }
    if (this.assigned) {
      throw new TsmqError('CLIENT_STATE_INVALID', 'subscribe() and assign() cannot be mixed on one consumer');
    }
    this.subs.set(topic, makeSubscription(topic, expression, Date.now()));
    return this;
  }

  /** Consumes exactly these queues (no rebalance); may be called again to change them. */
  assign(queues: readonly MessageQueue[]): void {
    if (this.subs.size > 0) {
      throw new TsmqError('CLIENT_STATE_INVALID', 'subscribe() and assign() cannot be mixed on one consumer');
    }
    if (this.state === 'stopping' || this.state === 'closed') {
      throw new TsmqError('CLIENT_STATE_INVALID', `the consumer is ${this.state}`);
    }
    const unique = new Map<string, MessageQueue>();
    for (const q of queues) {
      validateTopic(q.topic);
      if (typeof q.brokerName !== 'string' || !Number.isInteger(q.queueId) || q.queueId < 0) {
        throw new TsmqError('ARGUMENT_INVALID', `not a message queue: ${JSON.stringify(q)}`);
      }
      unique.set(mqKey(q), { topic: q.topic, brokerName: q.brokerName, queueId: q.queueId });
    }
    this.assigned = [...unique.values()].sort(compareQueues);
    if (this.state === 'running') void this.applyAssigned();
  }

  /** The readable queues of a topic, from its route (usable before start()). */
  async fetchMessageQueues(topic: string): Promise<MessageQueue[]> {
    validateTopic(topic);
    const route = await this.instance.route(topic, true);
    return this.instance.subscribeQueues(topic, route);
  }

  start(): Promise<void> {
    if (this.state !== 'new') {
      return Promise.reject(new TsmqError('CLIENT_STATE_INVALID', `the consumer is ${this.state}`));
    }
    if (this.subs.size === 0 && !this.assigned) {
      return Promise.reject(
        new TsmqError('CLIENT_STATE_INVALID', 'call subscribe() or assign() before start()'),
      );
    }
    this.starting = this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    this.state = 'starting';
    try {
      await this.store.load();
      const subscribing = this.subs.size > 0;
      if (subscribing) this.instance.registerConsumer(this.member());
      this.instance.start();
      const topics = subscribing ? [...this.subs.keys()] : [...new Set(this.assigned!.map((q) => q.topic))];
      for (const topic of topics) {
        await this.instance.route(topic).catch((e: Error) => {
          this.logger.warn({ topic, err: e.message }, 'no route yet for a topic');
        });
      }
      if (subscribing) await this.instance.heartbeat();
      this.state = 'running';
      this.lastCommitMs = Date.now();
      this.persistTimer = setInterval(() => {
        this.persistOwned().catch(() => undefined);
      }, this.persistIntervalMs);
      this.persistTimer.unref();
      if (subscribing) {
        this.rebalancer.start();
        await this.rebalancer.request();
      } else {
        await this.applyAssigned();
      }
    } catch (e) {
      this.state = 'closed';
      this.rebalancer.stop();
      clearInterval(this.persistTimer);
      for (const lq of this.table.values()) lq.pq.drop();
      this.table.clear();
      this.instance.close();
      await this.store.close().catch(() => undefined);
      throw e;
    }
  }

  /**
   * The next prefetched batch, waiting up to `timeoutMs` (default pollTimeoutMs) for one; [] when
   * none arrived. With autoCommit, first commits what earlier polls returned if
   * autoCommitIntervalMs has passed.
   */
  async poll(timeoutMs = this.pollTimeoutMs): Promise<MessageExt[]> {
    this.checkRunning();
    if (this.autoCommit && Date.now() - this.lastCommitMs >= this.autoCommitIntervalMs) {
      this.commitToStore();
      this.persistOwned().catch(() => undefined);
    }
    const deadline = Date.now() + Math.max(0, timeoutMs);
    for (;;) {
      const batch = this.takeReady();
      if (batch) {
        batch.pq.remove(batch.msgs);
        batch.lq.pending--;
        if (batch.nextOffset > batch.lq.consumeOffset) batch.lq.consumeOffset = batch.nextOffset;
        return batch.msgs;
      }
      const left = deadline - Date.now();
      if (left <= 0 || this.state !== 'running') return [];
      await this.waitReady(left);
    }
  }

  /** Commits every owned queue's position (what poll() returned) and persists it now. */
  async commitSync(): Promise<void> {
    this.checkRunning();
    this.commitToStore();
    await this.store.persist(this.ownedQueues());
  }

  /** The group's stored offset of the queue (broker, or the local file); undefined when none. */
  async committed(mq: MessageQueue): Promise<number | undefined> {
    this.checkRunning();
    return this.store.readStored(mq);
  }

  /** Continues the queue at `offset` (within its [min, max]); prefetched messages are dropped. */
  async seek(mq: MessageQueue, offset: number): Promise<void> {
    this.checkRunning();
    this.ownedQueue(mq);
    if (!Number.isSafeInteger(offset)) throw new TsmqError('ARGUMENT_INVALID', `bad offset ${offset}`);
    const [min, max] = await Promise.all([this.api.minOffset(mq), this.api.maxOffset(mq)]);
    if (offset < min || offset > max) {
      throw new TsmqError(
        'ARGUMENT_INVALID',
        `offset ${offset} is outside [${min}, ${max}] of queue ${describeQueue(mq)}`,
      );
    }
    this.restart(this.ownedQueue(mq), offset);
  }

  async seekToBegin(mq: MessageQueue): Promise<void> {
    this.checkRunning();
    this.ownedQueue(mq);
    const min = await this.api.minOffset(mq);
    this.restart(this.ownedQueue(mq), min);
  }

  async seekToEnd(mq: MessageQueue): Promise<void> {
    this.checkRunning();
    this.ownedQueue(mq);
    const max = await this.api.maxOffset(mq);
    this.restart(this.ownedQueue(mq), max);
  }

  /** Stops fetching these queues and holds their prefetched batches back from poll(). */
  pause(queues: readonly MessageQueue[]): void {
    for (const q of queues) this.paused.add(mqKey(q));
  }

  resume(queues: readonly MessageQueue[]): void {
    for (const q of queues) this.paused.delete(mqKey(q));
    this.wakePollers();
  }

  /** The queues this consumer owns now, sorted. */
  assignment(): MessageQueue[] {
    return this.ownedQueues().sort(compareQueues);
  }

  /** Prefetched, not yet polled messages of a queue (0 when not owned). */
  prefetched(mq: MessageQueue): number {
    return this.table.get(mqKey(mq))?.pq.count ?? 0;
  }

  stats(): { flowControlTimes: number; readyMessages: number } {
    return { flowControlTimes: this.flowControlTimes, readyMessages: this.readyCount };
  }

  /** Stops fetching; with autoCommit commits what poll() returned; leaves the group; closes. */
  shutdown(): Promise<void> {
    if (this.state === 'new' || (this.state === 'closed' && !this.stopping)) {
      this.state = 'closed';
      return Promise.resolve();
    }
    this.stopping ??= this.doShutdown();
    return this.stopping;
  }

  private async doShutdown(): Promise<void> {
    await this.starting?.catch(() => undefined);
    if (this.state === 'closed') return;
    this.state = 'stopping';
    this.rebalancer.stop();
    await this.rebalancer.idle();
    clearInterval(this.persistTimer);
    for (const lq of this.table.values()) lq.pq.drop();
    this.wakePollers();
    if (this.autoCommit) this.commitToStore();
    await this.persistOwned().catch(() => undefined);
    this.table.clear();
    this.ready = [];
    this.readyCount = 0;
    if (this.subs.size > 0) await this.instance.unregister('consumer', this.group);
    this.instance.close();
    await this.store.close().catch((e: Error) => this.logger.warn({ err: e.message }, 'offset store close'));
    this.state = 'closed';
  }

  // ------------------------------------------------------------------------------------------

  private checkRunning(): void {
    if (this.state !== 'running')
      throw new TsmqError('CLIENT_STATE_INVALID', `the consumer is ${this.state}`);
  }

  private ownedQueue(mq: MessageQueue): LiteQueue {
    const lq = this.table.get(mqKey(mq));
    if (!lq) {
      throw new TsmqError('ARGUMENT_INVALID', `queue ${describeQueue(mq)} is not assigned to this consumer`);
    }
    return lq;
  }

  private ownedQueues(): MessageQueue[] {
    return [...this.table.values()].map((lq) => lq.mq);
  }

  private member(): ConsumerMember {
    return {
      group: this.group,
      consumerData: (): ConsumerData => ({
        groupName: this.group,
        consumeType: 'CONSUME_ACTIVELY',
        messageModel: this.messageModel,
        consumeFromWhere: CONSUME_FROM_WIRE[this.consumeFromWhere],
        subscriptionDataSet: [...this.subs.values()].map(subscriptionData),
        unitMode: false,
      }),
      onConsumerIdsChanged: () => {
        void this.rebalancer.request();
      },
      onRoutesRefreshed: () => {
        void this.rebalancer.request();
      },
      resetOffsets: (topic, offsets) => this.resetOffsets(topic, offsets),
    };
  }

  /**
   * An admin moved the group's offsets (RESET_CONSUMER_CLIENT_OFFSET): each of these queues this
   * consumer owns drops what it prefetched and continues at the new offset, which becomes the one
   * committed (the broker holds it already; a broadcasting member's file needs it).
   */
  private async resetOffsets(
    topic: string,
    offsets: ReadonlyArray<{ queue: MessageQueue; offset: number }>,
  ): Promise<void> {
    if (this.state !== 'running') return;
    const moved: MessageQueue[] = [];
    for (const { queue, offset } of offsets) {
      const lq = this.table.get(mqKey(queue));
      if (!lq || lq.mq.topic !== topic) continue;
      this.restart(lq, offset);
      this.store.update(lq.mq, offset, false);
      moved.push(lq.mq);
    }
    await this.store.persist(moved).catch(() => undefined);
    this.logger.info(
      { topic, queues: moved.map((q) => q.queueId) },
      'offsets reset; polling again from them',
    );
  }

  private commitToStore(): void {
    for (const lq of this.table.values()) this.store.update(lq.mq, lq.consumeOffset, false);
    this.lastCommitMs = Date.now();
  }

  private async persistOwned(): Promise<void> {
    try {
      await this.store.persist(this.ownedQueues());
    } catch (e) {
      this.logger.warn({ err: (e as Error).message }, 'persisting consumer offsets failed');
      throw e;
    }
  }

  private async applyAssigned(): Promise<void> {
    const queues = this.assigned ?? [];
    const topics = new Set([...queues.map((q) => q.topic), ...this.ownedQueues().map((q) => q.topic)]);
    for (const topic of topics) {
      const ok = await this.apply(
        topic,
        queues.filter((q) => q.topic === topic),
      );
      if (!ok) this.logger.warn({ topic }, 'some assigned queues could not start');
    }
  }

  private async apply(topic: string, mqs: MessageQueue[]): Promise<boolean> {
    if (this.state !== 'running') return true;
    const want = new Set(mqs.map(mqKey));
    for (const lq of [...this.table.values()]) {
      if (lq.mq.topic !== topic || want.has(mqKey(lq.mq))) continue;
      lq.pq.drop();
      this.table.delete(mqKey(lq.mq));
      await this.store.persist([lq.mq]).catch((e: Error) => {
        this.logger.warn({ queue: describeQueue(lq.mq), err: e.message }, 'offset persist failed');
      });
      this.store.remove(lq.mq);
    }
    const added = mqs.filter((q) => !this.table.has(mqKey(q)));
    const results = await Promise.allSettled(
      added.map(async (mq) => {
        const offset = await computeStartOffset(
          this.api,
          this.store,
          mq,
          this.consumeFromWhere,
          this.consumeTimestamp ?? Date.now() - DEFAULT_CONSUME_TIMESTAMP_AGO_MS,
        );
        if (this.state !== 'running' || this.table.has(mqKey(mq))) return;
        const lq: LiteQueue = { mq, pq: new ProcessQueue(mq), consumeOffset: offset, pending: 0 };
        this.table.set(mqKey(mq), lq);
        this.store.update(mq, offset, false);
        void this.pullLoop(lq, lq.pq, offset);
      }),
    );
    let ok = true;
    results.forEach((r, i) => {
      if (r.status === 'rejected') {
        ok = false;
        this.logger.warn(
          { queue: describeQueue(added[i]!), err: (r.reason as Error).message },
          'cannot start fetching a queue',
        );
      }
    });
    return ok;
  }

  /** A seek: the old generation stops and its prefetched batches are dropped. */
  private restart(lq: LiteQueue, offset: number): void {
    lq.pq.drop();
    lq.pq = new ProcessQueue(lq.mq);
    lq.pending = 0;
    lq.consumeOffset = offset;
    this.dropStaleBatches();
    void this.pullLoop(lq, lq.pq, offset);
  }

  private filterOf(
    topic: string,
  ): Pick<Subscription, 'expression' | 'expressionType' | 'filter' | 'version'> {
    const s = this.subs.get(topic);
    return s ?? { expression: SUB_ALL, expressionType: 'TAG', filter: ALL, version: 0 };
  }

  private flowControlled(pq: ProcessQueue): boolean {
    let why: string | undefined;
    if (pq.count > this.thresholdForQueue) why = 'cached messages';
    else if (pq.cachedBytes > this.thresholdBytes) why = 'cached bytes';
    else if (this.readyCount > this.thresholdForAll) why = 'cached messages of all queues';
    if (why === undefined) return false;
    if (this.flowControlTimes++ % FLOW_CONTROL_LOG_EVERY === 0) {
      this.logger.warn(
        { queue: describeQueue(pq.mq), cachedCount: pq.count, ready: this.readyCount },
        `flow control (${why}): prefetching of this queue waits`,
      );
    }
    return true;
  }

  private async pullLoop(lq: LiteQueue, pq: ProcessQueue, startOffset: number): Promise<void> {
    const mq = lq.mq;
    const sub = this.filterOf(mq.topic);
    let next = startOffset;
    while (!pq.pullStopped) {
      if (this.paused.has(mqKey(mq)) || this.flowControlled(pq)) {
        await pq.sleep(RECHECK_DELAY_MS);
        continue;
      }
      let r: PullResult;
      try {
        r = await this.api.pull({
          group: this.group,
          queue: mq,
          offset: next,
          maxMsgNums: this.pullBatchSize,
          expression: sub.expression,
          expressionType: sub.expressionType,
          filter: sub.filter,
          subVersion: sub.version,
          suspendTimeoutMs: this.suspendMs,
          checkCrc: this.checkCrc,
        });
      } catch (e) {
        if (pq.pullStopped) break;
        // One line per broker and kind of failure every few seconds, not one per queue and retry.
        this.pullWarnings.warnFailure(
          this.logger,
          mq.brokerName,
          e,
          { queue: describeQueue(mq) },
          'pull failed',
        );
        await pq.sleep(this.pullErrorDelayMs);
        continue;
      }
      if (pq.pullStopped) break;
      if (r.status === 'OFFSET_ILLEGAL') {
        this.logger.warn(
          { queue: describeQueue(mq), offset: next, nextBeginOffset: r.nextBeginOffset },
          'the pull offset is illegal; continuing where the broker says',
        );
      }
      next = r.nextBeginOffset;
      const added = r.status === 'FOUND' ? pq.put(r.msgs) : [];
      if (added.length > 0) {
        lq.pending++;
        this.ready.push({ lq, pq, msgs: added, nextOffset: next });
        this.readyCount += added.length;
        this.wakePollers();
      } else if (lq.pending === 0 && (next > lq.consumeOffset || r.status === 'OFFSET_ILLEGAL')) {
        // Nothing waits to be polled: the position follows past what the filter skipped (or to
        // where the broker moved an illegal offset).
        lq.consumeOffset = next;
      }
    }
  }

  private takeReady(): Batch | undefined {
    for (let i = 0; i < this.ready.length; i++) {
      const b = this.ready[i]!;
      if (b.pq.dropped) {
        this.ready.splice(i, 1);
        this.readyCount -= b.msgs.length;
        i--;
        continue;
      }
      if (this.paused.has(mqKey(b.lq.mq))) continue;
      this.ready.splice(i, 1);
      this.readyCount -= b.msgs.length;
      return b;
    }
    return undefined;
  }

  private dropStaleBatches(): void {
    const kept = this.ready.filter((b) => !b.pq.dropped);
    this.readyCount = kept.reduce((n, b) => n + b.msgs.length, 0);
    this.ready = kept;
  }

  private waitReady(ms: number): Promise<void> {
    const signal = new AbortController();
    const wake = () => signal.abort();
    this.waiters.add(wake);
    return delay(ms, signal.signal).finally(() => this.waiters.delete(wake));
  }

  private wakePollers(): void {
    for (const w of [...this.waiters]) w();
  }
}
