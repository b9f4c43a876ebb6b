/**
 * PushConsumer delivery rules against one broker: client-side tag filtering, redelivery of failed
 * messages with the committed offset held back, flow control, where new groups start, long
 * polling, and what heartbeats tell the broker.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  localRedelivery,
  type MessageExt,
  type MessageHandler,
  PushConsumer,
  type PushConsumerOptions,
} from '../../src/client/index.js';
import { javaStringHashCode } from '../../src/common/java-hash.js';
import { decodeProperties, decodeRecords } from '../../src/message/index.js';
import { ResponseCode } from '../../src/protocol/index.js';
import { pullRequest } from '../../test-support/broker-fixtures.js';
import {
  bodies,
  brokerOffset,
  type Cluster,
  createTopic,
  quiet,
  send,
  startCluster,
  unique,
  waitFor,
} from '../../test-support/consumer-fixtures.js';

const B = 'broker-a';

describe('PushConsumer delivery', () => {
  let c: Cluster;
  const consumers: PushConsumer[] = [];

  before(async () => {
    c = await startCluster(1);
  });
  after(async () => {
    await Promise.all(consumers.map((x) => x.shutdown()));
    await c.close();
  });

  function consumer(
    group: string,
    topic: string,
    expression: string,
    handler: MessageHandler,
    over: Partial<PushConsumerOptions> = {},
  ): PushConsumer {
    const pc = new PushConsumer({
      group,
      namesrvAddr: c.namesrvAddr,
      rebalanceIntervalMs: 60_000,
      persistConsumerOffsetIntervalMs: 100,
      logger: quiet(),
      ...over,
    });
    pc.subscribe(topic, expression);
    pc.onMessage(handler);
    consumers.push(pc);
    return pc;
  }

  test('tags: only matching ones arrive, a hash collision ("BB" for "Aa") included', async () => {
    assert.equal(javaStringHashCode('Aa'), javaStringHashCode('BB'), 'the premise: a collision pair');
    const topic = unique('Tags');
    const group = unique('gtag');
    await createTopic(c, topic, 1);
    const tags = ['Aa', 'BB', 'C', 'Aa', 'BB', undefined, 'D', 'Aa'];
    for (const [i, t] of tags.entries()) await send(c, topic, B, 0, `m${i}`, t);
    // The broker alone lets BB through: it compares hashes.
    const raw = await c.client.invoke(
      c.addrs.get(B)!,
      pullRequest({ topic, queueId: 0, queueOffset: 0, subscription: 'Aa' }),
    );
    assert.equal(raw.code, ResponseCode.SUCCESS);
    assert.deepEqual(
      decodeRecords(raw.body!).map((r) => decodeProperties(r.properties).get('TAGS')),
      ['Aa', 'BB', 'Aa', 'BB', 'Aa'],
    );

    const got: MessageExt[] = [];
    const pc = consumer(
      group,
      topic,
      'Aa',
      async (msgs) => {
        got.push(...msgs);
        return 'SUCCESS';
      },
      { consumeFromWhere: 'FIRST_OFFSET' },
    );
    await pc.start();
    // The committed offset passes the filtered messages too, up to the end of the queue.
    await waitFor(async () => (await brokerOffset(c, group, topic, B, 0)) === tags.length, 5_000, 'offset 8');
    assert.deepEqual(bodies(got), ['m0', 'm3', 'm7']);
    assert.ok(got.every((m) => m.tags === 'Aa'));

    // "A || C" with a second group: both tags, nothing else.
    const got2: MessageExt[] = [];
    const pc2 = consumer(
      unique('gtag2'),
      topic,
      'Aa || C',
      async (msgs) => {
        got2.push(...msgs);
      },
      { consumeFromWhere: 'FIRST_OFFSET' },
    );
    await pc2.start();
    await waitFor(() => got2.length >= 4, 5_000, '4 messages');
    assert.deepEqual(bodies(got2), ['m0', 'm2', 'm3', 'm7']);
    await Promise.all([pc.shutdown(), pc2.shutdown()]);
  });

  test('local redelivery: a failed message comes back after a back-off and holds the committed offset until it succeeds', async () => {
    const topic = unique('Retry');
    const group = unique('gretry');
    await createTopic(c, topic, 1);
    for (let i = 0; i < 6; i++) await send(c, topic, B, 0, `m${i}`);

    const attempts: Array<{ at: number; reconsumeTimes: number }> = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const pc = consumer(
      group,
      topic,
      '*',
      async (msgs) => {
        const m = msgs[0]!;
        if (m.queueOffset !== 2) return 'SUCCESS';
        attempts.push({ at: Date.now(), reconsumeTimes: m.reconsumeTimes });
        if (attempts.length === 1) throw new Error('first attempt fails');
        if (attempts.length === 2) return 'RETRY_LATER';
        await gate;
        return 'SUCCESS';
      },
      {
        consumeFromWhere: 'FIRST_OFFSET',
        retryBackoff: { initialMs: 100, maxMs: 150 },
        failurePolicy: localRedelivery,
      },
    );
    await pc.start();
    // Offsets 0, 1, 3, 4, 5 succeed; 2 is on its third attempt, held by the gate.
    await waitFor(() => pc.stats().consumed === 5 && attempts.length === 3, 10_000, 'five done, third try');
    assert.equal(pc.queueStats()[0]!.offset, 2, 'the memory offset stops at the failing message');
    await waitFor(async () => (await brokerOffset(c, group, topic, B, 0)) === 2, 5_000, 'broker offset 2');
    assert.equal(pc.queueStats()[0]!.offset, 2);
    assert.equal(pc.queueStats()[0]!.cachedCount, 1, 'only the failing message is still cached');

    release();
    await waitFor(async () => (await brokerOffset(c, group, topic, B, 0)) === 6, 5_000, 'broker offset 6');
    assert.deepEqual(
      attempts.map((a) => a.reconsumeTimes),
      [0, 1, 2],
    );
    assert.ok(attempts[1]!.at - attempts[0]!.at >= 95, 'first back-off ~100 ms');
    assert.ok(attempts[2]!.at - attempts[1]!.at >= 145, 'second back-off capped at 150 ms');
    assert.equal(pc.stats().failed, 2);
    await pc.shutdown();
  });

  test('flow control: a slow handler keeps each queue cache near pullThresholdForQueue', async () => {
    const topic = unique('Flow');
    const group = unique('gflow');
    await createTopic(c, topic, 1);
    for (let i = 0; i < 300; i++) await send(c, topic, B, 0, `m${i}`);

    let open = false;
    let maxCached = 0;
    let pc!: PushConsumer;
    const THRESHOLD = 10;
    const BATCH = 8;
    const waiters: Array<() => void> = [];
    pc = consumer(
      group,
      topic,
      '*',
      async () => {
        maxCached = Math.max(maxCached, pc.queueStats()[0]?.cachedCount ?? 0);
        if (!open) await new Promise<void>((r) => waiters.push(r));
        return 'SUCCESS';
      },
      {
        consumeFromWhere: 'FIRST_OFFSET',
        pullThresholdForQueue: THRESHOLD,
        pullBatchSize: BATCH,
        consumeConcurrency: 2,
      },
    );
    await pc.start();
    // The handler is stuck: pulls stop once the cache passes the threshold.
    await waitFor(() => pc.stats().flowControlTimes >= 10, 5_000, 'flow control kicks in');
    const stuck = pc.queueStats()[0]!.cachedCount;
    assert.ok(stuck > THRESHOLD && stuck <= THRESHOLD + BATCH, `cached ${stuck} with the handler stuck`);
    open = true;
    for (const w of waiters.splice(0)) w();
    await waitFor(() => pc.stats().consumed === 300, 10_000, 'all 300 consumed');
    assert.ok(maxCached <= THRESHOLD + BATCH, `the cache peaked at ${maxCached}`);
    await pc.shutdown();
  });

  test('flow control: one stuck message stops pulls once the offset span passes consumeConcurrentlyMaxSpan', async () => {
    const topic = unique('Span');
    const group = unique('gspan');
    await createTopic(c, topic, 1);
    for (let i = 0; i < 200; i++) await send(c, topic, B, 0, `m${i}`);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const SPAN = 20;
    const pc = consumer(
      group,
      topic,
      '*',
      async (msgs) => {
        if (msgs[0]!.queueOffset === 0) await gate;
        return 'SUCCESS';
      },
      { consumeFromWhere: 'FIRST_OFFSET', consumeConcurrentlyMaxSpan: SPAN, pullBatchSize: 4 },
    );
    await pc.start();
    await waitFor(() => pc.stats().flowControlTimes >= 5, 5_000, 'span flow control');
    const s = pc.queueStats()[0]!;
    assert.ok(s.span > SPAN && s.span <= SPAN + 4, `span ${s.span}`);
    assert.ok(pc.stats().consumed < 30, `${pc.stats().consumed} consumed while offset 0 is stuck`);
    release();
    await waitFor(() => pc.stats().consumed === 200, 10_000, 'all 200');
    await pc.shutdown();
  });

  test('a new group starts at FIRST_OFFSET, LAST_OFFSET or TIMESTAMP', async () => {
    const topic = unique('From');
    await createTopic(c, topic, 1);
    for (let i = 0; i < 5; i++) await send(c, topic, B, 0, `a${i}`);
    const sentA = Date.now();
    await waitFor(() => Date.now() > sentA + 1, 1_000, 'the clock to move on');
    const t = Date.now();
    for (let i = 0; i < 5; i++) await send(c, topic, B, 0, `b${i}`);

    const got = { FIRST_OFFSET: [] as string[], LAST_OFFSET: [] as string[], TIMESTAMP: [] as string[] };
    const start = async (from: keyof typeof got) => {
      const pc = consumer(
        unique(`g${from}`),
        topic,
        '*',
        async (msgs) => {
          got[from].push(...bodies(msgs));
          return 'SUCCESS';
        },
        { consumeFromWhere: from, consumeTimestamp: t },
      );
      await pc.start();
      await waitFor(() => pc.assignedQueues().length === 1, 5_000, `${from} owns the queue`);
      return pc;
    };
    const first = await start('FIRST_OFFSET');
    const last = await start('LAST_OFFSET');
    const stamp = await start('TIMESTAMP');
    await send(c, topic, B, 0, 'c0');
    await waitFor(
      () => got.FIRST_OFFSET.length === 11 && got.LAST_OFFSET.length === 1 && got.TIMESTAMP.length === 6,
      5_000,
      'each group got its share',
    );
    assert.deepEqual(got.FIRST_OFFSET, ['a0', 'a1', 'a2', 'a3', 'a4', 'b0', 'b1', 'b2', 'b3', 'b4', 'c0']);
    assert.deepEqual(got.LAST_OFFSET, ['c0']);
    assert.deepEqual(got.TIMESTAMP, ['b0', 'b1', 'b2', 'b3', 'b4', 'c0']);
    await Promise.all([first.shutdown(), last.shutdown(), stamp.shutdown()]);
  });

  test('heartbeats carry the subscription (tags and their hash codes)', async () => {
    const topic = unique('Hb');
    const group = unique('ghb');
    await createTopic(c, topic, 1);
    const pc = consumer(group, topic, 'TagA || TagB', async () => 'SUCCESS');
    await pc.start();
    const sub = c.brokers[0]!.clients.subscription(group, topic);
    assert.ok(sub, 'registered');
    assert.equal(sub.subString, 'TagA || TagB');
    assert.deepEqual(sub.tagsSet, ['TagA', 'TagB']);
    assert.deepEqual(sub.codeSet, [javaStringHashCode('TagA'), javaStringHashCode('TagB')]);
    assert.equal(sub.expressionType, 'TAG');
    await pc.shutdown();
    assert.equal(c.brokers[0]!.clients.subscription(group, topic), undefined, 'unregistered at shutdown');
  });
});

describe('PushConsumer long polling', () => {
  test('a message sent while the pull is held arrives well under the suspend time', async (t) => {
    const c = await startCluster(1);
    const topic = unique('LongPoll');
    const got: number[] = [];
    const pc = new PushConsumer({
      group: unique('glp'),
      namesrvAddr: c.namesrvAddr,
      brokerSuspendMaxTimeMillis: 10_000,
      logger: quiet(),
    });
    try {
      await createTopic(c, topic, 1);
      pc.subscribe(topic).onMessage(async () => {
        got.push(Date.now());
      });
      await pc.start();
      const hold = c.brokers[0]!.pullHoldService;
      await waitFor(() => hold.heldFor(topic, 0) === 1, 5_000, 'the pull is held by the broker');
      const pullsBefore = pc.stats().pulls;
      const t0 = Date.now();
      await send(c, topic, B, 0, 'wake');
      await waitFor(() => got.length === 1, 5_000, 'the message');
      const latencyMs = got[0]! - t0;
      assert.ok(latencyMs < 1_000, `arrived after ${latencyMs} ms`);
      assert.ok(pc.stats().pulls - pullsBefore <= 1, 'one pull answered it, no polling loop');
      t.diagnostic(`long poll: delivered ${latencyMs} ms after the send (suspend 10 s)`);
      // The next pull is held again at once.
      await waitFor(() => hold.heldFor(topic, 0) === 1, 5_000, 'held again');
    } finally {
      await pc.shutdown();
      await c.close();
    }
  });
});
