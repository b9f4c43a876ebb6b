import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type Embedded, startEmbedded } from '../../src/broker/index.js';
import {
  BrokerResponseError,
  decodeMessages,
  type Message,
  type MessageExt,
  type MessageQueue,
  Producer,
  type ProducerOptions,
} from '../../src/client/index.js';
import { isTsmqError } from '../../src/common/errors.js';
import { javaStringHashCode } from '../../src/common/java-hash.js';
import { type DecodedRecord, decodeProperties, decodeRecords, SysFlag } from '../../src/message/index.js';
import { ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { pullRequest, waitFor } from '../../test-support/broker-fixtures.js';
import { quietLogger } from '../../test-support/namesrv-fixtures.js';

const CLIENT_IP = '10.1.2.3';

/** Pulls a queue from offset 0 until it holds at least `count` messages (raw records). */
async function pullRaw(
  client: RemotingClient,
  addr: string,
  topic: string,
  queueId: number,
  count: number,
): Promise<DecodedRecord[]> {
  let recs: DecodedRecord[] = [];
  await waitFor(
    async () => {
      const res = await client.invoke(addr, pullRequest({ topic, queueId, queueOffset: 0, maxMsgNums: 32 }));
      recs = res.code === ResponseCode.SUCCESS ? decodeRecords(res.body!) : [];
      return recs.length >= count;
    },
    5_000,
    `${count} messages in ${topic}/${queueId}`,
  );
  return recs;
}

async function pullMessages(
  client: RemotingClient,
  addr: string,
  topic: string,
  queueId: number,
  count: number,
): Promise<MessageExt[]> {
  let msgs: MessageExt[] = [];
  await waitFor(
    async () => {
      const res = await client.invoke(addr, pullRequest({ topic, queueId, queueOffset: 0, maxMsgNums: 32 }));
      msgs = res.code === ResponseCode.SUCCESS ? decodeMessages(res.body, 'broker-a') : [];
      return msgs.length >= count;
    },
    5_000,
    `${count} messages in ${topic}/${queueId}`,
  );
  return msgs;
}

async function rejectsWith(p: Promise<unknown>, codeName: string, pattern?: RegExp): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(isTsmqError(e), `expected a TsmqError, got ${e}`);
    assert.equal(e.codeName, codeName, e.message);
    if (pattern) assert.match(e.message, pattern);
    return e;
  }
  assert.fail(`expected ${codeName}, but the call succeeded`);
}

describe('producer against one broker (auto-create on)', () => {
  let mq: Embedded;
  let client: RemotingClient;
  let producer: Producer;
  const opts = (over: Partial<ProducerOptions> = {}): ProducerOptions => ({
    group: 'PG_PRODUCER_TEST',
    namesrvAddr: mq.namesrvAddr,
    clientIp: CLIENT_IP,
    logger: quietLogger(),
    ...over,
  });

  before(async () => {
    mq = await startEmbedded();
    client = new RemotingClient();
    producer = new Producer(opts());
    await producer.start();
  });
  after(async () => {
    await producer.shutdown();
    client.close();
    await mq.close();
  });

  test('send: bytes, tags, keys, properties and the client-made msgId arrive; SendResult names the queue', async () => {
    const body = Buffer.from([0, 1, 2, 250, 255, 10, 13]);
    const r = await producer.send({
      topic: 'ProdBasic',
      body,
      tags: 'TagA',
      keys: ['order-1', 'user-7'],
      properties: { color: 'blue', 'a b': 'x=y' },
      flag: 42,
    });
    assert.equal(r.status, 'SEND_OK');
    assert.equal(r.messageQueue.topic, 'ProdBasic');
    assert.equal(r.messageQueue.brokerName, 'broker-a');
    assert.equal(r.queueOffset, 0);
    // RocketMQ's layout: IP 4 | pid 2 | random 4 | ms in month 4 | counter 2 → 32 hex digits.
    assert.match(r.msgId, /^[0-9A-F]{32}$/);
    assert.equal(r.msgId.slice(0, 8), '0A010203', 'the id starts with the client IP');
    assert.equal(Number.parseInt(r.msgId.slice(8, 12), 16), process.pid & 0xffff);
    assert.match(r.offsetMsgId, /^7F000001[0-9A-F]{24}$/);

    const [m] = await pullMessages(client, mq.brokerAddr, 'ProdBasic', r.messageQueue.queueId, 1);
    assert.ok(m);
    assert.deepEqual(m.body, body);
    assert.equal(m.tags, 'TagA');
    assert.deepEqual(m.keys, ['order-1', 'user-7']);
    assert.equal(m.properties.get('color'), 'blue');
    assert.equal(m.properties.get('a b'), 'x=y');
    assert.equal(m.msgId, r.msgId);
    assert.equal(m.offsetMsgId, r.offsetMsgId);
    assert.equal(m.flag, 42);
    assert.equal(m.properties.get('WAIT'), 'true');
    assert.equal(m.sysFlag & SysFlag.COMPRESSED, 0, 'a small body is not compressed');
    assert.deepEqual(producer.topics(), ['ProdBasic']);
  });

  test('a string body is sent as UTF-8', async () => {
    const r = await producer.send({ topic: 'ProdString', body: 'héllo ✓' });
    const [m] = await pullMessages(client, mq.brokerAddr, 'ProdString', r.messageQueue.queueId, 1);
    assert.equal(m!.body.toString('utf8'), 'héllo ✓');
  });

  test('async: 40 sends in flight at once all resolve, with distinct ids, spread round-robin', async () => {
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => producer.send({ topic: 'ProdMany', body: `m${i}` })),
    );
    assert.equal(new Set(results.map((r) => r.msgId)).size, 40);
    const perQueue = new Map<number, number>();
    for (const r of results)
      perQueue.set(r.messageQueue.queueId, (perQueue.get(r.messageQueue.queueId) ?? 0) + 1);
    // An auto-created topic gets defaultTopicQueueNums (4) queues; round-robin fills them evenly.
    assert.deepEqual([...perQueue.keys()].sort(), [0, 1, 2, 3]);
    for (const n of perQueue.values()) assert.equal(n, 10);
    let stored = 0;
    for (const q of [0, 1, 2, 3]) stored += (await pullRaw(client, mq.brokerAddr, 'ProdMany', q, 10)).length;
    assert.equal(stored, 40);
  });

  test('sendOneway: resolves without an answer; the message is stored', async () => {
    await producer.sendOneway({ topic: 'ProdOneway', body: 'fire', tags: 'OW' });
    const found: MessageExt[] = [];
    await waitFor(
      async () => {
        found.length = 0;
        for (const q of [0, 1, 2, 3]) {
          const res = await client.invoke(
            mq.brokerAddr,
            pullRequest({ topic: 'ProdOneway', queueId: q, queueOffset: 0 }),
          );
          if (res.code === ResponseCode.SUCCESS) found.push(...decodeMessages(res.body, 'broker-a'));
        }
        return found.length === 1;
      },
      5_000,
      'the one-way message stored',
    );
    assert.equal(found[0]!.body.toString(), 'fire');
    assert.equal(found[0]!.tags, 'OW');
    assert.match(found[0]!.msgId, /^0A010203/);
  });

  test('sendOrderly: every message of a key on queues[|hash % n|], in send order', async () => {
    const keys = ['order-1', 'order-2', 'order-3', 'another key', 'Aa', 'BB'];
    // Warm up the topic so its queue count is known (an auto-created topic gets 4).
    await producer.send({ topic: 'ProdOrder', body: 'warm-up' });
    const byKey = new Map<string, MessageQueue[]>();
    for (let i = 0; i < 8; i++) {
      for (const key of keys) {
        const r = await producer.sendOrderly({ topic: 'ProdOrder', body: `${key}#${i}` }, key);
        byKey.set(key, [...(byKey.get(key) ?? []), r.messageQueue]);
      }
    }
    for (const [key, qs] of byKey) {
      const expected = Math.abs(javaStringHashCode(key) % 4);
      assert.ok(
        qs.every((q) => q.queueId === expected && q.brokerName === 'broker-a'),
        `key ${key}: ${JSON.stringify(qs)}`,
      );
    }
    // 'Aa' and 'BB' share a Java hash, so they share a queue.
    assert.equal(byKey.get('Aa')![0]!.queueId, byKey.get('BB')![0]!.queueId);
    for (let q = 0; q < 4; q++) {
      const ofQueue = keys.filter((k) => Math.abs(javaStringHashCode(k) % 4) === q);
      if (ofQueue.length === 0) continue;
      const msgs = await pullMessages(client, mq.brokerAddr, 'ProdOrder', q, ofQueue.length * 8);
      for (const key of ofQueue) {
        const seen = msgs.map((m) => m.body.toString()).filter((b) => b.startsWith(`${key}#`));
        assert.deepEqual(
          seen,
          Array.from({ length: 8 }, (_, i) => `${key}#${i}`),
          `key ${key} in order`,
        );
      }
    }
  });

  test('send with { queue } and { selector } goes to that queue', async () => {
    await producer.send({ topic: 'ProdPick', body: 'warm-up' });
    const q: MessageQueue = { topic: 'ProdPick', brokerName: 'broker-a', queueId: 2 };
    const a = await producer.send({ topic: 'ProdPick', body: 'to 2' }, { queue: q });
    assert.deepEqual(a.messageQueue, q);
    let offered: readonly MessageQueue[] = [];
    const b = await producer.send(
      { topic: 'ProdPick', body: 'to the last' },
      {
        selector: (queues) => {
          offered = queues;
          return queues[queues.length - 1]!;
        },
      },
    );
    assert.deepEqual(
      offered.map((x) => x.queueId),
      [0, 1, 2, 3],
      'the selector sees the sorted write queues',
    );
    assert.equal(b.messageQueue.queueId, 3);
    await rejectsWith(
      producer.send(
        { topic: 'ProdPick', body: 'x' },
        { selector: () => ({ topic: 'ProdPick', brokerName: 'broker-a', queueId: 99 }) },
      ),
      'ARGUMENT_INVALID',
      /not a write queue/,
    );
    await rejectsWith(
      producer.send({ topic: 'ProdPick', body: 'x' }, { queue: { ...q, topic: 'Other' } }),
      'ARGUMENT_INVALID',
    );
  });

  test('sendBatch: one request, every message stored with consecutive queue offsets and its own id', async () => {
    await producer.send(
      { topic: 'ProdBatch', body: 'before' },
      {
        queue: { topic: 'ProdBatch', brokerName: 'broker-a', queueId: 1 },
      },
    );
    const msgs: Message[] = Array.from({ length: 5 }, (_, i) => ({
      topic: 'ProdBatch',
      body: `b${i}`,
      tags: `T${i}`,
      keys: `k${i}`,
      properties: { i: String(i) },
    }));
    const r = await producer.sendBatch(msgs, {
      queue: { topic: 'ProdBatch', brokerName: 'broker-a', queueId: 1 },
    });
    assert.equal(r.status, 'SEND_OK');
    assert.equal(r.queueOffset, 1);
    assert.equal(r.msgIds.length, 5);
    assert.equal(new Set(r.msgIds).size, 5);
    assert.equal(r.msgId, r.msgIds.join(','));
    assert.equal(r.offsetMsgIds.length, 5);
    const stored = await pullMessages(client, mq.brokerAddr, 'ProdBatch', 1, 6);
    const batch = stored.slice(1);
    assert.deepEqual(
      batch.map((m) => m.queueOffset),
      [1, 2, 3, 4, 5],
    );
    assert.deepEqual(
      batch.map((m) => [m.body.toString(), m.tags, m.keys[0], m.properties.get('i'), m.msgId, m.offsetMsgId]),
      msgs.map((_, i) => [`b${i}`, `T${i}`, `k${i}`, String(i), r.msgIds[i], r.offsetMsgIds[i]]),
    );
    // Without a queue the batch still lands in one queue, contiguously.
    const r2 = await producer.sendBatch(msgs.slice(0, 3));
    const again = await pullMessages(client, mq.brokerAddr, 'ProdBatch', r2.messageQueue.queueId, 3);
    const mine = again.filter((m) => r2.msgIds.includes(m.msgId));
    assert.deepEqual(
      mine.map((m) => m.queueOffset),
      [r2.queueOffset, r2.queueOffset + 1, r2.queueOffset + 2],
    );
  });

  test('compression: a large body travels deflated (COMPRESSED set) and consumers get it back whole', async () => {
    const big = Buffer.from('tsmq compresses bodies over the threshold. '.repeat(2000));
    const r = await producer.send({ topic: 'ProdZip', body: big, tags: 'Z' });
    const [raw] = await pullRaw(client, mq.brokerAddr, 'ProdZip', r.messageQueue.queueId, 1);
    assert.ok(raw);
    assert.notEqual(raw.sysFlag & SysFlag.COMPRESSED, 0, 'COMPRESSED is set');
    assert.ok(raw.body.length < big.length / 10, `stored ${raw.body.length} bytes for ${big.length}`);
    const [m] = decodeMessages(
      (
        await client.invoke(
          mq.brokerAddr,
          pullRequest({ topic: 'ProdZip', queueId: r.messageQueue.queueId, queueOffset: 0 }),
        )
      ).body,
      'broker-a',
    );
    assert.deepEqual(m!.body, big);
    assert.equal(m!.tags, 'Z');

    // A body just under the threshold, or one that does not shrink, is sent as it is.
    const small = await producer.send({ topic: 'ProdZip', body: Buffer.alloc(4095, 'a') });
    const [rawSmall] = await pullRaw(client, mq.brokerAddr, 'ProdZip', small.messageQueue.queueId, 1).then(
      (recs) => recs.filter((x) => decodeProperties(x.properties).get('UNIQ_KEY') === small.msgId),
    );
    assert.equal(rawSmall!.sysFlag & SysFlag.COMPRESSED, 0);
  });

  test('auto-create via TBW102: a new topic is created on first send with defaultTopicQueueNums queues', async () => {
    const p = new Producer(opts({ group: 'PG_AUTO', defaultTopicQueueNums: 3 }));
    await p.start();
    try {
      assert.equal(mq.broker.topics.get('ProdAutoNew'), undefined);
      const r = await p.send({ topic: 'ProdAutoNew', body: 'first' });
      assert.equal(r.status, 'SEND_OK');
      assert.equal(mq.broker.topics.get('ProdAutoNew')?.writeQueueNums, 3);
      assert.ok(r.messageQueue.queueId < 3);
      // Later sends keep working once the name server knows the real route.
      await mq.broker.registerNow();
      for (let i = 0; i < 6; i++)
        assert.equal((await p.send({ topic: 'ProdAutoNew', body: `n${i}` })).status, 'SEND_OK');
    } finally {
      await p.shutdown();
    }
  });

  test('heartbeat: the group is registered on the broker after a send; shutdown unregisters it', async () => {
    const p = new Producer(opts({ group: 'PG_HEARTBEAT' }));
    await p.start();
    await p.send({ topic: 'ProdHb', body: 'x' });
    await waitFor(
      () => (mq.broker.clients.producerGroup('PG_HEARTBEAT')?.size ?? 0) === 1,
      5_000,
      'heartbeat',
    );
    await p.shutdown();
    await waitFor(
      () => (mq.broker.clients.producerGroup('PG_HEARTBEAT')?.size ?? 0) === 0,
      5_000,
      'unregister',
    );
  });

  test('validation happens before any network: ARGUMENT_INVALID', async () => {
    // A name server that counts connections: none may be opened.
    let connections = 0;
    const server = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const p = new Producer({
      group: 'PG_VALID',
      namesrvAddr: `127.0.0.1:${port}`,
      maxMessageBytes: 1024,
      logger: quietLogger(),
    });
    await p.start();
    try {
      const bad: Array<[Message, RegExp]> = [
        [{ topic: 'T', body: '' }, /empty body/],
        [{ topic: 'T', body: Buffer.alloc(1025) }, /1025 bytes; the limit is 1024/],
        [{ topic: '', body: 'x' }, /no topic/],
        [{ topic: 'x'.repeat(128), body: 'x' }, /128 characters/],
        [{ topic: 'bad topic', body: 'x' }, /characters outside/],
        [{ topic: 'T.dot', body: 'x' }, /characters outside/],
        [{ topic: 'TBW102', body: 'x' }, /system topic/],
        [{ topic: 'T', body: 'x', properties: { UNIQ_KEY: 'mine' } }, /reserved/],
        [{ topic: 'T', body: 'x', properties: { TAGS: 'A' } }, /reserved/],
        [{ topic: 'T', body: 'x', properties: { k: 'a\u0001b' } }, /separator/],
        [{ topic: 'T', body: 'x', delayLevel: -1 }, /delayLevel -1/],
        [{ topic: 'T', body: 'x', flag: 2 ** 40 }, /32-bit/],
        [{ topic: 'T', body: 'x', properties: { big: 'v'.repeat(40_000) } }, /properties are/],
      ];
      for (const [msg, pattern] of bad) await rejectsWith(p.send(msg), 'ARGUMENT_INVALID', pattern);
      await rejectsWith(p.sendOneway({ topic: 'T', body: '' }), 'ARGUMENT_INVALID');
      await rejectsWith(p.sendOrderly({ topic: 'T', body: '' }, 'k'), 'ARGUMENT_INVALID');
      const batches: Array<[Message[], RegExp]> = [
        [[], /at least one/],
        [
          [
            { topic: 'T', body: 'a' },
            { topic: 'U', body: 'b' },
          ],
          /one topic/,
        ],
        [[{ topic: 'T', body: 'a', delayLevel: 3 }], /delay level/],
        [
          [
            { topic: 'T', body: 'a' },
            { topic: 'T', body: 'b', waitStoreMsgOK: false },
          ],
          /waitStoreMsgOK/,
        ],
        [
          Array.from({ length: 3 }, () => ({ topic: 'T', body: Buffer.alloc(400) })),
          /the batch is \d+ bytes/,
        ],
      ];
      for (const [msgs, pattern] of batches)
        await rejectsWith(p.sendBatch(msgs), 'ARGUMENT_INVALID', pattern);
      assert.equal(connections, 0, 'no connection was opened');
    } finally {
      await p.shutdown();
      await new Promise((r) => server.close(r));
    }
    assert.throws(() => new Producer({ group: 'bad group', namesrvAddr: 'x:1' }), /producer group/);
    assert.throws(
      () => new Producer({ group: 'G', namesrvAddr: 'x:1', retryTimesWhenSendFailed: -1 }),
      /retryTimes/,
    );
  });

  test('state: before start and after shutdown → CLIENT_STATE_INVALID; shutdown lets sends in flight finish', async () => {
    const p = new Producer(opts({ group: 'PG_STATE' }));
    await rejectsWith(p.send({ topic: 'ProdState', body: 'x' }), 'CLIENT_STATE_INVALID', /not started/);
    await p.start();
    await rejectsWith(p.start(), 'CLIENT_STATE_INVALID', /already started/);
    const inFlight = Array.from({ length: 10 }, (_, i) => p.send({ topic: 'ProdState', body: `s${i}` }));
    const closing = p.shutdown();
    await rejectsWith(p.send({ topic: 'ProdState', body: 'late' }), 'CLIENT_STATE_INVALID', /shutting down/);
    for (const r of await Promise.all(inFlight)) assert.equal(r.status, 'SEND_OK');
    await closing;
    await p.shutdown();
    await rejectsWith(p.send({ topic: 'ProdState', body: 'x' }), 'CLIENT_STATE_INVALID', /shut down/);
    await rejectsWith(p.sendBatch([{ topic: 'ProdState', body: 'x' }]), 'CLIENT_STATE_INVALID');
    await rejectsWith(p.sendOneway({ topic: 'ProdState', body: 'x' }), 'CLIENT_STATE_INVALID');
    await rejectsWith(p.start(), 'CLIENT_STATE_INVALID');
  });

  test('a broker answer that is not retried (MESSAGE_ILLEGAL) fails at once with BrokerResponseError', async () => {
    // The producer allows more than the broker: the broker refuses the body.
    const small = await startEmbedded({ broker: { maxMessageSize: 100 } });
    const p = new Producer({
      group: 'PG_ILLEGAL',
      namesrvAddr: small.namesrvAddr,
      compressOverBytes: 1e9,
      logger: quietLogger(),
    });
    await p.start();
    try {
      await p.send({ topic: 'ProdIllegal', body: 'ok' });
      const e = await p.send({ topic: 'ProdIllegal', body: Buffer.alloc(500, 1) }).then(
        () => assert.fail('expected a failure'),
        (err: unknown) => err,
      );
      assert.ok(e instanceof BrokerResponseError, String(e));
      assert.equal(e.responseCode, ResponseCode.MESSAGE_ILLEGAL);
      assert.equal(e.codeName, 'BROKER_ERROR');
    } finally {
      await p.shutdown();
      await small.close();
    }
  });
});

describe('producer against a broker with auto-create off', () => {
  test('an unknown topic is a clear NO_ROUTE before any send', async () => {
    const mq = await startEmbedded({ broker: { autoCreateTopicEnable: false } });
    const p = new Producer({ group: 'PG_NOAUTO', namesrvAddr: mq.namesrvAddr, logger: quietLogger() });
    await p.start();
    try {
      await rejectsWith(
        p.send({ topic: 'NoSuchTopic', body: 'x' }),
        'NO_ROUTE',
        /no route for topic NoSuchTopic.*autoCreateTopicEnable/,
      );
      assert.equal(mq.broker.topics.get('NoSuchTopic'), undefined);
    } finally {
      await p.shutdown();
      await mq.close();
    }
  });
});
