/**
 * One client's connection to a cluster (RocketMQ's MQClientInstance): the name server client, the
 * route cache, the broker address table, periodic route refresh and heartbeats, and the handler of
 * the requests brokers send back (NOTIFY_CONSUMER_IDS_CHANGED). Producers and consumers each own
 * one; they register themselves as members so heartbeats and route refreshes cover their groups
 * and topics.
 *
 * Timers (RocketMQ's defaults): routes every pollNameServerInterval (30 s), heartbeats to every
 * known broker every heartbeatBrokerInterval (30 s). Both are unref'd: an idle client never keeps
 * the process alive on its own.
 */
import os from 'node:os';
import { TsmqError } from '../common/errors.js';
import { createLogger, type Logger } from '../common/log.js';
import {
  type BrokerData,
  type ConsumerData,
  createRequest,
  createResponse,
  decodeResetOffsetBody,
  encodeHeartbeatData,
  type RemotingCommand,
  RequestCode,
  ResponseCode,
  SerializeType,
  type TopicRouteData,
} from '../protocol/index.js';
import { RemotingClient } from '../remoting/index.js';
import { BrokerResponseError } from './errors.js';
import { compareQueues, type MessageQueue } from './message.js';
import { NamesrvClient, parseJsonBody } from './namesrv-client.js';

export interface ClientOptions {
  /** Name server addresses: "host:port", several separated by ';', or an array. */
  namesrvAddr: string | readonly string[];
  /** Distinguishes clients of one process; default: the pid and a per-process counter. */
  instanceName?: string;
  /** The IP this client reports in its client id; default: the first non-internal IPv4. */
  clientIp?: string;
  /** Route refresh period, ms (pollNameServerInterval). Default 30,000. */
  pollNameServerIntervalMs?: number;
  /** Heartbeat period, ms (heartbeatBrokerInterval). Default 30,000. */
  heartbeatBrokerIntervalMs?: number;
  /** Timeout of a call to a name server or broker that names none, ms. Default 3,000. */
  requestTimeoutMs?: number;
  /**
   * Header encoding of requests: 'ROCKETMQ' (RocketMQ's binary headers, the default: about 1.3×
   * the sends per second of JSON on the broker) or 'JSON'. Every RocketMQ 4.x server reads both.
   */
  serializeType?: 'JSON' | 'ROCKETMQ';
  logger?: Logger;
}

/** A producer registered with its instance. */
export interface ProducerMember {
  readonly group: string;
  /** Topics whose routes the instance keeps fresh for this producer. */
  topics(): Iterable<string>;
}

/** A consumer registered with its instance. */
export interface ConsumerMember {
  readonly group: string;
  /** What the heartbeat tells brokers about this consumer (its subscriptions). */
  consumerData(): ConsumerData;
  /** The broker said the group's members changed: rebalance soon. */
  onConsumerIdsChanged(): void;
  /** Routes were refreshed (queues may have appeared or gone). */
  onRoutesRefreshed?(): void;
  /**
   * An admin moved the group's offsets (RESET_CONSUMER_CLIENT_OFFSET): drop what is cached for
   * these queues and continue from the given offsets. Resolves once the consumer has switched.
   */
  resetOffsets?(
    topic: string,
    offsets: ReadonlyArray<{ queue: MessageQueue; offset: number }>,
  ): Promise<void>;
}

/** QueueData.perm bits (RocketMQ's PermName). */
export const PERM_READ = 4;
export const PERM_WRITE = 2;
export const MASTER_ID = '0';

let instanceCounter = 0;

function defaultClientIp(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family === 'IPv4' && !a.internal) return a.address;
    }
  }
  return '127.0.0.1';
}

export class ClientInstance {
  readonly clientId: string;
  readonly remoting: RemotingClient;
  readonly namesrv: NamesrvClient;
  readonly logger: Logger;
  readonly requestTimeoutMs: number;
  private readonly routes = new Map<string, TopicRouteData>();
  /** brokerName → brokerId → address, from every route seen. */
  private readonly brokers = new Map<string, BrokerData>();
  private readonly producers = new Map<string, ProducerMember>();
  private readonly consumers = new Map<string, ConsumerMember>();
  private readonly timers: NodeJS.Timeout[] = [];
  private state: 'new' | 'running' | 'closed' = 'new';

  constructor(private readonly opts: ClientOptions) {
    const instanceName = opts.instanceName ?? `${process.pid}#${instanceCounter++}`;
    this.clientId = `${opts.clientIp ?? defaultClientIp()}@${instanceName}`;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 3000;
    this.logger = opts.logger ?? createLogger('tsmq-client', process.env.TSMQ_LOG_LEVEL ?? 'warn');
    this.remoting = new RemotingClient({
      defaultTimeoutMs: this.requestTimeoutMs,
      requestSerializeType: SerializeType[opts.serializeType ?? 'ROCKETMQ'],
    });
    this.namesrv = new NamesrvClient(this.remoting, opts.namesrvAddr, this.requestTimeoutMs);
    this.remoting.registerProcessor(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, (req) => {
      const group = req.extFields?.consumerGroup;
      const member = group === undefined ? undefined : this.consumers.get(group);
      if (member) {
        this.logger.debug({ group }, 'consumer ids changed');
        member.onConsumerIdsChanged();
      }
      return undefined;
    });
    this.remoting.registerProcessor(RequestCode.RESET_CONSUMER_CLIENT_OFFSET, async (req) => {
      const group = req.extFields?.group;
      const topic = req.extFields?.topic;
      const member = group === undefined ? undefined : this.consumers.get(group);
      if (!member || topic === undefined) {
        return createResponse(req, ResponseCode.SYSTEM_ERROR, `no consumer of group ${group} on this client`);
      }
      if (!member.resetOffsets) {
        return createResponse(req, ResponseCode.SYSTEM_ERROR, `consumer ${group} cannot reset its offsets`);
      }
      const offsets = decodeResetOffsetBody(req.body).offsetTable.map((e) => ({
        queue: e.queue,
        offset: e.offsets,
      }));
      this.logger.info({ group, topic, queues: offsets.length }, 'offsets reset by an admin');
      await member.resetOffsets(topic, offsets);
      return createResponse(req, ResponseCode.SUCCESS);
    });
  }

  get running(): boolean {
    return this.state === 'running';
  }

  start(): void {
    if (this.state !== 'new') throw new TsmqError('CLIENT_STATE_INVALID', `the client is ${this.state}`);
    this.state = 'running';
    const every = (ms: number, fn: () => Promise<void>) => {
      const t = setInterval(() => {
        fn().catch((e) => this.logger.warn({ err: (e as Error).message }, 'periodic client task failed'));
      }, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.opts.pollNameServerIntervalMs ?? 30_000, () => this.refreshRoutes());
    every(this.opts.heartbeatBrokerIntervalMs ?? 30_000, () => this.heartbeat());
  }

  registerProducer(member: ProducerMember): void {
    if (this.producers.has(member.group)) {
      throw new TsmqError(
        'CLIENT_STATE_INVALID',
        `producer group ${member.group} is already registered on this client`,
      );
    }
    this.producers.set(member.group, member);
  }

  registerConsumer(member: ConsumerMember): void {
    if (this.consumers.has(member.group)) {
      throw new TsmqError(
        'CLIENT_STATE_INVALID',
        `consumer group ${member.group} is already registered on this client`,
      );
    }
    this.consumers.set(member.group, member);
  }

  // ------------------------------------------------------------------------------------------
  // Routes
  // ------------------------------------------------------------------------------------------

  /** The topic's route: cached, or fetched now. Throws NO_ROUTE when no name server knows it. */
  async route(topic: string, refresh = false): Promise<TopicRouteData> {
    const cached = refresh ? undefined : this.routes.get(topic);
    if (cached) return cached;
    const route = await this.namesrv.routeOf(topic);
    if (!route) {
      this.routes.delete(topic);
      throw new TsmqError(
        'NO_ROUTE',
        `no route for topic ${topic}: it does not exist or no broker serves it`,
      );
    }
    this.putRoute(topic, route);
    return route;
  }

  /** The cached route, if any (no network). */
  cachedRoute(topic: string): TopicRouteData | undefined {
    return this.routes.get(topic);
  }

  private putRoute(topic: string, route: TopicRouteData): void {
    this.routes.set(topic, route);
    for (const b of route.brokerDatas) this.brokers.set(b.brokerName, b);
  }

  /** Re-reads the routes of every topic a member uses; keeps a route the name servers lost. */
  async refreshRoutes(): Promise<void> {
    const topics = new Set<string>();
    for (const p of this.producers.values()) for (const t of p.topics()) topics.add(t);
    for (const c of this.consumers.values()) {
      for (const s of c.consumerData().subscriptionDataSet) topics.add(s.topic);
    }
    for (const topic of topics) {
      try {
        const route = await this.namesrv.routeOf(topic);
        if (route) this.putRoute(topic, route);
        else this.routes.delete(topic);
      } catch (e) {
        this.logger.warn({ topic, err: (e as Error).message }, 'route refresh failed');
      }
    }
    for (const c of this.consumers.values()) c.onRoutesRefreshed?.();
  }

  /** Queues a producer may write: writable queue data of brokers that have a master. */
  publishQueues(topic: string, route: TopicRouteData): MessageQueue[] {
    const out: MessageQueue[] = [];
    for (const q of route.queueDatas) {
      if ((q.perm & PERM_WRITE) === 0) continue;
      const b = route.brokerDatas.find((d) => d.brokerName === q.brokerName);
      if (!b?.brokerAddrs[MASTER_ID]) continue;
      for (let i = 0; i < q.writeQueueNums; i++) out.push({ topic, brokerName: q.brokerName, queueId: i });
    }
    return out.sort(compareQueues);
  }

  /** Queues a consumer may read. */
  subscribeQueues(topic: string, route: TopicRouteData): MessageQueue[] {
    const out: MessageQueue[] = [];
    for (const q of route.queueDatas) {
      if ((q.perm & PERM_READ) === 0) continue;
      for (let i = 0; i < q.readQueueNums; i++) out.push({ topic, brokerName: q.brokerName, queueId: i });
    }
    return out.sort(compareQueues);
  }

  /** The master's address of a broker group, if a route named it. */
  masterAddr(brokerName: string): string | undefined {
    return this.brokers.get(brokerName)?.brokerAddrs[MASTER_ID];
  }

  /** The master's address, or else any known address of the group. */
  anyAddr(brokerName: string): string | undefined {
    const addrs = this.brokers.get(brokerName)?.brokerAddrs;
    if (!addrs) return undefined;
    return addrs[MASTER_ID] ?? Object.values(addrs)[0];
  }

  /**
   * Learns every broker of every cluster from the name servers (not only those of routes used so
   * far), so heartbeats reach them all: a transactional producer must be known to a broker that
   * holds its group's half messages before it sends anything. Resolves false when no name server
   * answered.
   */
  async learnAllBrokers(): Promise<boolean> {
    try {
      const info = await this.namesrv.clusterInfo();
      for (const [name, data] of Object.entries(info.brokerAddrTable)) this.brokers.set(name, data);
      return true;
    } catch (e) {
      this.logger.warn({ err: (e as Error).message }, 'could not read the cluster from the name servers');
      return false;
    }
  }

  /** Every broker address a route named (masters and slaves). */
  allBrokerAddrs(): string[] {
    const out = new Set<string>();
    for (const b of this.brokers.values()) for (const a of Object.values(b.brokerAddrs)) out.add(a);
    return [...out];
  }

  // ------------------------------------------------------------------------------------------
  // Calls
  // ------------------------------------------------------------------------------------------

  /** Calls a broker and returns the response; a transport failure throws. */
  invoke(
    addr: string,
    request: RemotingCommand,
    timeoutMs = this.requestTimeoutMs,
  ): Promise<RemotingCommand> {
    return this.remoting.invoke(addr, request, timeoutMs);
  }

  /** Calls a broker and throws BrokerResponseError unless the answer is SUCCESS. */
  async invokeOk(
    addr: string,
    request: RemotingCommand,
    what: string,
    timeoutMs?: number,
  ): Promise<RemotingCommand> {
    const res = await this.invoke(addr, request, timeoutMs);
    if (res.code !== ResponseCode.SUCCESS) throw new BrokerResponseError(addr, res, what);
    return res;
  }

  /** The client ids of a consumer group, asked of one broker that serves the topic. */
  async consumerIds(group: string, topic: string): Promise<string[]> {
    const route = await this.route(topic);
    const names = route.brokerDatas.map((b) => b.brokerName);
    const addr = names.map((n) => this.anyAddr(n)).find((a) => a !== undefined);
    if (!addr) throw new TsmqError('NO_ROUTE', `no broker serves topic ${topic}`);
    const req = createRequest(RequestCode.GET_CONSUMER_LIST_BY_GROUP, { consumerGroup: group });
    const res = await this.invoke(addr, req);
    // A broker that has no member of the group (it restarted, our heartbeat is not in yet) says so
    // with SYSTEM_ERROR: that is an empty list, which makes the caller heartbeat at once.
    if (res.code === ResponseCode.SYSTEM_ERROR && /no consumer for this group/.test(res.remark ?? ''))
      return [];
    if (res.code !== ResponseCode.SUCCESS) throw new BrokerResponseError(addr, res, 'consumer list');
    return parseJsonBody<{ consumerIdList?: string[] }>(res.body, 'ConsumerListByGroup').consumerIdList ?? [];
  }

  // ------------------------------------------------------------------------------------------
  // Heartbeats
  // ------------------------------------------------------------------------------------------

  /** Sends HEART_BEAT (all groups of this client) to every known broker; failures are logged. */
  async heartbeat(): Promise<void> {
    if (this.producers.size === 0 && this.consumers.size === 0) return;
    const body = encodeHeartbeatData({
      clientID: this.clientId,
      producerDataSet: [...this.producers.keys()].map((groupName) => ({ groupName })),
      consumerDataSet: [...this.consumers.values()].map((c) => c.consumerData()),
    });
    await Promise.all(
      this.allBrokerAddrs().map(async (addr) => {
        try {
          await this.invokeOk(addr, { ...createRequest(RequestCode.HEART_BEAT), body }, 'heartbeat');
        } catch (e) {
          this.logger.warn({ addr, err: (e as Error).message }, 'heartbeat failed');
        }
      }),
    );
  }

  /** Tells every broker a group of this client is leaving (UNREGISTER_CLIENT), then forgets it. */
  async unregister(kind: 'producer' | 'consumer', group: string): Promise<void> {
    const header: Record<string, string> = { clientID: this.clientId };
    header[kind === 'producer' ? 'producerGroup' : 'consumerGroup'] = group;
    if (kind === 'producer') this.producers.delete(group);
    else this.consumers.delete(group);
    await Promise.all(
      this.allBrokerAddrs().map((addr) =>
        this.invoke(addr, createRequest(RequestCode.UNREGISTER_CLIENT, header)).catch((e) => {
          this.logger.warn({ addr, err: (e as Error).message }, 'unregister failed');
        }),
      ),
    );
  }

  /** Stops the timers and closes every connection. */
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const t of this.timers) clearInterval(t);
    this.remoting.close();
  }
}
