/** Helpers for the name server tests: fake brokers' requests and a name server on a free port. */

import { ManualClock } from '../src/common/clock.js';
import { createLogger, type Logger } from '../src/common/log.js';
import {
  bodyCrc32,
  type DataVersion,
  encodeBrokerIdentityHeader,
  encodeRegisterBrokerBody,
  encodeRegisterBrokerHeader,
  NameServer,
  type NameServerOptions,
  TOPIC_CONFIG_DEFAULTS,
  type TopicConfig,
} from '../src/namesrv/index.js';
import { createRequest, type RemotingCommand, RequestCode } from '../src/protocol/index.js';

export function quietLogger(): Logger {
  return createLogger('test', 'silent');
}

export function topic(topicName: string, over: Partial<TopicConfig> = {}): TopicConfig {
  return { topicName, ...TOPIC_CONFIG_DEFAULTS, readQueueNums: 4, writeQueueNums: 4, ...over };
}

export interface FakeBroker {
  cluster?: string;
  brokerName: string;
  brokerAddr: string;
  brokerId?: number;
  haServerAddr?: string;
  topics?: TopicConfig[];
  dataVersion?: DataVersion;
  compressed?: boolean;
  heartbeatTimeoutMillis?: number;
}

export const DEFAULT_CLUSTER = 'DefaultCluster';

/** A REGISTER_BROKER request as a Java broker builds it, body CRC included. */
export function registerRequest(b: FakeBroker, body?: Buffer): RemotingCommand {
  const compressed = b.compressed ?? false;
  const payload =
    body ??
    encodeRegisterBrokerBody(
      {
        topicConfigs: b.topics ?? [],
        dataVersion: b.dataVersion ?? { timestamp: 1_700_000_000_000, counter: 1 },
        filterServerList: [],
      },
      compressed,
    );
  const ext = encodeRegisterBrokerHeader({
    brokerName: b.brokerName,
    brokerAddr: b.brokerAddr,
    clusterName: b.cluster ?? DEFAULT_CLUSTER,
    haServerAddr: b.haServerAddr ?? b.brokerAddr.replace(/:(\d+)$/, (_, p) => `:${Number(p) + 1}`),
    brokerId: b.brokerId ?? 0,
    compressed,
    bodyCrc32: bodyCrc32(payload),
    ...(b.heartbeatTimeoutMillis !== undefined && { heartbeatTimeoutMillis: b.heartbeatTimeoutMillis }),
  });
  return createRequest(RequestCode.REGISTER_BROKER, ext, payload);
}

export function unregisterRequest(b: FakeBroker): RemotingCommand {
  return createRequest(
    RequestCode.UNREGISTER_BROKER,
    encodeBrokerIdentityHeader({
      brokerName: b.brokerName,
      brokerAddr: b.brokerAddr,
      clusterName: b.cluster ?? DEFAULT_CLUSTER,
      brokerId: b.brokerId ?? 0,
    }),
  );
}

export function routeRequest(topicName: string): RemotingCommand {
  return createRequest(RequestCode.GET_ROUTEINFO_BY_TOPIC, { topic: topicName });
}

/** The JSON body of a response. */
export function jsonOf<T>(res: RemotingCommand): T {
  if (!res.body) throw new Error(`response code ${res.code} (${res.remark ?? ''}) has no body`);
  return JSON.parse(res.body.toString('utf8')) as T;
}

export interface RunningNameServer {
  ns: NameServer;
  addr: string;
  clock: ManualClock;
}

/** A name server on 127.0.0.1, a free port and a manual clock; its timer never fires in a test. */
export async function startNameServer(
  opts: Partial<Omit<NameServerOptions, 'clock'>> = {},
): Promise<RunningNameServer> {
  const clock = new ManualClock();
  const ns = new NameServer({
    host: '127.0.0.1',
    port: 0,
    clock,
    logger: quietLogger(),
    scanIntervalMs: 3_600_000,
    ...opts,
  });
  const { port } = await ns.start();
  return { ns, addr: `127.0.0.1:${port}`, clock };
}
