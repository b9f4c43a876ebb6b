import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Embedded, startEmbedded } from '../../src/broker/index.js';
import { AutoBatcher, type OpenBatch } from '../../src/client/auto-batch.js';
import {
  BrokerResponseError,
  decodeMessages,
  type Message,
  type MessageExt,
  Producer,
  type ProducerOptions,
  type SendResult,
} from '../../src/client/index.js';
import { isTsmqError } from '../../src/common/errors.js';
import { SysFlag } from '../../src/message/index.js';
import { ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { pullRequest, waitFor } from '../../test-support/broker-fixtures.js';
import { quietLogger } from '../../test-support/namesrv-fixtures.js';

/** Every message of a queue from offset 0, paging until `count` are there. */
async function pullQueue(
  client: RemotingClient,
  addr: string,
  topic: string,
  queueId: number,
  count: number,
): Promise<MessageExt[]> {
  const got: MessageExt[] = [];
  await waitFor(
    async () => {
      const res = await client.invoke(
        addr,
        pullRequest({ topic, queueId, queueOffset: got.length, maxMsgNums: 32, suspendTimeoutMillis: 0 }),
      );
      if (res.code === ResponseCode.SUCCESS) got.push(...decodeMessages(res.body, 'broker-a'));
      return got.length >= count;
    },
    5_000,
    `${count} messages in ${topic}/${queueId}`,
  );
  return got;
}

/** Every message of the topic's 4 queues up to the highest queue offset the results name. */
async function pullAll(
  client: RemotingClient,
  addr: string,
  topic: string,
  results: readonly SendResult[],
): Promise<MessageExt[]> {
  const all: MessageExt[] = [];
  for (const q of [0, 1, 2, 3]) {
    const mine = results.filter((r) => r.messageQueue.queueId === q);
    if (mine.length === 0) continue;
    const n = Math.max(...mine.map((r) => r.queueOffset)) + 1;
    all.push(...(await pullQueue(client, addr, topic, q, n)));
  }
  return all;
}

describe('producer autoBatch against one broker', () => {
  let mq: Embedded;
  let client: RemotingClient;
  const producers: Producer[] = [];
  const opts = (over: Partial<ProducerOptions> = {}): ProducerOptions => ({
    group: 'PG_AUTO_BATCH',
    namesrvAddr: mq.namesrvAddr,
    clientIp: '10.1.2.3',
    logger: quietLogger(),
    ...over,
  });
  const started = async (over: Partial<ProducerOptions>): Promise<Producer> => {
    const p = new Producer(opts(over));
    producers.push(p);
    await p.start();
    return p;
  };

  before(async () => {
    mq = await startEmbedded();
    client = new RemotingClient();
  });
  after(async () => {
    for (const p of producers) await p.shutdown();
    client.close();
    await mq.close();
  });

  test('options: true gives the defaults; bad values are ARGUMENT_INVALID', () => {
    const p = new Producer(opts({ autoBatch: true }));
    assert.deepEqual(p.autoBatch, {
      maxDelayMs: 0,
      maxMessages: 1000,
      maxBytes: 128 * 1024,
      totalMaxBytes: 32 * 1024 * 1024,
    });
    assert.equal(new Producer(opts()).autoBatch, undefined);
    assert.equal(new Producer(opts({ autoBatch: { maxDelayMs: 5 } })).autoBatch?.maxDelayMs, 5);
    for (const bad of [
      { maxDelayMs: -1 },
      { maxDelayMs: 1.5 },
      { maxMessages: 0 },
      { maxMessages: 10_001 },
      { maxBytes: 8 * 1024 * 1024 },
      { maxBytes: 4096, totalMaxBytes: 1024 },
    ]) {
      assert.throws(
        () => new Producer(opts({ autoBatch: bad })),
        (e: unknown) => isTsmqError(e, 'ARGUMENT_INVALID'),
        JSON.stringify(bad),
      );
    }
  });

  test('300 concurrent sends: each its own msgId and queue offset; every message stored once with its own tags, keys, properties, flag', async () => {
    const p = await started({ autoBatch: { maxDelayMs: 20, maxMessages: 64 } });
    const topic = 'AbMany';
    await p.send({ topic, body: 'warm-up', tags: 'warm' }); // the route, so all 300 batch at once
    const N = 300;
    const msgs: Message[] = Array.from({ length: N }, (_, i) => ({
      topic,
      body: Buffer.from(`body-${i}-${'x'.repeat(i % 50)}`),
      tags: `T${i % 7}`,
      keys: [`k-${i}`, `order-${i % 13}`],
      properties: { seq: String(i), 'é ✓': `v${i}` },
      flag: i,
    }));
    const results = await Promise.all(msgs.map((m) => p.send(m)));
    assert.equal(new Set(results.map((r) => r.msgId)).size, N, 'distinct msgIds');
    assert.equal(new Set(results.map((r) => r.offsetMsgId)).size, N, 'distinct offsetMsgIds');
    for (const r of results) {
      assert.equal(r.status, 'SEND_OK');
      assert.match(r.msgId, /^0A010203[0-9A-F]{24}$/);
      assert.match(r.offsetMsgId, /^7F000001[0-9A-F]{24}$/);
    }
    // Queue offsets: within each queue every offset once, no gaps (the warm-up holds one of them).
    const byQueue = new Map<number, number[]>();
    for (const r of [...results]) {
      const q = r.messageQueue.queueId;
      byQueue.set(q, [...(byQueue.get(q) ?? []), r.queueOffset]);
    }
    for (const [q, offsets] of byQueue) {
      const sorted = [...offsets].sort((a, b) => a - b);
      assert.equal(new Set(sorted).size, sorted.length, `queue ${q}: an offset given twice`);
    }

    const stored = await pullAll(client, mq.brokerAddr, topic, results);
    const byId = new Map(stored.map((m) => [m.msgId, m]));
    for (const [i, r] of results.entries()) {
      const m = byId.get(r.msgId);
      assert.ok(m, `message ${i} (${r.msgId}) stored`);
      assert.equal(m.queueId, r.messageQueue.queueId, `message ${i}: queue`);
      assert.equal(m.queueOffset, r.queueOffset, `message ${i}: queue offset`);
      assert.equal(m.offsetMsgId, r.offsetMsgId, `message ${i}: offsetMsgId`);
      assert.deepEqual(m.body, msgs[i]!.body);
      assert.equal(m.tags, `T${i % 7}`);
      assert.deepEqual(m.keys, [`k-${i}`, `order-${i % 13}`]);
      assert.equal(m.properties.get('seq'), String(i));
      assert.equal(m.properties.get('é ✓'), `v${i}`);
      assert.equal(m.properties.get('WAIT'), 'true');
      assert.equal(m.flag, i);
    }
    // Exactly once: each queue read from 0 holds the N messages (and the warm-up), none twice.
    const ids = stored.map((m) => m.msgId);
    assert.equal(new Set(ids).size, ids.length, 'no message stored twice');
    assert.equal(ids.length, N + 1);
  });

  test('the broker stores each batch contiguously: sends made together land in one queue, in call order', async () => {
    // 64 sends in one turn with batches of 16: 4 requests, each to the next queue round-robin.
    // Single sends would go round-robin one by one: send k to the queue after send k-1's.
    const p = await started({ autoBatch: { maxDelayMs: 200, maxMessages: 16 } });
    const topic = 'AbContiguous';
    await p.send({ topic, body: 'warm-up' });
    const results = await Promise.all(
      Array.from({ length: 64 }, (_, i) => p.send({ topic, body: `m${i}`, properties: { i: String(i) } })),
    );
    const queues = new Set<number>();
    for (let b = 0; b < 4; b++) {
      const first = results[b * 16]!;
      queues.add(first.messageQueue.queueId);
      for (let k = 1; k < 16; k++) {
        const r = results[b * 16 + k]!;
        assert.equal(r.messageQueue.queueId, first.messageQueue.queueId, `send ${b * 16 + k}: same queue`);
        assert.equal(r.queueOffset, first.queueOffset + k, `send ${b * 16 + k}: next offset`);
      }
    }
    assert.equal(queues.size, 4, 'the 4 batches went round-robin over the 4 queues');
    // The broker's view: each queue holds its batch's 16 messages in call order.
    for (let b = 0; b < 4; b++) {
      const q = results[b * 16]!.messageQueue.queueId;
      const inQueue = await pullQueue(client, mq.brokerAddr, topic, q, results[b * 16]!.queueOffset + 16);
      const batch = inQueue.slice(results[b * 16]!.queueOffset);
      assert.deepEqual(
        batch.map((m) => m.properties.get('i')),
        Array.from({ length: 16 }, (_, k) => String(b * 16 + k)),
      );
      // One request: one born timestamp for the whole batch.
      assert.equal(new Set(batch.map((m) => m.bornTimestamp)).size, 1);
    }
  });

  test('messages that may not be batched go alone: delayed, with a queue, compressible, invalid', async () => {
    const p = await started({ autoBatch: { maxDelayMs: 50 } });
    const topic = 'AbBypass';
    await p.send({ topic, body: 'warm-up' });
    const big = Buffer.alloc(8192, 'z');
    const [delayed, fixed, large, plain, invalid] = await Promise.allSettled([
      p.send({ topic, body: 'later', delayLevel: 1 }),
      p.send({ topic, body: 'to queue 3' }, { queue: { topic, brokerName: 'broker-a', queueId: 3 } }),
      p.send({ topic, body: big }),
      p.send({ topic, body: 'plain' }),
      p.send({ topic, body: '' }),
    ]);
    assert.equal(invalid.status, 'rejected');
    assert.ok(isTsmqError((invalid as PromiseRejectedResult).reason, 'ARGUMENT_INVALID'));
    for (const s of [delayed, fixed, large, plain]) assert.equal(s.status, 'fulfilled');
    const v = (s: PromiseSettledResult<SendResult>) => (s as PromiseFulfilledResult<SendResult>).value;
    assert.equal(v(fixed).messageQueue.queueId, 3);
    const [l] = (
      await pullQueue(client, mq.brokerAddr, topic, v(large).messageQueue.queueId, v(large).queueOffset + 1)
    ).slice(v(large).queueOffset);
    assert.ok(l && (l.sysFlag & SysFlag.COMPRESSED) !== 0, 'the large body went alone, compressed');
    assert.deepEqual(l.body, big);
    // The delayed message arrives in its topic a second (level 1) later, with its id.
    const found: MessageExt[] = [];
    await waitFor(
      async () => {
        found.length = 0;
        for (const q of [0, 1, 2, 3]) {
          const res = await client.invoke(
            mq.brokerAddr,
            pullRequest({ topic, queueId: q, queueOffset: 0, maxMsgNums: 32, suspendTimeoutMillis: 0 }),
          );
          if (res.code === ResponseCode.SUCCESS) found.push(...decodeMessages(res.body, 'broker-a'));
        }
        return found.some((m) => m.msgId === v(delayed).msgId);
      },
      8_000,
      'the delayed message delivered',
    );
    assert.equal(found.find((m) => m.msgId === v(delayed).msgId)!.body.toString(), 'later');
  });

  test('sendOneway joins a batch too: it resolves when the batch leaves, and the batch is stored whole', async () => {
    const p = await started({ autoBatch: { maxDelayMs: 30 } });
    const topic = 'AbOneway';
    await p.send({ topic, body: 'warm-up' });
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        p.sendOneway({ topic, body: `ow${i}`, properties: { i: String(i) } }),
      ),
    );
    const found: MessageExt[] = [];
    await waitFor(
      async () => {
        found.length = 0;
        for (const q of [0, 1, 2, 3]) {
          const res = await client.invoke(
            mq.brokerAddr,
            pullRequest({ topic, queueId: q, queueOffset: 0, maxMsgNums: 32, suspendTimeoutMillis: 0 }),
          );
          if (res.code === ResponseCode.SUCCESS) {
            found.push(...decodeMessages(res.body, 'broker-a').filter((m) => m.properties.has('i')));
          }
        }
        return found.length === 8;
      },
      5_000,
      'the 8 one-way messages stored',
    );
    found.sort((a, b) => Number(a.properties.get('i')) - Number(b.properties.get('i')));
    for (const [i, m] of found.entries()) {
      assert.equal(m.body.toString(), `ow${i}`);
      assert.equal(m.queueId, found[0]!.queueId, 'one queue: one batch');
      assert.equal(m.queueOffset, found[0]!.queueOffset + i, 'contiguous, in call order');
    }
  });

  test('shutdown sends the batches still gathering and waits for their answers', async () => {
    const p = new Producer(opts({ autoBatch: { maxDelayMs: 10_000 } }));
    await p.start();
    const topic = 'AbShutdown';
    const t0 = Date.now();
    const sends = Array.from({ length: 10 }, (_, i) => p.send({ topic, body: `bye-${i}` }));
    await p.shutdown();
    const results = await Promise.all(sends);
    assert.ok(Date.now() - t0 < 5_000, `shutdown did not wait for maxDelayMs (${Date.now() - t0} ms)`);
    assert.equal(new Set(results.map((r) => r.msgId)).size, 10);
    const stored = await pullAll(client, mq.brokerAddr, topic, results);
    for (const r of results) assert.ok(stored.some((m) => m.msgId === r.msgId));
    await assert.rejects(p.send({ topic, body: 'late' }), (e: unknown) =>
      isTsmqError(e, 'CLIENT_STATE_INVALID'),
    );
  });

  test('back-pressure: with totalMaxBytes of two batches, 100 sends all get through, in order', async () => {
    const p = await started({ autoBatch: { maxDelayMs: 1, maxBytes: 2048, totalMaxBytes: 4096 } });
    const topic = 'AbPressure';
    await p.send({ topic, body: 'warm-up' });
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => p.send({ topic, body: Buffer.alloc(300, i) })),
    );
    assert.equal(new Set(results.map((r) => r.msgId)).size, 100);
    const stored = await pullAll(client, mq.brokerAddr, topic, results);
    const byId = new Map(stored.map((m) => [m.msgId, m]));
    for (const [i, r] of results.entries()) assert.equal(byId.get(r.msgId)?.body[0], i);
  });
});

describe('producer autoBatch: a broker error fails every send of the batch', () => {
  let mq: Embedded;
  before(async () => {
    // Each message alone fits the broker's limit; 20 of them in one request do not.
    mq = await startEmbedded({ broker: { maxMessageSize: 2048 } });
  });
  after(async () => {
    await mq.close();
  });

  test('MESSAGE_ILLEGAL for the batch rejects all 20 sends with the same BrokerResponseError', async () => {
    const p = new Producer({
      group: 'PG_AUTO_BATCH_ERR',
      namesrvAddr: mq.namesrvAddr,
      logger: quietLogger(),
      autoBatch: { maxDelayMs: 100, maxBytes: 16 * 1024 },
    });
    await p.start();
    try {
      const topic = 'AbIllegal';
      const alone = new Producer({
        group: 'PG_AUTO_BATCH_ALONE',
        namesrvAddr: mq.namesrvAddr,
        logger: quietLogger(),
      });
      await alone.start();
      await alone.send({ topic, body: Buffer.alloc(300, 'a') }); // fine alone (and creates the topic)
      await alone.shutdown();
      const settled = await Promise.allSettled(
        Array.from({ length: 20 }, () => p.send({ topic, body: Buffer.alloc(300, 'b') })),
      );
      const reasons = settled.map((s) => (s.status === 'rejected' ? s.reason : undefined));
      assert.ok(reasons.every((r) => r instanceof BrokerResponseError));
      assert.equal((reasons[0] as BrokerResponseError).responseCode, ResponseCode.MESSAGE_ILLEGAL);
      assert.equal(new Set(reasons).size, 1, 'one error, the batch’s');
    } finally {
      await p.shutdown();
    }
  });
});

describe('AutoBatcher bookkeeping (a sender the test answers)', () => {
  const pending: Array<{ batch: OpenBatch; resolve: (r: SendResult[]) => void }> = [];
  const sender = (batch: OpenBatch) =>
    new Promise<SendResult[]>((resolve) => {
      pending.push({ batch, resolve });
    });
  const answer = (i: number) => {
    const { batch, resolve } = pending[i]!;
    resolve(
      batch.msgIds.map((msgId, k) => ({
        status: 'SEND_OK',
        msgId,
        offsetMsgId: `o${k}`,
        messageQueue: { topic: batch.topic, brokerName: 'b', queueId: 0 },
        queueOffset: k,
      })),
    );
  };
  const body = Buffer.alloc(100, 1);
  // Encoded: 22 fixed + 100 body + 10 + id.length properties bytes.
  const add = (b: AutoBatcher, id: string) =>
    b.add('T', true, 0, body, `UNIQ_KEY\u0001${id}\u0002`, id, 22 + 100 + 10 + id.length);

  test('a send over totalMaxBytes waits for room, then fails SEND_FAILED after the timeout', async () => {
    pending.length = 0;
    const b = new AutoBatcher(
      { maxDelayMs: 0, maxMessages: 2, maxBytes: 1024, totalMaxBytes: 300 },
      sender,
      100,
    );
    const first = [add(b, 'a'), add(b, 'b')]; // one full batch, 266 bytes held
    const third = add(b, 'c'); // waits: 266 + 133 > 300
    assert.equal(pending.length, 1);
    const t0 = Date.now();
    await assert.rejects(
      third,
      (e: unknown) => isTsmqError(e, 'SEND_FAILED') && /totalMaxBytes/.test((e as Error).message),
    );
    assert.ok(Date.now() - t0 >= 90);
    answer(0);
    assert.deepEqual(
      (await Promise.all(first)).map((r) => r.msgId),
      ['a', 'b'],
    );
    assert.equal(b.heldBytes, 0);
    await b.drain();
  });

  test('room freed by an answer lets waiting sends in, in call order', async () => {
    pending.length = 0;
    const b = new AutoBatcher(
      { maxDelayMs: 0, maxMessages: 2, maxBytes: 1024, totalMaxBytes: 300 },
      sender,
      5_000,
    );
    const sends = ['a', 'b', 'c', 'd', 'e'].map((id) => add(b, id));
    assert.equal(pending.length, 1);
    answer(0);
    await sends[1];
    assert.equal(pending.length, 2);
    assert.deepEqual(pending[1]!.batch.msgIds, ['c', 'd']);
    answer(1);
    await sends[3];
    await new Promise((r) => setImmediate(r)); // 'e' alone leaves on the next turn
    assert.deepEqual(pending[2]!.batch.msgIds, ['e']);
    const drained = b.drain();
    answer(2);
    await drained;
    assert.deepEqual(
      (await Promise.all(sends)).map((r) => r.msgId),
      ['a', 'b', 'c', 'd', 'e'],
    );
  });
});
