/**
 * Timer messages on an in-process broker (timerPrecisionMs 200, timerMaxDelaySec 60): sent with
 * TIMER_DELIVER_MS / TIMER_DELAY_MS / TIMER_DELAY_SEC through raw SEND_MESSAGE_V2 requests (the
 * SDK refuses reserved property names), delivered not before their time and within the
 * precision; past times at once; the refusals; runtime info.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Embedded, startEmbedded } from '../../src/broker/index.js';
import { type DecodedRecord, decodeProperties, decodeRecord } from '../../src/message/index.js';
import { createRequest, RequestCode, ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { fakeUniqKey, sendV2, waitFor } from '../../test-support/broker-fixtures.js';
import { Rng } from '../../test-support/prng.js';

const PRECISION_MS = 200;
/**
 * Event-loop slack allowed on top of the precision when the machine is busy (the tests run two
 * at a time): the service delivers at the timer's ms, so lateness is normally a few ms.
 */
const SLACK_MS = 500;

describe('timer messages', () => {
  let mq: Embedded;
  let client: RemotingClient;

  before(async () => {
    mq = await startEmbedded({
      broker: { timerPrecisionMs: PRECISION_MS, timerMaxDelaySec: 60, timerFlushIntervalMs: 100 },
    });
    client = new RemotingClient();
  });
  after(async () => {
    client.close();
    await mq.close();
  });

  async function records(topic: string, queueId: number): Promise<DecodedRecord[]> {
    const r = await mq.broker.store.getMessages(topic, queueId, 0, { maxCount: 10_000 });
    return r.records.map((b) => (decodeRecord(b, 0) as { kind: 'record'; record: DecodedRecord }).record);
  }

  function send(
    topic: string,
    props: Record<string, string>,
    opts: { queueId?: number; uniq?: number; body?: string } = {},
  ) {
    return client.invoke(
      mq.brokerAddr,
      sendV2({
        topic,
        body: Buffer.from(opts.body ?? 'timer'),
        queueId: opts.queueId ?? 0,
        ...(opts.uniq !== undefined && { uniqKey: fakeUniqKey(opts.uniq) }),
        extraProperties: props,
      }),
    );
  }

  test('TIMER_DELIVER_MS at arbitrary ms: each stored at its queue not before its time, within the precision', async () => {
    const rng = new Rng(42);
    const n = 300;
    const base = Date.now() + 500;
    const due = new Map<string, number>();
    /** When each send was answered: a timer whose time had passed by then is stored at once. */
    const acked = new Map<string, number>();
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const at = base + rng.int(0, 1500);
        const uniq = fakeUniqKey(1000 + i);
        due.set(uniq, at);
        const res = await send(
          'TimerAny',
          { TIMER_DELIVER_MS: String(at) },
          { queueId: i % 2, uniq: 1000 + i, body: `t${i}` },
        );
        assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
        acked.set(uniq, Date.now());
      }),
    );
    await waitFor(
      () =>
        mq.broker.store.dispatchedMaxOffsetInQueue('TimerAny', 0) +
          mq.broker.store.dispatchedMaxOffsetInQueue('TimerAny', 1) ===
        n,
      10_000,
      'every timer delivered',
    );
    const got = [...(await records('TimerAny', 0)), ...(await records('TimerAny', 1))];
    const seen = new Set<string>();
    let maxLate = 0;
    for (const r of got) {
      const p = decodeProperties(r.properties);
      const uniq = p.get('UNIQ_KEY')!;
      assert.ok(!seen.has(uniq), `${uniq} delivered twice`);
      seen.add(uniq);
      const at = due.get(uniq)!;
      assert.equal(p.get('TIMER_DELIVER_MS'), String(at), 'the timer property stays');
      for (const k of ['REAL_TOPIC', 'REAL_QID', 'TIMER_OUT_MS']) assert.equal(p.has(k), false, k);
      assert.ok(r.storeTimestamp >= at, `${uniq} stored ${at - r.storeTimestamp} ms early`);
      maxLate = Math.max(maxLate, r.storeTimestamp - Math.max(at, acked.get(uniq)!));
    }
    assert.equal(seen.size, n);
    assert.ok(maxLate <= PRECISION_MS + SLACK_MS, `a timer was stored ${maxLate} ms late`);
    // Each queue got its timers in time order (those that waited: not past due when acknowledged).
    for (const q of [0, 1]) {
      const times = (await records('TimerAny', q))
        .map((r) => decodeProperties(r.properties).get('UNIQ_KEY')!)
        .filter((u) => acked.get(u)! < due.get(u)!)
        .map((u) => due.get(u)!);
      assert.deepEqual(
        times,
        [...times].sort((a, b) => a - b),
      );
    }
  });

  test('TIMER_DELAY_MS and TIMER_DELAY_SEC count from the send; the reply names the timer topic', async () => {
    const t0 = Date.now();
    const ms = await send('TimerRel', { TIMER_DELAY_MS: '700' }, { uniq: 1 });
    const sec = await send('TimerRel', { TIMER_DELAY_SEC: '1' }, { uniq: 2 });
    assert.equal(ms.code, ResponseCode.SUCCESS, ms.remark);
    assert.equal(sec.code, ResponseCode.SUCCESS, sec.remark);
    const waiting = await mq.broker.store.getMessageByOffsetMsgId(ms.extFields!.msgId!);
    assert.equal(waiting.topic, 'rmq_sys_wheel_timer');
    assert.equal(waiting.queueId, 0);
    const out = Number(decodeProperties(waiting.properties).get('TIMER_OUT_MS'));
    assert.ok(out >= t0 + 700 && out <= Date.now() + 700);
    await waitFor(
      () => mq.broker.store.dispatchedMaxOffsetInQueue('TimerRel', 0) === 2,
      5000,
      'both delivered',
    );
    const [first, second] = await records('TimerRel', 0);
    assert.equal(decodeProperties(first!.properties).get('UNIQ_KEY'), fakeUniqKey(1));
    assert.ok(first!.storeTimestamp >= t0 + 700);
    assert.equal(decodeProperties(second!.properties).get('UNIQ_KEY'), fakeUniqKey(2));
    assert.ok(second!.storeTimestamp >= t0 + 1000);
  });

  test('a delivery time in the past, or a zero delay, is stored at its queue at once', async () => {
    const cases: Array<Record<string, string>> = [
      { TIMER_DELIVER_MS: String(Date.now() - 30_000) },
      { TIMER_DELAY_MS: '0' },
      { TIMER_DELAY_SEC: '-5' },
    ];
    for (const props of cases) {
      const res = await send('TimerPast', props);
      assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
      const rec = await mq.broker.store.getMessageByOffsetMsgId(res.extFields!.msgId!);
      assert.equal(rec.topic, 'TimerPast', JSON.stringify(props));
    }
  });

  test('beyond timerMaxDelaySec ahead or ago, or not a number: MESSAGE_ILLEGAL with a remark that says why', async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ TIMER_DELIVER_MS: String(Math.floor(Date.now() / 1000)) }, /was due \d+ ms ago.*not seconds/],
      [{ TIMER_DELIVER_MS: '0' }, /further back than the broker's limit of 60000 ms/],
      [{ TIMER_DELAY_SEC: '-61' }, /was due/],
      [{ TIMER_DELAY_SEC: '61' }, /beyond the broker's limit of 60000 ms \(timerMaxDelaySec=60\)/],
      [{ TIMER_DELIVER_MS: String(Date.now() + 61_000) }, /beyond the broker's limit/],
      [{ TIMER_DELAY_MS: '1e5' }, /TIMER_DELAY_MS is "1e5", not a whole number/],
      [{ TIMER_DELIVER_MS: 'tomorrow' }, /TIMER_DELIVER_MS is "tomorrow", not a whole number/],
    ];
    for (const [props, remark] of cases) {
      const res = await send('TimerBad', props);
      assert.equal(res.code, ResponseCode.MESSAGE_ILLEGAL, JSON.stringify(props));
      assert.match(res.remark ?? '', remark);
    }
    const ok = await send('TimerBad', { TIMER_DELAY_SEC: '59' });
    assert.equal(ok.code, ResponseCode.SUCCESS, 'just within the limit');
  });

  test('a delay level wins over timer properties (RocketMQ\u2019s rule)', async () => {
    const res = await send('TimerAndDelay', { DELAY: '1', TIMER_DELIVER_MS: String(Date.now() + 50_000) });
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    const waiting = await mq.broker.store.getMessageByOffsetMsgId(res.extFields!.msgId!);
    assert.equal(waiting.topic, 'SCHEDULE_TOPIC_XXXX');
    assert.equal(decodeProperties(waiting.properties).has('TIMER_DELIVER_MS'), false);
    await waitFor(
      () => mq.broker.store.dispatchedMaxOffsetInQueue('TimerAndDelay', 0) === 1,
      5000,
      'delivered by level 1',
    );
  });

  test('runtime info reports the timer and schedule keys', async () => {
    const res = await client.invoke(mq.brokerAddr, createRequest(RequestCode.GET_BROKER_RUNTIME_INFO));
    const { table } = JSON.parse(res.body!.toString()) as { table: Record<string, string> };
    for (const k of [
      'timerOffsetBehind',
      'timerReadBehind',
      'timerPending',
      'timerHeld',
      'scheduleMessageOffset_1',
    ]) {
      assert.ok(k in table, k);
    }
    assert.match(table.scheduleMessageOffset_1!, /^\d+,\d+$/);
  });
});

describe('timers off (timerEnable=false)', () => {
  test('a timer message is MESSAGE_ILLEGAL; the timer store is not created', async () => {
    const mq = await startEmbedded({ broker: { timerEnable: false } });
    const client = new RemotingClient();
    try {
      const res = await client.invoke(
        mq.brokerAddr,
        sendV2({ topic: 'TimerOff', body: Buffer.from('x'), extraProperties: { TIMER_DELAY_MS: '500' } }),
      );
      assert.equal(res.code, ResponseCode.MESSAGE_ILLEGAL);
      assert.match(res.remark ?? '', /timerEnable=false/);
      assert.equal(mq.broker.timerMessages, undefined);
    } finally {
      client.close();
      await mq.close();
    }
  });
});
