/**
 * The broker role: a remoting server with the broker's processors in front of the message store
 * and the topic configs, registered with every name server at start, every
 * registerNameServerPeriod and soon after a topic changes, and unregistered at close.
 *
 * Start order: topic configs → listen (so a port of 0 is known) → open the store with that port in
 * its store host → register. Requests arriving before the store is open get SERVICE_NOT_AVAILABLE.
 * Close order is the reverse: unregister (clients stop routing here) → stop listening → close the
 * store (flush, checkpoint).
 */
import { type Clock, systemClock } from '../common/clock.js';
import { createLogger, type Logger } from '../common/log.js';
import type { HostAddress } from '../common/types.js';
import { CHECK_MAX_TOPIC, HALF_TOPIC, OP_TOPIC } from '../message/index.js';
import { Perm } from '../namesrv/index.js';
import { RemotingServer } from '../remoting/index.js';
import { MessageStore, type MessageStoreOptions } from '../store/index.js';
import { ClientGroups } from './client-groups.js';
import { type BrokerConfig, nameServerAddresses, resolveBrokerConfig } from './config.js';
import { ConsumerOffsetManager } from './consumer-offsets.js';
import { RateLimiter, SendAdmission } from './flow-control.js';
import { PullRequestHoldService } from './long-polling.js';
import { NamesrvRegistrar } from './namesrv-registrar.js';
import type { BrokerContext } from './processors/context.js';
import { BROKER_PROCESSORS } from './processors/registry.js';
import { QueueLockManager } from './queue-locks.js';
import { parseDelayLevels } from './schedule/delay-levels.js';
import { DelayOffsetTable } from './schedule/delay-offsets.js';
import { MessagePutService, SCHEDULE_TOPIC, TIMER_TOPIC } from './schedule/put-message.js';
import { ScheduleMessageService } from './schedule/schedule-service.js';
import { BrokerStats } from './stats.js';
import { SubscriptionGroupManager } from './subscription-groups.js';
import { startBrokerTimer, timerDir } from './timer/broker-timer.js';
import type { TimerMessageService } from './timer/timer-service.js';
import { TopicConfigManager, topicConfig } from './topic-config.js';
import { TransactionService } from './transaction/transaction-service.js';

export interface BrokerOptions {
  logger?: Logger;
  clock?: Clock;
  /** Store options beyond those BrokerConfig sets (tests shrink segments, for example). */
  store?: Partial<Omit<MessageStoreOptions, 'rootDir' | 'storeHost' | 'flushMode' | 'maxMessageBytes'>>;
  /** Random integer in [0, n), for queue choice when a producer names none. */
  random?: (n: number) => number;
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);

export class Broker {
  readonly config: BrokerConfig;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private topicsManager: TopicConfigManager | undefined;
  private server: RemotingServer | undefined;
  private messageStore: MessageStore | undefined;
  private offsetManager: ConsumerOffsetManager | undefined;
  private pullHold: PullRequestHoldService | undefined;
  private clientGroups: ClientGroups | undefined;
  private subscriptionGroupManager: SubscriptionGroupManager | undefined;
  private brokerStats: BrokerStats | undefined;
  private scheduleService: ScheduleMessageService | undefined;
  private transactionService: TransactionService | undefined;
  private sendAdmission: SendAdmission | undefined;
  private timerService: TimerMessageService | undefined;
  private registrar: NamesrvRegistrar | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pendingRegister: NodeJS.Immediate | undefined;
  private listening: HostAddress | undefined;
  private state: 'new' | 'starting' | 'running' | 'closing' | 'closed' = 'new';

  constructor(
    config: Partial<BrokerConfig> = {},
    private readonly opts: BrokerOptions = {},
  ) {
    const withIp =
      config.brokerIP1 === undefined &&
      config.listenHost !== undefined &&
      !WILDCARD_HOSTS.has(config.listenHost)
        ? { ...config, brokerIP1: config.listenHost }
        : config;
    this.config = resolveBrokerConfig(withIp);
    this.logger = opts.logger ?? createLogger('broker');
    this.clock = opts.clock ?? systemClock;
  }

  /** The open store (for embedding and tests); throws before start or after close. */
  get store(): MessageStore {
    if (!this.messageStore) throw new Error('the broker is not running');
    return this.messageStore;
  }

  /** Committed consumer offsets (for embedding and tests); throws before start or after close. */
  get offsets(): ConsumerOffsetManager {
    if (!this.offsetManager) throw new Error('the broker is not running');
    return this.offsetManager;
  }

  /** Held long-poll pulls; tests call its step(nowMs). Throws before start or after close. */
  get pullHoldService(): PullRequestHoldService {
    if (!this.pullHold) throw new Error('the broker is not running');
    return this.pullHold;
  }

  /** Producer and consumer groups; tests call its step(nowMs). Throws before start or after close. */
  get clients(): ClientGroups {
    if (!this.clientGroups) throw new Error('the broker is not running');
    return this.clientGroups;
  }

  /** Consumer groups' configs; throws before start or after close. */
  get subscriptionGroups(): SubscriptionGroupManager {
    if (!this.subscriptionGroupManager) throw new Error('the broker is not running');
    return this.subscriptionGroupManager;
  }

  /** Message counters and rates; throws before start. */
  get stats(): BrokerStats {
    if (!this.brokerStats) throw new Error('the broker is not running');
    return this.brokerStats;
  }

  get topics(): TopicConfigManager {
    if (!this.topicsManager) throw new Error('the broker is not running');
    return this.topicsManager;
  }

  /** "ip:port" clients and name servers use: brokerIP1 and the port actually bound. */
  get address(): string {
    if (!this.listening) throw new Error('the broker is not listening');
    return `${this.listening.address}:${this.listening.port}`;
  }

  async start(): Promise<{ address: string }> {
    if (this.state !== 'new') throw new Error(`the broker cannot start: it is ${this.state}`);
    this.state = 'starting';
    try {
      await this.startInner();
    } catch (e) {
      await this.close().catch(() => {});
      throw e;
    }
    this.state = 'running';
    return { address: this.address };
  }

  private async startInner(): Promise<void> {
    const c = this.config;
    this.topicsManager = await TopicConfigManager.open({
      storePathRootDir: c.storePathRootDir,
      clock: this.clock,
      autoCreateTopicEnable: c.autoCreateTopicEnable,
      defaultTopicQueueNums: c.defaultTopicQueueNums,
      brokerClusterName: c.brokerClusterName,
      brokerName: c.brokerName,
    });
    const random = this.opts.random ?? ((n: number) => Math.floor(Math.random() * n));
    const subscriptionGroups = await SubscriptionGroupManager.open({
      storePathRootDir: c.storePathRootDir,
      clock: this.clock,
      autoCreateSubscriptionGroup: c.autoCreateSubscriptionGroup,
      logger: this.logger,
    });
    this.subscriptionGroupManager = subscriptionGroups;
    const stats = new BrokerStats(this.clock);
    this.brokerStats = stats;
    this.offsetManager = await ConsumerOffsetManager.open(c.storePathRootDir, this.logger);
    this.offsetManager.start(c.flushConsumerOffsetInterval);
    const pullHold = new PullRequestHoldService({
      maxHeld: c.pullHeldRequestsMax,
      maxOffset: (topic, queueId) => this.messageStore?.dispatchedMaxOffsetInQueue(topic, queueId) ?? 0,
    });
    this.pullHold = pullHold;
    const clients = new ClientGroups({
      channelExpiredTimeoutMs: c.channelExpiredTimeout,
      logger: this.logger,
      notifyEnabled: (group) => subscriptionGroups.get(group)?.notifyConsumerIdsChangedEnable ?? true,
    });
    this.clientGroups = clients;
    const rateLimits = await RateLimiter.open(c.storePathRootDir, this.clock);
    const sendAdmission = new SendAdmission({
      inFlightMax: c.sendInFlightMax,
      queueCapacity: c.sendThreadPoolQueueCapacity,
      waitTimeMillsInSendQueue: c.waitTimeMillsInSendQueue,
      clock: this.clock,
    });
    sendAdmission.start();
    this.sendAdmission = sendAdmission;
    const ctx: BrokerContext = {
      rateLimits,
      sendAdmission,
      config: c,
      topics: this.topicsManager,
      store: () => (this.state === 'running' || this.state === 'starting' ? this.messageStore : undefined),
      storeHost: () => this.listening ?? { address: c.brokerIP1, port: c.listenPort },
      logger: this.logger,
      topicsChanged: () => this.scheduleRegister(),
      random,
      clock: this.clock,
      offsets: this.offsetManager,
      pullHold,
      clients,
      subscriptionGroups,
      stats,
      locks: new QueueLockManager(this.clock, c.rebalanceLockMaxLiveTime),
      messagePut: new MessagePutService({
        store: () => ctx.store(),
        clock: this.clock,
        policy: {
          delayLevelsMs: parseDelayLevels(c.messageDelayLevel) as number[],
          timerEnable: c.timerEnable,
          timerMaxDelayMs: c.timerMaxDelaySec * 1000,
        },
      }),
      schedule: () => this.scheduleService,
      timer: () => this.timerService,
      transactions: () => this.transactionService,
    };
    this.server = new RemotingServer({ host: c.listenHost, port: c.listenPort });
    for (const p of BROKER_PROCESSORS) {
      this.server.registerProcessor(p.code, (request, channel) => p.handle(ctx, request, channel));
    }
    this.server.onChannelClose((channel) => clients.channelClosed(channel));
    clients.start(c.clientChannelScanIntervalMs, () => this.clock.now());
    const bound = await this.server.listen();
    this.listening = { address: c.brokerIP1, port: bound.port };
    this.logger.info(
      {
        host: bound.host,
        port: bound.port,
        brokerAddr: this.address,
        brokerName: c.brokerName,
        cluster: c.brokerClusterName,
      },
      `broker ${c.brokerName} listening on ${bound.host}:${bound.port} (advertised as ${this.address})`,
    );

    const store = await MessageStore.open({
      ...this.opts.store,
      rootDir: c.storePathRootDir,
      flushMode: c.flushDiskType === 'SYNC_FLUSH' ? 'SYNC' : 'ASYNC',
      maxMessageBytes: c.maxMessageSize,
      storeHost: this.listening,
    });
    this.messageStore = store;
    store.onMessageDispatched((m) => pullHold.notifyArrival(m.topic, m.queueId, m.queueOffset, m.tagsCode));
    pullHold.start(c.pullHoldCheckIntervalMs, () => this.clock.now());
    const r = store.recovery;
    this.logger.info(
      { rootDir: c.storePathRootDir, flushDiskType: c.flushDiskType, recovery: r },
      r.crashed
        ? `store recovered after a crash in ${r.durationMs} ms: log ends at ${r.end}, ${r.recordsValidated} records validated`
        : `store opened in ${r.durationMs} ms: log ends at ${r.end}`,
    );
    await this.startDelivery(ctx, store);
    await this.startTransactions(ctx, store);

    const namesrvs = nameServerAddresses(c.namesrvAddr);
    if (namesrvs.length > 0) {
      const listening = this.listening;
      this.registrar = new NamesrvRegistrar(
        namesrvs,
        {
          clusterName: c.brokerClusterName,
          brokerName: c.brokerName,
          brokerId: c.brokerId,
          brokerAddr: this.address,
          haServerAddr: `${listening.address}:${listening.port + 1}`,
        },
        () => ({ topicConfigs: this.topics.all(), dataVersion: this.topics.dataVersion() }),
        this.logger,
      );
      await this.registrar.registerAll();
      this.timer = setInterval(() => void this.registrar?.registerAll(), c.registerNameServerPeriod);
      this.timer.unref();
      this.logger.info({ namesrvAddr: c.namesrvAddr }, `broker registers with ${namesrvs.join(', ')}`);
    } else {
      this.logger.warn('namesrvAddr is empty: the broker registers with no name server');
    }
  }

  /**
   * Starts the delivery of delay-level and timer messages (schedule/, timer/). The timer store
   * is opened when timers are enabled, or when it exists (so timers stored before they were
   * turned off are still delivered).
   */
  private async startDelivery(ctx: BrokerContext, store: MessageStore): Promise<void> {
    const c = this.config;
    const logger = this.logger;
    const stats = ctx.stats;
    const offsets = await DelayOffsetTable.open(c.storePathRootDir, logger);
    offsets.start(c.flushDelayOffsetInterval);
    const schedule = new ScheduleMessageService({
      store,
      putter: ctx.messagePut,
      delayLevelsMs: ctx.messagePut.policy.delayLevelsMs,
      offsets,
      clock: this.clock,
      logger,
      onDelivered: (n) => stats.onPut(n),
    });
    this.scheduleService = schedule;
    schedule.start();
    if (c.timerEnable || (await store.opts.io.exists(timerDir(c.storePathRootDir)))) {
      this.timerService = await startBrokerTimer({
        store,
        putter: ctx.messagePut,
        storePathRootDir: c.storePathRootDir,
        precisionMs: c.timerPrecisionMs,
        timerMaxDelaySec: c.timerMaxDelaySec,
        checkpointIntervalMs: c.timerFlushIntervalMs,
        clock: this.clock,
        logger,
        onDelivered: (n) => stats.onPut(n),
      });
    }
    const timer = this.timerService;
    store.onMessageDispatched((m) => {
      if (m.topic === SCHEDULE_TOPIC) schedule.kick();
      else if (m.topic === TIMER_TOPIC) timer?.kick();
    });
  }

  /**
   * Transaction ends and checks (transaction/). Its system topics exist from the start, so the
   * name servers route them and `tsmq tx list` can read them.
   */
  private async startTransactions(ctx: BrokerContext, store: MessageStore): Promise<void> {
    let created = false;
    for (const topic of [HALF_TOPIC, OP_TOPIC, CHECK_MAX_TOPIC]) {
      if (ctx.topics.get(topic)) continue;
      await ctx.topics.upsert(
        topicConfig(topic, { readQueueNums: 1, writeQueueNums: 1, perm: Perm.READ | Perm.WRITE }),
      );
      created = true;
    }
    if (created) ctx.topicsChanged();
    const tx = new TransactionService({
      store,
      put: ctx.messagePut,
      offsets: ctx.offsets,
      producers: (group) => [...(ctx.clients.producerGroup(group)?.keys() ?? [])].filter((ch) => !ch.closed),
      storeHost: () => ctx.storeHost(),
      clock: this.clock,
      logger: this.logger.child({ part: 'transactions' }),
      config: this.config,
    });
    await tx.start();
    this.transactionService = tx;
  }

  /** Transaction ends and checks; throws before start. */
  get transactions(): TransactionService {
    if (!this.transactionService) throw new Error('the broker is not running');
    return this.transactionService;
  }

  /** Delay-level delivery (tests call its step, read its progress); throws before start. */
  get schedule(): ScheduleMessageService {
    if (!this.scheduleService) throw new Error('the broker is not running');
    return this.scheduleService;
  }

  /** Timer delivery, if timers run on this broker. */
  get timerMessages(): TimerMessageService | undefined {
    return this.timerService;
  }

  /** Registers with every name server now (what the timer does); resolves when all answered. */
  registerNow(): Promise<void> {
    return this.registrar?.registerAll() ?? Promise.resolve();
  }

  private scheduleRegister(): void {
    if (this.pendingRegister || !this.registrar) return;
    this.pendingRegister = setImmediate(() => {
      this.pendingRegister = undefined;
      void this.registrar?.registerAll();
    });
  }

  /** Unregisters, stops listening and closes the store. Safe to call twice. */
  async close(): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.state = 'closing';
    if (this.timer) clearInterval(this.timer);
    if (this.pendingRegister) clearImmediate(this.pendingRegister);
    this.timer = undefined;
    this.pendingRegister = undefined;
    if (this.registrar) {
      await this.registrar.unregisterAll();
      this.registrar.close();
      this.registrar = undefined;
    }
    // Held pulls go unanswered: their connections close with the server, and clients re-pull.
    this.pullHold?.close();
    this.sendAdmission?.close();
    this.clientGroups?.close();
    if (this.server) await this.server.close();
    this.server = undefined;
    // Its last progress goes to the consumer offsets, written just below.
    await this.transactionService
      ?.close()
      .catch((e: unknown) => this.logger.error({ err: e }, 'closing transactions failed'));
    this.transactionService = undefined;
    if (this.offsetManager) await this.offsetManager.close();
    this.offsetManager = undefined;
    await this.subscriptionGroupManager?.close();
    this.subscriptionGroupManager = undefined;
    // Deliveries stop (their progress written) before the store they read and write closes.
    await this.scheduleService
      ?.close()
      .catch((e: unknown) => this.logger.error({ err: e }, 'closing delay delivery failed'));
    this.scheduleService = undefined;
    await this.timerService
      ?.close()
      .catch((e: unknown) => this.logger.error({ err: e }, 'closing timer delivery failed'));
    this.timerService = undefined;
    if (this.messageStore) {
      await this.messageStore.close();
      this.logger.info({ rootDir: this.config.storePathRootDir }, 'store closed cleanly');
    }
    this.messageStore = undefined;
    this.state = 'closed';
    this.logger.info({ brokerName: this.config.brokerName }, `broker ${this.config.brokerName} closed`);
  }
}
