/**
 * PushConsumer against a name server and two brokers (a topic of 4 queues on each: 8 in all):
 * group splits, broadcasting, takeover when a member leaves, and resuming after a restart.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  localRedelivery,
  type MessageExt,
  type MessageQueue,
  mqKey,
  PushConsumer,
  type PushConsumerOptions,
} from '../../src/client/index.js';
import {
  brokerOffset,
  type Cluster,
  createTopic,
  keyOf,
  quiet,
  type Sent,
  sendSpread,
  startCluster,
  unique,
  waitFor,
} from '../../test-support/consumer-fixtures.js';

const QUEUES_PER_BROKER = 4;

describe('PushConsumer with two brokers', () => {
  let c: Cluster;
  const consumers: PushConsumer[] = [];

  before(async () => {
    c = await startCluster(2);
  });
  after(async () => {
    await Promise.all(consumers.map((x) => x.shutdown()));
    await c.close();
  });

  /** A consumer recording what it gets into `got`. */
  function consumer(
    group: string,
    topic: string,
    got: MessageExt[],
    over: Partial<PushConsumerOptions> = {},
    handler?: (msgs: MessageExt[]) => 'SUCCESS' | 'RETRY_LATER',
  ): PushConsumer {
    const pc = new PushConsumer({
      group,
      namesrvAddr: c.namesrvAddr,
      rebalanceIntervalMs: 60_000,
      persistConsumerOffsetIntervalMs: 200,
      logger: quiet(),
      ...over,
    });
    pc.subscribe(topic, '*');
    pc.onMessage(async (msgs) => {
      if (handler) {
        const r = handler(msgs);
        if (r === 'RETRY_LATER') return r;
      }
      got.push(...msgs);
      return 'SUCCESS';
    });
    consumers.push(pc);
    return pc;
  }

  const keysOfQueues = (mqs: MessageQueue[]) => new Set(mqs.map(mqKey));

  test('CLUSTERING: two members get disjoint halves of the 8 queues and each message once', async () => {
    const topic = unique('Clustering');
    const group = unique('gc');
    await createTopic(c, topic, QUEUES_PER_BROKER);
    const gotA: MessageExt[] = [];
    const gotB: MessageExt[] = [];
    const a = consumer(group, topic, gotA);
    const b = consumer(group, topic, gotB);
    await a.start();
    await b.start();
    await waitFor(
      () => a.assignedQueues().length === 4 && b.assignedQueues().length === 4,
      10_000,
      'a 4 + 4 split',
    );
    const qa = keysOfQueues(a.assignedQueues());
    const qb = keysOfQueues(b.assignedQueues());
    assert.equal(new Set([...qa, ...qb]).size, 8, 'the two halves cover the 8 queues');

    const sent = await sendSpread(c, topic, QUEUES_PER_BROKER, 200, 'm');
    await waitFor(() => gotA.length + gotB.length >= 200, 10_000, 'all 200 messages');
    const ka = gotA.map(keyOf);
    const kb = gotB.map(keyOf);
    assert.equal(new Set(ka).size, ka.length, 'A got no message twice');
    assert.equal(new Set(kb).size, kb.length, 'B got no message twice');
    assert.deepEqual(
      ka.filter((k) => kb.includes(k)),
      [],
      'disjoint',
    );
    assert.deepEqual([...ka, ...kb].sort(), sent.map(keyOf).sort(), 'the union is everything sent');
    for (const m of gotA) assert.ok(qa.has(mqKey({ topic, brokerName: m.brokerName, queueId: m.queueId })));
    for (const m of gotB) assert.ok(qb.has(mqKey({ topic, brokerName: m.brokerName, queueId: m.queueId })));
    assert.ok(gotA.length > 0 && gotB.length > 0);
    await Promise.all([a.shutdown(), b.shutdown()]);
  });

  test('BROADCASTING: each member gets every message; offsets go to local files', async () => {
    const topic = unique('Broadcast');
    const group = unique('gb');
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsmq-offsets-'));
    try {
      await createTopic(c, topic, QUEUES_PER_BROKER);
      const gotA: MessageExt[] = [];
      const gotB: MessageExt[] = [];
      const opts = { messageModel: 'BROADCASTING', offsetStoreDir: dir } as const;
      const a = consumer(group, topic, gotA, { ...opts, instanceName: 'a' });
      const b = consumer(group, topic, gotB, { ...opts, instanceName: 'b' });
      await a.start();
      await b.start();
      await waitFor(
        () => a.assignedQueues().length === 8 && b.assignedQueues().length === 8,
        10_000,
        'both own all 8 queues',
      );
      const sent = await sendSpread(c, topic, QUEUES_PER_BROKER, 80, 'b');
      await waitFor(() => gotA.length >= 80 && gotB.length >= 80, 10_000, 'both got all 80');
      assert.deepEqual(gotA.map(keyOf).sort(), sent.map(keyOf).sort());
      assert.deepEqual(gotB.map(keyOf).sort(), sent.map(keyOf).sort());
      await Promise.all([a.shutdown(), b.shutdown()]);
      // Nothing was committed on the brokers; each member wrote its own file.
      assert.equal(await brokerOffset(c, group, topic, 'broker-a', 0), undefined);
      const files = await fs.readdir(dir);
      assert.equal(files.length, 2, `one directory per client id: ${files}`);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('a member that shuts down hands its queues over at once (NOTIFY, not the 60 s timer)', async (t) => {
    const topic = unique('Takeover');
    const group = unique('gt');
    await createTopic(c, topic, QUEUES_PER_BROKER);
    const gotA: MessageExt[] = [];
    const gotB: MessageExt[] = [];
    const a = consumer(group, topic, gotA);
    const b = consumer(group, topic, gotB);
    await a.start();
    await b.start();
    await waitFor(
      () => a.assignedQueues().length === 4 && b.assignedQueues().length === 4,
      10_000,
      'a 4 + 4 split',
    );
    const first = await sendSpread(c, topic, QUEUES_PER_BROKER, 40, 'before');
    await waitFor(() => gotA.length + gotB.length >= 40, 10_000, 'the first 40');

    const t0 = Date.now();
    await a.shutdown();
    await waitFor(() => b.assignedQueues().length === 8, 5_000, 'B owns all 8 queues');
    const takeoverMs = Date.now() - t0;
    assert.ok(takeoverMs < 5_000, `takeover took ${takeoverMs} ms`);
    t.diagnostic(`takeover: B owned all 8 queues ${takeoverMs} ms after A's shutdown began`);

    const second = await sendSpread(c, topic, QUEUES_PER_BROKER, 80, 'after');
    await waitFor(() => gotA.length + gotB.length >= 120, 10_000, 'the next 80 at B');
    const all = [...gotA, ...gotB].map(keyOf);
    assert.deepEqual([...new Set(all)].sort(), [...first, ...second].map(keyOf).sort());
    const afterKeys = new Set(second.map(keyOf));
    assert.equal(gotA.filter((m) => afterKeys.has(keyOf(m))).length, 0, 'A is gone');
    await b.shutdown();
  });

  test('restart: a new member resumes at the committed offsets, nothing skipped', async (t) => {
    const topic = unique('Restart');
    const group = unique('gr');
    await createTopic(c, topic, QUEUES_PER_BROKER);
    const sent = await sendSpread(c, topic, QUEUES_PER_BROKER, 400, 'r');

    // A consumes about 150 messages, then fails everything (redelivered locally, so the rest stays
    // uncommitted) and shuts down.
    const gotA: MessageExt[] = [];
    let closed = false;
    const a = consumer(
      group,
      topic,
      gotA,
      { consumeFromWhere: 'FIRST_OFFSET', pullBatchSize: 8, failurePolicy: localRedelivery },
      () => {
        if (closed) return 'RETRY_LATER';
        if (gotA.length >= 150) closed = true;
        return 'SUCCESS';
      },
    );
    await a.start();
    await waitFor(() => closed, 10_000, 'A consumed 150');
    await a.shutdown();

    const committed = new Map<string, number>();
    for (const brokerName of c.addrs.keys()) {
      for (let q = 0; q < QUEUES_PER_BROKER; q++) {
        committed.set(`${brokerName}/${q}`, (await brokerOffset(c, group, topic, brokerName, q)) ?? -1);
      }
    }
    // Committed offsets never pass a message A has not consumed.
    const aKeys = new Set(gotA.map(keyOf));
    for (const s of sent) {
      if (s.queueOffset < committed.get(`${s.brokerName}/${s.queueId}`)!) {
        assert.ok(aKeys.has(keyOf(s)), `${keyOf(s)} is below the committed offset but A never consumed it`);
      }
    }

    const gotB: MessageExt[] = [];
    const b = consumer(group, topic, gotB, { consumeFromWhere: 'LAST_OFFSET' });
    await b.start();
    const missing = () => {
      const have = new Set([...gotA, ...gotB].map(keyOf));
      return sent.filter((s: Sent) => !have.has(keyOf(s)));
    };
    await waitFor(() => missing().length === 0, 10_000, 'every message consumed by A or B');
    // B starts exactly at each committed offset (LAST_OFFSET does not apply: the group has one).
    for (const [queue, offset] of committed) {
      const fromB = gotB.filter((m) => `${m.brokerName}/${m.queueId}` === queue).map((m) => m.queueOffset);
      const max = sent.filter((s) => `${s.brokerName}/${s.queueId}` === queue).length;
      if (offset < max) assert.equal(Math.min(...fromB), offset, `B resumes ${queue} at ${offset}`);
      else assert.equal(fromB.length, 0);
    }
    const dup = gotB.filter((m) => aKeys.has(keyOf(m))).length;
    assert.ok(dup <= 8 * 8, `${dup} duplicates`);
    t.diagnostic(`restart: A consumed ${gotA.length}, B ${gotB.length}, ${dup} consumed by both`);
    await b.shutdown();
  });
});
