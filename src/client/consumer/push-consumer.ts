/**
 * The push consumer (RocketMQ's DefaultMQPushConsumer): subscribe to topics, register a handler,
 * start; the consumer rebalances the group's queues, long-polls each owned queue and calls the
 * handler with what arrives.
 *
 *   const c = new PushConsumer({ group: 'g', namesrvAddr: '127.0.0.1:9876' });
 *   c.subscribe('Orders', 'created || paid');
 *   c.onMessage(async (msgs, { queue }) => { ...; return 'SUCCESS'; });
 *   await c.start();
 *   ...
 *   await c.shutdown();
 *
 * Per owned queue, one pull loop:
 *
 *   flow control? ──yes──▶ wait 50 ms, check again (logged once per 1000 waits)
 *        │ no
 *   PULL_MESSAGE (SUBSCRIPTION, and SUSPEND for brokerSuspendMaxTimeMillis)
 *        ├─ FOUND           cache the messages, hand them to the handlers in consumeBatchMaxSize
 *        │                  slices, pull again at once
 *        ├─ NO_NEW_MSG      (the broker held the pull until its timeout) pull again at once
 *        ├─ NO_MATCHED_MSG  idem, from past the skipped messages
 *        ├─ OFFSET_ILLEGAL  continue from the broker's nextBeginOffset
 *        └─ error           wait pullTimeDelayMillsWhenException, retry
 *
 * Flow control holds a queue's next pull while its cache holds more than pullThresholdForQueue
 * messages or pullThresholdSizeForQueue MiB of bodies, or spans more than
 * consumeConcurrentlyMaxSpan offsets (one slow message holding back many consumed ones).
 *
 * At-least-once: a message leaves its queue's cache only when its handler succeeded (or the
 * failure policy took it, ./consume-failure.ts); the offset committed is the lowest cached offset,
 * or one past the highest consumed when the cache is empty (./process-queue.ts). In CLUSTERING a
 * failed message is sent back to its broker, which stores it to %RETRY%<group> (a topic every
 * member subscribes to by itself) for a later delivery, or to %DLQ%<group> past
 * maxReconsumeTimes; one the broker did not take, and every failure in BROADCASTING, is
 * redelivered locally after 1 s, 2 s, 4 s … 30 s and holds the committed offset until it succeeds.
 * Offsets are persisted every persistConsumerOffsetIntervalMs, when a queue goes to another member
 * and at shutdown.
 *
 * Unlike RocketMQ's, pulls carry no COMMIT_OFFSET: the broker applies a pull's commit after its
 * store read, so a pull in flight at shutdown (or at a queue's removal) could land its older
 * offset after the final UPDATE_CONSUMER_OFFSET and move the group back — duplicates on every
 * graceful restart. UPDATE_CONSUMER_OFFSET calls go out in order on one connection and the
 * broker applies them in order, so the last one sent wins.
 */

import { TsmqError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { MessageProperty, retryTopicOf } from '../../message/index.js';
import type { ConsumerData } from '../../protocol/index.js';
import { ClientInstance, type ClientOptions, type ConsumerMember } from '../client-instance.js';
import { compareQueues, type MessageExt, type MessageQueue, mqKey } from '../message.js';
import { intOption, oneOf } from '../options.js';
import { WarnThrottle } from '../warn-throttle.js';
import { allocateStrategy } from './allocate.js';
import {
  type ConsumeFailurePolicy,
  DEFAULT_RETRY_BACKOFF,
  deadLetter,
  localRedelivery,
  type RetryBackoff,
  retryDelayMs,
  sendBack,
} from './consume-failure.js';
import { ConsumeService, type ConsumeTask } from './consume-service.js';
import { defaultOffsetStoreDir, LocalFileOffsetStore } from './local-offset-store.js';
import { type OffsetStore, RemoteOffsetStore } from './offset-store.js';
import { CONSUME_FROM, LIMITS, MESSAGE_MODELS } from './options.js';
import { LOCK_RETRY_MS, type OrderlyMessageHandler, OrderlyService } from './orderly-service.js';
import { ProcessQueue } from './process-queue.js';
import {
  ConsumerApi,
  decodePull,
  describeQueue,
  type PullRequest,
  type PullResult,
  type RawPullResult,
} from './pull-api.js';
import { Rebalancer } from './rebalance.js';
import { computeStartOffset, DEFAULT_CONSUME_TIMESTAMP_AGO_MS } from './start-offset.js';
import {
  type MessageSelector,
  makeSubscription,
  type Subscription,
  subscriptionData,
  validateGroup,
} from './subscription.js';
import {
  type AllocateStrategy,
  type AllocateStrategyName,
  CONSUME_FROM_WIRE,
  type ConsumeContext,
  type ConsumeFromWhere,
  type MessageHandler,
  type MessageModel,
} from './types.js';

export interface PushConsumerOptions extends ClientOptions {
  group: string;
  /** Default CLUSTERING. */
  messageModel?: MessageModel;
  /** Where a group with no committed offset starts. Default LAST_OFFSET. */
  consumeFromWhere?: ConsumeFromWhere;
  /** For TIMESTAMP, ms since the epoch. Default: 30 minutes before start(). */
  consumeTimestamp?: number;
  /** Queue allocation among the group's members. Default AVERAGE. */
  allocate?: AllocateStrategyName | AllocateStrategy;
  /** Messages asked per pull. Default 32. */
  pullBatchSize?: number;
  /**
   * Pulls of one queue in flight at once (1–16). Default 4. While a queue has a backlog, the
   * pulls after the next one ask from predicted offsets (see `pullAhead`); flow control counts
   * the batches in flight, so the cache does not grow past the thresholds.
   */
  pullsInFlightPerQueue?: number;
  /** Messages per handler call. Default 1. */
  consumeBatchMaxSize?: number;
  /** Handler calls running at once. Default 20. */
  consumeConcurrency?: number;
  /** Cached messages per queue above which its pulls wait. Default 1000. */
  pullThresholdForQueue?: number;
  /** Cached body MiB per queue above which its pulls wait. Default 100. */
  pullThresholdSizeForQueue?: number;
  /** Offset span of a queue's cache above which its pulls wait. Default 2000. */
  consumeConcurrentlyMaxSpan?: number;
  /** How long a broker may hold a pull that found nothing, ms. Default 15,000. */
  brokerSuspendMaxTimeMillis?: number;
  /** Wait after a failed pull, ms. Default 3,000. */
  pullTimeDelayMillsWhenException?: number;
  /** Offset persistence period, ms. Default 5,000. */
  persistConsumerOffsetIntervalMs?: number;
  /** Periodic rebalance, ms. Default 20,000. */
  rebalanceIntervalMs?: number;
  /** BROADCASTING offset files' root. Default ~/.tsmq_offsets. */
  offsetStoreDir?: string;
  /** Local redelivery back-off after a failed handler call. Default 1 s doubling to 30 s. */
  retryBackoff?: Partial<RetryBackoff>;
  /**
   * What becomes of failed messages (./consume-failure.ts). Default: CLUSTERING sends them back
   * to the broker (the %RETRY% topic, then the DLQ); BROADCASTING redelivers them locally; an
   * orderly consumer sends a message past maxReconsumeTimes to the DLQ.
   */
  failurePolicy?: ConsumeFailurePolicy;
  /** How long shutdown() waits for handler calls in flight, ms. Default 10,000. */
  awaitTerminationMs?: number;
  /**
   * Verify the body CRC and record CRC of every pulled message. Default false: the broker
   * verifies every record it reads from disk and TCP checksums the way (as RocketMQ's client).
   */
  checkCrc?: boolean;
  /** Orderly (onMessageOrderly): pause of a queue after a failed call, ms. Default 1,000. */
  suspendCurrentQueueTimeMillis?: number;
  /**
   * Redeliveries of a failed message before it goes to the dead-letter queue %DLQ%<group>.
   * Default -1: concurrent — the group's retryMaxTimes on the broker (16 unless changed);
   * orderly — 16 (RocketMQ retries orderly messages forever; set a large number for that).
   */
  maxReconsumeTimes?: number;
  /** Orderly CLUSTERING: queue lock renewal period, ms; a lock not renewed for 1.5× it lapses. Default 20,000. */
  lockRenewIntervalMs?: number;
}

/** A queue's cache, as flow control sees it. */
export interface QueueStats {
  queue: MessageQueue;
  cachedCount: number;
  cachedBytes: number;
  span: number;
  /** The offset in memory that the next persist commits. */
  offset: number | undefined;
}

export interface PushConsumerStats {
  pulls: number;
  pullErrors: number;
  /** Pulls sent ahead whose answers were dropped (they asked from a place the queue did not reach). */
  pullsDiscarded: number;
  /** Times a queue's pull waited for its cache to drain. */
  flowControlTimes: number;
  /** Messages acknowledged by a successful handler call. */
  consumed: number;
  /** Messages handed back by a failed handler call. */
  failed: number;
}

/** The largest maxReconsumeTimes (Java's Integer.MAX_VALUE, RocketMQ's "forever"). */
export const MAX_RECONSUME_TIMES_LIMIT = 2_147_483_647;
/** An orderly consumer's maxReconsumeTimes when not given. */
export const ORDERLY_DEFAULT_MAX_RECONSUME_TIMES = 16;

function orderlyMaxReconsumeTimes(v: number | undefined): number {
  const n = intOption('maxReconsumeTimes', v, -1, -1, MAX_RECONSUME_TIMES_LIMIT);
  return n < 0 ? ORDERLY_DEFAULT_MAX_RECONSUME_TIMES : n;
}

/** pullsInFlightPerQueue when not given. */
export const DEFAULT_PULLS_IN_FLIGHT = 4;

/** Pause of a flow-controlled queue before it checks again, ms (RocketMQ's 50 ms). */
export const FLOW_CONTROL_DELAY_MS = 50;
/** A flow-control warning is logged once per this many waits. */
export const FLOW_CONTROL_LOG_EVERY = 1000;

/** Resolves after the event loop's pending I/O (and writes uncorked this turn) had their turn. */
function yieldToIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

type State = 'new' | 'starting' | 'running' | 'stopping' | 'closed';

/** A pull of one queue sent and not yet handed out. */
interface InFlightPull {
  readonly offset: number;
  readonly answer: Promise<RawPullResult>;
}

export class PushConsumer {
  readonly group: string;
  /** The group's %RETRY% topic, which a CLUSTERING member also reads. */
  private readonly retryTopic: string;
  readonly messageModel: MessageModel;
  private readonly instance: ClientInstance;
  private readonly api: ConsumerApi;
  private readonly store: OffsetStore;
  private readonly logger: Logger;
  /** Thins the "pull failed" warnings (a broker that is down fails every queue's pulls). */
  private readonly pullWarnings = new WarnThrottle();
  private readonly subs = new Map<string, Subscription>();
  private readonly table = new Map<string, ProcessQueue>();
  private readonly rebalancer: Rebalancer;
  private readonly consumeService: ConsumeService;
  private readonly redeliveries = new Set<NodeJS.Timeout>();
  private readonly failurePolicy: ConsumeFailurePolicy;
  private readonly userFailurePolicy: ConsumeFailurePolicy | undefined;
  private readonly backoff: RetryBackoff;
  private handler: MessageHandler | undefined;
  private orderly: OrderlyService | undefined;
  private readonly orderlyOpts: { suspendMs: number; maxReconsumeTimes: number; renewIntervalMs: number };
  private persistTimer: NodeJS.Timeout | undefined;
  private state: State = 'new';
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly counters: PushConsumerStats = {
    pulls: 0,
    pullErrors: 0,
    pullsDiscarded: 0,
    flowControlTimes: 0,
    consumed: 0,
    failed: 0,
  };

  private readonly consumeFromWhere: ConsumeFromWhere;
  private readonly consumeTimestamp: number | undefined;
  private readonly pullBatchSize: number;
  private readonly pullsInFlight: number;
  private readonly consumeBatchMaxSize: number;
  private readonly pullThresholdForQueue: number;
  private readonly pullThresholdBytes: number;
  private readonly maxSpan: number;
  private readonly suspendMs: number;
  private readonly pullErrorDelayMs: number;
  private readonly persistIntervalMs: number;
  private readonly awaitTerminationMs: number;
  private readonly checkCrc: boolean;

  constructor(opts: PushConsumerOptions) {
    validateGroup(opts.group);
    this.group = opts.group;
    this.retryTopic = retryTopicOf(opts.group);
    this.messageModel = oneOf('messageModel', opts.messageModel, 'CLUSTERING', MESSAGE_MODELS);
    this.consumeFromWhere = oneOf('consumeFromWhere', opts.consumeFromWhere, 'LAST_OFFSET', CONSUME_FROM);
    if (opts.consumeTimestamp !== undefined && !Number.isSafeInteger(opts.consumeTimestamp)) {
      throw new TsmqError('ARGUMENT_INVALID', 'consumeTimestamp must be ms since the epoch');
    }
    this.consumeTimestamp = opts.consumeTimestamp;
    const allocate = allocateStrategy(opts.allocate);
    this.pullBatchSize = intOption('pullBatchSize', opts.pullBatchSize, 32, 1, LIMITS.batchMax);
    this.pullsInFlight = intOption(
      'pullsInFlightPerQueue',
      opts.pullsInFlightPerQueue,
      DEFAULT_PULLS_IN_FLIGHT,
      1,
      LIMITS.pullsInFlightMax,
    );
    this.consumeBatchMaxSize = intOption(
      'consumeBatchMaxSize',
      opts.consumeBatchMaxSize,
      1,
      1,
      LIMITS.batchMax,
    );
    const concurrency = intOption(
      'consumeConcurrency',
      opts.consumeConcurrency,
      20,
      1,
      LIMITS.concurrencyMax,
    );
    this.pullThresholdForQueue = intOption(
      'pullThresholdForQueue',
      opts.pullThresholdForQueue,
      1000,
      1,
      LIMITS.thresholdCountMax,
    );
    this.pullThresholdBytes =
      intOption('pullThresholdSizeForQueue', opts.pullThresholdSizeForQueue, 100, 1, LIMITS.thresholdMiBMax) *
      1024 *
      1024;
    this.maxSpan = intOption(
      'consumeConcurrentlyMaxSpan',
      opts.consumeConcurrentlyMaxSpan,
      2000,
      1,
      LIMITS.spanMax,
    );
    this.suspendMs = intOption(
      'brokerSuspendMaxTimeMillis',
      opts.brokerSuspendMaxTimeMillis,
      15_000,
      1,
      LIMITS.intervalMsMax,
    );
    this.pullErrorDelayMs = intOption(
      'pullTimeDelayMillsWhenException',
      opts.pullTimeDelayMillsWhenException,
      3_000,
      0,
      LIMITS.intervalMsMax,
    );
    this.persistIntervalMs = intOption(
      'persistConsumerOffsetIntervalMs',
      opts.persistConsumerOffsetIntervalMs,
      5_000,
      1,
      LIMITS.intervalMsMax,
    );
    const rebalanceIntervalMs = intOption(
      'rebalanceIntervalMs',
      opts.rebalanceIntervalMs,
      20_000,
      1,
      LIMITS.intervalMsMax,
    );
    this.awaitTerminationMs = intOption(
      'awaitTerminationMs',
      opts.awaitTerminationMs,
      10_000,
      0,
      LIMITS.intervalMsMax,
    );
    this.backoff = {
      initialMs: intOption(
        'retryBackoff.initialMs',
        opts.retryBackoff?.initialMs,
        DEFAULT_RETRY_BACKOFF.initialMs,
        1,
        LIMITS.intervalMsMax,
      ),
      maxMs: intOption(
        'retryBackoff.maxMs',
        opts.retryBackoff?.maxMs,
        DEFAULT_RETRY_BACKOFF.maxMs,
        1,
        LIMITS.intervalMsMax,
      ),
    };
    this.userFailurePolicy = opts.failurePolicy;
    const maxReconsumeTimes = intOption(
      'maxReconsumeTimes',
      opts.maxReconsumeTimes,
      -1,
      -1,
      MAX_RECONSUME_TIMES_LIMIT,
    );
    this.checkCrc = opts.checkCrc === true;
    this.orderlyOpts = {
      suspendMs: intOption(
        'suspendCurrentQueueTimeMillis',
        opts.suspendCurrentQueueTimeMillis,
        1_000,
        0,
        LIMITS.intervalMsMax,
      ),
      maxReconsumeTimes: orderlyMaxReconsumeTimes(opts.maxReconsumeTimes),
      renewIntervalMs: intOption(
        'lockRenewIntervalMs',
        opts.lockRenewIntervalMs,
        20_000,
        1,
        LIMITS.intervalMsMax,
      ),
    };

    // A broadcasting member's offset file is keyed by its client id, which must survive restarts.
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
    this.failurePolicy =
      opts.failurePolicy ??
      (this.messageModel === 'CLUSTERING'
        ? sendBack({
            api: this.api,
            group: this.group,
            ...(maxReconsumeTimes >= 0 && { maxReconsumeTimes }),
            logger: this.logger,
          })
        : localRedelivery);
    this.rebalancer = new Rebalancer({
      instance: this.instance,
      group: this.group,
      messageModel: this.messageModel,
      allocate,
      topics: () => [...this.subs.keys()],
      apply: (topic, assigned) => this.apply(topic, assigned),
      intervalMs: rebalanceIntervalMs,
      retryDelayMs: Math.max(this.pullErrorDelayMs, 100),
      logger: this.logger,
    });
    this.consumeService = new ConsumeService(concurrency, (task) => this.consume(task));
  }

  get clientId(): string {
    return this.instance.clientId;
  }

  /**
   * Subscribes to a topic with a TAG expression ("*" or "A || B") or a selector
   * (`MessageSelector.bySql("a > 5 AND region = 'eu'")`: the broker filters by properties);
   * before start(). An expression that does not parse is SUBSCRIPTION_INVALID, saying where.
   */
  subscribe(topic: string, expression: string | MessageSelector = '*'): this {
    if (this.state !== 'new') {
      throw new TsmqError('CLIENT_STATE_INVALID', 'subscribe() must be called before start()');
    }
    this.subs.set(topic, makeSubscription(topic, expression, Date.now()));
    return this;
  }

  /** Registers the handler of every message; before start(). */
  onMessage(handler: MessageHandler): this {
    if (typeof handler !== 'function')
      throw new TsmqError('ARGUMENT_INVALID', 'the handler must be a function');
    if (this.state !== 'new') {
      throw new TsmqError('CLIENT_STATE_INVALID', 'onMessage() must be called before start()');
    }
    if (this.orderly) throw new TsmqError('CLIENT_STATE_INVALID', 'onMessageOrderly() was called already');
    this.handler = handler;
    return this;
  }

  /**
   * Registers an orderly handler instead of onMessage's; before start(). Each queue's messages
   * come one call at a time in queue order, and in CLUSTERING only while this member holds the
   * queue's lock on its broker (./orderly-service.ts).
   */
  onMessageOrderly(handler: OrderlyMessageHandler): this {
    if (typeof handler !== 'function')
      throw new TsmqError('ARGUMENT_INVALID', 'the handler must be a function');
    if (this.state !== 'new') {
      throw new TsmqError('CLIENT_STATE_INVALID', 'onMessageOrderly() must be called before start()');
    }
    if (this.handler) throw new TsmqError('CLIENT_STATE_INVALID', 'onMessage() was called already');
    const orderly: OrderlyService = new OrderlyService({
      locking: this.messageModel === 'CLUSTERING',
      handler,
      batchMaxSize: this.consumeBatchMaxSize,
      ...this.orderlyOpts,
      api: this.api,
      group: this.group,
      store: this.store,
      failurePolicy:
        this.userFailurePolicy ??
        deadLetter({
          api: this.api,
          group: this.group,
          lockVersion: (mq) => orderly.versionOf(mq),
          refused: (mq) => orderly.refused(mq),
          logger: this.logger,
        }),
      logger: this.logger,
      counters: this.counters,
      lost: (pq) => this.orderlyLost(pq),
      queues: () => [...this.table.values()],
    });
    this.orderly = orderly;
    if (this.store instanceof RemoteOffsetStore) this.store.fence = orderly;
    return this;
  }

  start(): Promise<void> {
    if (this.state !== 'new') {
      return Promise.reject(new TsmqError('CLIENT_STATE_INVALID', `the consumer is ${this.state}`));
    }
    this.starting = this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    if (!this.handler && !this.orderly) {
      throw new TsmqError('CLIENT_STATE_INVALID', 'no message handler: call onMessage() before start()');
    }
    if (this.subs.size === 0) {
      throw new TsmqError('CLIENT_STATE_INVALID', 'no subscription: call subscribe() before start()');
    }
    this.state = 'starting';
    try {
      // A CLUSTERING member also reads its group's retry topic (RocketMQ's copySubscription).
      const retry = this.retryTopic;
      if (this.messageModel === 'CLUSTERING' && !this.subs.has(retry)) {
        this.subs.set(retry, makeSubscription(retry, '*', Date.now()));
      }
      await this.store.load();
      this.instance.registerConsumer(this.member());
      this.instance.start();
      for (const topic of this.subs.keys()) {
        await this.instance.route(topic).catch((e: Error) => {
          this.logger.warn({ topic, err: e.message }, 'no route yet for a subscribed topic');
        });
      }
      // As RocketMQ's client: the brokers of a SQL92 subscription must accept it before it starts
      // (one with enablePropertyFilter=false, say, answers SYSTEM_ERROR: start() rejects with it).
      for (const sub of this.subs.values()) {
        if (sub.expressionType !== 'TAG') await this.api.checkClientConfig(this.group, subscriptionData(sub));
      }
      await this.instance.heartbeat();
      this.state = 'running';
      this.rebalancer.start();
      this.orderly?.start();
      this.persistTimer = setInterval(() => {
        this.persistOwned().catch(() => undefined);
      }, this.persistIntervalMs);
      this.persistTimer.unref();
      await this.rebalancer.request();
    } catch (e) {
      this.state = 'closed';
      this.rebalancer.stop();
      clearInterval(this.persistTimer);
      for (const pq of this.table.values()) pq.drop();
      this.table.clear();
      this.instance.close();
      await this.store.close().catch(() => undefined);
      throw e;
    }
  }

  /**
   * Stops pulling, waits up to awaitTerminationMs for handler calls in flight, persists offsets,
   * leaves the group (UNREGISTER_CLIENT: the other members take the queues over) and closes.
   */
  shutdown(): Promise<void> {
    if (this.state === 'new' || (this.state === 'closed' && !this.stopping)) {
      this.state = 'closed';
      return Promise.resolve();
    }
    this.stopping ??= this.doShutdown();
    return this.stopping;
  }

  private async doShutdown(): Promise<void> {
    // A start() in progress completes (or fails) first.
    await this.starting?.catch(() => undefined);
    if (this.state === 'closed') return;
    this.state = 'stopping';
    this.rebalancer.stop();
    await this.rebalancer.idle();
    clearInterval(this.persistTimer);
    for (const t of this.redeliveries) clearTimeout(t);
    this.redeliveries.clear();
    for (const pq of this.table.values()) pq.stopPulling();
    const [concurrentDrained, orderlyDrained] = await Promise.all([
      this.consumeService.stop(this.awaitTerminationMs),
      this.orderly?.stop(this.awaitTerminationMs) ?? true,
    ]);
    const drained = concurrentDrained && orderlyDrained;
    if (!drained) {
      this.logger.warn(
        { awaitTerminationMs: this.awaitTerminationMs },
        'handlers still running at shutdown; their messages stay uncommitted',
      );
    }
    await this.persistOwned().catch(() => undefined);
    await this.orderly?.unlock([...this.table.values()]);
    for (const pq of this.table.values()) pq.drop();
    this.table.clear();
    await this.instance.unregister('consumer', this.group);
    this.instance.close();
    await this.store.close().catch((e: Error) => this.logger.warn({ err: e.message }, 'offset store close'));
    this.state = 'closed';
  }

  /**
   * The queues of the subscribed topics this consumer owns now, sorted; with `includeRetry` also
   * those of its group's %RETRY% topic, which a CLUSTERING member subscribes to by itself.
   */
  assignedQueues(includeRetry = false): MessageQueue[] {
    return this.owned(includeRetry).map((pq) => pq.mq);
  }

  /** Each owned queue's cache and offset (the %RETRY% queues with `includeRetry`), sorted. */
  queueStats(includeRetry = false): QueueStats[] {
    return this.owned(includeRetry).map((pq) => ({
      queue: pq.mq,
      cachedCount: pq.count,
      cachedBytes: pq.cachedBytes,
      span: pq.span,
      offset: this.store.readMemory(pq.mq),
    }));
  }

  stats(): PushConsumerStats {
    return { ...this.counters };
  }

  private owned(includeRetry: boolean): ProcessQueue[] {
    const retry = this.retryTopic;
    return [...this.table.values()]
      .filter((pq) => includeRetry || pq.mq.topic !== retry)
      .sort((a, b) => compareQueues(a.mq, b.mq));
  }

  /** Runs a rebalance now (they also run on their own); resolves when it is done. */
  rebalance(): Promise<void> {
    return this.rebalancer.request();
  }

  // ------------------------------------------------------------------------------------------

  private member(): ConsumerMember {
    return {
      group: this.group,
      consumerData: (): ConsumerData => ({
        groupName: this.group,
        consumeType: 'CONSUME_PASSIVELY',
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
   * member consumes drops its cache — handlers still running finish, but their results no longer
   * move the offset — and pulls again from the new offset, which is persisted first (the broker
   * already holds it; a broadcasting member's file needs it).
   */
  private async resetOffsets(
    topic: string,
    offsets: ReadonlyArray<{ queue: MessageQueue; offset: number }>,
  ): Promise<void> {
    if (this.state !== 'running') return;
    const moved: { pq: ProcessQueue; offset: number }[] = [];
    for (const { queue, offset } of offsets) {
      const pq = this.table.get(mqKey(queue));
      if (!pq || pq.mq.topic !== topic) continue;
      pq.drop();
      this.table.delete(mqKey(queue));
      this.store.update(pq.mq, offset, false);
      moved.push({ pq, offset });
    }
    await this.store.persist(moved.map((m) => m.pq.mq)).catch(() => undefined);
    for (const { pq, offset } of moved) {
      if (this.state !== 'running' || this.table.has(mqKey(pq.mq))) continue;
      const fresh = new ProcessQueue(pq.mq);
      this.orderly?.transfer(pq, fresh);
      this.table.set(mqKey(pq.mq), fresh);
      void this.pullLoop(fresh, offset);
    }
    this.logger.info(
      { topic, queues: moved.map((m) => m.pq.mq.queueId) },
      'offsets reset; consuming again from them',
    );
  }

  private async persistOwned(): Promise<void> {
    const mqs = [...this.table.values()].map((pq) => pq.mq);
    try {
      await this.store.persist(mqs);
    } catch (e) {
      this.logger.warn({ err: (e as Error).message }, 'persisting consumer offsets failed');
      throw e;
    }
  }

  private async apply(topic: string, assigned: MessageQueue[]): Promise<boolean> {
    if (this.state !== 'running') return true;
    const want = new Set(assigned.map(mqKey));
    const gone = [...this.table.values()].filter((pq) => pq.mq.topic === topic && !want.has(mqKey(pq.mq)));
    await Promise.all(gone.map((pq) => this.removeQueue(pq)));
    const added = assigned.filter((q) => !this.table.has(mqKey(q)));
    const results = await Promise.allSettled(added.map((q) => this.addQueue(q)));
    let ok = true;
    results.forEach((r, i) => {
      if (r.status === 'rejected') {
        ok = false;
        this.logger.warn(
          { queue: describeQueue(added[i]!), err: (r.reason as Error).message },
          'cannot start consuming a queue; retrying',
        );
      }
    });
    if (gone.length > 0 || added.length > 0) {
      this.logger.info(
        { topic, removed: gone.map((pq) => pq.mq.queueId), added: added.map((q) => q.queueId) },
        'rebalanced',
      );
    }
    return ok;
  }

  private async addQueue(mq: MessageQueue): Promise<void> {
    if (this.orderly) return this.addOrderlyQueue(mq, this.orderly);
    const offset = await computeStartOffset(
      this.api,
      this.store,
      mq,
      this.consumeFromWhere,
      this.consumeTimestamp ?? Date.now() - DEFAULT_CONSUME_TIMESTAMP_AGO_MS,
    );
    const key = mqKey(mq);
    if (this.state !== 'running' || this.table.has(key)) return;
    const pq = new ProcessQueue(mq);
    this.table.set(key, pq);
    // The group sticks to where this member decided to start, even before anything is consumed.
    this.store.update(mq, offset, false);
    void this.pullLoop(pq, offset);
  }

  /**
   * Orderly: the queue is taken into the table at once (so rebalances see it owned), but read and
   * pulled only once its lock is granted; the start offset is read after that, when the previous
   * owner can no longer move it.
   */
  private addOrderlyQueue(mq: MessageQueue, orderly: OrderlyService): void {
    const key = mqKey(mq);
    if (this.state !== 'running' || this.table.has(key)) return;
    const pq = new ProcessQueue(mq);
    this.table.set(key, pq);
    const begin = async (): Promise<void> => {
      if (!(await orderly.acquire(pq))) return;
      const offset = await computeStartOffset(
        this.api,
        this.store,
        mq,
        this.consumeFromWhere,
        this.consumeTimestamp ?? Date.now() - DEFAULT_CONSUME_TIMESTAMP_AGO_MS,
      );
      if (pq.pullStopped || this.state !== 'running') return;
      this.store.update(mq, offset, false);
      void this.pullLoop(pq, offset);
    };
    begin().catch((e: Error) => {
      this.logger.warn(
        { queue: describeQueue(mq), err: e.message },
        'cannot start an orderly queue; retrying',
      );
      if (this.table.get(key) !== pq) return;
      pq.drop();
      this.table.delete(key);
      void orderly.unlock([pq]);
      void this.rebalancer.request();
    });
  }

  /** Orderly: the queue's lease was lost; drop its cache and take it again (lock first). */
  private orderlyLost(pq: ProcessQueue): void {
    const key = mqKey(pq.mq);
    if (this.table.get(key) !== pq) return;
    pq.drop();
    this.table.delete(key);
    this.store.remove(pq.mq);
    if (this.state === 'running' && this.orderly) this.addOrderlyQueue(pq.mq, this.orderly);
  }

  /** The queue went to another member: stop, persist its offset, forget it. */
  private async removeQueue(pq: ProcessQueue): Promise<void> {
    if (this.orderly) {
      // Orderly handover: the call in flight finishes and its offset is committed (with the lock
      // version) before the lock is given back.
      this.table.delete(mqKey(pq.mq));
      pq.stopPulling();
      await this.orderly.release(pq, this.awaitTerminationMs);
      await this.store.persist([pq.mq]).catch((e: Error) => {
        this.logger.warn({ queue: describeQueue(pq.mq), err: e.message }, 'offset persist failed');
      });
      await this.orderly.unlock([pq]);
      pq.drop();
      this.store.remove(pq.mq);
      return;
    }
    pq.drop();
    this.table.delete(mqKey(pq.mq));
    try {
      await this.store.persist([pq.mq]);
    } catch (e) {
      this.logger.warn({ queue: describeQueue(pq.mq), err: (e as Error).message }, 'offset persist failed');
    }
    this.store.remove(pq.mq);
  }

  private flowControlled(pq: ProcessQueue): boolean {
    let why: string | undefined;
    if (pq.count > this.pullThresholdForQueue) why = 'cached messages';
    else if (pq.cachedBytes > this.pullThresholdBytes) why = 'cached bytes';
    else if (pq.span > this.maxSpan) why = 'offset span';
    if (why === undefined) return false;
    if (this.counters.flowControlTimes++ % FLOW_CONTROL_LOG_EVERY === 0) {
      this.logger.warn(
        {
          queue: describeQueue(pq.mq),
          cachedCount: pq.count,
          cachedMiB: Math.round(pq.cachedBytes / 1024 / 1024),
          span: pq.span,
          times: this.counters.flowControlTimes,
        },
        `flow control (${why}): pulls of this queue wait`,
      );
    }
    return true;
  }

  private async pullLoop(pq: ProcessQueue, startOffset: number): Promise<void> {
    const mq = pq.mq;
    const sub = this.subs.get(mq.topic)!;
    const request = (offset: number): PullRequest => ({
      group: this.group,
      queue: mq,
      offset,
      maxMsgNums: this.pullBatchSize,
      expression: sub.expression,
      expressionType: sub.expressionType,
      filter: sub.filter,
      subVersion: sub.version,
      suspendTimeoutMs: this.suspendMs,
      checkCrc: this.checkCrc,
    });
    const inFlight: InFlightPull[] = [];
    const send = (offset: number): void => {
      pq.lastPullMs = Date.now();
      const answer = this.api.requestPull(request(offset));
      answer.catch(() => undefined); // awaited below, or dropped with a stopped queue
      inFlight.push({ offset, answer });
    };
    const discardInFlight = (): void => {
      this.counters.pullsDiscarded += inFlight.length;
      inFlight.length = 0;
    };
    // Pulls past the next one start at predicted offsets: only where every answer advances by
    // the same step (no filter drops records on the broker), see `pullAhead`.
    const predictable = sub.expressionType === 'TAG' && sub.filter.all;
    /** Where the next answer handed out must start (every answer before it was handed out). */
    let next = startOffset;
    /** Offsets the last FOUND answer advanced by (0: none yet, or unpredictable). */
    let step = 0;
    while (!pq.pullStopped) {
      if (inFlight.length === 0) {
        if (this.orderly && !this.orderly.held(pq)) {
          await pq.sleep(LOCK_RETRY_MS);
          continue;
        }
        if (this.flowControlled(pq)) {
          await pq.sleep(FLOW_CONTROL_DELAY_MS);
          continue;
        }
        send(next);
      }
      const head = inFlight.shift()!;
      const asked = head.offset;
      let raw: RawPullResult;
      let r: PullResult;
      try {
        raw = await head.answer;
        this.counters.pulls++;
        if (pq.pullStopped) break;
        if (raw.status === 'FOUND') {
          step = predictable ? raw.nextBeginOffset - asked : 0;
          // Ask for the next batches before decoding and handing out this one, so the broker
          // reads them while this side works; when more is waiting and the broker has no other
          // pull of this queue, let the request leave first.
          const idle = inFlight.length === 0;
          if (this.pullAhead(pq, inFlight, raw, step, send) && idle) {
            if (raw.maxOffset > raw.nextBeginOffset) await yieldToIo();
            if (pq.pullStopped) break;
          }
        } else {
          // Nothing found, or the offset moved: the pulls sent ahead asked from the wrong place.
          step = 0;
          discardInFlight();
        }
        r = decodePull(raw, request(asked));
      } catch (e) {
        if (pq.pullStopped) break;
        // The pulls sent ahead started from past what failed: their answers are of no use.
        discardInFlight();
        next = asked;
        this.counters.pullErrors++;
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
      switch (r.status) {
        case 'FOUND': {
          next = r.nextBeginOffset;
          const added = pq.put(r.msgs);
          if (added.length > 0) this.dispatch(pq, added);
          else this.offsetPastNothing(pq, next);
          break;
        }
        case 'NO_NEW_MSG':
        case 'NO_MATCHED_MSG':
          next = r.nextBeginOffset;
          this.offsetPastNothing(pq, next);
          break;
        case 'OFFSET_ILLEGAL':
          this.logger.warn(
            { queue: describeQueue(mq), offset: next, nextBeginOffset: r.nextBeginOffset },
            'the pull offset is illegal; continuing where the broker says',
          );
          // Restart from where the broker says once nothing is in flight (offsets may go back:
          // a re-created queue), so the cache's notion of "highest consumed" starts over.
          while (pq.count > 0 && !pq.pullStopped) await pq.sleep(FLOW_CONTROL_DELAY_MS);
          if (pq.pullStopped) break;
          next = r.nextBeginOffset;
          pq.clear();
          this.store.update(mq, next, false);
          break;
      }
    }
  }

  /**
   * After a FOUND answer (not cached yet): keeps up to pullsInFlightPerQueue pulls of the queue
   * in flight. The first after the answer starts at its nextBeginOffset; each further one at the
   * previous one's offset + `step`, and only while that batch lies wholly below the queue's max
   * offset, so that it comes back full and the prediction holds. An answer that does not start
   * where the one before it ended (the broker returned fewer: a byte limit, a retention cut)
   * drops every pull in flight, which are sent again from the right place. Returns whether a
   * pull was sent.
   */
  private pullAhead(
    pq: ProcessQueue,
    inFlight: InFlightPull[],
    raw: RawPullResult,
    step: number,
    send: (offset: number) => void,
  ): boolean {
    if (inFlight.length > 0 && inFlight[0]!.offset !== raw.nextBeginOffset) {
      this.counters.pullsDiscarded += inFlight.length;
      inFlight.length = 0;
    }
    let sent = false;
    // Batches on their way to the cache: the one in hand and those in flight.
    let coming = 1 + inFlight.length;
    while (inFlight.length < this.pullsInFlight && !this.wouldFlowControl(pq, coming)) {
      let offset = raw.nextBeginOffset;
      if (inFlight.length > 0) {
        offset = inFlight[inFlight.length - 1]!.offset + step;
        if (step <= 0 || offset + step > raw.maxOffset) break;
      }
      send(offset);
      sent = true;
      coming++;
    }
    return sent;
  }

  /**
   * Whether the queue would be flow-controlled once `batches` full batches more are cached: a
   * pull is sent ahead only when the batches on their way (the one in hand and those in flight)
   * cannot take the cache past a threshold, so pipelining never lets the cache grow further
   * than waiting for each batch would.
   */
  private wouldFlowControl(pq: ProcessQueue, batches: number): boolean {
    const more = batches * this.pullBatchSize;
    return (
      pq.count + more > this.pullThresholdForQueue ||
      pq.span + more > this.maxSpan ||
      // bytes: batches of messages the size of those cached now
      pq.cachedBytes + (pq.count > 0 ? (pq.cachedBytes / pq.count) * more : 0) > this.pullThresholdBytes
    );
  }

  /**
   * A pull that gave the handlers nothing (no message, or only other tags) moved the position; with
   * nothing cached, everything below it is done, so the offset follows (RocketMQ's
   * correctTagsOffset).
   */
  private offsetPastNothing(pq: ProcessQueue, next: number): void {
    if (pq.count === 0) this.store.update(pq.mq, next, true);
  }

  private dispatch(pq: ProcessQueue, msgs: MessageExt[]): void {
    // A retried message shows the topic it was sent to (RocketMQ's resetRetryAndNamespace).
    if (pq.mq.topic === this.retryTopic) {
      for (const m of msgs) m.topic = m.properties.get(MessageProperty.RETRY_TOPIC) ?? m.topic;
    }
    if (this.orderly) {
      this.orderly.submit(pq, msgs);
      return;
    }
    for (let i = 0; i < msgs.length; i += this.consumeBatchMaxSize) {
      this.consumeService.submit({ pq, msgs: msgs.slice(i, i + this.consumeBatchMaxSize), attempt: 0 });
    }
  }

  private async consume(task: ConsumeTask): Promise<void> {
    const { pq, msgs } = task;
    // A dropped queue belongs to another member now; it consumes these from the committed offset.
    if (pq.dropped) return;
    const ctx: ConsumeContext = { queue: pq.mq, delayLevelWhenNextConsume: 0 };
    let ok = false;
    try {
      const r = await this.handler!(msgs, ctx);
      ok = r === undefined || r === 'SUCCESS';
      if (!ok && r !== 'RETRY_LATER') {
        this.logger.warn(
          { result: String(r) },
          "a handler returned neither 'SUCCESS' nor 'RETRY_LATER'; retrying",
        );
      }
    } catch (e) {
      this.logger.warn(
        { queue: describeQueue(pq.mq), offset: msgs[0]?.queueOffset, err: (e as Error).message },
        'the message handler threw; the messages will be redelivered',
      );
    }
    pq.lastConsumeMs = Date.now();
    // The queue went to another member meanwhile: it consumes these from the committed offset, so
    // a failure here is not sent back (it would be delivered twice).
    if (pq.dropped) return;
    let done = msgs;
    if (ok) {
      this.counters.consumed += msgs.length;
    } else {
      this.counters.failed += msgs.length;
      let again: MessageExt[];
      try {
        again = await this.failurePolicy.onFailure(msgs, ctx);
      } catch (e) {
        this.logger.warn({ err: (e as Error).message }, 'the failure policy threw; redelivering locally');
        again = msgs;
      }
      const redeliver = new Set(again);
      done = msgs.filter((m) => !redeliver.has(m));
      if (redeliver.size > 0) this.redeliver(pq, [...redeliver], task.attempt + 1);
    }
    if (done.length === 0) return;
    const offset = pq.remove(done);
    if (!pq.dropped && offset !== undefined) this.store.update(pq.mq, offset, true);
  }

  private redeliver(pq: ProcessQueue, msgs: MessageExt[], attempt: number): void {
    if (pq.pullStopped || this.state !== 'running') return;
    for (const m of msgs) m.reconsumeTimes++;
    const t = setTimeout(
      () => {
        this.redeliveries.delete(t);
        if (!pq.pullStopped && this.state === 'running') this.consumeService.submit({ pq, msgs, attempt });
      },
      retryDelayMs(attempt, this.backoff),
    );
    this.redeliveries.add(t);
  }
}
