/**
 * A flood of failures does not flood the log: 'send attempt failed' (producer) and 'pull failed'
 * (push and lite pull consumers) are logged once per broker and kind of failure every few seconds
 * (WarnThrottle), with the number held back, while every failure still reaches its caller or is
 * retried as before.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { startEmbedded } from '../../src/broker/index.js';
import { Admin, LitePullConsumer, Producer, PushConsumer } from '../../src/client/index.js';
import { WarnThrottle } from '../../src/client/warn-throttle.js';
import { createLogger } from '../../src/common/log.js';
import { waitUntil } from '../../test-support/store-fixtures.js';

test('WarnThrottle: the first of a kind at once, then one per interval with the count held back', () => {
  const t = new WarnThrottle(1000, 3);
  assert.deepEqual(t.take('a', 0), { held: 0 });
  assert.equal(t.take('a', 10), undefined);
  assert.equal(t.take('a', 999), undefined);
  assert.deepEqual(t.take('b', 500), { held: 0 }, 'another kind is not held back by the first');
  assert.deepEqual(t.take('a', 1000), { held: 2 });
  assert.equal(t.take('a', 1500), undefined);
  assert.deepEqual(t.take('a', 2100), { held: 1 });
  assert.deepEqual(t.take('a', 5000), { held: 0 }, 'a quiet spell logs the next at once');
  // Past maxKinds the kinds are forgotten: their next warning is logged.
  t.take('c', 5000);
  assert.equal(t.take('a', 5001), undefined);
  t.take('d', 5002);
  assert.deepEqual(t.take('a', 5003), { held: 0 });
});

test('a producer whose sends keep failing logs a few lines, not one per attempt', async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsmq-warn-'));
  const mq = await startEmbedded({ dataDir });
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  const admin = new Admin({ namesrvAddr: mq.namesrvAddr, logger: createLogger('test', 'silent') });
  const producer = new Producer({
    group: 'warn-pg',
    namesrvAddr: mq.namesrvAddr,
    logger,
    retryTimesWhenSendFailed: 2,
    sendTimeoutMs: 5_000,
  });
  try {
    // One message a second: nearly every send of a burst is answered FLOW_CONTROL, every attempt.
    await admin.setRateLimit(
      'topic',
      'Throttled',
      { msgsPerSec: 1, bytesPerSec: 0 },
      { brokerAddr: mq.brokerAddr },
    );
    await producer.start();
    const queue = { topic: 'Throttled', brokerName: mq.broker.config.brokerName, queueId: 0 };
    const outcomes = await Promise.allSettled(
      Array.from({ length: 60 }, (_, i) => producer.send({ topic: 'Throttled', body: `m${i}` }, { queue })),
    );
    const failed = outcomes.filter((o) => o.status === 'rejected');
    assert.ok(failed.length >= 50, `most sends fail (${failed.length} of 60)`);
    for (const f of failed)
      assert.match(String((f as PromiseRejectedResult).reason), /SEND_FAILED|FLOW_CONTROL/);
    const attemptLines = lines.filter((l) => l.includes('send attempt failed'));
    // At least 100 failed attempts (each failed send was tried at least twice) in a few seconds.
    assert.ok(attemptLines.length >= 1, 'the first failure is logged');
    assert.ok(attemptLines.length <= 3, `a few lines, got ${attemptLines.length}`);
    const later = attemptLines.slice(1).map((l) => JSON.parse(l) as { alikeNotLogged?: number });
    for (const l of later)
      assert.ok((l.alikeNotLogged ?? 0) > 0, 'a later line says how many were held back');
  } finally {
    await producer.shutdown();
    admin.close();
    await mq.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
});

test('consumers whose broker is gone log a few "pull failed" lines, not one per queue and retry', async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsmq-warn-'));
  const mq = await startEmbedded({ dataDir });
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  const admin = new Admin({ namesrvAddr: mq.namesrvAddr, logger: createLogger('test', 'silent') });
  const options = {
    namesrvAddr: mq.namesrvAddr,
    logger,
    consumeFromWhere: 'FIRST_OFFSET' as const,
    // Retry failed pulls quickly, so that many fail within the test.
    pullTimeDelayMillsWhenException: 20,
    rebalanceIntervalMs: 60_000,
  };
  const push = new PushConsumer({ ...options, group: 'warn-push' });
  const lite = new LitePullConsumer({ ...options, group: 'warn-lite' });
  try {
    await admin.createTopic({ topic: 'Gone', readQueueNums: 8, writeQueueNums: 8 });
    push.subscribe('Gone', '*').onMessage(async () => {});
    await push.start();
    lite.subscribe('Gone', '*');
    await lite.start();
    // Both own all eight queues once they have pulled from them.
    await waitUntil(() => push.assignedQueues().length === 8, 10_000, 'the push consumer owns the queues');
    await mq.close();
    // Eight queues retried every 20 ms: hundreds of failed pulls within a second or two.
    await waitUntil(() => push.stats().pullErrors >= 80, 15_000, 'pulls keep failing');
    const pullLines = lines.filter((l) => l.includes('pull failed'));
    // One line per consumer, broker and kind of failure (here: the connection, or its refusal).
    assert.ok(pullLines.length >= 2, `both consumers said it (${pullLines.length} lines)`);
    assert.ok(
      pullLines.length <= 6,
      `a few lines for ${push.stats().pullErrors} failed pulls, got ${pullLines.length}`,
    );
  } finally {
    await push.shutdown();
    await lite.shutdown();
    admin.close();
    await mq.close().catch(() => undefined);
    await fs.rm(dataDir, { recursive: true, force: true });
  }
});
