/**
 * Transactions against a real broker process (unresolved after 500 ms, checked every 300 ms): a
 * producer SIGKILLed before it commits leaves a half that `tsmq tx list` shows, and a new producer
 * of the same group commits it when checked; a broker SIGKILLed between the half and the commit
 * loses neither the commit nor another open transaction, and stores each message once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { TransactionProducer } from '../../src/client/index.js';
import { createLogger } from '../../src/common/log.js';
import { decodeRecords } from '../../src/message/index.js';
import { ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { pullRequest, waitFor } from '../../test-support/broker-fixtures.js';
import { Cluster, tsmqCli } from '../../test-support/cluster.js';
import { untilStoreOpen } from '../../test-support/timer-fixtures.js';

const child = path.resolve(import.meta.dirname, '../../test-support/tx-producer-child.js');
const quiet = () => createLogger('test', process.env.TSMQ_LOG_LEVEL ?? 'silent');
let cluster: Cluster;
let client: RemotingClient;

before(async () => {
  cluster = await Cluster.start({
    brokers: [
      {
        brokerName: 'broker-tx',
        conf: {
          transactionTimeOut: 500,
          transactionCheckInterval: 300,
          defaultTopicQueueNums: 1,
          flushConsumerOffsetInterval: 100,
        },
      },
    ],
  });
  client = new RemotingClient();
  await untilStoreOpen(client, cluster.brokers[0]!.addr);
  for (const topic of ['TxKilled', 'TxBrokerKill'])
    await tsmq(['topic', 'create', topic, '-r', '1', '-w', '1']);
});

after(async () => {
  client?.close();
  await cluster?.close();
});

const tsmq = (args: string[]) => tsmqCli(args, cluster.namesrvAddr);

/** Bodies stored at queue 0 of the topic (raw pulls: every stored copy counts). */
async function stored(topic: string): Promise<string[]> {
  const res = await client.invoke(
    cluster.brokers[0]!.addr,
    pullRequest({ topic, queueId: 0, queueOffset: 0, maxMsgNums: 100, consumerGroup: 'tx-reader' }),
  );
  if (res.code !== ResponseCode.SUCCESS) return [];
  return decodeRecords(res.body!).map((r) => Buffer.from(r.body).toString());
}

test('a producer killed before it commits: `tsmq tx list` shows the half, a new producer of the group commits it', async () => {
  const topic = 'TxKilled';
  const group = 'tx-killed';
  const proc = spawn(process.execPath, [child, cluster.namesrvAddr, group, topic, 'pay order 7'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise((r) => proc.on('exit', r));
  await waitFor(() => /half (\S+)/.test(out), 20_000, 'the half is stored');
  const txId = /half (\S+)/.exec(out)![1]!;
  proc.kill('SIGKILL');
  await exited;

  const listed = JSON.parse(await tsmq(['tx', 'list', '--json']));
  assert.deepEqual(
    listed.map((h: { transactionId: string; topic: string; producerGroup: string; body: string }) => [
      h.transactionId,
      h.topic,
      h.producerGroup,
      h.body,
    ]),
    [[txId, topic, group, 'pay order 7']],
  );
  assert.deepEqual(await stored(topic), [], 'invisible');

  const asked: string[] = [];
  const p = new TransactionProducer({
    group,
    namesrvAddr: cluster.namesrvAddr,
    logger: quiet(),
    checker: async (m) => {
      asked.push(m.msgId);
      return 'COMMIT';
    },
  });
  await p.start();
  try {
    await waitFor(async () => (await stored(topic)).length === 1, 20_000, 'committed by the check');
    assert.deepEqual(await stored(topic), ['pay order 7']);
    assert.ok(asked.includes(txId), 'the checker was asked about the dead producer’s transaction');
    await waitFor(
      async () => JSON.parse(await tsmq(['tx', 'list', '--json'])).length === 0,
      10_000,
      'none left',
    );
  } finally {
    await p.shutdown();
  }
});

test('a broker SIGKILLed between the half and the commit: the commit and an open transaction both land, once', async () => {
  const topic = 'TxBrokerKill';
  const broker = cluster.brokers[0]!;
  const p = new TransactionProducer({
    group: 'tx-broker-kill',
    namesrvAddr: cluster.namesrvAddr,
    logger: quiet(),
    sendTimeoutMs: 10_000,
    // The restarted broker knows this producer again at its next heartbeat.
    heartbeatBrokerIntervalMs: 300,
    checker: async () => 'COMMIT',
  });
  await p.start();
  try {
    const open = await p.sendInTransaction({ topic, body: 'open' }, async () => 'UNKNOWN');
    assert.equal(open.state, 'UNKNOWN');
    const r = await p.sendInTransaction({ topic, body: 'across the crash' }, async () => {
      await broker.proc.kill();
      await broker.restart();
      await untilStoreOpen(client, broker.addr);
      return 'COMMIT';
    });
    assert.equal(r.endAcknowledged, true, 'the restarted broker took the commit');
    await waitFor(async () => (await stored(topic)).length === 2, 20_000, 'both visible').catch(async (e) => {
      throw new Error(
        `${(e as Error).message}: stored ${JSON.stringify(await stored(topic))}\n${broker.proc.out().slice(-6000)}`,
      );
    });
    await new Promise((res) => setTimeout(res, 1_000)); // a few check rounds
    assert.deepEqual((await stored(topic)).sort(), ['across the crash', 'open']);
  } finally {
    await p.shutdown();
  }
});
