/**
 * The consumer's pieces on their own: the process queue's committable offset and span, the retry
 * back-off, the local offset file, subscriptions, option and state checks.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { retryDelayMs } from '../../src/client/consumer/consume-failure.js';
import { LocalFileOffsetStore, offsetFilePath } from '../../src/client/consumer/local-offset-store.js';
import { ProcessQueue } from '../../src/client/consumer/process-queue.js';
import { makeSubscription, matchesTag, subscriptionData } from '../../src/client/consumer/subscription.js';
import {
  LitePullConsumer,
  type MessageExt,
  type MessageQueue,
  PushConsumer,
} from '../../src/client/index.js';
import { isTsmqError } from '../../src/common/errors.js';
import { javaStringHashCode } from '../../src/common/java-hash.js';

const MQ: MessageQueue = { topic: 'T', brokerName: 'broker-a', queueId: 0 };

function msg(queueOffset: number, bytes = 10, tags?: string): MessageExt {
  return {
    topic: 'T',
    body: Buffer.alloc(bytes),
    tags,
    keys: [],
    properties: new Map(),
    msgId: `id${queueOffset}`,
    offsetMsgId: `off${queueOffset}`,
    brokerName: 'broker-a',
    queueId: 0,
    queueOffset,
    commitLogOffset: queueOffset * 100,
    bornTimestamp: 0,
    storeTimestamp: 0,
    reconsumeTimes: 0,
    sysFlag: 0,
    flag: 0,
    storeSize: 100,
  };
}

describe('ProcessQueue', () => {
  test('the committable offset is the lowest cached one, or the highest ever cached + 1', () => {
    const pq = new ProcessQueue(MQ);
    assert.equal(pq.committable(), undefined, 'nothing cached yet');
    const ms = [5, 6, 7, 8].map((o) => msg(o));
    assert.equal(pq.put(ms).length, 4);
    assert.equal(pq.put([msg(8)]).length, 0, 'a cached offset is not cached twice');
    assert.equal(pq.count, 4);
    assert.equal(pq.cachedBytes, 40);
    assert.equal(pq.remove([ms[1]!, ms[2]!]), 5, 'offset 5 still in flight');
    assert.equal(pq.remove([ms[3]!]), 5);
    assert.equal(pq.remove([ms[0]!]), 9, 'empty: one past the highest');
    assert.equal(pq.count, 0);
    assert.equal(pq.cachedBytes, 0);
  });

  test('span: how far pulls ran past the lowest unacknowledged message', () => {
    const pq = new ProcessQueue(MQ);
    const ms = [0, 1, 2, 3, 4].map((o) => msg(o));
    pq.put(ms);
    assert.equal(pq.span, 4);
    pq.remove(ms.slice(1));
    assert.equal(pq.span, 4, 'offset 0 stuck: the span stays');
    pq.remove([ms[0]!]);
    assert.equal(pq.span, 0);
  });

  test('an out-of-order put keeps the cache sorted; clear forgets the position', () => {
    const pq = new ProcessQueue(MQ);
    pq.put([msg(10), msg(11)]);
    pq.put([msg(3)]);
    assert.equal(pq.committable(), 3);
    pq.clear();
    assert.equal(pq.committable(), undefined);
    pq.put([msg(0)]);
    assert.equal(pq.remove([msg(0)]), 1);
  });

  test('random puts and acknowledgements agree with a reference model', () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let round = 0; round < 20; round++) {
      const pq = new ProcessQueue(MQ);
      const model = new Map<number, MessageExt>();
      let maxPut = -1;
      let next = 0;
      for (let step = 0; step < 3000; step++) {
        const what = rnd(10);
        if (what < 4) {
          // A batch in order, sometimes from below (a reset backwards, duplicates).
          const from = rnd(8) === 0 ? Math.max(0, next - rnd(50)) : next;
          const batch = Array.from({ length: 1 + rnd(32) }, (_, k) => msg(from + k));
          const added = pq.put(batch).map((m) => m.queueOffset);
          const want = batch.filter((m) => !model.has(m.queueOffset)).map((m) => m.queueOffset);
          assert.deepEqual(added, want);
          for (const m of batch) if (!model.has(m.queueOffset)) model.set(m.queueOffset, m);
          for (const m of batch) maxPut = Math.max(maxPut, m.queueOffset);
          next = Math.max(next, from + batch.length);
        } else if (what < 9 && model.size > 0) {
          const keys = [...model.keys()];
          const gone = Array.from({ length: 1 + rnd(8) }, () => model.get(keys[rnd(keys.length)]!)!);
          for (const m of gone) model.delete(m.queueOffset);
          const lowest = model.size > 0 ? Math.min(...model.keys()) : maxPut + 1;
          assert.equal(pq.remove(gone), maxPut < 0 ? undefined : lowest);
        } else if (what === 9 && rnd(20) === 0) {
          pq.clear();
          model.clear();
          maxPut = -1;
        }
        assert.equal(pq.count, model.size);
        assert.equal(pq.cachedBytes, model.size * 10);
        const lowest = model.size > 0 ? Math.min(...model.keys()) : undefined;
        assert.equal(pq.span, lowest === undefined ? 0 : maxPut - lowest);
        assert.equal(pq.committable(), lowest ?? (maxPut >= 0 ? maxPut + 1 : undefined));
      }
    }
  });

  test('drop and stopPulling wake its sleeps', async () => {
    const pq = new ProcessQueue(MQ);
    const t0 = Date.now();
    const slept = pq.sleep(60_000);
    pq.stopPulling();
    await slept;
    assert.ok(Date.now() - t0 < 1_000);
    assert.equal(pq.pullStopped, true);
    assert.equal(pq.dropped, false, 'stopped, not dropped: handlers may still acknowledge');
    pq.drop();
    assert.equal(pq.dropped, true);
  });
});

test('retry back-off: 1 s doubling, capped at 30 s', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 50].map((a) => retryDelayMs(a)),
    [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000],
  );
  assert.equal(retryDelayMs(3, { initialMs: 100, maxMs: 250 }), 250);
});

describe('subscriptions', () => {
  test('"*", a tag list, and an expression naming no tag (SUBSCRIPTION_INVALID)', () => {
    const all = makeSubscription('T', '*', 1);
    assert.equal(all.expression, '*');
    assert.ok(matchesTag(all.filter, msg(0)));
    assert.equal(makeSubscription('T', '', 1).expression, '*');
    const ab = makeSubscription('T', ' A ||B ', 7);
    assert.equal(ab.expression, 'A ||B');
    assert.ok(matchesTag(ab.filter, msg(0, 1, 'B')));
    assert.ok(!matchesTag(ab.filter, msg(0, 1, 'C')));
    assert.ok(!matchesTag(ab.filter, msg(0, 1)), 'an untagged message does not match a tag list');
    assert.deepEqual(subscriptionData(ab), {
      topic: 'T',
      subString: 'A ||B',
      tagsSet: ['A', 'B'],
      codeSet: [javaStringHashCode('A'), javaStringHashCode('B')],
      subVersion: 7,
      expressionType: 'TAG',
    });
    for (const bad of ['||', ' || || ']) {
      assert.throws(
        () => makeSubscription('T', bad, 1),
        (e) => isTsmqError(e, 'SUBSCRIPTION_INVALID'),
      );
    }
    assert.throws(
      () => makeSubscription('bad topic', '*', 1),
      (e) => isTsmqError(e, 'TOPIC_INVALID'),
    );
    assert.throws(
      () => makeSubscription('', '*', 1),
      (e) => isTsmqError(e, 'TOPIC_EMPTY'),
    );
  });
});

describe('LocalFileOffsetStore', () => {
  test('persists atomically, loads back, refuses a second user and a corrupt file', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsmq-offset-store-'));
    try {
      const s1 = new LocalFileOffsetStore(dir, '10.0.0.1@DEFAULT', 'g');
      await s1.load();
      assert.equal(await s1.readStored(MQ), undefined);
      s1.update(MQ, 12, false);
      s1.update(MQ, 7, true);
      assert.equal(s1.readMemory(MQ), 12, 'increaseOnly never goes back');
      await s1.persist([]);
      assert.equal(await s1.readStored(MQ), 12);
      const dupe = new LocalFileOffsetStore(dir, '10.0.0.1@DEFAULT', 'g');
      await assert.rejects(dupe.load(), (e) => isTsmqError(e, 'CLIENT_STATE_INVALID'));
      await s1.close();

      const file = offsetFilePath(dir, '10.0.0.1@DEFAULT', 'g');
      const entries = await fs.readdir(path.dirname(file));
      assert.deepEqual(entries, ['offsets.json'], 'no temp file left behind');
      const doc = JSON.parse(await fs.readFile(file, 'utf8'));
      assert.equal(doc.format, 'tsmq-consumer-offsets');
      assert.equal(doc.version, 1);
      assert.deepEqual(doc.offsets, [{ topic: 'T', brokerName: 'broker-a', queueId: 0, offset: 12 }]);

      const s2 = new LocalFileOffsetStore(dir, '10.0.0.1@DEFAULT', 'g');
      await s2.load();
      assert.equal(await s2.readStored(MQ), 12);
      assert.equal(s2.readMemory(MQ), 12);
      await s2.close();

      doc.offsets[0].offset = 13;
      await fs.writeFile(file, JSON.stringify(doc));
      const s3 = new LocalFileOffsetStore(dir, '10.0.0.1@DEFAULT', 'g');
      await assert.rejects(s3.load(), /CRC mismatch/);
      await s3.close();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('consumer arguments and states', () => {
  const base = { group: 'g', namesrvAddr: '127.0.0.1:1' };

  test('bad options fail the constructor with ARGUMENT_INVALID', () => {
    const bad = [
      { group: 'has space' },
      { pullBatchSize: 0 },
      { consumeConcurrency: 1.5 },
      { messageModel: 'BOTH' as 'CLUSTERING' },
      { allocate: 'RANDOM' as 'AVERAGE' },
    ];
    for (const over of bad) {
      assert.throws(
        () => new PushConsumer({ ...base, ...over }),
        (e) => isTsmqError(e, 'ARGUMENT_INVALID'),
        JSON.stringify(over),
      );
    }
  });

  test('start() needs a handler and a subscription; subscribe() is for before start()', async () => {
    const noHandler = new PushConsumer(base).subscribe('T');
    await assert.rejects(noHandler.start(), (e) => isTsmqError(e, 'CLIENT_STATE_INVALID'));
    const noSub = new PushConsumer(base).onMessage(async () => undefined);
    await assert.rejects(noSub.start(), (e) => isTsmqError(e, 'CLIENT_STATE_INVALID'));
    assert.throws(
      () => new PushConsumer(base).subscribe('T', '||'),
      (e) => isTsmqError(e, 'SUBSCRIPTION_INVALID'),
    );
    const lite = new LitePullConsumer(base);
    await assert.rejects(lite.start(), (e) => isTsmqError(e, 'CLIENT_STATE_INVALID'));
    await assert.rejects(lite.poll(0), (e) => isTsmqError(e, 'CLIENT_STATE_INVALID'));
    await lite.shutdown();
  });
});
