import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startEmbedded } from '../../src/broker/index.js';
import { type MessageExt, Producer, PushConsumer } from '../../src/client/index.js';
import { isTsmqError } from '../../src/common/errors.js';

async function until(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('SDK timer messages: delayMs and deliverAt arrive not before their time; a past time at once', async () => {
  const mq = await startEmbedded({ broker: { timerPrecisionMs: 100 } });
  const producer = new Producer({ group: 'timed-producer', namesrvAddr: mq.namesrvAddr });
  const consumer = new PushConsumer({
    group: 'timed-consumer',
    namesrvAddr: mq.namesrvAddr,
    consumeFromWhere: 'FIRST_OFFSET',
    brokerSuspendMaxTimeMillis: 1000,
  });
  const got = new Map<string, { m: MessageExt; at: number }>();
  try {
    await producer.start();
    await producer.send({ topic: 'TimedTopic', body: 'create the topic' });
    consumer.subscribe('TimedTopic').onMessage(async (msgs) => {
      for (const m of msgs) got.set(m.msgId, { m, at: Date.now() });
    });
    await consumer.start();
    await until('the first message', () => got.size === 1);

    const t0 = Date.now();
    const relative = await producer.send({ topic: 'TimedTopic', body: 'in 800 ms', delayMs: 800 });
    const absolute = await producer.send({
      topic: 'TimedTopic',
      body: 'at t0+1200',
      deliverAt: new Date(t0 + 1200),
    });
    const past = await producer.send({ topic: 'TimedTopic', body: 'already due', deliverAt: t0 - 60_000 });
    await until('all three', () => got.has(relative.msgId) && got.has(absolute.msgId) && got.has(past.msgId));
    assert.ok(got.get(relative.msgId)!.at - t0 >= 800, 'delayMs arrived early');
    assert.ok(got.get(absolute.msgId)!.at >= t0 + 1200, 'deliverAt arrived early');
    assert.ok(got.get(past.msgId)!.at < got.get(relative.msgId)!.at, 'a past time is delivered at once');
    assert.equal(got.get(absolute.msgId)!.m.body.toString(), 'at t0+1200');

    // Checked before the network.
    for (const bad of [
      { delayMs: -1 },
      { deliverAt: Number.NaN },
      { delayMs: 10, delayLevel: 2 },
      { delayMs: 10, deliverAt: Date.now() },
      { deliverAt: Math.floor(Date.now() / 1000) }, // seconds, not ms: 1970
    ]) {
      await assert.rejects(producer.send({ topic: 'TimedTopic', body: 'x', ...bad }), (e: unknown) =>
        isTsmqError(e, 'ARGUMENT_INVALID'),
      );
    }
    await assert.rejects(producer.sendBatch([{ topic: 'TimedTopic', body: 'x', delayMs: 5 }]), (e: unknown) =>
      isTsmqError(e, 'ARGUMENT_INVALID'),
    );
  } finally {
    await consumer.shutdown();
    await producer.shutdown();
    await mq.close();
  }
});
