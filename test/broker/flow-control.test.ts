/**
 * Flow control on an in-process broker: a rate-limited topic answers FLOW_CONTROL while another
 * keeps full speed, limits change at run time and survive a restart, the SDK producer backs off
 * and gets through; the bounded send queue answers SYSTEM_BUSY without losing an acknowledged
 * message; the latency fault table.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { startEmbedded } from '../../src/broker/index.js';
import { Admin, LatencyFaultTolerance, Producer } from '../../src/client/index.js';
import { createLogger } from '../../src/common/log.js';
import { createRequest, RequestCode, ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { sendV2 } from '../../test-support/broker-fixtures.js';

const quiet = () => createLogger('test', process.env.TSMQ_LOG_LEVEL ?? 'silent');

test('a rate-limited topic answers FLOW_CONTROL while another keeps full speed; limits change at run time and survive a restart', async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsmq-flow-'));
  let mq = await startEmbedded({ dataDir });
  const client = new RemotingClient();
  const admin = new Admin({ namesrvAddr: mq.namesrvAddr, logger: quiet() });
  try {
    await admin.setRateLimit(
      'topic',
      'Slow',
      { msgsPerSec: 10, bytesPerSec: 0 },
      { brokerAddr: mq.brokerAddr },
    );
    const burst = async (topic: string, n: number) => {
      const codes = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          client.invoke(mq.brokerAddr, sendV2({ topic, body: Buffer.from(`m${i}`), queueId: 0 })),
        ),
      );
      return codes;
    };
    const slow = await burst('Slow', 60);
    const fast = await burst('Fast', 60);
    const ok = slow.filter((r) => r.code === ResponseCode.SUCCESS).length;
    const limited = slow.filter((r) => r.code === ResponseCode.FLOW_CONTROL);
    assert.ok(ok >= 10 && ok <= 13, `${ok} of 60 went through a 10 msgs/s limit`);
    assert.equal(ok + limited.length, 60);
    assert.match(limited[0]!.remark ?? '', /\[FLOW_CONTROL\]topic Slow is over its limit of 10 messages\/s/);
    assert.ok(
      fast.every((r) => r.code === ResponseCode.SUCCESS),
      'the other topic is not limited',
    );
    assert.equal(mq.broker.store.maxOffsetInQueue('Slow', 0), ok, 'exactly the acknowledged ones are stored');

    // Bytes per second, for a client host.
    await admin.setRateLimit(
      'client',
      '127.0.0.1',
      { msgsPerSec: 0, bytesPerSec: 1000 },
      { brokerAddr: mq.brokerAddr },
    );
    const big = await Promise.all(
      Array.from({ length: 5 }, () =>
        client.invoke(mq.brokerAddr, sendV2({ topic: 'Fast', body: Buffer.alloc(400, 1), queueId: 0 })),
      ),
    );
    assert.equal(big.filter((r) => r.code === ResponseCode.SUCCESS).length, 2);
    assert.match(
      big.find((r) => r.code === ResponseCode.FLOW_CONTROL)!.remark ?? '',
      /client 127\.0\.0\.1 is over its limit of 1000 bytes\/s/,
    );
    await admin.setRateLimit('client', '127.0.0.1', undefined, { brokerAddr: mq.brokerAddr });

    // Bad keys and values change nothing.
    const bad = await client.invoke(mq.brokerAddr, {
      ...createRequest(RequestCode.UPDATE_BROKER_CONFIG),
      body: Buffer.from('rateLimit.topic.Fast=5,0\nlistenPort=1\n'),
    });
    assert.equal(bad.code, ResponseCode.SYSTEM_ERROR);
    assert.match(bad.remark ?? '', /listenPort cannot be changed at run time/);
    const badValue = await client.invoke(mq.brokerAddr, {
      ...createRequest(RequestCode.UPDATE_BROKER_CONFIG),
      body: Buffer.from('rateLimit.topic.Fast=lots\n'),
    });
    assert.equal(badValue.code, ResponseCode.SYSTEM_ERROR);
    assert.match(badValue.remark ?? '', /expected "<messages per second>,<bytes per second>"/);
    const config = await admin.brokerConfig(mq.brokerAddr);
    assert.equal(config.get('rateLimit.topic.Slow'), '10,0');
    assert.equal(config.has('rateLimit.topic.Fast'), false);
    assert.equal(config.has('rateLimit.client.127.0.0.1'), false);

    // The SDK producer backs off on FLOW_CONTROL and gets every message through.
    const producer = new Producer({
      group: 'flow-pg',
      namesrvAddr: mq.namesrvAddr,
      logger: quiet(),
      sendTimeoutMs: 10_000,
      retryTimesWhenSendFailed: 16,
    });
    await producer.start();
    await new Promise((r) => setTimeout(r, 1100)); // the bucket refills
    const before = mq.broker.store.maxOffsetInQueue('Slow', 0);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        producer.send(
          { topic: 'Slow', body: `p${i}` },
          { queue: { topic: 'Slow', brokerName: mq.broker.config.brokerName, queueId: 0 } },
        ),
      ),
    );
    await producer.shutdown();
    assert.equal(results.length, 20);
    assert.equal(mq.broker.store.maxOffsetInQueue('Slow', 0) - before, 20, 'every send stored once');

    await mq.close();
    mq = await startEmbedded({ dataDir });
    const after = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        client.invoke(mq.brokerAddr, sendV2({ topic: 'Slow', body: Buffer.from(`a${i}`), queueId: 0 })),
      ),
    );
    assert.ok(
      after.some((r) => r.code === ResponseCode.FLOW_CONTROL),
      'the limit survived the restart',
    );
  } finally {
    admin.close();
    client.close();
    await mq.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
});

test('the bounded send queue: sends that waited too long are SYSTEM_BUSY, never stored; every acknowledged one is', async () => {
  const mq = await startEmbedded({
    broker: {
      flushDiskType: 'SYNC_FLUSH',
      sendInFlightMax: 1,
      waitTimeMillsInSendQueue: 1,
      sendThreadPoolQueueCapacity: 100,
    },
  });
  const client = new RemotingClient();
  try {
    const res = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        client.invoke(mq.brokerAddr, sendV2({ topic: 'Busy', body: Buffer.from(`b${i}`), queueId: 0 })),
      ),
    );
    const ok = res.filter((r) => r.code === ResponseCode.SUCCESS).length;
    const busy = res.filter((r) => r.code === ResponseCode.SYSTEM_BUSY);
    assert.equal(ok + busy.length, 300, 'every send answered SUCCESS or SYSTEM_BUSY');
    assert.ok(busy.length > 0, 'some waited too long or found the queue full');
    assert.ok(ok > 0);
    assert.match(busy[0]!.remark ?? '', /\[TIMEOUT_CLEAN_QUEUE\]broker busy/);
    assert.equal(
      mq.broker.store.maxOffsetInQueue('Busy', 0),
      ok,
      'exactly the acknowledged sends are stored',
    );
  } finally {
    client.close();
    await mq.close();
  }
});

test('latency fault table: slow or failed brokers are skipped for a while, then used again', () => {
  const f = new LatencyFaultTolerance();
  const q = (b: string) => ({ brokerName: b });
  f.update('a', 40, false, 0);
  assert.ok(f.isAvailable('a', 0));
  f.update('a', 600, false, 0);
  assert.equal(f.isAvailable('a', 1999), false);
  assert.ok(f.isAvailable('a', 2000));
  f.update('b', 10, true, 0);
  assert.deepEqual(f.filter([q('a'), q('b')], 100), [q('a')]);
  assert.deepEqual(f.filter([q('b')], 100), [q('b')], 'all skipped: use them anyway');
  assert.ok(f.isAvailable('b', 30_000));
  f.update('b', 10, true, 0);
  f.update('b', 5, false, 1);
  assert.ok(f.isAvailable('b', 2), 'one good send clears it');
  const off = new LatencyFaultTolerance({ enable: false });
  off.update('a', 99_999, true, 0);
  assert.ok(off.isAvailable('a', 0));
});
