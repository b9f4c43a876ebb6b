/**
 * The broker's configuration, keyed by RocketMQ's broker.conf names where RocketMQ has one, and a
 * parser of broker.conf text: `key=value` lines, `#` comments, blank lines. A known key with a
 * value of the wrong kind is an error naming the line; an unknown key is reported back to the
 * caller (RocketMQ ignores unknown keys silently, which hides typos).
 */

import path from 'node:path';
import { TsmqError } from '../common/errors.js';
import { DEFAULT_MESSAGE_DELAY_LEVEL, parseDelayLevels } from './schedule/delay-levels.js';

export type FlushDiskType = 'ASYNC_FLUSH' | 'SYNC_FLUSH';

export interface BrokerConfig {
  brokerClusterName: string;
  brokerName: string;
  /** 0 is the master (RocketMQ's MixAll.MASTER_ID). */
  brokerId: number;
  /** Name servers, `host:port;host:port`; empty: register nowhere. */
  namesrvAddr: string;
  /** Address to listen on (all interfaces by default). Not a RocketMQ key. */
  listenHost: string;
  /** 0 picks a free port. */
  listenPort: number;
  /** The address this broker advertises (name server routes, message ids' store host). */
  brokerIP1: string;
  storePathRootDir: string;
  flushDiskType: FlushDiskType;
  autoCreateTopicEnable: boolean;
  /**
   * A consumer group unknown to the broker is created (subscriptionGroup.json) on its first
   * heartbeat or pull. When false, only groups made by UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (and
   * the built-in ones) may pull; others get SUBSCRIPTION_GROUP_NOT_EXIST.
   */
  autoCreateSubscriptionGroup: boolean;
  /** Queue count of TBW102 and thus the most an auto-created topic gets. */
  defaultTopicQueueNums: number;
  registerNameServerPeriod: number;
  /** Largest message body accepted, bytes. */
  maxMessageSize: number;
  /** How often consumerOffset.json is written, ms (RocketMQ's key; 5 s). */
  flushConsumerOffsetInterval: number;
  /**
   * Messages one pull returns at most (RocketMQ's maxTransferCountOnMessageInMemory; 32 there).
   * 256 here: a consumer that asks for large batches to catch up a backlog gets them (each pull
   * costs both ends a round trip and its headers); one that asks for 32 still gets 32.
   */
  maxTransferCountOnMessageInMemory: number;
  /** Bytes one pull returns at most (RocketMQ's maxTransferBytesOnMessageInMemory; 256 KiB there). */
  maxTransferBytesOnMessageInMemory: number;
  /** Longest a suspended pull is held, ms, whatever the client asks (RocketMQ's push default). */
  pullSuspendMaxMs: number;
  /** Suspended pulls held at once; more are answered SYSTEM_BUSY (the client backs off). */
  pullHeldRequestsMax: number;
  /** How often held pulls are checked for expiry and missed arrivals, ms. */
  pullHoldCheckIntervalMs: number;
  /** A client channel silent (no heartbeat) this long is dropped, ms (RocketMQ's 120 s). */
  channelExpiredTimeout: number;
  /** How often client channels are checked for expiry, ms (RocketMQ's housekeeping: 10 s). */
  clientChannelScanIntervalMs: number;
  /** How long an orderly consumer's queue lock lasts without renewal, ms (RocketMQ's 60 s). */
  rebalanceLockMaxLiveTime: number;
  /**
   * Delay levels, level 1 first (RocketMQ's key and format): "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m
   * 8m 9m 10m 20m 30m 1h 2h"; units ms, s, m, h, d (see schedule/delay-levels.ts).
   */
  messageDelayLevel: string;
  /**
   * How often delayOffset.json (each delay level's delivery progress) is written when it changed,
   * ms. RocketMQ's key (10 s there); 1 s here: the file is tiny, and a shorter interval means
   * fewer messages delivered twice after a crash.
   */
  flushDelayOffsetInterval: number;
  /** Timer messages (TIMER_DELIVER_MS, TIMER_DELAY_MS, TIMER_DELAY_SEC) are accepted. RocketMQ's timerWheelEnable (also read). */
  timerEnable: boolean;
  /** Longest delay of a timer message, s; longer ones are refused (MESSAGE_ILLEGAL). RocketMQ's key; 3 days. */
  timerMaxDelaySec: number;
  /**
   * Width of one timer-wheel slot, ms (RocketMQ's key; 1 s). Timers are bucketed by it on disk and
   * the dequeue holds one slot's timers in memory; a timer is delivered at its ms unless it
   * arrived after its slot had started (then within one slot width).
   */
  timerPrecisionMs: number;
  /** How often the timer store's checkpoint (log, wheel, progress) is made durable, ms. RocketMQ's key. */
  timerFlushIntervalMs: number;
  /**
   * A transaction's half message unresolved this long (ms since it was sent) is checked with its
   * producer group (CHECK_TRANSACTION_STATE). RocketMQ's key; 6 s. A message's
   * CHECK_IMMUNITY_TIME_IN_SECONDS property overrides it.
   */
  transactionTimeOut: number;
  /** Checks of one half message before it is given up (moved to TRANS_CHECK_MAX_TIME_TOPIC). RocketMQ's key; 15. */
  transactionCheckMax: number;
  /** How often unresolved half messages are looked at, ms. RocketMQ's key; 30 s. */
  transactionCheckInterval: number;
  /** SQL92 subscriptions are served (RocketMQ's key; false there by default, true here). */
  enablePropertyFilter: boolean;
  /** Sends being stored at once; more wait in the send queue (flow-control.ts). */
  sendInFlightMax: number;
  /** Sends that may wait in the send queue; more are refused SYSTEM_BUSY. RocketMQ's key; 10,000. */
  sendThreadPoolQueueCapacity: number;
  /** A send that waited longer than this, ms, is refused SYSTEM_BUSY. RocketMQ's key; 200 ms. */
  waitTimeMillsInSendQueue: number;
}

export const DEFAULT_BROKER_PORT = 10911;

export function defaultBrokerConfig(): BrokerConfig {
  return {
    brokerClusterName: 'DefaultCluster',
    brokerName: 'broker-a',
    brokerId: 0,
    namesrvAddr: '',
    listenHost: '0.0.0.0',
    listenPort: DEFAULT_BROKER_PORT,
    brokerIP1: '127.0.0.1',
    storePathRootDir: path.resolve('data', 'store'),
    flushDiskType: 'ASYNC_FLUSH',
    autoCreateTopicEnable: true,
    autoCreateSubscriptionGroup: true,
    defaultTopicQueueNums: 8,
    registerNameServerPeriod: 30_000,
    maxMessageSize: 4 * 1024 * 1024,
    flushConsumerOffsetInterval: 5_000,
    maxTransferCountOnMessageInMemory: 256,
    maxTransferBytesOnMessageInMemory: 1024 * 1024,
    pullSuspendMaxMs: 15_000,
    pullHeldRequestsMax: 10_000,
    pullHoldCheckIntervalMs: 100,
    channelExpiredTimeout: 120_000,
    clientChannelScanIntervalMs: 10_000,
    rebalanceLockMaxLiveTime: 60_000,
    messageDelayLevel: DEFAULT_MESSAGE_DELAY_LEVEL,
    flushDelayOffsetInterval: 1_000,
    timerEnable: true,
    timerMaxDelaySec: 3 * 86_400,
    timerPrecisionMs: 1_000,
    timerFlushIntervalMs: 1_000,
    transactionTimeOut: 6_000,
    transactionCheckMax: 15,
    transactionCheckInterval: 30_000,
    enablePropertyFilter: true,
    sendInFlightMax: 8192,
    sendThreadPoolQueueCapacity: 10_000,
    waitTimeMillsInSendQueue: 200,
  };
}

/** A broker.conf value or line that does not fit (catalogued as CONFIG_INVALID). */
export class BrokerConfigError extends TsmqError {
  constructor(message: string) {
    super('CONFIG_INVALID', message);
    this.name = 'BrokerConfigError';
  }
}

type Kind = 'string' | 'int' | 'bool' | 'flush' | 'delayLevels';

const KINDS: Record<keyof BrokerConfig, Kind> = {
  brokerClusterName: 'string',
  brokerName: 'string',
  brokerId: 'int',
  namesrvAddr: 'string',
  listenHost: 'string',
  listenPort: 'int',
  brokerIP1: 'string',
  storePathRootDir: 'string',
  flushDiskType: 'flush',
  autoCreateTopicEnable: 'bool',
  autoCreateSubscriptionGroup: 'bool',
  defaultTopicQueueNums: 'int',
  registerNameServerPeriod: 'int',
  maxMessageSize: 'int',
  flushConsumerOffsetInterval: 'int',
  maxTransferCountOnMessageInMemory: 'int',
  maxTransferBytesOnMessageInMemory: 'int',
  pullSuspendMaxMs: 'int',
  pullHeldRequestsMax: 'int',
  pullHoldCheckIntervalMs: 'int',
  channelExpiredTimeout: 'int',
  clientChannelScanIntervalMs: 'int',
  rebalanceLockMaxLiveTime: 'int',
  messageDelayLevel: 'delayLevels',
  flushDelayOffsetInterval: 'int',
  timerEnable: 'bool',
  timerMaxDelaySec: 'int',
  timerPrecisionMs: 'int',
  timerFlushIntervalMs: 'int',
  transactionTimeOut: 'int',
  transactionCheckMax: 'int',
  transactionCheckInterval: 'int',
  enablePropertyFilter: 'bool',
  sendInFlightMax: 'int',
  sendThreadPoolQueueCapacity: 'int',
  waitTimeMillsInSendQueue: 'int',
};

/** broker.conf keys read as another key: RocketMQ's name where tsmq's differs. */
const ALIASES: Record<string, keyof BrokerConfig> = {
  timerWheelEnable: 'timerEnable',
};

/** Limits each integer key must respect: [min, max]. */
const INT_RANGES: Partial<Record<keyof BrokerConfig, [number, number]>> = {
  brokerId: [0, 1_000_000],
  listenPort: [0, 65_535],
  defaultTopicQueueNums: [1, 1024],
  registerNameServerPeriod: [1, 3_600_000],
  maxMessageSize: [1, 15 * 1024 * 1024],
  flushConsumerOffsetInterval: [1, 3_600_000],
  maxTransferCountOnMessageInMemory: [1, 10_000],
  maxTransferBytesOnMessageInMemory: [1, 64 * 1024 * 1024],
  pullSuspendMaxMs: [0, 3_600_000],
  pullHeldRequestsMax: [0, 1_000_000],
  pullHoldCheckIntervalMs: [1, 60_000],
  channelExpiredTimeout: [1, 86_400_000],
  clientChannelScanIntervalMs: [1, 3_600_000],
  rebalanceLockMaxLiveTime: [1, 3_600_000],
  flushDelayOffsetInterval: [1, 3_600_000],
  timerMaxDelaySec: [1, 365 * 86_400],
  timerPrecisionMs: [10, 60_000],
  timerFlushIntervalMs: [10, 60_000],
  transactionTimeOut: [1, 86_400_000],
  transactionCheckMax: [1, 10_000],
  transactionCheckInterval: [10, 3_600_000],
  sendInFlightMax: [1, 1_000_000],
  sendThreadPoolQueueCapacity: [0, 10_000_000],
  waitTimeMillsInSendQueue: [1, 3_600_000],
};

function isKey(k: string): k is keyof BrokerConfig {
  return Object.hasOwn(KINDS, k);
}

/** Converts one textual value of a known key; throws BrokerConfigError when it does not fit. */
export function convertValue(key: keyof BrokerConfig, raw: string): BrokerConfig[keyof BrokerConfig] {
  const v = raw.trim();
  switch (KINDS[key]) {
    case 'string':
      return v;
    case 'bool':
      if (v === 'true' || v === 'false') return v === 'true';
      throw new BrokerConfigError(`${key} must be true or false, got ${JSON.stringify(raw)}`);
    case 'delayLevels': {
      const levels = parseDelayLevels(v);
      if (typeof levels === 'string') throw new BrokerConfigError(levels);
      return v;
    }
    case 'flush': {
      const u = v.toUpperCase();
      if (u === 'ASYNC_FLUSH' || u === 'SYNC_FLUSH') return u;
      throw new BrokerConfigError(`${key} must be ASYNC_FLUSH or SYNC_FLUSH, got ${JSON.stringify(raw)}`);
    }
    case 'int': {
      const n = /^-?\d+$/.test(v) ? Number(v) : Number.NaN;
      const [min, max] = INT_RANGES[key] ?? [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
      if (!Number.isSafeInteger(n) || n < min || n > max) {
        throw new BrokerConfigError(
          `${key} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`,
        );
      }
      return n;
    }
  }
}

export interface ParsedBrokerConf {
  config: Partial<BrokerConfig>;
  /** Keys tsmq does not know (RocketMQ keys not implemented yet, or typos), with their line. */
  unknownKeys: Array<{ key: string; line: number }>;
}

/** Parses broker.conf text. Throws BrokerConfigError naming the line for a malformed one. */
export function parseBrokerConf(text: string): ParsedBrokerConf {
  const config: Record<string, unknown> = {};
  const unknownKeys: ParsedBrokerConf['unknownKeys'] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    const eq = line.search(/[=:]/);
    if (eq <= 0)
      throw new BrokerConfigError(`line ${i + 1}: expected key=value, got ${JSON.stringify(line)}`);
    const named = line.slice(0, eq).trim();
    const key = Object.hasOwn(ALIASES, named) ? ALIASES[named]! : named;
    const value = line.slice(eq + 1);
    if (!isKey(key)) {
      unknownKeys.push({ key, line: i + 1 });
      continue;
    }
    try {
      config[key] = convertValue(key, value);
    } catch (e) {
      throw new BrokerConfigError(`line ${i + 1}: ${(e as Error).message}`);
    }
  }
  return { config: config as Partial<BrokerConfig>, unknownKeys };
}

/** The name server addresses of `namesrvAddr`, in order, without blanks. */
export function nameServerAddresses(namesrvAddr: string): string[] {
  return namesrvAddr
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Defaults, then `over`; validates every value that came from a program rather than a file. */
export function resolveBrokerConfig(over: Partial<BrokerConfig> = {}): BrokerConfig {
  const c = { ...defaultBrokerConfig(), ...over };
  for (const k of Object.keys(KINDS) as Array<keyof BrokerConfig>) {
    convertValue(k, String(c[k]));
  }
  return c;
}
