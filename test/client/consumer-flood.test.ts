/**
 * A push consumer with a slow handler while a producer floods its topic: each queue's cache stays
 * under the byte threshold (pulls pause, then resume as it drains), and everything is consumed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startEmbedded } from '../../src/broker/index.js';
import { Producer, PushConsumer } from '../../src/client/index.js';
import { createLogger } from '../../src/common/log.js';
import { waitFor } from '../../test-support/broker-fixtures.js';

const quiet = () => createLogger('test', process.env.TSMQ_LOG_LEVEL ?? 'silent');

test('a slow consumer keeps its cache under pullThresholdSizeForQueue while a producer floods the topic', async () => {
  const mq = await startEmbedded({ broker: { defaultTopicQueueNums: 2 } });
  const producer = new Producer({ group: 'flood-pg', namesrvAddr: mq.namesrvAddr, logger: quiet() });
  const TOTAL = 3_000;
  const BODY = Buffer.alloc(8 * 1024, 7);
  let consumed = 0;
  let maxBytes = 0;
  let maxCount = 0;
  const pc = new PushConsumer({
    group: 'flood-cg',
    namesrvAddr: mq.namesrvAddr,
    consumeFromWhere: 'FIRST_OFFSET',
    pullThresholdSizeForQueue: 1, // MiB
    pullBatchSize: 32,
    consumeConcurrency: 4,
    logger: quiet(),
  });
  pc.subscribe('Flood').onMessage(async () => {
    await new Promise((r) => setTimeout(r, 1));
    consumed++;
  });
  await producer.start();
  await producer.send({ topic: 'Flood', body: 'first' }); // the topic exists before the consumer starts
  await pc.start();
  const sampler = setInterval(() => {
    for (const s of pc.queueStats()) {
      maxBytes = Math.max(maxBytes, s.cachedBytes);
      maxCount = Math.max(maxCount, s.cachedCount);
    }
  }, 5);
  try {
    for (let i = 0; i < TOTAL; i += 100) {
      await Promise.all(Array.from({ length: 100 }, () => producer.send({ topic: 'Flood', body: BODY })));
    }
    await waitFor(() => pc.stats().flowControlTimes > 0, 20_000, 'flow control kicked in');
    await waitFor(() => consumed === TOTAL + 1, 120_000, 'everything consumed');
    // One pull (32 × 8 KiB) may land on top of a cache just under the threshold.
    assert.ok(maxBytes <= 1024 * 1024 + 32 * BODY.length, `a queue cached ${maxBytes} bytes`);
    assert.ok(maxCount < TOTAL / 4, `a queue cached ${maxCount} messages`);
  } finally {
    clearInterval(sampler);
    await pc.shutdown();
    await producer.shutdown();
    await mq.close();
  }
});
