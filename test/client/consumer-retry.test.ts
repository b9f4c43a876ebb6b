/**
 * Retries and dead letters through the SDK against an in-process broker with short delay levels
 * (level n waits 30 ms × n): a failed message comes back from %RETRY%<group> with reconsumeTimes
 * incremented and its original topic and id; 16 failures send it to %DLQ%<group>, from where it
 * can be read and re-sent; the consumer's own maximum and a handler's delay level apply; a
 * send-back that fails is redelivered locally; an orderly consumer's poison message goes to the DLQ.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Admin,
  type ConsumeContext,
  deadLetterToMessage,
  type MessageExt,
  type MessageHandler,
  type OrderlyMessageHandler,
  Producer,
  PushConsumer,
  type PushConsumerOptions,
} from '../../src/client/index.js';
import { createRequest, RequestCode, ResponseCode } from '../../src/protocol/index.js';
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
const LEVELS = Array.from({ length: 18 }, (_, i) => `${(i + 1) * 30}ms`).join(' ');

interface Delivery {
  body: string;
  topic: string;
  msgId: string;
  reconsumeTimes: number;
  queueTopic: string;
  at: number;
}

function record(list: Delivery[], msgs: MessageExt[], ctx: ConsumeContext): void {
  for (const m of msgs) {
    list.push({
      body: m.body.toString(),
      topic: m.topic,
      msgId: m.msgId,
      reconsumeTimes: m.reconsumeTimes,
      queueTopic: ctx.queue.topic,
      at: Date.now(),
    });
  }
}

describe('retries and dead letters', () => {
  let c: Cluster;
  let admin: Admin;
  const consumers: PushConsumer[] = [];

  before(async () => {
    c = await startCluster(1, { messageDelayLevel: LEVELS });
    admin = new Admin({ namesrvAddr: c.namesrvAddr, logger: quiet() });
  });
  after(async () => {
    await Promise.all(consumers.map((x) => x.shutdown()));
    admin.close();
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
      pullTimeDelayMillsWhenException: 200,
      brokerSuspendMaxTimeMillis: 1_000,
      logger: quiet(),
      ...over,
    });
    pc.subscribe(topic, '*');
    pc.onMessage(handler);
    consumers.push(pc);
    return pc;
  }

  test('failure → retry → success: the message comes back from %RETRY% with reconsumeTimes 1, its topic and id', async () => {
    const topic = unique('Rt');
    const group = unique('grt');
    await createTopic(c, topic, 1);
    for (let i = 0; i < 4; i++) await send(c, topic, B, 0, `m${i}`);
    const seen: Delivery[] = [];
    const pc = consumer(group, topic, async (msgs, ctx) => {
      record(seen, msgs, ctx);
      if (msgs[0]!.body.toString() === 'm1' && msgs[0]!.reconsumeTimes === 0)
        throw new Error('first try fails');
      return 'SUCCESS';
    });
    await pc.start();
    await waitFor(() => seen.filter((d) => d.body === 'm1').length === 2, 15_000, 'm1 twice');
    const [first, again] = seen.filter((d) => d.body === 'm1');
    assert.equal(first!.reconsumeTimes, 0);
    assert.equal(again!.reconsumeTimes, 1, 'the reconsume count is visible');
    assert.equal(again!.topic, topic, 'the handler sees the topic the message was sent to');
    assert.equal(again!.queueTopic, `%RETRY%${group}`, 'it came from the retry topic');
    assert.equal(again!.msgId, first!.msgId, 'same message id');
    assert.ok(again!.at - first!.at >= 85, `retried after ${again!.at - first!.at} ms; level 3 is 90 ms`);
    // The original queue's offset went past m1 at once: the retry topic holds it now.
    await waitFor(async () => (await brokerOffset(c, group, topic, B, 0)) === 4, 5_000, 'offset 4');
    assert.deepEqual(
      seen
        .filter((d) => d.body !== 'm1')
        .map((d) => d.body)
        .sort(),
      ['m0', 'm2', 'm3'],
    );
    await pc.shutdown();
  });

  test('16 failures → %DLQ%<group>, keeping topic and id; read from the DLQ, re-sent and consumed', async () => {
    const topic = unique('Dlq');
    const group = unique('gdlq');
    await createTopic(c, topic, 1);
    await send(c, topic, B, 0, 'poison');
    await send(c, topic, B, 0, 'fine');
    const seen: Delivery[] = [];
    let healed = false;
    const pc = consumer(group, topic, async (msgs, ctx) => {
      record(seen, msgs, ctx);
      if (msgs[0]!.body.toString() === 'poison' && !healed) return 'RETRY_LATER';
      return 'SUCCESS';
    });
    await pc.start();
    await waitFor(async () => (await admin.deadLetters(group)).length === 1, 60_000, 'the DLQ holds it');
    const poison = seen.filter((d) => d.body === 'poison');
    assert.deepEqual(
      poison.map((d) => d.reconsumeTimes),
      Array.from({ length: 17 }, (_, i) => i),
      'the first delivery and 16 retries',
    );
    // Growing delays: each retry waited longer than the one before (levels 3, 4, … 18).
    const gaps = poison.slice(1).map((d, i) => d.at - poison[i]!.at);
    assert.ok(gaps[15]! > gaps[0]! + 200, `gaps ${gaps.join(',')}`);
    const [dead] = await admin.deadLetters(group);
    assert.equal(dead!.originTopic, topic);
    assert.equal(dead!.originMsgId, poison[0]!.msgId);
    assert.equal(dead!.msg.topic, `%DLQ%${group}`);
    assert.equal(dead!.msg.body.toString(), 'poison');
    assert.equal(dead!.msg.reconsumeTimes, 17);
    assert.equal(seen.filter((d) => d.body === 'fine').length, 1);

    // Re-send it to its topic with its id: the group consumes it again from the start.
    healed = true;
    const producer = new Producer({ group: unique('pdlq'), namesrvAddr: c.namesrvAddr, logger: quiet() });
    await producer.start();
    const r = await producer.send(deadLetterToMessage(dead!), { msgId: dead!.originMsgId });
    await producer.shutdown();
    assert.equal(r.msgId, poison[0]!.msgId);
    await waitFor(() => seen.filter((d) => d.body === 'poison').length === 18, 10_000, 'consumed again');
    const last = seen.filter((d) => d.body === 'poison').at(-1)!;
    assert.equal(last.queueTopic, topic);
    assert.equal(last.reconsumeTimes, 0);
    assert.equal(last.msgId, poison[0]!.msgId);
    await pc.shutdown();
  });

  test("the consumer's maxReconsumeTimes and a handler's delayLevelWhenNextConsume = -1 decide the DLQ", async () => {
    const topic = unique('Max');
    const group = unique('gmax');
    await createTopic(c, topic, 1);
    await send(c, topic, B, 0, 'twice');
    await send(c, topic, B, 0, 'straight');
    const seen: Delivery[] = [];
    const pc = consumer(
      group,
      topic,
      async (msgs, ctx) => {
        record(seen, msgs, ctx);
        if (msgs[0]!.body.toString() === 'straight') ctx.delayLevelWhenNextConsume = -1;
        return 'RETRY_LATER';
      },
      { maxReconsumeTimes: 2 },
    );
    await pc.start();
    await waitFor(async () => (await admin.deadLetters(group)).length === 2, 15_000, 'both dead');
    assert.deepEqual(
      seen.filter((d) => d.body === 'twice').map((d) => d.reconsumeTimes),
      [0, 1, 2],
    );
    assert.deepEqual(
      seen.filter((d) => d.body === 'straight').map((d) => d.reconsumeTimes),
      [0],
    );
    await pc.shutdown();
  });

  test('a send-back the broker refuses is redelivered locally: nothing is dropped', async () => {
    const strict = await startCluster(1, { messageDelayLevel: LEVELS, autoCreateSubscriptionGroup: false });
    try {
      const topic = unique('Local');
      const group = unique('glocal');
      await createTopic(strict, topic, 1);
      const addr = strict.addrs.get(B)!;
      const groupRequest = (code: number, body?: object) =>
        strict.client.invoke(
          addr,
          createRequest(
            code,
            body ? {} : { groupName: group },
            body ? Buffer.from(JSON.stringify(body)) : undefined,
          ),
        );
      const made = await groupRequest(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, { groupName: group });
      assert.equal(made.code, ResponseCode.SUCCESS, made.remark);
      await send(strict, topic, B, 0, 'only');
      const seen: Delivery[] = [];
      const pc = new PushConsumer({
        group,
        namesrvAddr: strict.namesrvAddr,
        consumeFromWhere: 'FIRST_OFFSET',
        rebalanceIntervalMs: 60_000,
        retryBackoff: { initialMs: 100, maxMs: 100 },
        pullTimeDelayMillsWhenException: 200,
        brokerSuspendMaxTimeMillis: 1_000,
        logger: quiet(),
      });
      pc.subscribe(topic, '*').onMessage(async (msgs, ctx) => {
        record(seen, msgs, ctx);
        if (seen.length === 1) {
          // The group disappears: the send-back of this failure is refused.
          const del = await groupRequest(RequestCode.DELETE_SUBSCRIPTIONGROUP);
          assert.equal(del.code, ResponseCode.SUCCESS, del.remark);
          throw new Error('fails while the group is gone');
        }
        return 'SUCCESS';
      });
      await pc.start();
      try {
        await waitFor(() => seen.length === 2, 10_000, 'redelivered');
        assert.deepEqual(
          seen.map((d) => [d.body, d.reconsumeTimes, d.queueTopic]),
          [
            ['only', 0, topic],
            ['only', 1, topic],
          ],
        );
        assert.equal(strict.brokers[0]!.store.maxOffsetInQueue(`%RETRY%${group}`, 0), 0, 'nothing stored');
      } finally {
        await pc.shutdown();
      }
    } finally {
      await strict.close();
    }
  });

  test('orderly: a poison message goes to the DLQ after maxReconsumeTimes and the queue moves on in order', async () => {
    const topic = unique('OrdDlq');
    const group = unique('gorddlq');
    await createTopic(c, topic, 1);
    for (let i = 0; i < 4; i++) await send(c, topic, B, 0, `o${i}`);
    const got: string[] = [];
    const handler: OrderlyMessageHandler = async (msgs) => {
      got.push(...msgs.map((m) => m.body.toString()));
      if (msgs.some((m) => m.body.toString() === 'o1')) throw new Error('poison');
      return 'SUCCESS';
    };
    const pc = new PushConsumer({
      group,
      namesrvAddr: c.namesrvAddr,
      consumeFromWhere: 'FIRST_OFFSET',
      rebalanceIntervalMs: 60_000,
      suspendCurrentQueueTimeMillis: 50,
      maxReconsumeTimes: 3,
      brokerSuspendMaxTimeMillis: 1_000,
      logger: quiet(),
    });
    pc.subscribe(topic, '*').onMessageOrderly(handler);
    consumers.push(pc);
    await pc.start();
    await waitFor(() => got.includes('o3'), 15_000, 'o3 consumed');
    assert.deepEqual(got, ['o0', 'o1', 'o1', 'o1', 'o1', 'o2', 'o3']);
    const dead = await admin.deadLetters(group);
    assert.deepEqual(
      dead.map((d) => [d.msg.body.toString(), d.originTopic]),
      [['o1', topic]],
    );
    await waitFor(async () => (await brokerOffset(c, group, topic, B, 0)) === 4, 10_000, 'offset 4');
    await pc.shutdown();
  });
});
