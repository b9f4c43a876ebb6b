/**
 * LitePullConsumer: assign mode with poll, seek, commit and pause; auto-commit across a restart;
 * subscribe mode sharing a group's queues; broadcasting offsets kept in the local file; prefetch
 * bounded by the thresholds.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  Admin,
  LitePullConsumer,
  type LitePullConsumerOptions,
  type MessageExt,
  type MessageQueue,
} from '../../src/client/index.js';
import { isTsmqError } from '../../src/common/errors.js';
import {
  bodies,
  brokerOffset,
  type Cluster,
  createTopic,
  keyOf,
  quiet,
  send,
  startCluster,
  unique,
  waitFor,
} from '../../test-support/consumer-fixtures.js';

const B = 'broker-a';

describe('LitePullConsumer', () => {
  let c: Cluster;
  const consumers: LitePullConsumer[] = [];

  before(async () => {
    c = await startCluster(1);
  });
  after(async () => {
    await Promise.all(consumers.map((x) => x.shutdown()));
    await c.close();
  });

  function lite(group: string, over: Partial<LitePullConsumerOptions> = {}): LitePullConsumer {
    const l = new LitePullConsumer({
      group,
      namesrvAddr: c.namesrvAddr,
      consumeFromWhere: 'FIRST_OFFSET',
      pollTimeoutMs: 2_000,
      logger: quiet(),
      persistConsumerOffsetIntervalMs: 60_000,
      rebalanceIntervalMs: 60_000,
      ...over,
    });
    consumers.push(l);
    return l;
  }

  /** Polls until `n` messages came (or throws after the deadline). */
  async function pollN(l: LitePullConsumer, n: number, timeoutMs = 5_000): Promise<MessageExt[]> {
    const out: MessageExt[] = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < n) {
      if (Date.now() > deadline) throw new Error(`polled ${out.length} of ${n}`);
      out.push(...(await l.poll(200)));
    }
    return out;
  }

  const q = (topic: string, queueId: number): MessageQueue => ({ topic, brokerName: B, queueId });
  const offsetsOf = (msgs: MessageExt[], queueId: number) =>
    msgs.filter((m) => m.queueId === queueId).map((m) => m.queueOffset);

  test('assign: poll in order, commitSync, seek, seekToBegin/End, pause and resume', async () => {
    const topic = unique('LiteAssign');
    const group = unique('gla');
    await createTopic(c, topic, 2);
    for (let i = 0; i < 10; i++) await send(c, topic, B, 0, `q0-${i}`);
    for (let i = 0; i < 5; i++) await send(c, topic, B, 1, `q1-${i}`);

    const l = lite(group, { autoCommit: false, pullBatchSize: 4 });
    const mqs = await l.fetchMessageQueues(topic);
    assert.deepEqual(mqs, [q(topic, 0), q(topic, 1)]);
    l.assign(mqs);
    await l.start();
    assert.deepEqual(l.assignment(), mqs);

    const all: MessageExt[] = [];
    while (all.length < 15) {
      const batch = await l.poll();
      assert.ok(batch.length > 0 && batch.length <= 4, `a batch of ${batch.length}`);
      assert.equal(new Set(batch.map((m) => m.queueId)).size, 1, 'one queue per batch');
      all.push(...batch);
    }
    assert.deepEqual(offsetsOf(all, 0), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(offsetsOf(all, 1), [0, 1, 2, 3, 4]);

    // Nothing more: poll gives [] once its timeout passes.
    const t0 = Date.now();
    assert.deepEqual(await l.poll(200), []);
    assert.ok(Date.now() - t0 >= 190);

    assert.equal(await l.committed(q(topic, 0)), undefined, 'nothing committed yet (autoCommit off)');
    await l.commitSync();
    assert.equal(await l.committed(q(topic, 0)), 10);
    assert.equal(await l.committed(q(topic, 1)), 5);
    assert.equal(await brokerOffset(c, group, topic, B, 0), 10);

    await l.seek(q(topic, 0), 3);
    await l.commitSync();
    assert.equal(await l.committed(q(topic, 0)), 3, 'a commit after a seek commits the new position');
    assert.deepEqual(offsetsOf(await pollN(l, 7), 0), [3, 4, 5, 6, 7, 8, 9]);

    await l.seekToBegin(q(topic, 1));
    assert.deepEqual(offsetsOf(await pollN(l, 5), 1), [0, 1, 2, 3, 4]);

    await l.seekToEnd(q(topic, 0));
    assert.deepEqual(await l.poll(200), []);
    await send(c, topic, B, 0, 'q0-10');
    assert.deepEqual(bodies(await pollN(l, 1)), ['q0-10']);

    await assert.rejects(l.seek(q(topic, 0), 99), (e) => isTsmqError(e, 'ARGUMENT_INVALID'));
    await assert.rejects(l.seek(q(topic, 7), 0), (e) => isTsmqError(e, 'ARGUMENT_INVALID'));

    l.pause([q(topic, 0)]);
    await send(c, topic, B, 0, 'q0-11');
    await send(c, topic, B, 1, 'q1-5');
    assert.deepEqual(bodies(await pollN(l, 1)), ['q1-5'], 'the paused queue is held back');
    assert.deepEqual(await l.poll(300), []);
    l.resume([q(topic, 0)]);
    assert.deepEqual(bodies(await pollN(l, 1)), ['q0-11']);
    await l.shutdown();
    // autoCommit is off: shutdown commits nothing more.
    assert.equal(await brokerOffset(c, group, topic, B, 0), 3);
  });

  test('autoCommit: what poll returned is committed; a restarted consumer continues after it', async () => {
    const topic = unique('LiteAuto');
    const group = unique('glauto');
    await createTopic(c, topic, 1);
    for (let i = 0; i < 12; i++) await send(c, topic, B, 0, `m${i}`);
    const l1 = lite(group, { autoCommitIntervalMs: 0, pullBatchSize: 5 });
    l1.assign([q(topic, 0)]);
    await l1.start();
    assert.equal((await pollN(l1, 12)).length, 12);
    await l1.shutdown();
    assert.equal(await brokerOffset(c, group, topic, B, 0), 12, 'shutdown committed what poll returned');

    for (let i = 12; i < 15; i++) await send(c, topic, B, 0, `m${i}`);
    const l2 = lite(group);
    l2.assign([q(topic, 0)]);
    await l2.start();
    assert.deepEqual(bodies(await pollN(l2, 3)), ['m12', 'm13', 'm14']);
    assert.deepEqual(await l2.poll(200), []);
    await l2.shutdown();
  });

  test('subscribe: two members share the queues of a topic; assign and subscribe do not mix', async () => {
    const topic = unique('LiteSub');
    const group = unique('gls');
    await createTopic(c, topic, 4);
    const a = lite(group, { consumeFromWhere: 'LAST_OFFSET' }).subscribe(topic, '*');
    const b = lite(group, { consumeFromWhere: 'LAST_OFFSET' }).subscribe(topic, '*');
    assert.throws(
      () => a.assign([q(topic, 0)]),
      (e) => isTsmqError(e, 'CLIENT_STATE_INVALID'),
    );
    await a.start();
    await b.start();
    await waitFor(() => a.assignment().length === 2 && b.assignment().length === 2, 10_000, '2 + 2');
    const sent = [];
    for (let i = 0; i < 40; i++) sent.push(await send(c, topic, B, i % 4, `s${i}`));
    const gotA: MessageExt[] = [];
    const gotB: MessageExt[] = [];
    const deadline = Date.now() + 10_000;
    while (gotA.length + gotB.length < 40 && Date.now() < deadline) {
      const [x, y] = await Promise.all([a.poll(100), b.poll(100)]);
      gotA.push(...x);
      gotB.push(...y);
    }
    const ka = gotA.map(keyOf);
    const kb = gotB.map(keyOf);
    assert.deepEqual(
      ka.filter((k) => kb.includes(k)),
      [],
    );
    assert.deepEqual([...ka, ...kb].sort(), sent.map(keyOf).sort());
    assert.ok(gotA.length > 0 && gotB.length > 0);
    await Promise.all([a.shutdown(), b.shutdown()]);
  });

  test('subscribe: an admin reset to the earliest while polling re-delivers the queue from its start', async () => {
    const topic = unique('LiteReset');
    const group = unique('glr');
    await createTopic(c, topic, 1);
    for (let i = 0; i < 6; i++) await send(c, topic, B, 0, `r${i}`);
    const l = lite(group, { autoCommit: true, autoCommitIntervalMs: 50 }).subscribe(topic, '*');
    await l.start();
    assert.deepEqual(bodies(await pollN(l, 6)), ['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
    await l.commitSync();
    const admin = new Admin({ namesrvAddr: c.namesrvAddr, logger: quiet() });
    try {
      const table = await admin.resetOffset(group, topic, 'earliest');
      assert.deepEqual(
        table.map((e) => e.offset),
        [0],
      );
    } finally {
      admin.close();
    }
    assert.deepEqual(bodies(await pollN(l, 6)), ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'], 'polled again');
    await l.shutdown();
    assert.equal(await brokerOffset(c, group, topic, B, 0), 6);
  });

  test('BROADCASTING: offsets survive a restart in the local file; every member reads everything', async () => {
    const topic = unique('LiteCast');
    const group = unique('glc');
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsmq-lite-offsets-'));
    try {
      await createTopic(c, topic, 2);
      for (let i = 0; i < 10; i++) await send(c, topic, B, i % 2, `m${i}`);
      const opts = { messageModel: 'BROADCASTING', offsetStoreDir: dir, instanceName: 'one' } as const;
      const l1 = lite(group, opts).subscribe(topic);
      await l1.start();
      await waitFor(() => l1.assignment().length === 2, 5_000, 'both queues');
      assert.equal((await pollN(l1, 10)).length, 10);
      await l1.shutdown();
      assert.equal(await brokerOffset(c, group, topic, B, 0), undefined, 'nothing on the broker');
      const files = await fs.readdir(dir, { recursive: true });
      assert.ok(
        files.some((f) => String(f).endsWith('offsets.json')),
        `an offsets.json under ${dir}: ${files}`,
      );

      for (let i = 10; i < 14; i++) await send(c, topic, B, i % 2, `m${i}`);
      const l2 = lite(group, opts).subscribe(topic);
      await l2.start();
      assert.deepEqual(bodies(await pollN(l2, 4)).sort(), ['m10', 'm11', 'm12', 'm13']);
      assert.deepEqual(await l2.poll(200), []);

      // Another member (its own file) of the same group reads everything too.
      const other = lite(group, { ...opts, instanceName: 'two' }).subscribe(topic);
      await other.start();
      assert.equal((await pollN(other, 14)).length, 14);
      await Promise.all([l2.shutdown(), other.shutdown()]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('prefetch stops at pullThresholdForQueue while nobody polls', async () => {
    const topic = unique('LiteFlow');
    await createTopic(c, topic, 1);
    for (let i = 0; i < 100; i++) await send(c, topic, B, 0, `m${i}`);
    const l = lite(unique('glf'), { pullThresholdForQueue: 5, pullBatchSize: 4 });
    l.assign([q(topic, 0)]);
    await l.start();
    await waitFor(() => l.stats().flowControlTimes >= 5, 5_000, 'flow control');
    assert.ok(l.prefetched(q(topic, 0)) <= 9, `prefetched ${l.prefetched(q(topic, 0))}`);
    assert.equal((await pollN(l, 100)).length, 100);
    await l.shutdown();
  });
});
