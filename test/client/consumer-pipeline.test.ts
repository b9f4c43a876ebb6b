/**
 * A push consumer keeps several pulls of a queue in flight (pullsInFlightPerQueue), the ones past
 * the next asking from predicted offsets. Against a broker whose byte limit makes pulls return
 * uneven batches (so predictions miss), a queue dropped, reset or flow-controlled with pulls in
 * flight loses nothing and hands nothing out twice.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Admin,
  type MessageHandler,
  PushConsumer,
  type PushConsumerOptions,
} from '../../src/client/index.js';
import {
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
/** The broker's byte limit per pull: a batch of the bodies below holds 2 to 16 messages. */
const PULL_BYTES = 4_000;

/** Body of message i: 50 to 1,550 bytes, so batches under the byte limit vary in length. */
function body(i: number): string {
  return `m${i}-`.padEnd(50 + ((i * 397) % 1500), 'x');
}

describe('PushConsumer with several pulls in flight per queue', () => {
  let c: Cluster;
  const consumers: PushConsumer[] = [];

  before(async () => {
    c = await startCluster(1, { maxTransferBytesOnMessageInMemory: PULL_BYTES });
  });
  after(async () => {
    await Promise.all(consumers.map((x) => x.shutdown()));
    await c.close();
  });

  function consumer(
    group: string,
    topic: string,
    handler: MessageHandler,
    over: Partial<PushConsumerOptions> = {},
  ): PushConsumer {
    const pc = new PushConsumer({
      group,
      namesrvAddr: c.namesrvAddr,
      consumeFromWhere: 'FIRST_OFFSET',
      rebalanceIntervalMs: 60_000,
      persistConsumerOffsetIntervalMs: 100,
      pullsInFlightPerQueue: 4,
      logger: quiet(),
      ...over,
    });
    pc.subscribe(topic, '*');
    pc.onMessage(handler);
    consumers.push(pc);
    return pc;
  }

  async function fill(topic: string, queues: number, perQueue: number): Promise<void> {
    await createTopic(c, topic, queues);
    for (let q = 0; q < queues; q++) {
      for (let i = 0; i < perQueue; i += 50) {
        await Promise.all(
          Array.from({ length: Math.min(50, perQueue - i) }, (_, k) => send(c, topic, B, q, body(i + k))),
        );
      }
    }
  }

  test('uneven batches: predicted pulls that miss are dropped and asked again; each message once, in order', async () => {
    const topic = unique('Pipe');
    const group = unique('gpipe');
    const PER_QUEUE = 400;
    await fill(topic, 2, PER_QUEUE);
    const seen = [new Map<number, number>(), new Map<number, number>()];
    const order: number[][] = [[], []];
    const pc = consumer(
      group,
      topic,
      async (msgs) => {
        for (const m of msgs) {
          const s = seen[m.queueId]!;
          s.set(m.queueOffset, (s.get(m.queueOffset) ?? 0) + 1);
          order[m.queueId]!.push(m.queueOffset);
          assert.ok(m.body.toString().startsWith(`m${m.queueOffset}-`), `body of offset ${m.queueOffset}`);
        }
      },
      // One handler call at a time: calls happen in the order the pulls handed the messages out.
      { consumeConcurrency: 1, consumeBatchMaxSize: 32 },
    );
    await pc.start();
    await waitFor(() => pc.stats().consumed === 2 * PER_QUEUE, 20_000, 'everything consumed');
    for (const q of [0, 1]) {
      assert.deepEqual(
        order[q],
        Array.from({ length: PER_QUEUE }, (_, i) => i),
        `queue ${q}: each offset once, in order`,
      );
    }
    assert.ok(pc.stats().pullsDiscarded > 0, 'some predicted pulls missed (the test covers dropping them)');
    await waitFor(
      async () => (await brokerOffset(c, group, topic, B, 0)) === PER_QUEUE,
      5_000,
      'queue 0 committed to its end',
    );
    await pc.shutdown();
  });

  test('flow control counts the pulls in flight: the cache stays within the threshold and one batch', async () => {
    const topic = unique('PipeFlow');
    const group = unique('gpflow');
    // Small bodies: every pull comes back full, so the pulls sent ahead all hit.
    await createTopic(c, topic, 1);
    for (let i = 0; i < 300; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, k) => send(c, topic, B, 0, `f${i + k}`)));
    }
    const THRESHOLD = 40;
    const BATCH = 8;
    let maxCached = 0;
    let open = false;
    const waiters: Array<() => void> = [];
    let pc!: PushConsumer;
    pc = consumer(
      group,
      topic,
      async () => {
        maxCached = Math.max(maxCached, pc.queueStats()[0]?.cachedCount ?? 0);
        if (!open) await new Promise<void>((r) => waiters.push(r));
      },
      {
        pullThresholdForQueue: THRESHOLD,
        pullBatchSize: BATCH,
        pullsInFlightPerQueue: 8,
        consumeConcurrency: 2,
      },
    );
    await pc.start();
    await waitFor(() => pc.stats().flowControlTimes >= 5, 5_000, 'flow control kicks in');
    // Let the pulls in flight (if any were sent past the threshold) land.
    await new Promise((r) => setTimeout(r, 200));
    const stuck = pc.queueStats()[0]!.cachedCount;
    assert.ok(stuck > THRESHOLD && stuck <= THRESHOLD + BATCH, `cached ${stuck} with the handler stuck`);
    open = true;
    for (const w of waiters.splice(0)) w();
    await waitFor(() => pc.stats().consumed === 300, 10_000, 'all 300 consumed');
    assert.ok(maxCached <= THRESHOLD + BATCH, `the cache peaked at ${maxCached}`);
    await pc.shutdown();
  });

  test('an offset reset with pulls in flight: the stale answers are dropped, the queue is read again from the new offset once', async () => {
    const topic = unique('PipeReset');
    const group = unique('gpreset');
    const N = 600;
    await fill(topic, 1, N);
    const order: number[] = [];
    let resetDone: Promise<unknown> | undefined;
    const admin = new Admin({ namesrvAddr: c.namesrvAddr, logger: quiet() });
    const pc = consumer(
      group,
      topic,
      async (msgs) => {
        for (const m of msgs) order.push(m.queueOffset);
        // Mid-backlog (pulls of offsets past this batch in flight): back to the queue's start.
        if (resetDone === undefined && order.length >= 100) {
          resetDone = admin.resetOffset(group, topic, 'earliest');
          await resetDone;
        }
      },
      { consumeConcurrency: 1, consumeBatchMaxSize: 4, pullBatchSize: 16 },
    );
    try {
      await pc.start();
      await waitFor(() => resetDone !== undefined, 10_000, 'the reset started');
      await resetDone;
      // Read again from 0: the deliveries after the last return to offset 0 are 0 .. N-1, once each.
      await waitFor(
        () => {
          const restart = order.lastIndexOf(0);
          return restart > 0 && order.length - restart >= N;
        },
        20_000,
        'the queue read again',
      );
      await new Promise((r) => setTimeout(r, 200)); // nothing more comes
      const restart = order.lastIndexOf(0);
      assert.deepEqual(
        order.slice(restart),
        Array.from({ length: N }, (_, i) => i),
        'after the reset: each offset once, in order',
      );
      await waitFor(
        async () => (await brokerOffset(c, group, topic, B, 0)) === N,
        5_000,
        'committed to the end',
      );
    } finally {
      admin.close();
      await pc.shutdown();
    }
  });

  test('a queue handed to a new member with pulls in flight: nothing lost, only its uncommitted cache read twice', async () => {
    const topic = unique('PipeMove');
    const group = unique('gpmove');
    const PER_QUEUE = 1000;
    await fill(topic, 4, PER_QUEUE);
    const got = new Map<string, number>();
    let slow = true;
    const handler: MessageHandler = async (msgs) => {
      for (const m of msgs) {
        const k = `${m.queueId}/${m.queueOffset}`;
        got.set(k, (got.get(k) ?? 0) + 1);
      }
      if (slow) await new Promise((r) => setTimeout(r, 5));
    };
    const THRESHOLD = 64;
    const BATCH = 16;
    const opts: Partial<PushConsumerOptions> = {
      consumeConcurrency: 2,
      consumeBatchMaxSize: 8,
      pullBatchSize: BATCH,
      pullThresholdForQueue: THRESHOLD,
    };
    const a = consumer(group, topic, handler, opts);
    await a.start();
    await waitFor(() => got.size >= 200, 10_000, 'the first member is consuming');
    // A second member takes half the queues while the first has pulls of them in flight.
    const b = consumer(group, topic, handler, opts);
    await b.start();
    await Promise.all([a.rebalance(), b.rebalance()]);
    const movedEarly = got.size < 4 * PER_QUEUE;
    slow = false;
    await waitFor(() => got.size === 4 * PER_QUEUE, 20_000, 'every message arrived');
    assert.equal(a.assignedQueues().length + b.assignedQueues().length, 4);
    // At-least-once: a message is read twice only when the first member had it cached and not
    // committed when the queue moved; stale pulled answers must not add more.
    const twice = [...got.values()].filter((n) => n > 1).length;
    assert.ok(
      [...got.values()].every((n) => n <= 2),
      'no message delivered more than twice',
    );
    // Two queues moved, each with at most its cache (the threshold and a batch) uncommitted.
    assert.ok(twice <= 2 * (THRESHOLD + BATCH), `${twice} messages read twice`);
    assert.ok(movedEarly, 'the queues moved mid-backlog');
    await Promise.all([a.shutdown(), b.shutdown()]);
  });
});
