/**
 * The producer (RocketMQ's DefaultMQProducer): sends messages to a topic's queues, one by one, in
 * batches, one-way, or in order by a sharding key, over its own ClientInstance.
 *
 *   const producer = new Producer({ group: 'PG', namesrvAddr: '127.0.0.1:9876' });
 *   await producer.start();
 *   const r = await producer.send({ topic: 'T', body: 'hello', tags: 'A', keys: 'order-1' });
 *   await producer.shutdown();
 *
 * A send, attempt by attempt (at most 1 + retryTimesWhenSendFailed attempts, all within
 * sendTimeoutMs; each attempt gets what is left of it):
 *
 *   1. the topic's write queues: the cached route, else the name servers'; a topic they do not
 *      know yet borrows createTopicKey's (TBW102) brokers with min(defaultTopicQueueNums, its
 *      queues) queues, so a broker with autoCreateTopicEnable creates it on this first send;
 *   2. a queue: the fixed one of an ordered send, or round-robin over the brokers not being
 *      skipped for slow or failed sends (latency-fault.ts), avoiding the broker that just failed
 *      (queue-selector.ts); after a SYSTEM_BUSY or FLOW_CONTROL answer, asking the same broker
 *      again waits 50 ms, doubling up to 1 s;
 *   3. the request to that broker's master, and its answer (send-api.ts):
 *
 *      outcome of the attempt                          then
 *      ----------------------------------------------  ------------------------------------------
 *      stored (SEND_OK, FLUSH_*_TIMEOUT, SLAVE_NOT_..) return the SendResult
 *      transport failure (refused, closed, timeout)    re-fetch the route, next attempt
 *      TOPIC_NOT_EXIST, SERVICE_NOT_AVAILABLE,
 *        SYSTEM_ERROR, SYSTEM_BUSY, FLOW_CONTROL,
 *        NO_PERMISSION, …                              re-fetch the route, next attempt
 *      any other broker code (MESSAGE_ILLEGAL, …)      throw its BrokerResponseError at once
 *      no attempt or no time left                      throw SEND_FAILED, cause = the last failure
 *
 * A failure before the first attempt — the message is invalid (ARGUMENT_INVALID), no route
 * (NO_ROUTE), no name server answers (NAMESRV_UNAVAILABLE) — is thrown as it is. A retry after a
 * timeout may store the message twice (at-least-once, as in RocketMQ); every attempt carries the
 * same msgId, so consumers can tell.
 *
 * Auto-batching (`autoBatch`, off by default; ./auto-batch.ts): plain send()s of a topic made
 * in one turn of the event loop (or within maxDelayMs) travel as one SEND_BATCH_MESSAGE — the attempts above apply to
 * the batch as a whole — and each resolves with its own SendResult (queue offset = the batch's
 * first + its index). Delayed, timed, ordered, queue-given, large (compressible) messages and
 * retry-topic sends go alone, as above.
 *
 * Heartbeats: one at start and one whenever a route names a broker this producer has not seen,
 * then the instance's every 30 s. shutdown() refuses new sends, sends the auto-batches still
 * gathering, waits for the sends in flight, tells every broker the group is leaving
 * (UNREGISTER_CLIENT) and closes the connections.
 */
import { isTsmqError, TsmqError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import {
  batchInnerBytes,
  encodeProperties,
  isRetryTopic,
  MessageProperty,
  SysFlag,
} from '../message/index.js';
import { ResponseCode, type TopicRouteData } from '../protocol/index.js';
import {
  AutoBatcher,
  type AutoBatchOptions,
  type AutoBatchSettings,
  autoBatchSettings,
  type OpenBatch,
} from './auto-batch.js';
import { ClientInstance, type ClientOptions, MASTER_ID } from './client-instance.js';
import { isBrokerResponseError } from './errors.js';
import { type LatencyFaultOptions, LatencyFaultTolerance } from './latency-fault.js';
import { type Message, type MessageQueue, mqKey } from './message.js';
import { intOption } from './options.js';
import { type MessageQueueSelector, RoundRobinSelector, selectByShardingKey } from './queue-selector.js';
import {
  type BatchSendResult,
  isRetryableSendError,
  type PreparedMessage,
  parseBatchResponse,
  parseSendResponse,
  prepareBatch,
  prepareMessage,
  type RequestContext,
  type SendLimits,
  type SendResult,
  sendRequest,
  splitBatchResponse,
} from './send-api.js';
import { WarnThrottle } from './warn-throttle.js';

export interface ProducerOptions extends ClientOptions {
  /** The producer group (1..255 characters of [%|a-zA-Z0-9_-]). */
  group: string;
  /** Time for a whole send, retries included, ms. Default 3,000. */
  sendTimeoutMs?: number;
  /** Attempts after the first when one fails (RocketMQ's retryTimesWhenSendFailed). Default 2. */
  retryTimesWhenSendFailed?: number;
  /** Largest body (a batch: its encoded size), bytes, before compression. Default 4 MiB. */
  maxMessageBytes?: number;
  /** Bodies of at least this many bytes are zlib-compressed. Default 4,096. */
  compressOverBytes?: number;
  /** Queues a topic auto-created on first send asks for. Default 4. */
  defaultTopicQueueNums?: number;
  /** The template topic of auto-creation. Default TBW102. */
  createTopicKey?: string;
  /** Skipping brokers whose sends were slow or failed (./latency-fault.ts). Default on. */
  latencyFault?: LatencyFaultOptions;
  /**
   * Gather concurrent `send()`s of a topic into one SEND_BATCH_MESSAGE (RocketMQ 5's autoBatch;
   * ./auto-batch.ts): true for the defaults (maxDelayMs 0, maxMessages 1,000, maxBytes 128 KiB,
   * totalMaxBytes 32 MiB), or some of them. Each send still gets its own SendResult; a send waits up
   * to maxDelayMs for company. Default off.
   */
  autoBatch?: boolean | AutoBatchOptions;
}

export interface SendOptions {
  /** Send to exactly this queue (retries stay on it). */
  queue?: MessageQueue;
  /** Pick the queue from the topic's write queues (sorted); retries stay on the pick. */
  selector?: MessageQueueSelector;
  /** This send's time, retries included, instead of sendTimeoutMs. */
  timeoutMs?: number;
  /**
   * Reuse this message id (UNIQ_KEY) instead of making one: a re-send of a message, such as one
   * taken from a dead-letter queue, keeps the id its consumers deduplicate by. 1 to 128 of
   * [0-9A-Za-z_-]. Single sends only.
   */
  msgId?: string;
}

/** Limits on the options (units in the names). */
export const PRODUCER_LIMITS = {
  retryTimesMax: 16,
  sendTimeoutMsMax: 10 * 60_000,
  groupCharsMax: 255,
  defaultTopicQueueNumsMax: 1024,
} as const;

const GROUP_PATTERN = /^[%|a-zA-Z0-9_-]+$/;

function invalid(message: string): TsmqError {
  return new TsmqError('ARGUMENT_INVALID', message);
}

/** createTopicKey's route cut to what an auto-created topic gets (RocketMQ does the same). */
function templateRoute(template: TopicRouteData, queueNums: number): TopicRouteData {
  return {
    ...template,
    queueDatas: template.queueDatas.map((q) => {
      const n = Math.min(queueNums, q.readQueueNums);
      return { ...q, readQueueNums: n, writeQueueNums: n };
    }),
  };
}

type State = 'new' | 'running' | 'closing' | 'closed';

/** First pause before asking a broker again that answered SYSTEM_BUSY or FLOW_CONTROL, ms (doubles). */
const BUSY_BACKOFF_MS = 50;
const BUSY_BACKOFF_MAX_MS = 1_000;

/** What a batch's header says of every message in it (the broker adds it to each one's properties). */
const BATCH_WAIT_PROPERTIES = encodeProperties({ [MessageProperty.WAIT]: 'true' });
const BATCH_NO_WAIT_PROPERTIES = encodeProperties({ [MessageProperty.WAIT]: 'false' });

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

type Attempt<T> = (mq: MessageQueue, addr: string, timeoutMs: number) => Promise<T>;

export class Producer {
  readonly group: string;
  protected readonly instance: ClientInstance;
  private readonly logger: Logger;
  /** Thins the 'send attempt failed' warnings of a flood of failing sends. */
  private readonly attemptWarnings = new WarnThrottle();
  private readonly sendTimeoutMs: number;
  private readonly retryTimes: number;
  private readonly defaultTopicQueueNums: number;
  private readonly createTopicKey: string;
  private readonly limits: SendLimits;
  private readonly roundRobin = new RoundRobinSelector();
  private readonly faults: LatencyFaultTolerance;
  private state: State = 'new';
  private closing: Promise<void> | undefined;
  /** Topics sent to: the instance keeps their routes fresh. */
  private readonly topicsSent = new Set<string>();
  /** Routes borrowed from createTopicKey for topics the name servers do not know yet. */
  private readonly templateRoutes = new Map<string, TopicRouteData>();
  private readonly routeFetches = new Map<string, Promise<TopicRouteData>>();
  /** Master addresses this producer has heartbeated (or is about to). */
  private readonly knownBrokers = new Set<string>();
  /** Write queues by the route they were worked out from (see queuesOf). */
  private readonly queuesByRoute = new WeakMap<TopicRouteData, { topic: string; queues: MessageQueue[] }>();
  /** Sends and background heartbeats not yet settled; shutdown waits for them. */
  private readonly inFlight = new Set<Promise<unknown>>();
  /** The auto-batch accumulator, when autoBatch is on. */
  private readonly batcher: AutoBatcher | undefined;
  /** The request context of every auto-batch (they differ only in topic, queue and body). */
  private readonly batchContext: RequestContext;

  constructor(opts: ProducerOptions) {
    const group = opts?.group;
    if (
      typeof group !== 'string' ||
      !GROUP_PATTERN.test(group) ||
      group.length > PRODUCER_LIMITS.groupCharsMax
    ) {
      throw invalid(
        `the producer group ${JSON.stringify(group)} must be 1..${PRODUCER_LIMITS.groupCharsMax} characters of [%|a-zA-Z0-9_-]`,
      );
    }
    this.group = group;
    this.sendTimeoutMs = intOption(
      'sendTimeoutMs',
      opts.sendTimeoutMs,
      3000,
      1,
      PRODUCER_LIMITS.sendTimeoutMsMax,
    );
    this.retryTimes = intOption(
      'retryTimesWhenSendFailed',
      opts.retryTimesWhenSendFailed,
      2,
      0,
      PRODUCER_LIMITS.retryTimesMax,
    );
    this.defaultTopicQueueNums = intOption(
      'defaultTopicQueueNums',
      opts.defaultTopicQueueNums,
      4,
      1,
      PRODUCER_LIMITS.defaultTopicQueueNumsMax,
    );
    const maxMessageBytes = intOption('maxMessageBytes', opts.maxMessageBytes, 4 * 1024 * 1024, 1, 2 ** 30);
    const compressOverBytes = opts.compressOverBytes ?? 4096;
    if (!(compressOverBytes >= 0)) throw invalid(`compressOverBytes is ${compressOverBytes}; it must be ≥ 0`);
    this.createTopicKey = opts.createTopicKey ?? 'TBW102';
    if (!GROUP_PATTERN.test(this.createTopicKey)) {
      throw invalid(`createTopicKey ${JSON.stringify(this.createTopicKey)} is not a valid topic name`);
    }
    this.faults = new LatencyFaultTolerance(opts.latencyFault);
    this.instance = new ClientInstance(opts);
    this.logger = this.instance.logger;
    const clientIp = opts.clientIp ?? this.instance.clientId.slice(0, this.instance.clientId.indexOf('@'));
    this.limits = { maxMessageBytes, compressOverBytes, createTopicKey: this.createTopicKey, clientIp };
    this.batchContext = this.requestContext(true);
    const batching = autoBatchSettings(opts.autoBatch, maxMessageBytes);
    this.batcher = batching && new AutoBatcher(batching, (b) => this.sendAutoBatch(b), this.sendTimeoutMs);
  }

  /** The auto-batch settings in force, or undefined when autoBatch is off. */
  get autoBatch(): Readonly<AutoBatchSettings> | undefined {
    return this.batcher?.settings;
  }

  /** This client's id in heartbeats (`ip@instanceName`). */
  get clientId(): string {
    return this.instance.clientId;
  }

  get running(): boolean {
    return this.state === 'running';
  }

  /** The topics this producer has sent to (their routes are kept fresh). */
  topics(): string[] {
    return [...this.topicsSent];
  }

  /** Starts the client: registers the group and heartbeats every broker known so far. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw this.stateError();
    this.instance.registerProducer({ group: this.group, topics: () => this.topicsSent });
    this.instance.start();
    this.state = 'running';
    await this.instance.heartbeat();
  }

  /**
   * Stops: new sends fail with CLIENT_STATE_INVALID; sends in flight finish (within their
   * timeout); then UNREGISTER_CLIENT to every broker and the connections close. Safe to repeat.
   */
  shutdown(): Promise<void> {
    this.closing ??= this.close();
    return this.closing;
  }

  private async close(): Promise<void> {
    const wasRunning = this.state === 'running';
    this.state = 'closing';
    if (wasRunning) {
      // Auto-batched sends still gathering leave now; waiting ones as room frees up.
      if (this.batcher) await this.batcher.drain();
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      await this.instance.unregister('producer', this.group);
    }
    this.instance.close();
    this.state = 'closed';
  }

  /**
   * Sends one message and resolves when the broker stored it (or rejects; see the file header).
   * With `opts.queue` or `opts.selector` it is an ordered send: every attempt uses one queue.
   */
  send(msg: Message, opts: SendOptions = {}): Promise<SendResult> {
    if (
      this.batcher !== undefined &&
      opts.queue === undefined &&
      opts.selector === undefined &&
      opts.timeoutMs === undefined
    ) {
      return this.sendAutoBatched(this.batcher, msg, opts, false);
    }
    return this.sendPrepared(msg, opts, false);
  }

  /**
   * A send that joins an auto-batch if the message may (./auto-batch.ts says which), else goes
   * the normal way. The message is checked first: an invalid one fails alone.
   */
  private sendAutoBatched(
    batcher: AutoBatcher,
    msg: Message,
    opts: SendOptions,
    oneway: false,
  ): Promise<SendResult>;
  private sendAutoBatched(batcher: AutoBatcher, msg: Message, opts: SendOptions, oneway: true): Promise<void>;
  private sendAutoBatched(
    batcher: AutoBatcher,
    msg: Message,
    opts: SendOptions,
    oneway: boolean,
  ): Promise<unknown> {
    if (this.state !== 'running') return Promise.reject(this.stateError());
    const limits = this.limits;
    if (
      msg === null ||
      typeof msg !== 'object' ||
      (msg.delayLevel !== undefined && msg.delayLevel !== 0) ||
      msg.deliverAt !== undefined ||
      msg.delayMs !== undefined ||
      typeof msg.topic !== 'string' ||
      isRetryTopic(msg.topic) ||
      (typeof msg.body !== 'string' && msg.body?.length >= limits.compressOverBytes)
    ) {
      return oneway ? this.sendOnewayAlone(msg, opts) : this.sendPrepared(msg, opts, false);
    }
    let prepared: PreparedMessage;
    try {
      prepared = prepareMessage(msg, limits, Date.now(), opts.msgId, false);
    } catch (e) {
      return Promise.reject(e);
    }
    const body = prepared.body;
    const propertiesBytes = Buffer.byteLength(prepared.properties, 'utf8');
    if (body.length >= limits.compressOverBytes || !batcher.fits(body.length, propertiesBytes)) {
      return oneway ? this.sendOnewayAlone(msg, opts) : this.sendPrepared(msg, opts, false);
    }
    return batcher.add(
      prepared.topic,
      msg.waitStoreMsgOK !== false,
      prepared.flag,
      body,
      prepared.properties,
      prepared.msgId,
      batchInnerBytes(body.length, propertiesBytes),
      oneway,
    );
  }

  /** Sends one auto-batch with the usual attempts; one result per message, in order. */
  private sendAutoBatch(b: OpenBatch): Promise<SendResult[]> {
    const prepared: PreparedMessage = {
      topic: b.topic,
      body: b.body(),
      sysFlag: 0,
      flag: 0,
      properties: b.wait ? BATCH_WAIT_PROPERTIES : BATCH_NO_WAIT_PROPERTIES,
      msgId: '',
    };
    const ctx = this.batchContext;
    const p = this.sendWithRetries(
      b.topic,
      { topic: b.topic, body: prepared.body },
      {},
      (mq, addr, timeoutMs) =>
        this.instance
          .invoke(addr, sendRequest(prepared, mq, ctx), timeoutMs)
          .then((res) => splitBatchResponse(res, mq, b.msgIds, addr)),
    );
    this.background(p);
    if (b.leaving.length > 0) {
      p.catch((e: unknown) =>
        this.logger.warn(
          { topic: b.topic, oneway: b.leaving.length, err: (e as Error).message },
          'an auto-batch holding one-way sends failed; they are lost',
        ),
      );
    }
    return p;
  }

  /**
   * `send`, or with `half` the half message of a transaction: TRANSACTION_PREPARED with TRAN_MSG
   * and PGROUP, which the broker keeps invisible until END_TRANSACTION (./transaction-producer.ts).
   */
  protected sendPrepared(msg: Message, opts: SendOptions, half: boolean): Promise<SendResult> {
    // Plain functions and .then rather than async ones: every send passes here, and each async
    // layer costs a promise and a turn of the queue. A throw becomes the rejection all the same.
    return this.track(() => {
      let prepared: PreparedMessage;
      try {
        prepared = prepareMessage(msg, this.limits, Date.now(), opts.msgId);
      } catch (e) {
        return Promise.reject(e);
      }
      if (half) {
        prepared.sysFlag |= SysFlag.TRANSACTION_PREPARED_TYPE;
        prepared.properties += encodeProperties({
          [MessageProperty.TRAN_MSG]: 'true',
          [MessageProperty.PGROUP]: this.group,
        });
      }
      const ctx = this.requestContext(false);
      return this.sendWithRetries(prepared.topic, msg, opts, (mq, addr, timeoutMs) =>
        this.instance
          .invoke(addr, sendRequest(prepared, mq, ctx), timeoutMs)
          .then((res) => parseSendResponse(res, mq, prepared.msgId, addr)),
      );
    });
  }

  /**
   * An ordered send: every message of one sharding key goes to the same queue,
   * queues[|javaHash(key) % n|] of the topic's sorted write queues, and stays there on retries.
   */
  sendOrderly(
    msg: Message,
    shardingKey: string,
    opts: Omit<SendOptions, 'selector' | 'queue'> = {},
  ): Promise<SendResult> {
    if (typeof shardingKey !== 'string') {
      return Promise.reject(invalid(`the sharding key must be a string, not ${typeof shardingKey}`));
    }
    return this.send(msg, { ...opts, selector: selectByShardingKey(shardingKey) });
  }

  /**
   * Sends without waiting for an answer: resolves once the request is handed to the broker's
   * connection. Only a failure to connect moves it to another broker (nothing was sent then).
   * With autoBatch, a message that may join a batch does, and this resolves when the batch leaves.
   */
  sendOneway(msg: Message, opts: SendOptions = {}): Promise<void> {
    if (
      this.batcher !== undefined &&
      opts.queue === undefined &&
      opts.selector === undefined &&
      opts.timeoutMs === undefined
    ) {
      return this.sendAutoBatched(this.batcher, msg, opts, true);
    }
    return this.sendOnewayAlone(msg, opts);
  }

  private sendOnewayAlone(msg: Message, opts: SendOptions): Promise<void> {
    return this.track(async () => {
      const prepared = prepareMessage(msg, this.limits, Date.now(), opts.msgId);
      const ctx = this.requestContext(false);
      await this.sendWithRetries(prepared.topic, msg, opts, async (mq, addr, timeoutMs) => {
        const channel = await this.instance.remoting.channel(addr, timeoutMs);
        channel.invokeOneway(sendRequest(prepared, mq, ctx));
      });
    });
  }

  /**
   * Sends messages of one topic in one request to one queue, stored contiguously (consecutive
   * queue offsets) or not at all. No delay levels; at most maxMessageBytes encoded; no compression.
   */
  sendBatch(msgs: readonly Message[], opts: SendOptions = {}): Promise<BatchSendResult> {
    return this.track(async () => {
      const batch = prepareBatch(msgs, this.limits);
      const ctx = this.requestContext(true);
      return this.sendWithRetries(batch.topic, msgs[0]!, opts, async (mq, addr, timeoutMs) => {
        const res = await this.instance.invoke(addr, sendRequest(batch, mq, ctx), timeoutMs);
        return parseBatchResponse(res, mq, batch, addr);
      });
    });
  }

  // ------------------------------------------------------------------------------------------
  // The attempt loop
  // ------------------------------------------------------------------------------------------

  private requestContext(batch: boolean): RequestContext {
    return {
      group: this.group,
      createTopicKey: this.createTopicKey,
      defaultTopicQueueNums: this.defaultTopicQueueNums,
      batch,
    };
  }

  private async sendWithRetries<T>(
    topic: string,
    msg: Message,
    opts: SendOptions,
    attempt: Attempt<T>,
  ): Promise<T> {
    const timeoutMs = intOption(
      'timeoutMs',
      opts.timeoutMs,
      this.sendTimeoutMs,
      1,
      PRODUCER_LIMITS.sendTimeoutMsMax,
    );
    let fixed: MessageQueue | undefined;
    if (opts.queue !== undefined) fixed = this.checkedQueue(opts.queue, topic, 'the queue given');
    const started = Date.now();
    const deadline = started + timeoutMs;
    const attempts = 1 + this.retryTimes;
    let queues: MessageQueue[] | undefined;
    let lastBroker: string | undefined;
    let lastError: unknown;
    let tried = 0;
    let busyTimes = 0;
    for (let i = 0; i < attempts && Date.now() < deadline; i++) {
      try {
        // The first attempt of a topic with a route in hand skips a turn of the promise queue.
        const route = i === 0 ? this.cachedRouteOf(topic) : undefined;
        queues = route ? this.queuesOf(topic, route) : await this.writeQueues(topic, i > 0);
      } catch (e) {
        // Before the first attempt a routing failure is the answer; later, keep the old route.
        if (queues === undefined) throw e;
        this.logger.warn({ topic, err: (e as Error).message }, 'route re-fetch after a failed send failed');
      }
      let mq: MessageQueue;
      if (fixed) mq = fixed;
      else if (opts.selector)
        mq = fixed = this.checkedQueue(opts.selector(queues, msg), topic, 'the selector', queues);
      else mq = this.roundRobin.select(topic, this.faults.filter(queues), lastBroker);
      // The broker said busy or over a limit: give it a moment before asking it again.
      if (busyTimes > 0 && mq.brokerName === lastBroker) {
        await sleep(
          Math.min(BUSY_BACKOFF_MS * 2 ** (busyTimes - 1), BUSY_BACKOFF_MAX_MS, deadline - Date.now()),
        );
      }
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) break;
      tried++;
      const attemptStart = Date.now();
      try {
        const addr = this.instance.masterAddr(mq.brokerName);
        if (addr === undefined) {
          throw new TsmqError('NO_ROUTE', `no route names a master of broker ${mq.brokerName}`);
        }
        const result = await attempt(mq, addr, remainingMs);
        this.faults.update(mq.brokerName, Date.now() - attemptStart, false);
        return result;
      } catch (e) {
        lastError = e;
        lastBroker = mq.brokerName;
        const limited = isBrokerResponseError(e, ResponseCode.FLOW_CONTROL);
        const busy = limited || isBrokerResponseError(e, ResponseCode.SYSTEM_BUSY);
        busyTimes = busy ? busyTimes + 1 : 0;
        // A topic or client over its rate limit says nothing of the broker's health.
        this.faults.update(mq.brokerName, Date.now() - attemptStart, !limited);
        const retryable = isRetryableSendError(e) || (isTsmqError(e, 'NO_ROUTE') && fixed !== undefined);
        if (!retryable) throw e;
        // One line per broker and kind of failure every few seconds, not one per attempt.
        this.attemptWarnings.warnFailure(
          this.logger,
          mq.brokerName,
          e,
          { topic, brokerName: mq.brokerName, queueId: mq.queueId, attempt: tried },
          'send attempt failed',
        );
      }
    }
    const elapsedMs = Date.now() - started;
    const why =
      lastError === undefined
        ? `the send timeout (${timeoutMs} ms) ran out before any attempt`
        : `${(lastError as Error).message ?? String(lastError)}`;
    throw new TsmqError(
      'SEND_FAILED',
      `sending to topic ${topic} failed after ${tried} attempt(s) in ${elapsedMs} ms` +
        `${tried < attempts ? ` (the ${timeoutMs} ms send timeout ran out)` : ''}: ${why}`,
      { cause: lastError },
    );
  }

  /** A queue the caller named (or their selector picked): of this topic, and one of `queues`. */
  private checkedQueue(
    mq: MessageQueue,
    topic: string,
    what: string,
    queues?: readonly MessageQueue[],
  ): MessageQueue {
    if (mq === null || typeof mq !== 'object' || mq.topic !== topic) {
      throw invalid(`${what} must be a queue of topic ${topic}, not ${JSON.stringify(mq)}`);
    }
    if (typeof mq.brokerName !== 'string' || !Number.isInteger(mq.queueId) || mq.queueId < 0) {
      throw invalid(`${what} is not a valid queue: ${JSON.stringify(mq)}`);
    }
    if (queues && !queues.some((q) => mqKey(q) === mqKey(mq))) {
      throw invalid(`${what} picked ${mqKey(mq)}, which is not a write queue of ${topic}`);
    }
    return { topic: mq.topic, brokerName: mq.brokerName, queueId: mq.queueId };
  }

  // ------------------------------------------------------------------------------------------
  // Routes
  // ------------------------------------------------------------------------------------------

  /** The topic's write queues, sorted; `refresh` asks the name servers again. */
  private async writeQueues(topic: string, refresh: boolean): Promise<MessageQueue[]> {
    return this.queuesOf(topic, await this.routeOf(topic, refresh));
  }

  /**
   * The write queues of a route of `topic`. They are worked out once per route object (a refresh
   * brings a new one) and shared by the sends, which only read them.
   */
  private queuesOf(topic: string, route: TopicRouteData): MessageQueue[] {
    // A topic with a route (its own or the template's) is one whose route the instance refreshes.
    this.topicsSent.add(topic);
    let known = this.queuesByRoute.get(route);
    if (known === undefined || known.topic !== topic) {
      this.noteBrokers(route);
      known = { topic, queues: this.instance.publishQueues(topic, route) };
      this.queuesByRoute.set(route, known);
    }
    if (known.queues.length === 0) {
      throw new TsmqError('NO_ROUTE', `topic ${topic} has no writable queue on a broker with a master`);
    }
    return known.queues;
  }

  /** The route in hand for `topic` (the name servers' or a borrowed one), without asking anyone. */
  private cachedRouteOf(topic: string): TopicRouteData | undefined {
    const cached = this.instance.cachedRoute(topic);
    if (cached) {
      this.templateRoutes.delete(topic);
      return cached;
    }
    return this.templateRoutes.get(topic);
  }

  private routeOf(topic: string, refresh: boolean): Promise<TopicRouteData> {
    if (!refresh) {
      const cached = this.cachedRouteOf(topic);
      if (cached) return Promise.resolve(cached);
    }
    // Concurrent sends to a topic share one fetch.
    let pending = this.routeFetches.get(topic);
    if (!pending) {
      pending = this.fetchRoute(topic).finally(() => this.routeFetches.delete(topic));
      this.routeFetches.set(topic, pending);
    }
    return pending;
  }

  /** The name servers' route of the topic, or createTopicKey's cut to size when they have none. */
  private async fetchRoute(topic: string): Promise<TopicRouteData> {
    try {
      const route = await this.instance.route(topic, true);
      this.templateRoutes.delete(topic);
      return route;
    } catch (e) {
      if (!isTsmqError(e, 'NO_ROUTE')) throw e;
    }
    let template: TopicRouteData;
    try {
      template = await this.instance.route(this.createTopicKey, true);
    } catch (e) {
      if (!isTsmqError(e, 'NO_ROUTE')) throw e;
      throw new TsmqError(
        'NO_ROUTE',
        `no route for topic ${topic}: no name server knows it, and no broker offers ${this.createTopicKey} ` +
          'to create it from (create the topic, or enable autoCreateTopicEnable on a broker)',
        { cause: e },
      );
    }
    const borrowed = templateRoute(template, this.defaultTopicQueueNums);
    this.templateRoutes.set(topic, borrowed);
    return borrowed;
  }

  /** Heartbeats all brokers when a route names a master this producer has not seen. */
  private noteBrokers(route: TopicRouteData): void {
    let fresh = false;
    for (const b of route.brokerDatas) {
      const addr = b.brokerAddrs[MASTER_ID];
      if (addr !== undefined && !this.knownBrokers.has(addr)) {
        this.knownBrokers.add(addr);
        fresh = true;
      }
    }
    if (fresh && this.state === 'running') {
      this.background(
        this.instance
          .heartbeat()
          .catch((e) => this.logger.warn({ err: (e as Error).message }, 'heartbeat failed')),
      );
    }
  }

  // ------------------------------------------------------------------------------------------
  // State
  // ------------------------------------------------------------------------------------------

  private stateError(): TsmqError {
    const why =
      this.state === 'new'
        ? 'is not started: call start() first'
        : this.state === 'running'
          ? 'is already started'
          : this.state === 'closing'
            ? 'is shutting down'
            : 'is shut down';
    return new TsmqError('CLIENT_STATE_INVALID', `the producer of group ${this.group} ${why}`);
  }

  /** Runs a call if the producer is running, and remembers it until it settles. */
  private track<T>(call: () => Promise<T>): Promise<T> {
    if (this.state !== 'running') return Promise.reject(this.stateError());
    const p = call();
    this.background(p);
    return p;
  }

  private background(p: Promise<unknown>): void {
    this.inFlight.add(p);
    const done = () => this.inFlight.delete(p);
    p.then(done, done);
  }
}
