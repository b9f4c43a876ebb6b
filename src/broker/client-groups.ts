/**
 * The broker's view of its clients (RocketMQ's ProducerManager and ConsumerManager in one place):
 * per producer group and per consumer group, the channels of the clients that sent HEART_BEAT,
 * with their clientId, language, version and last heartbeat; per consumer group also its
 * consumeType, messageModel, consumeFromWhere and subscriptions (topic → SubscriptionData).
 *
 * A client leaves a group on UNREGISTER_CLIENT, when its connection closes, or when it stays
 * silent longer than channelExpiredTimeout (120 s; checked by `step(nowMs)`, which a timer drives;
 * the expired channel is closed, as RocketMQ's housekeeping closes it).
 *
 * When a consumer group's members change (a new channel joins, one leaves or expires) or its set
 * of subscribed topics changes, every channel still in the group gets NOTIFY_CONSUMER_IDS_CHANGED
 * (oneway, header consumerGroup), so the clients rebalance at once instead of at their next
 * 20 s rebalance tick — unless the group's subscription config turned
 * notifyConsumerIdsChangedEnable off (the `notifyEnabled` option). A group with no channel left is
 * forgotten.
 */
import type { Logger } from '../common/log.js';
import { SUB_ALL, type TagSubscription } from '../message/index.js';
import {
  createRequest,
  type HeartbeatData,
  type LanguageName,
  RequestCode,
  type SubscriptionData,
} from '../protocol/index.js';
import type { RemotingChannel } from '../remoting/index.js';

export interface ClientChannelInfo {
  readonly channel: RemotingChannel;
  clientId: string;
  language: LanguageName;
  version: number;
  lastUpdateMs: number;
}

export interface ConsumerGroupInfo {
  readonly groupName: string;
  consumeType: string;
  messageModel: string;
  consumeFromWhere: string;
  readonly channels: Map<RemotingChannel, ClientChannelInfo>;
  readonly subscriptions: Map<string, SubscriptionData>;
}

/** The tag filter a registered subscription stands for (codeSet is what the broker matches). */
export function tagSubscriptionOf(s: SubscriptionData): TagSubscription {
  const sub = s.subString.trim();
  if (sub === '' || sub === SUB_ALL) return { all: true };
  return { all: false, tags: new Set(s.tagsSet), codes: new Set(s.codeSet) };
}

export interface ClientGroupsOptions {
  /** A channel with no heartbeat for longer than this is dropped, ms. Default 120 s. */
  channelExpiredTimeoutMs?: number;
  logger?: Logger;
  /** Tells one channel its consumer group changed; default: NOTIFY_CONSUMER_IDS_CHANGED oneway. */
  notify?: (channel: RemotingChannel, consumerGroup: string) => void;
  /** Whether a group's members are told of its changes at all (default: always). */
  notifyEnabled?: (consumerGroup: string) => boolean;
}

export interface ClientIdentity {
  clientId: string;
  language: LanguageName;
  version: number;
}

export class ClientGroups {
  private readonly producers = new Map<string, Map<RemotingChannel, ClientChannelInfo>>();
  private readonly consumers = new Map<string, ConsumerGroupInfo>();
  private readonly expiredTimeoutMs: number;
  private readonly notifyChannel: (channel: RemotingChannel, consumerGroup: string) => void;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ClientGroupsOptions = {}) {
    this.expiredTimeoutMs = opts.channelExpiredTimeoutMs ?? 120_000;
    this.notifyChannel = opts.notify ?? sendConsumerIdsChanged;
  }

  /** Registers (or refreshes) every group a heartbeat names, at nowMs. */
  heartbeat(channel: RemotingChannel, who: ClientIdentity, data: HeartbeatData, nowMs: number): void {
    for (const p of data.producerDataSet) {
      let table = this.producers.get(p.groupName);
      if (!table) {
        table = new Map();
        this.producers.set(p.groupName, table);
      }
      touch(table, channel, who, nowMs);
    }
    for (const c of data.consumerDataSet) {
      let group = this.consumers.get(c.groupName);
      if (!group) {
        group = {
          groupName: c.groupName,
          consumeType: c.consumeType,
          messageModel: c.messageModel,
          consumeFromWhere: c.consumeFromWhere,
          channels: new Map(),
          subscriptions: new Map(),
        };
        this.consumers.set(c.groupName, group);
      }
      group.consumeType = c.consumeType;
      group.messageModel = c.messageModel;
      group.consumeFromWhere = c.consumeFromWhere;
      const joined = touch(group.channels, channel, who, nowMs);
      const topicsChanged = updateSubscriptions(group, c.subscriptionDataSet);
      if (joined || topicsChanged) {
        this.opts.logger?.info(
          { consumerGroup: c.groupName, clientId: who.clientId, joined, topicsChanged },
          `consumer group ${c.groupName} changed: ${joined ? `${who.clientId} joined` : 'subscriptions changed'}`,
        );
        this.notifyGroup(group);
      }
    }
  }

  /** UNREGISTER_CLIENT: removes the channel from the named groups (either may be absent). */
  unregister(channel: RemotingChannel, producerGroup?: string, consumerGroup?: string): void {
    if (producerGroup !== undefined) this.removeProducer(producerGroup, channel);
    if (consumerGroup !== undefined) this.removeConsumer(consumerGroup, channel, 'unregistered');
  }

  /** A closed connection leaves every group it was in. */
  channelClosed(channel: RemotingChannel): void {
    for (const name of [...this.producers.keys()]) this.removeProducer(name, channel);
    for (const name of [...this.consumers.keys()]) this.removeConsumer(name, channel, 'connection closed');
  }

  /** Drops (and closes) channels silent for longer than channelExpiredTimeout; returns how many. */
  step(nowMs: number): number {
    const expired = new Set<RemotingChannel>();
    const isExpired = (info: ClientChannelInfo) => nowMs - info.lastUpdateMs > this.expiredTimeoutMs;
    for (const [name, table] of [...this.producers]) {
      for (const info of [...table.values()]) {
        if (isExpired(info)) {
          expired.add(info.channel);
          this.removeProducer(name, info.channel);
        }
      }
    }
    for (const [name, group] of [...this.consumers]) {
      for (const info of [...group.channels.values()]) {
        if (isExpired(info)) {
          expired.add(info.channel);
          this.removeConsumer(name, info.channel, 'expired');
        }
      }
    }
    for (const ch of expired) ch.close(`no heartbeat for more than ${this.expiredTimeoutMs} ms`);
    return expired.size;
  }

  /** Runs step every intervalMs with the given clock. */
  start(intervalMs: number, now: () => number): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.step(now()), intervalMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The clientIds of a consumer group, in joining order; undefined for an unknown group. */
  consumerIds(group: string): string[] | undefined {
    const g = this.consumers.get(group);
    return g ? [...g.channels.values()].map((i) => i.clientId) : undefined;
  }

  consumerGroup(group: string): ConsumerGroupInfo | undefined {
    return this.consumers.get(group);
  }

  producerGroup(group: string): ReadonlyMap<RemotingChannel, ClientChannelInfo> | undefined {
    return this.producers.get(group);
  }

  /** Consumer groups with a live member subscribed to the topic (RocketMQ's queryTopicConsumeByWho). */
  groupsSubscribedTo(topic: string): string[] {
    return [...this.consumers.values()].filter((g) => g.subscriptions.has(topic)).map((g) => g.groupName);
  }

  /** The subscription a consumer group's heartbeat registered for a topic. */
  subscription(group: string, topic: string): SubscriptionData | undefined {
    return this.consumers.get(group)?.subscriptions.get(topic);
  }

  private removeProducer(name: string, channel: RemotingChannel): void {
    const table = this.producers.get(name);
    if (!table?.delete(channel)) return;
    if (table.size === 0) this.producers.delete(name);
  }

  private removeConsumer(name: string, channel: RemotingChannel, why: string): void {
    const group = this.consumers.get(name);
    const info = group?.channels.get(channel);
    if (!group || !info) return;
    group.channels.delete(channel);
    this.opts.logger?.info(
      { consumerGroup: name, clientId: info.clientId, why },
      `consumer ${info.clientId} left group ${name} (${why})`,
    );
    if (group.channels.size === 0) {
      this.consumers.delete(name);
      return;
    }
    this.notifyGroup(group);
  }

  private notifyGroup(group: ConsumerGroupInfo): void {
    if (this.opts.notifyEnabled && !this.opts.notifyEnabled(group.groupName)) return;
    for (const ch of group.channels.keys()) {
      if (ch.closed) continue;
      try {
        this.notifyChannel(ch, group.groupName);
      } catch (e) {
        this.opts.logger?.warn(
          { err: e, consumerGroup: group.groupName, remote: ch.remoteAddress },
          'notifying a consumer of a group change failed',
        );
      }
    }
  }
}

/** Adds or refreshes a channel; true when it is new to the table. */
function touch(
  table: Map<RemotingChannel, ClientChannelInfo>,
  channel: RemotingChannel,
  who: ClientIdentity,
  nowMs: number,
): boolean {
  const info = table.get(channel);
  if (info) {
    // RocketMQ keeps the channel and takes the newer clientId should it ever differ.
    info.clientId = who.clientId;
    info.language = who.language;
    info.version = who.version;
    info.lastUpdateMs = nowMs;
    return false;
  }
  table.set(channel, { channel, ...who, lastUpdateMs: nowMs });
  return true;
}

/**
 * Takes a heartbeat's subscriptions as ConsumerGroupInfo.updateSubscription does: a new topic is
 * added, a known one replaced only by a newer subVersion, a topic no longer listed removed. True
 * when the set of topics changed.
 */
function updateSubscriptions(group: ConsumerGroupInfo, subs: readonly SubscriptionData[]): boolean {
  let changed = false;
  const listed = new Set<string>();
  for (const s of subs) {
    listed.add(s.topic);
    const old = group.subscriptions.get(s.topic);
    if (!old) {
      group.subscriptions.set(s.topic, s);
      changed = true;
    } else if (s.subVersion > old.subVersion) {
      group.subscriptions.set(s.topic, s);
    }
  }
  for (const topic of [...group.subscriptions.keys()]) {
    if (!listed.has(topic)) {
      group.subscriptions.delete(topic);
      changed = true;
    }
  }
  return changed;
}

/** Broker2Client.notifyConsumerIdsChanged: a oneway NOTIFY_CONSUMER_IDS_CHANGED. */
export function sendConsumerIdsChanged(channel: RemotingChannel, consumerGroup: string): void {
  channel.invokeOneway(createRequest(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, { consumerGroup }));
}
