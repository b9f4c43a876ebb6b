/**
 * Latency fault avoidance against real broker processes: with one of two brokers frozen
 * (SIGSTOP), a producer stops trying it after the first send that timed out there, and uses it
 * again once it answers (SIGCONT) and its time out is over.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Admin, Producer, type SendResult } from '../../src/client/index.js';
import { createLogger } from '../../src/common/log.js';
import { waitFor } from '../../test-support/broker-fixtures.js';
import { Cluster } from '../../test-support/cluster.js';

const quiet = () => createLogger('test', process.env.TSMQ_LOG_LEVEL ?? 'silent');
const TOPIC = 'Avoid';
let cluster: Cluster;

before(async () => {
  cluster = await Cluster.start({ brokers: [{ brokerName: 'broker-a' }, { brokerName: 'broker-b' }] });
  const admin = new Admin({ namesrvAddr: cluster.namesrvAddr, logger: quiet() });
  try {
    await waitFor(async () => (await admin.brokers()).length === 2, 20_000, 'both brokers registered');
    await admin.createTopic({ topic: TOPIC, readQueueNums: 2, writeQueueNums: 2 });
    await waitFor(
      async () => (await admin.topicRoute(TOPIC)).queueDatas.length === 2,
      20_000,
      'the route names both brokers',
    );
  } finally {
    admin.close();
  }
});

after(async () => {
  await cluster?.close();
});

test('a frozen broker is skipped after one slow send and used again after it recovers', async () => {
  const producer = new Producer({
    group: 'avoid-pg',
    namesrvAddr: cluster.namesrvAddr,
    logger: quiet(),
    sendTimeoutMs: 1_500,
    // RocketMQ's table, with the time-outs scaled down for the test.
    latencyFault: { notAvailableMs: [0, 0, 300, 600, 600, 1000, 2000] },
  });
  await producer.start();
  const b = cluster.broker('broker-b');
  try {
    const warm: SendResult[] = [];
    for (let i = 0; i < 8; i++) warm.push(await producer.send({ topic: TOPIC, body: `w${i}` }));
    assert.ok(new Set(warm.map((r) => r.messageQueue.brokerName)).size === 2, 'both brokers in use');

    b.proc.signal('SIGSTOP');
    const frozen: Array<{ broker?: string; ms: number; failed: boolean }> = [];
    for (let i = 0; i < 20; i++) {
      const t0 = Date.now();
      try {
        const r = await producer.send({ topic: TOPIC, body: `f${i}` });
        frozen.push({ broker: r.messageQueue.brokerName, ms: Date.now() - t0, failed: false });
      } catch {
        frozen.push({ ms: Date.now() - t0, failed: true });
      }
    }
    const slow = frozen.filter((s) => s.failed || s.ms > 500);
    assert.ok(
      slow.length <= 1,
      `${slow.length} slow or failed sends while broker-b was frozen: ${JSON.stringify(frozen)}`,
    );
    const first = frozen.findIndex((s) => s.failed || s.broker === 'broker-b');
    assert.ok(
      frozen.slice(first + 1).every((s) => !s.failed && s.broker === 'broker-a'),
      `after the first send that met broker-b, every send went to broker-a: ${JSON.stringify(frozen)}`,
    );

    b.proc.signal('SIGCONT');
    await new Promise((r) => setTimeout(r, 2_200)); // past broker-b's 2 s
    const back: SendResult[] = [];
    for (let i = 0; i < 10; i++) back.push(await producer.send({ topic: TOPIC, body: `b${i}` }));
    assert.ok(
      back.some((r) => r.messageQueue.brokerName === 'broker-b'),
      'broker-b is used again after it recovered',
    );
  } finally {
    b.proc.signal('SIGCONT');
    await producer.shutdown();
  }
});
