/**
 * The admin API (in the spirit of RocketMQ's MQAdminExt): what `tsmq topic|query|group|lag|
 * cluster` and the console use. Each call asks the name servers where things live, then the
 * brokers; nothing here keeps state beyond the connections of its ClientInstance.
 */
import { TsmqError } from '../common/errors.js';
import { decodeOffsetMsgId } from '../message/index.js';
import {
  type ClusterInfo,
  type ConsumerConnection,
  computeConsumeLag,
  createRequest,
  decodeConsumerConnection,
  decodeConsumeStats,
  decodeKVTable,
  decodeResetOffsetBody,
  decodeSubscriptionGroupWrapper,
  type QueueLag,
  RESET_TO_EARLIEST,
  RESET_TO_LATEST,
  RequestCode,
  ResponseCode,
  type SubscriptionGroupConfig,
} from '../protocol/index.js';
import { ClientInstance, type ClientOptions, MASTER_ID } from './client-instance.js';
import { type DeadLetter, readDeadLetters } from './dead-letters.js';
import { BrokerResponseError } from './errors.js';
import { type HalfMessage, readHalfMessages } from './half-messages.js';
import { decodeMessages, type MessageExt } from './message.js';

export interface BrokerRow {
  cluster: string;
  brokerName: string;
  brokerId: number;
  addr: string;
}

export interface TopicSpec {
  topic: string;
  readQueueNums?: number;
  writeQueueNums?: number;
  /** PermName bits: 2 write, 4 read (6 = read and write). */
  perm?: number;
  /** Create on every master of this cluster (default: every master the name servers know). */
  cluster?: string;
  /** Or on this one broker ("host:port"). */
  brokerAddr?: string;
  order?: boolean;
}

export interface QueryOptions {
  /** Only messages stored at or after this time (ms). Default 0. */
  beginMs?: number;
  /** Only messages stored before this time (ms). Default now + 1 s. */
  endMs?: number;
  /** Most messages asked of each broker. Default 64. */
  maxNum?: number;
}

export interface GroupLag {
  group: string;
  /** Every queue of every topic the group has offsets for, sorted. */
  queues: QueueLag[];
  /** Messages stored but not yet consumed by the group, summed over its queues. */
  totalLag: number;
}

export interface GroupRow {
  group: string;
  /** Brokers that know the group (its subscription group config). */
  brokers: string[];
  consumeEnable: boolean;
  consumeBroadcastEnable: boolean;
  retryMaxTimes: number;
  /** Live members (client ids) the brokers see, if any. */
  members: string[];
}

export class Admin {
  readonly instance: ClientInstance;

  constructor(opts: ClientOptions) {
    this.instance = new ClientInstance(opts);
  }

  close(): void {
    this.instance.close();
  }

  // ------------------------------------------------------------------------------------------
  // Cluster and topics
  // ------------------------------------------------------------------------------------------

  clusterInfo(): Promise<ClusterInfo> {
    return this.instance.namesrv.clusterInfo();
  }

  /** Every broker of every cluster, sorted by cluster, name and id. */
  async brokers(cluster?: string): Promise<BrokerRow[]> {
    const info = await this.clusterInfo();
    const rows: BrokerRow[] = [];
    for (const [clusterName, names] of Object.entries(info.clusterAddrTable)) {
      if (cluster !== undefined && clusterName !== cluster) continue;
      for (const name of names) {
        const data = info.brokerAddrTable[name];
        for (const [id, addr] of Object.entries(data?.brokerAddrs ?? {})) {
          rows.push({ cluster: clusterName, brokerName: name, brokerId: Number(id), addr });
        }
      }
    }
    return rows.sort(
      (a, b) =>
        a.cluster.localeCompare(b.cluster) ||
        a.brokerName.localeCompare(b.brokerName) ||
        a.brokerId - b.brokerId,
    );
  }

  /** Master addresses of a cluster (or all clusters); NO_ROUTE when there are none. */
  async masterAddrs(cluster?: string): Promise<string[]> {
    const masters = (await this.brokers(cluster)).filter((b) => String(b.brokerId) === MASTER_ID);
    if (masters.length === 0) {
      throw new TsmqError(
        'NO_ROUTE',
        cluster ? `cluster ${cluster} has no live master broker` : 'no live master broker',
      );
    }
    return masters.map((b) => b.addr);
  }

  topicList(): Promise<string[]> {
    return this.instance.namesrv.topicList().then((l) => l.sort());
  }

  topicRoute(topic: string) {
    return this.instance.route(topic, true);
  }

  /** Creates or updates a topic on the chosen brokers; returns their addresses. */
  async createTopic(spec: TopicSpec): Promise<string[]> {
    const addrs = spec.brokerAddr ? [spec.brokerAddr] : await this.masterAddrs(spec.cluster);
    const header: Record<string, string> = {
      topic: spec.topic,
      defaultTopic: 'TBW102',
      readQueueNums: String(spec.readQueueNums ?? 8),
      writeQueueNums: String(spec.writeQueueNums ?? 8),
      perm: String(spec.perm ?? 6),
      topicFilterType: 'SINGLE_TAG',
      topicSysFlag: '0',
      order: String(spec.order ?? false),
    };
    for (const addr of addrs) {
      await this.instance.invokeOk(
        addr,
        createRequest(RequestCode.UPDATE_AND_CREATE_TOPIC, header),
        'create topic',
      );
    }
    return addrs;
  }

  /**
   * Deletes a topic: on every broker that serves it (its data, offsets and config), then on every
   * name server. Returns the brokers it was deleted from.
   */
  async deleteTopic(topic: string, cluster?: string): Promise<string[]> {
    const route = await this.instance.namesrv.routeOf(topic);
    const addrs = new Set<string>();
    for (const b of route?.brokerDatas ?? []) {
      if (cluster !== undefined && b.cluster !== cluster) continue;
      for (const a of Object.values(b.brokerAddrs)) addrs.add(a);
    }
    for (const addr of addrs) {
      await this.instance.invokeOk(
        addr,
        createRequest(RequestCode.DELETE_TOPIC_IN_BROKER, { topic }),
        'delete topic',
      );
    }
    const nsHeader: Record<string, string> = { topic };
    if (cluster !== undefined) nsHeader.clusterName = cluster;
    for (const ns of this.instance.namesrv.addrs) {
      await this.instance.invokeOk(
        ns,
        createRequest(RequestCode.DELETE_TOPIC_IN_NAMESRV, nsHeader),
        'delete topic',
      );
    }
    return [...addrs];
  }

  /** GET_BROKER_RUNTIME_INFO of one broker: its vital signs as strings (RocketMQ's keys). */
  async brokerRuntimeInfo(addr: string): Promise<Record<string, string>> {
    const res = await this.instance.invokeOk(
      addr,
      createRequest(RequestCode.GET_BROKER_RUNTIME_INFO),
      'runtime info',
    );
    return decodeKVTable(res.body).table;
  }

  // ------------------------------------------------------------------------------------------
  // Consumer groups
  // ------------------------------------------------------------------------------------------

  /**
   * The group's backlog: GET_CONSUME_STATS from every master (for one topic, or every topic the
   * group has offsets for), per queue and in total.
   */
  async consumeLag(group: string, topic?: string, cluster?: string): Promise<GroupLag> {
    const header: Record<string, string> = { consumerGroup: group };
    if (topic !== undefined) header.topic = topic;
    const queues: QueueLag[] = [];
    for (const addr of await this.masterAddrs(cluster)) {
      const res = await this.instance.invoke(addr, createRequest(RequestCode.GET_CONSUME_STATS, header));
      if (res.code === ResponseCode.SUCCESS) {
        queues.push(...computeConsumeLag(decodeConsumeStats(res.body)).queues);
      } else if (
        res.code !== ResponseCode.TOPIC_NOT_EXIST &&
        res.code !== ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST
      ) {
        throw new BrokerResponseError(addr, res, 'consume stats');
      }
    }
    queues.sort(
      (a, b) =>
        a.queue.topic.localeCompare(b.queue.topic) ||
        a.queue.brokerName.localeCompare(b.queue.brokerName) ||
        a.queue.queueId - b.queue.queueId,
    );
    return { group, queues, totalLag: queues.reduce((n, q) => n + q.lag, 0) };
  }

  /**
   * Moves a group's offsets on a topic, on every broker serving it, to `to`: a time in ms (the
   * first message stored at or after it), 'earliest' or 'latest'. Live consumers are told to drop
   * what they cached and continue from there. Returns the new offset of every queue.
   */
  async resetOffset(
    group: string,
    topic: string,
    to: number | 'earliest' | 'latest',
    force = true,
  ): Promise<{ queue: { topic: string; brokerName: string; queueId: number }; offset: number }[]> {
    const timestamp = to === 'earliest' ? RESET_TO_EARLIEST : to === 'latest' ? RESET_TO_LATEST : to;
    const route = await this.instance.route(topic, true);
    const out: { queue: { topic: string; brokerName: string; queueId: number }; offset: number }[] = [];
    for (const b of route.brokerDatas) {
      const addr = this.instance.masterAddr(b.brokerName);
      if (!addr) continue;
      const res = await this.instance.invokeOk(
        addr,
        createRequest(RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, {
          topic,
          group,
          timestamp: String(timestamp),
          isForce: String(force),
        }),
        'reset offset',
        30_000,
      );
      for (const e of decodeResetOffsetBody(res.body).offsetTable)
        out.push({ queue: e.queue, offset: e.offsets });
    }
    return out;
  }

  /** The group's live members and subscriptions as one broker sees them, or undefined if none. */
  async consumerConnection(group: string, addr: string): Promise<ConsumerConnection | undefined> {
    const res = await this.instance.invoke(
      addr,
      createRequest(RequestCode.GET_CONSUMER_CONNECTION_LIST, { consumerGroup: group }),
    );
    if (res.code === ResponseCode.CONSUMER_NOT_ONLINE) return undefined;
    if (res.code !== ResponseCode.SUCCESS) throw new BrokerResponseError(addr, res, 'consumer connections');
    return decodeConsumerConnection(res.body);
  }

  /** Every subscription group of the cluster's masters, with its live members. */
  async consumerGroups(cluster?: string): Promise<GroupRow[]> {
    const rows = new Map<string, GroupRow>();
    for (const addr of await this.masterAddrs(cluster)) {
      const res = await this.instance.invokeOk(
        addr,
        createRequest(RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG),
        'subscription groups',
      );
      const wrapper = decodeSubscriptionGroupWrapper(res.body);
      for (const c of Object.values(wrapper.subscriptionGroupTable) as SubscriptionGroupConfig[]) {
        let row = rows.get(c.groupName);
        if (!row) {
          row = {
            group: c.groupName,
            brokers: [],
            consumeEnable: c.consumeEnable,
            consumeBroadcastEnable: c.consumeBroadcastEnable,
            retryMaxTimes: c.retryMaxTimes,
            members: [],
          };
          rows.set(c.groupName, row);
        }
        row.brokers.push(addr);
        const conn = await this.consumerConnection(c.groupName, addr);
        for (const m of conn?.connectionSet ?? [])
          if (!row.members.includes(m.clientId)) row.members.push(m.clientId);
      }
    }
    return [...rows.values()].sort((a, b) => a.group.localeCompare(b.group));
  }

  // ------------------------------------------------------------------------------------------
  // Messages
  // ------------------------------------------------------------------------------------------

  /** Messages of a topic with this key (KEYS property), from every broker serving the topic. */
  queryByKey(topic: string, key: string, opts: QueryOptions = {}): Promise<MessageExt[]> {
    return this.query(topic, key, false, opts);
  }

  /**
   * A message by id: an offsetMsgId (store host + offset) is read directly from that broker;
   * anything else is taken as the client-made id (UNIQ_KEY) and looked up in the topic's index.
   */
  async viewMessage(topic: string | undefined, id: string): Promise<MessageExt> {
    let decoded: ReturnType<typeof decodeOffsetMsgId> | undefined;
    try {
      decoded = decodeOffsetMsgId(id);
    } catch {
      decoded = undefined;
    }
    if (decoded) {
      const { storeHost, physicalOffset } = decoded;
      const addr = storeHost.address.includes(':')
        ? `[${storeHost.address}]:${storeHost.port}`
        : `${storeHost.address}:${storeHost.port}`;
      const res = await this.instance
        .invoke(addr, createRequest(RequestCode.VIEW_MESSAGE_BY_ID, { offset: String(physicalOffset) }))
        .catch(() => undefined);
      if (res?.code === ResponseCode.SUCCESS) {
        const [msg] = decodeMessages(res.body, await this.brokerNameOf(addr));
        if (msg && (topic === undefined || msg.topic === topic)) return msg;
      }
    }
    if (topic === undefined) {
      throw new TsmqError(
        'MESSAGE_NOT_FOUND',
        `no message with offset id ${id}; give the topic to look up a message id`,
      );
    }
    const found = await this.query(topic, id, true, { maxNum: 32 });
    const hit = found.find((m) => m.msgId === id) ?? found[0];
    if (!hit) throw new TsmqError('MESSAGE_NOT_FOUND', `no message with id ${id} in topic ${topic}`);
    return hit;
  }

  /**
   * The messages of a group's dead-letter queue %DLQ%<group>, oldest first, at most `max`
   * (default 1,000); none when the group has no DLQ. Reading commits nothing (./dead-letters.ts).
   */
  deadLetters(group: string, max?: number): Promise<DeadLetter[]> {
    return readDeadLetters(this.instance, group, max);
  }

  /**
   * Sets (or with `undefined` removes) a send rate limit on every master of the cluster (or on
   * `brokerAddr`): for a topic, or for a client host. Applies at once and survives restarts.
   * Returns the brokers changed.
   */
  async setRateLimit(
    kind: 'topic' | 'client',
    name: string,
    rule: { msgsPerSec: number; bytesPerSec: number } | undefined,
    target: { cluster?: string; brokerAddr?: string } = {},
  ): Promise<string[]> {
    const addrs = target.brokerAddr ? [target.brokerAddr] : await this.masterAddrs(target.cluster);
    const line = `rateLimit.${kind}.${name}=${rule ? `${rule.msgsPerSec},${rule.bytesPerSec}` : ''}\n`;
    for (const addr of addrs) {
      await this.instance.invokeOk(
        addr,
        { ...createRequest(RequestCode.UPDATE_BROKER_CONFIG), body: Buffer.from(line, 'utf8') },
        'update broker config',
      );
    }
    return addrs;
  }

  /** A broker's configuration (GET_BROKER_CONFIG), rate limits included, as key → value. */
  async brokerConfig(addr: string): Promise<Map<string, string>> {
    const res = await this.instance.invokeOk(
      addr,
      createRequest(RequestCode.GET_BROKER_CONFIG),
      'get broker config',
    );
    const out = new Map<string, string>();
    for (const line of (res.body?.toString('utf8') ?? '').split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) out.set(line.slice(0, i), line.slice(i + 1));
    }
    return out;
  }

  /**
   * Transactions not yet committed or rolled back: the half messages every broker will still
   * check, at most `max` (default 1,000) per broker (./half-messages.ts).
   */
  halfMessages(max?: number): Promise<HalfMessage[]> {
    return readHalfMessages(this.instance, max);
  }

  private async query(topic: string, key: string, uniq: boolean, opts: QueryOptions): Promise<MessageExt[]> {
    const route = await this.instance.route(topic, true);
    const header: Record<string, string> = {
      topic,
      key,
      maxNum: String(opts.maxNum ?? 64),
      beginTimestamp: String(opts.beginMs ?? 0),
      endTimestamp: String(opts.endMs ?? Date.now() + 1000),
    };
    if (uniq) header._UNIQUE_KEY_QUERY = 'true';
    const out: MessageExt[] = [];
    for (const b of route.brokerDatas) {
      const addr = this.instance.anyAddr(b.brokerName);
      if (!addr) continue;
      const res = await this.instance.invoke(addr, createRequest(RequestCode.QUERY_MESSAGE, header), 15_000);
      if (res.code === ResponseCode.QUERY_NOT_FOUND) continue;
      if (res.code !== ResponseCode.SUCCESS) throw new BrokerResponseError(addr, res, 'query message');
      for (const m of decodeMessages(res.body, b.brokerName)) {
        if (m.topic !== topic) continue;
        if (uniq ? m.msgId === key : m.keys.includes(key)) out.push(m);
      }
    }
    return out.sort((a, b) => a.storeTimestamp - b.storeTimestamp || a.commitLogOffset - b.commitLogOffset);
  }

  private async brokerNameOf(addr: string): Promise<string> {
    const rows = await this.brokers().catch(() => []);
    return rows.find((r) => r.addr === addr)?.brokerName ?? addr;
  }
}
