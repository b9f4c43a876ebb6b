/**
 * Shared by the consumer tests: a name server with one or two in-process brokers on free ports,
 * topic creation that waits for the route, raw sends (test-support's sendV2, not the SDK
 * producer) and raw offset queries, so the consumers are checked against the broker's own view.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Broker, type BrokerConfig } from '../src/broker/index.js';
import type { MessageExt } from '../src/client/index.js';
import { NamesrvClient } from '../src/client/index.js';
import { createLogger } from '../src/common/log.js';
import { NameServer } from '../src/namesrv/index.js';
import { createRequest, RequestCode, ResponseCode } from '../src/protocol/index.js';
import { RemotingClient } from '../src/remoting/index.js';
import { headerRequest, sendV2, waitFor } from './broker-fixtures.js';

export { waitFor };

export interface Cluster {
  namesrvAddr: string;
  brokers: Broker[];
  /** Addresses by broker name. */
  addrs: Map<string, string>;
  client: RemotingClient;
  dataDir: string;
  close(): Promise<void>;
}

/** Silent unless TSMQ_LOG_LEVEL says otherwise. */
export const quiet = () => createLogger('test', process.env.TSMQ_LOG_LEVEL ?? 'silent');

/** A name server and `brokerCount` brokers (broker-a, broker-b, …) with short long-poll holds. */
export async function startCluster(brokerCount = 1, config: Partial<BrokerConfig> = {}): Promise<Cluster> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsmq-consumer-'));
  const nameServer = new NameServer({ host: '127.0.0.1', port: 0, logger: quiet() });
  const { port } = await nameServer.start();
  const namesrvAddr = `127.0.0.1:${port}`;
  const brokers: Broker[] = [];
  const addrs = new Map<string, string>();
  for (let i = 0; i < brokerCount; i++) {
    const brokerName = `broker-${String.fromCharCode(97 + i)}`;
    const b = new Broker(
      {
        brokerName,
        listenHost: '127.0.0.1',
        listenPort: 0,
        storePathRootDir: path.join(dataDir, brokerName, 'store'),
        namesrvAddr,
        ...config,
      },
      { logger: quiet() },
    );
    await b.start();
    brokers.push(b);
    addrs.set(brokerName, b.address);
  }
  const client = new RemotingClient();
  return {
    namesrvAddr,
    brokers,
    addrs,
    client,
    dataDir,
    async close() {
      client.close();
      for (const b of brokers) await b.close();
      await nameServer.close();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Creates `topic` with `queues` read/write queues on every broker and waits for its route. */
export async function createTopic(c: Cluster, topic: string, queues: number): Promise<void> {
  for (const addr of c.addrs.values()) {
    const res = await c.client.invoke(
      addr,
      createRequest(RequestCode.UPDATE_AND_CREATE_TOPIC, {
        topic,
        readQueueNums: String(queues),
        writeQueueNums: String(queues),
        perm: '6',
      }),
    );
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
  }
  const ns = new NamesrvClient(c.client, c.namesrvAddr);
  await waitFor(
    async () => {
      const route = await ns.routeOf(topic);
      return route?.queueDatas.length === c.addrs.size;
    },
    10_000,
    `route of ${topic}`,
  );
}

export interface Sent {
  brokerName: string;
  queueId: number;
  queueOffset: number;
  body: string;
  tags: string | undefined;
}

/** Sends one message to a given queue with the raw SEND_MESSAGE_V2 request. */
export async function send(
  c: Cluster,
  topic: string,
  brokerName: string,
  queueId: number,
  body: string,
  tags?: string,
): Promise<Sent> {
  const addr = c.addrs.get(brokerName)!;
  const res = await c.client.invoke(
    addr,
    sendV2({ topic, queueId, body: Buffer.from(body), ...(tags !== undefined && { tags }) }),
  );
  assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
  return { brokerName, queueId, queueOffset: Number(res.extFields!.queueOffset), body, tags };
}

/** Sends `count` messages round-robin over every queue of every broker; bodies `${prefix}-${i}`. */
export async function sendSpread(
  c: Cluster,
  topic: string,
  queuesPerBroker: number,
  count: number,
  prefix: string,
): Promise<Sent[]> {
  const names = [...c.addrs.keys()];
  const out: Sent[] = [];
  for (let i = 0; i < count; i++) {
    const slot = i % (names.length * queuesPerBroker);
    out.push(
      await send(c, topic, names[slot % names.length]!, Math.floor(slot / names.length), `${prefix}-${i}`),
    );
  }
  return out;
}

/** The group's committed offset of a queue on the broker (undefined: none). */
export async function brokerOffset(
  c: Cluster,
  group: string,
  topic: string,
  brokerName: string,
  queueId: number,
): Promise<number | undefined> {
  const res = await c.client.invoke(
    c.addrs.get(brokerName)!,
    headerRequest(RequestCode.QUERY_CONSUMER_OFFSET, {
      consumerGroup: group,
      topic,
      queueId,
      setZeroIfNotFound: 'false',
    }),
  );
  if (res.code === ResponseCode.QUERY_NOT_FOUND) return undefined;
  assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
  return Number(res.extFields!.offset);
}

/** Sets a group's committed offset on the broker. */
export async function setBrokerOffset(
  c: Cluster,
  group: string,
  topic: string,
  brokerName: string,
  queueId: number,
  offset: number,
): Promise<void> {
  const res = await c.client.invoke(
    c.addrs.get(brokerName)!,
    headerRequest(RequestCode.UPDATE_CONSUMER_OFFSET, {
      consumerGroup: group,
      topic,
      queueId,
      commitOffset: offset,
    }),
  );
  assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
}

export const keyOf = (m: { brokerName: string; queueId: number; queueOffset: number }) =>
  `${m.brokerName}/${m.queueId}/${m.queueOffset}`;

/** Bodies of received messages, as a multiset check helper. */
export function bodies(msgs: readonly MessageExt[]): string[] {
  return msgs.map((m) => m.body.toString());
}

/** A unique name per test run (topics and groups must not collide across tests). */
let counter = 0;
export function unique(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter++}`;
}
