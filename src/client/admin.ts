/**
 * The admin API (in the spirit of RocketMQ's MQAdminExt): what `tsmq topic|query|group|lag|
 * cluster` and the console use. Each call asks the name servers where things live, then the
 * brokers; nothing here keeps state beyond the connections of its ClientInstance.
 */
import { TsmqError } from '../common/errors.js';
import { decodeOffsetMsgId } from '../message/index.js';
import { type ClusterInfo, createRequest, RequestCode, ResponseCode } from '../protocol/index.js';
import { ClientInstance, type ClientOptions, MASTER_ID } from './client-instance.js';
import { BrokerResponseError } from './errors.js';
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
