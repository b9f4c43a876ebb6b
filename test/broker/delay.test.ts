/**
 * Delay levels on an in-process broker (short levels: 200 ms, 400 ms, 800 ms): where a delayed
 * message waits, when and how it reaches its real queue, the order per level, the refusals, the
 * progress file and GET_ALL_DELAY_OFFSET, and the SDK's delayLevel end to end.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Embedded, startEmbedded } from '../../src/broker/index.js';
import { type MessageExt, Producer, PushConsumer } from '../../src/client/index.js';
import { javaStringHashCode } from '../../src/common/java-hash.js';
import {
  type DecodedRecord,
  decodeProperties,
  decodeRecord,
  encodeBatchBody,
  encodeProperties,
} from '../../src/message/index.js';
import { createRequest, encodeSendHeader, RequestCode, ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { unitAt } from '../../src/store/index.js';
import { fakeUniqKey, sendHeader, sendV2, waitFor } from '../../test-support/broker-fixtures.js';

const LEVELS_MS = [200, 400, 800];
const SCHEDULE = 'SCHEDULE_TOPIC_XXXX';

describe('delay levels', () => {
  let mq: Embedded;
  let client: RemotingClient;

  before(async () => {
    mq = await startEmbedded({
      broker: { messageDelayLevel: '200ms 400ms 800ms', flushDelayOffsetInterval: 50 },
    });
    client = new RemotingClient();
  });
  after(async () => {
    client.close();
    await mq.close();
  });

  async function records(topic: string, queueId: number, from = 0): Promise<DecodedRecord[]> {
    const r = await mq.broker.store.getMessages(topic, queueId, from, { maxCount: 1000 });
    return r.records.map((b) => {
      const d = decodeRecord(b, 0);
      assert.equal(d.kind, 'record');
      return (d as { record: DecodedRecord }).record;
    });
  }

  test('a delayed message waits in SCHEDULE_TOPIC_XXXX, then reaches its real queue not before its time, as sent', async () => {
    const uniq = fakeUniqKey(1);
    const body = Buffer.from('delayed \u00e9');
    const sentAt = Date.now();
    const res = await client.invoke(
      mq.brokerAddr,
      sendV2({
        topic: 'DelayT',
        body,
        queueId: 2,
        tags: 'TagD',
        keys: 'k1 k2',
        uniqKey: uniq,
        flag: 7,
        extraProperties: { DELAY: '2', color: 'red' },
      }),
    );
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    assert.equal(res.extFields!.queueId, '2', 'the reply names the queue asked for');
    assert.equal(res.extFields!.transactionId, uniq);
    // Waiting: queue level − 1 of the schedule topic, its unit's tagsCode the deliver-at time.
    const waiting = await mq.broker.store.getMessageByOffsetMsgId(res.extFields!.msgId!);
    assert.equal(waiting.topic, SCHEDULE);
    assert.equal(waiting.queueId, 1);
    const wp = decodeProperties(waiting.properties);
    assert.equal(wp.get('REAL_TOPIC'), 'DelayT');
    assert.equal(wp.get('REAL_QID'), '2');
    assert.equal(wp.get('DELAY'), '2');
    const deliverAt = Number(wp.get('TIMER_OUT_MS'));
    assert.ok(deliverAt >= sentAt + LEVELS_MS[1]! && deliverAt <= Date.now() + LEVELS_MS[1]!);
    await mq.broker.store.waitDispatched();
    const cq = mq.broker.store.consumeQueues.get(SCHEDULE, 1)!;
    const unit = unitAt(await cq.readUnits(Number(res.extFields!.queueOffset), 1), 0);
    assert.equal(unit.tagsCode, deliverAt, 'tagsCode holds the deliver-at time');

    await waitFor(() => mq.broker.store.dispatchedMaxOffsetInQueue('DelayT', 2) === 1, 5000, 'delivery');
    const [rec] = await records('DelayT', 2);
    assert.ok(rec!.storeTimestamp >= deliverAt, `stored ${deliverAt - rec!.storeTimestamp} ms early`);
    assert.ok(rec!.storeTimestamp - deliverAt < 1000, `stored ${rec!.storeTimestamp - deliverAt} ms late`);
    assert.deepEqual(rec!.body, body);
    assert.equal(rec!.flag, 7);
    assert.equal(rec!.bornTimestamp, 1_700_000_000_123);
    const props = decodeProperties(rec!.properties);
    assert.equal(props.get('UNIQ_KEY'), uniq, 'consumers see the msgId the producer got');
    assert.equal(props.get('TAGS'), 'TagD');
    assert.equal(props.get('KEYS'), 'k1 k2');
    assert.equal(props.get('color'), 'red');
    for (const k of ['DELAY', 'REAL_TOPIC', 'REAL_QID', 'TIMER_OUT_MS']) assert.equal(props.has(k), false, k);
    // The real queue's unit has the tag hash, so tag filters work; the index finds it by key and id.
    const realUnit = unitAt(await mq.broker.store.consumeQueues.get('DelayT', 2)!.readUnits(0, 1), 0);
    assert.equal(realUnit.tagsCode, javaStringHashCode('TagD'));
    assert.equal((await mq.broker.store.queryMessages('DelayT', uniq, 4)).length, 1);
    assert.equal((await mq.broker.store.queryMessages('DelayT', 'k2', 4)).length, 1);
  });

  test('each level delivers in the order it was sent', async () => {
    const n = 60;
    for (let i = 0; i < n; i++) {
      const res = await client.invoke(
        mq.brokerAddr,
        sendV2({
          topic: 'DelayOrder',
          body: Buffer.from(`m${i}`),
          queueId: 0,
          extraProperties: { DELAY: '1' },
        }),
      );
      assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    }
    await waitFor(() => mq.broker.store.dispatchedMaxOffsetInQueue('DelayOrder', 0) === n, 5000, 'delivery');
    const got = (await records('DelayOrder', 0)).map((r) => r.body.toString());
    assert.deepEqual(
      got,
      Array.from({ length: n }, (_, i) => `m${i}`),
    );
  });

  test('a level above the highest waits as the highest; DELAY 0 is stored at once', async () => {
    const high = await client.invoke(
      mq.brokerAddr,
      sendV2({ topic: 'DelayHigh', body: Buffer.from('x'), queueId: 0, extraProperties: { DELAY: '99' } }),
    );
    assert.equal(high.code, ResponseCode.SUCCESS, high.remark);
    const waiting = await mq.broker.store.getMessageByOffsetMsgId(high.extFields!.msgId!);
    assert.equal(waiting.queueId, LEVELS_MS.length - 1);
    assert.equal(decodeProperties(waiting.properties).get('DELAY'), String(LEVELS_MS.length));
    const now = await client.invoke(
      mq.brokerAddr,
      sendV2({ topic: 'DelayHigh', body: Buffer.from('y'), queueId: 1, extraProperties: { DELAY: '0' } }),
    );
    assert.equal(now.code, ResponseCode.SUCCESS);
    assert.equal((await mq.broker.store.getMessageByOffsetMsgId(now.extFields!.msgId!)).topic, 'DelayHigh');
  });

  test('a DELAY that is not a level is MESSAGE_ILLEGAL, with a remark that says why', async () => {
    for (const bad of ['abc', '-1', '1.5', ' 2x']) {
      const res = await client.invoke(
        mq.brokerAddr,
        sendV2({ topic: 'DelayBad', body: Buffer.from('x'), extraProperties: { DELAY: bad } }),
      );
      assert.equal(res.code, ResponseCode.MESSAGE_ILLEGAL, `DELAY=${bad}`);
      assert.match(res.remark ?? '', /DELAY property .* whole number ≥ 0/);
    }
  });

  test('the schedule and timer topics may not be sent to directly', async () => {
    for (const topic of [SCHEDULE, 'rmq_sys_wheel_timer']) {
      const res = await client.invoke(mq.brokerAddr, sendV2({ topic, body: Buffer.from('x') }));
      assert.equal(res.code, ResponseCode.NO_PERMISSION, topic);
      assert.match(res.remark ?? '', /forbidden/);
    }
  });

  test('a batch may carry neither a delay level nor a timer, in its header or its messages', async () => {
    const batch = (props: Record<string, string>, inner: Record<string, string>) => {
      const h = sendHeader({ topic: 'DelayBatch', body: Buffer.alloc(0), extraProperties: props });
      h.batch = true;
      const body = encodeBatchBody([
        { body: Buffer.from('a'), flag: 0, properties: encodeProperties(inner) },
        { body: Buffer.from('b'), flag: 0, properties: '' },
      ]);
      return createRequest(RequestCode.SEND_BATCH_MESSAGE, encodeSendHeader(h, true), body);
    };
    for (const [props, inner] of [
      [{ DELAY: '1' }, {}],
      [{}, { DELAY: '2' }],
      [{}, { TIMER_DELAY_MS: '500' }],
    ] as const) {
      const res = await client.invoke(mq.brokerAddr, batch(props, inner));
      assert.equal(res.code, ResponseCode.MESSAGE_ILLEGAL, JSON.stringify([props, inner]));
      assert.match(res.remark ?? '', /may not have a delay level or a timer/);
    }
  });

  test('GET_ALL_DELAY_OFFSET and delayOffset.json hold each level\u2019s progress', async () => {
    const res = await client.invoke(
      mq.brokerAddr,
      sendV2({ topic: 'DelayProgress', body: Buffer.from('p'), queueId: 0, extraProperties: { DELAY: '1' } }),
    );
    assert.equal(res.code, ResponseCode.SUCCESS);
    await waitFor(
      () => mq.broker.store.dispatchedMaxOffsetInQueue('DelayProgress', 0) === 1,
      5000,
      'delivery',
    );
    // Once every level has delivered what it holds, the answers cannot move under us.
    await waitFor(
      () => mq.broker.schedule.progress().every((p) => p.deliverOffset === p.maxOffset),
      5000,
      'every level delivered',
    );
    const progress = mq.broker.schedule.progress();
    assert.deepEqual(
      progress.map((p) => p.level),
      [1, 2, 3],
    );
    const expected = Object.fromEntries(progress.map((p) => [String(p.level), p.deliverOffset]));
    const answer = await client.invoke(mq.brokerAddr, createRequest(RequestCode.GET_ALL_DELAY_OFFSET));
    assert.equal(answer.code, ResponseCode.SUCCESS);
    assert.deepEqual(JSON.parse(answer.body!.toString()), { offsetTable: expected });
    const file = path.join(mq.dataDir, 'store', 'config', 'delayOffset.json');
    await waitFor(
      () =>
        fs.existsSync(file) && JSON.parse(fs.readFileSync(file, 'utf8')).offsetTable['1'] === expected['1'],
      5000,
      'delayOffset.json written',
    );
  });

  test('the SDK\u2019s delayLevel: the consumer gets the message after its delay, with the msgId the producer got', async () => {
    const producer = new Producer({ group: 'delay-producer', namesrvAddr: mq.namesrvAddr });
    const consumer = new PushConsumer({
      group: 'delay-consumer',
      namesrvAddr: mq.namesrvAddr,
      consumeFromWhere: 'FIRST_OFFSET',
    });
    const got: Array<{ m: MessageExt; at: number }> = [];
    try {
      await producer.start();
      const sentAt = Date.now();
      const r = await producer.send({ topic: 'DelaySdk', body: 'hello later', delayLevel: 2 });
      consumer.subscribe('DelaySdk', '*').onMessage(async (msgs) => {
        for (const m of msgs) got.push({ m, at: Date.now() });
      });
      await consumer.start();
      await waitFor(() => got.length >= 1, 20_000, 'the delayed message consumed');
      assert.equal(got[0]!.m.msgId, r.msgId);
      assert.equal(got[0]!.m.body.toString(), 'hello later');
      assert.ok(got[0]!.m.storeTimestamp >= sentAt + LEVELS_MS[1]!, 'not before its delay');
    } finally {
      await consumer.shutdown().catch(() => undefined);
      await producer.shutdown().catch(() => undefined);
    }
  });
});
