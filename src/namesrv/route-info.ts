/**
 * The name server's route tables and every change to them. No sockets and no timers: a broker's
 * connection is an opaque `channel` value, time comes from the injected clock, and expiry is a
 * step (`scanNotActiveBrokers`) that the NameServer drives by timer and tests call directly.
 *
 *   topicQueueTable   topic → brokerName → QueueData        (from the masters' topic configs)
 *   brokerAddrTable   brokerName → {cluster, brokerName, brokerId → "ip:port"}
 *   clusterAddrTable  cluster → brokerNames
 *   brokerLiveTable   "ip:port" → {lastUpdateMs, timeoutMs, dataVersion, channel, haServerAddr}
 *   filterServerTable "ip:port" → filter server addresses
 *
 * A registration (REGISTER_BROKER, every 30 s from every broker):
 *
 *   is master (id 0) | first time for this name+id | data version changed || topic configs applied
 *   -----------------+-----------------------------+----------------------++--------------------
 *   yes              | yes                         | any                  || yes
 *   yes              | no                          | yes                  || yes
 *   yes              | no                          | no                   || no (liveness only)
 *   no (slave)       | any                         | any                  || no
 *
 * and always refreshes the broker's liveness (time, data version, channel, HA address). Slaves'
 * topics are not registered: a slave serves its master's queues, which stay routable while any
 * member of the broker name is alive.
 *
 * A broker address leaves the tables when it unregisters, when its channel closes, or when it
 * has not registered for longer than its timeout. When the last address of a broker name goes,
 * the name leaves its cluster and its queues leave every topic (and a topic left with no queues
 * is gone).
 */
import { type Clock, systemClock } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import {
  type BrokerData,
  byBrokerName,
  type ClusterInfo,
  type QueueData,
  type TopicList,
  type TopicRouteData,
} from '../protocol/index.js';
import { type DataVersion, dataVersionEquals, type TopicConfig } from './register-body.js';

/** RocketMQ's MixAll.MASTER_ID. */
export const MASTER_ID = 0;

/** RocketMQ's DEFAULT_BROKER_CHANNEL_EXPIRED_TIME: 2 minutes without a registration. */
export const DEFAULT_BROKER_EXPIRY_MS = 120_000;

export interface RouteInfoOptions {
  clock?: Clock;
  /** A broker that has not registered for longer than this is dropped (unless it set its own). */
  brokerExpiryMs?: number;
  /**
   * When a master's topic configs change, drop its queues of topics it no longer lists (RocketMQ
   * 5's deleteTopicWithBrokerRegistration, off by default there too: topics are normally deleted
   * with DELETE_TOPIC_IN_NAMESRV).
   */
  deleteTopicWithBrokerRegistration?: boolean;
  logger?: Logger;
}

export interface BrokerRegistration {
  clusterName: string;
  brokerAddr: string;
  brokerName: string;
  brokerId: number;
  haServerAddr: string;
  topicConfigs: readonly TopicConfig[];
  dataVersion: DataVersion;
  filterServerList?: readonly string[];
  /** The connection the registration came over; its closing removes the broker. */
  channel?: object;
  /** The broker's own expiry (5.x heartbeatTimeoutMillis); defaults to brokerExpiryMs. */
  timeoutMs?: number;
  zoneName?: string;
}

export interface RegisterResult {
  /** For a slave: its master's address and HA address, if the master is registered. */
  masterAddr?: string;
  haServerAddr?: string;
  /** Whether the topic configs were applied (see the table in the file header). */
  topicsApplied: boolean;
  /** Whether this address was not in the live table before. */
  newBroker: boolean;
}

export interface LiveBroker {
  brokerAddr: string;
  clusterName: string;
  brokerName: string;
  brokerId: number;
  lastUpdateMs: number;
  timeoutMs: number;
  dataVersion: DataVersion;
  channel: object | undefined;
  haServerAddr: string;
}

interface BrokerEntry {
  cluster: string;
  brokerName: string;
  addrs: Map<number, string>;
  zoneName: string | undefined;
}

export class RouteInfoManager {
  private readonly topicQueueTable = new Map<string, Map<string, QueueData>>();
  private readonly brokerAddrTable = new Map<string, BrokerEntry>();
  private readonly clusterAddrTable = new Map<string, Set<string>>();
  private readonly brokerLiveTable = new Map<string, LiveBroker>();
  private readonly filterServerTable = new Map<string, string[]>();
  private readonly clock: Clock;
  readonly brokerExpiryMs: number;
  private readonly deleteTopicWithBrokerRegistration: boolean;
  private readonly logger: Logger | undefined;

  constructor(opts: RouteInfoOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.brokerExpiryMs = opts.brokerExpiryMs ?? DEFAULT_BROKER_EXPIRY_MS;
    if (!(Number.isFinite(this.brokerExpiryMs) && this.brokerExpiryMs > 0)) {
      throw new RangeError(`brokerExpiryMs must be a positive number of ms, got ${opts.brokerExpiryMs}`);
    }
    this.deleteTopicWithBrokerRegistration = opts.deleteTopicWithBrokerRegistration ?? false;
    this.logger = opts.logger;
  }

  /** Records a broker's registration; see the table in the file header. */
  registerBroker(r: BrokerRegistration): RegisterResult {
    let names = this.clusterAddrTable.get(r.clusterName);
    if (!names) {
      names = new Set();
      this.clusterAddrTable.set(r.clusterName, names);
    }
    names.add(r.brokerName);

    let entry = this.brokerAddrTable.get(r.brokerName);
    let firstTime = false;
    if (!entry) {
      firstTime = true;
      entry = { cluster: r.clusterName, brokerName: r.brokerName, addrs: new Map(), zoneName: undefined };
      this.brokerAddrTable.set(r.brokerName, entry);
    }
    if (r.zoneName !== undefined) entry.zoneName = r.zoneName;

    // One address has one id: a slave promoted to master first drops its old <id, addr>.
    for (const [id, addr] of entry.addrs) {
      if (addr === r.brokerAddr && id !== r.brokerId) entry.addrs.delete(id);
    }
    const oldAddr = entry.addrs.get(r.brokerId);
    entry.addrs.set(r.brokerId, r.brokerAddr);
    if (r.brokerId === MASTER_ID && oldAddr !== r.brokerAddr) {
      this.logger?.info(
        { cluster: entry.cluster, brokerName: r.brokerName, from: oldAddr, to: r.brokerAddr },
        'master address changed',
      );
    }
    firstTime ||= oldAddr === undefined;

    const prev = this.brokerLiveTable.get(r.brokerAddr);
    const versionChanged = prev === undefined || !dataVersionEquals(prev.dataVersion, r.dataVersion);
    const topicsApplied = r.brokerId === MASTER_ID && (firstTime || versionChanged);
    if (topicsApplied) this.applyTopicConfigs(r.brokerName, r.topicConfigs);

    this.brokerLiveTable.set(r.brokerAddr, {
      brokerAddr: r.brokerAddr,
      clusterName: r.clusterName,
      brokerName: r.brokerName,
      brokerId: r.brokerId,
      lastUpdateMs: this.clock.now(),
      timeoutMs: r.timeoutMs ?? this.brokerExpiryMs,
      dataVersion: { ...r.dataVersion },
      channel: r.channel,
      haServerAddr: r.haServerAddr,
    });
    if (!prev) {
      this.logger?.info(
        { cluster: r.clusterName, brokerName: r.brokerName, brokerId: r.brokerId, addr: r.brokerAddr },
        'new broker registered',
      );
    }

    if (r.filterServerList !== undefined) {
      if (r.filterServerList.length === 0) this.filterServerTable.delete(r.brokerAddr);
      else this.filterServerTable.set(r.brokerAddr, [...r.filterServerList]);
    }

    const result: RegisterResult = { topicsApplied, newBroker: prev === undefined };
    if (r.brokerId !== MASTER_ID) {
      const masterAddr = entry.addrs.get(MASTER_ID);
      const master = masterAddr === undefined ? undefined : this.brokerLiveTable.get(masterAddr);
      if (master) {
        result.masterAddr = masterAddr;
        result.haServerAddr = master.haServerAddr;
      }
    }
    return result;
  }

  private applyTopicConfigs(brokerName: string, configs: readonly TopicConfig[]): void {
    if (this.deleteTopicWithBrokerRegistration) {
      const listed = new Set(configs.map((tc) => tc.topicName));
      for (const [topic, queues] of this.topicQueueTable) {
        if (!listed.has(topic) && queues.delete(brokerName) && queues.size === 0) {
          this.topicQueueTable.delete(topic);
        }
      }
    }
    for (const tc of configs) {
      let queues = this.topicQueueTable.get(tc.topicName);
      if (!queues) {
        queues = new Map();
        this.topicQueueTable.set(tc.topicName, queues);
      }
      queues.set(brokerName, {
        brokerName,
        readQueueNums: tc.readQueueNums,
        writeQueueNums: tc.writeQueueNums,
        perm: tc.perm,
        topicSysFlag: tc.topicSysFlag,
      });
    }
  }

  /**
   * UNREGISTER_BROKER: a broker shutting down. Unlike RocketMQ, the id is released only if it
   * still maps to this address, so a late unregister of an old address cannot remove its successor.
   */
  unregisterBroker(clusterName: string, brokerAddr: string, brokerName: string, brokerId: number): boolean {
    const wasLive = this.brokerLiveTable.delete(brokerAddr);
    this.filterServerTable.delete(brokerAddr);
    const entry = this.brokerAddrTable.get(brokerName);
    let removed = false;
    if (entry && entry.addrs.get(brokerId) === brokerAddr) {
      entry.addrs.delete(brokerId);
      removed = true;
      if (entry.addrs.size === 0) this.removeBrokerName(brokerName);
    }
    this.logger?.info(
      { cluster: clusterName, brokerName, brokerId, addr: brokerAddr },
      'broker unregistered',
    );
    return wasLive || removed;
  }

  /**
   * The connection `channel` closed: every broker that registered over it leaves at once.
   * Returns the addresses removed.
   */
  removeByChannel(channel: object): string[] {
    const addrs: string[] = [];
    for (const live of this.brokerLiveTable.values()) {
      if (live.channel === channel) addrs.push(live.brokerAddr);
    }
    for (const addr of addrs) {
      this.removeBrokerAddr(addr);
      this.logger?.info({ addr }, "broker's connection closed; removed from routes");
    }
    return addrs;
  }

  /**
   * The expiry step: drops every broker whose last registration is more than its timeout before
   * `nowMs` (exactly at the timeout it is still alive). Returns what it dropped, so the caller
   * can close their connections.
   */
  scanNotActiveBrokers(nowMs = this.clock.now()): LiveBroker[] {
    const expired: LiveBroker[] = [];
    for (const live of this.brokerLiveTable.values()) {
      if (live.lastUpdateMs + live.timeoutMs < nowMs) expired.push(live);
    }
    for (const live of expired) {
      this.removeBrokerAddr(live.brokerAddr);
      this.logger?.warn(
        { addr: live.brokerAddr, brokerName: live.brokerName, silentMs: nowMs - live.lastUpdateMs },
        'broker expired: no registration within its timeout',
      );
    }
    return expired;
  }

  /** Removes one broker address from every table (RocketMQ's onChannelDestroy). */
  private removeBrokerAddr(brokerAddr: string): void {
    this.brokerLiveTable.delete(brokerAddr);
    this.filterServerTable.delete(brokerAddr);
    for (const entry of this.brokerAddrTable.values()) {
      for (const [id, addr] of entry.addrs) {
        if (addr !== brokerAddr) continue;
        entry.addrs.delete(id);
        if (entry.addrs.size === 0) this.removeBrokerName(entry.brokerName);
        return;
      }
    }
  }

  /** The last address of a broker name is gone: the name leaves its cluster and all topics. */
  private removeBrokerName(brokerName: string): void {
    this.brokerAddrTable.delete(brokerName);
    for (const [cluster, names] of this.clusterAddrTable) {
      if (names.delete(brokerName) && names.size === 0) this.clusterAddrTable.delete(cluster);
    }
    for (const [topic, queues] of this.topicQueueTable) {
      if (queues.delete(brokerName) && queues.size === 0) this.topicQueueTable.delete(topic);
    }
  }

  /** The route of `topic`, or undefined when no live broker serves it (→ TOPIC_NOT_EXIST). */
  pickupTopicRouteData(topic: string): TopicRouteData | undefined {
    const queues = this.topicQueueTable.get(topic);
    if (!queues || queues.size === 0) return undefined;
    const queueDatas = [...queues.values()].map((q) => ({ ...q })).sort(byBrokerName);
    const brokerDatas: BrokerData[] = [];
    const filterServers: Array<[string, string[]]> = [];
    for (const brokerName of queues.keys()) {
      const entry = this.brokerAddrTable.get(brokerName);
      if (!entry) continue;
      const bd = brokerDataOf(entry);
      brokerDatas.push(bd);
      for (const addr of entry.addrs.values()) {
        const servers = this.filterServerTable.get(addr);
        if (servers) filterServers.push([addr, [...servers]]);
      }
    }
    if (brokerDatas.length === 0) return undefined;
    brokerDatas.sort(byBrokerName);
    return { queueDatas, brokerDatas, filterServerTable: Object.fromEntries(filterServers) };
  }

  getClusterInfo(): ClusterInfo {
    const names = [...this.brokerAddrTable.keys()].sort();
    const clusters = [...this.clusterAddrTable.keys()].sort();
    return {
      brokerAddrTable: Object.fromEntries(names.map((n) => [n, brokerDataOf(this.brokerAddrTable.get(n)!)])),
      clusterAddrTable: Object.fromEntries(
        clusters.map((c) => [c, [...this.clusterAddrTable.get(c)!].sort()]),
      ),
    };
  }

  getAllTopicList(): TopicList {
    return { topicList: [...this.topicQueueTable.keys()].sort() };
  }

  /**
   * DELETE_TOPIC_IN_NAMESRV: forget the topic, or only its queues on `clusterName`'s brokers.
   * Returns whether anything was removed. A master that still has the topic brings it back when
   * its data version next changes, as in RocketMQ.
   */
  deleteTopic(topic: string, clusterName?: string): boolean {
    if (clusterName === undefined) return this.topicQueueTable.delete(topic);
    const names = this.clusterAddrTable.get(clusterName);
    const queues = this.topicQueueTable.get(topic);
    if (!names || !queues) return false;
    let removed = false;
    for (const name of names) removed = queues.delete(name) || removed;
    if (queues.size === 0) this.topicQueueTable.delete(topic);
    return removed;
  }

  /** The data version a broker last registered with (QUERY_DATA_VERSION). */
  queryBrokerDataVersion(brokerAddr: string): DataVersion | undefined {
    const live = this.brokerLiveTable.get(brokerAddr);
    return live ? { ...live.dataVersion } : undefined;
  }

  isBrokerTopicConfigChanged(brokerAddr: string, dataVersion: DataVersion): boolean {
    const live = this.brokerLiveTable.get(brokerAddr);
    return live === undefined || !dataVersionEquals(live.dataVersion, dataVersion);
  }

  /** Marks a broker alive now without touching its topics (an unchanged QUERY_DATA_VERSION). */
  refreshBrokerLiveness(brokerAddr: string): boolean {
    const live = this.brokerLiveTable.get(brokerAddr);
    if (live) live.lastUpdateMs = this.clock.now();
    return live !== undefined;
  }

  liveBroker(brokerAddr: string): Readonly<LiveBroker> | undefined {
    return this.brokerLiveTable.get(brokerAddr);
  }

  liveBrokers(): Readonly<LiveBroker>[] {
    return [...this.brokerLiveTable.values()];
  }
}

function brokerDataOf(entry: BrokerEntry): BrokerData {
  const ids = [...entry.addrs.keys()].sort((a, b) => a - b);
  const bd: BrokerData = {
    cluster: entry.cluster,
    brokerName: entry.brokerName,
    brokerAddrs: Object.fromEntries(ids.map((id) => [String(id), entry.addrs.get(id)!])),
  };
  if (entry.zoneName !== undefined) bd.zoneName = entry.zoneName;
  return bd;
}
