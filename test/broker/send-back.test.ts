/**
 * CONSUMER_SEND_MSG_BACK on an in-process broker with short delay levels: where a failed message
 * is stored again (%RETRY% after 3 + reconsumeTimes levels, %DLQ% past maxReconsumeTimes or with
 * a negative level), what the copy keeps and gains, the refusals, the lock-version fence, and the
 * retry rules of a plain send to a %RETRY% topic (a Java client's fallback).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Embedded, startEmbedded } from '../../src/broker/index.js';
import {
  type DecodedRecord,
  decodeProperties,
  decodeRecord,
  encodeBatchBody,
  encodeProperties,
} from '../../src/message/index.js';
import {
  createRequest,
  decodeLockBatchResponse,
  encodeLockBatchRequest,
  encodeSendHeader,
  RequestCode,
  ResponseCode,
} from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import {
  consumerHeartbeat,
  fakeUniqKey,
  headerRequest,
  sendHeader,
  sendV2,
  waitFor,
} from '../../test-support/broker-fixtures.js';

// 18 levels: level n waits n × 50 ms, so the level a retry used shows in its wait.
const LEVELS = Array.from({ length: 18 }, (_, i) => `${(i + 1) * 50}ms`).join(' ');
const SCHEDULE = 'SCHEDULE_TOPIC_XXXX';

describe('CONSUMER_SEND_MSG_BACK', () => {
  let mq: Embedded;
  let client: RemotingClient;

  before(async () => {
    mq = await startEmbedded({ broker: { messageDelayLevel: LEVELS } });
    client = new RemotingClient();
  });
  after(async () => {
    client.close();
    await mq.close();
  });

  async function records(topic: string, queueId: number): Promise<DecodedRecord[]> {
    const r = await mq.broker.store.getMessages(topic, queueId, 0, { maxCount: 1000 });
    return r.records.map((b) => {
      const d = decodeRecord(b, 0);
      assert.equal(d.kind, 'record');
      return (d as { record: DecodedRecord }).record;
    });
  }

  /** Sends one message and returns its commit-log offset. */
  async function stored(topic: string, n: number, extra: Record<string, string> = {}): Promise<number> {
    const res = await client.invoke(
      mq.brokerAddr,
      sendV2({
        topic,
        body: Buffer.from(`body-${n}`),
        queueId: 0,
        tags: 'TagR',
        keys: `key-${n}`,
        uniqKey: fakeUniqKey(n),
        flag: 5,
        extraProperties: { color: 'blue', ...extra },
      }),
    );
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    return (await mq.broker.store.getMessageByOffsetMsgId(res.extFields!.msgId!)).physicalOffset;
  }

  function sendBack(fields: Record<string, string | number>) {
    return client.invoke(mq.brokerAddr, headerRequest(RequestCode.CONSUMER_SEND_MSG_BACK, fields));
  }

  test('a failed message goes to %RETRY%<group> after level 3 + reconsumeTimes, keeping its id and gaining RETRY_TOPIC', async () => {
    const offset = await stored('SbTopic', 1, { DELAY: '0', TIMER_DELIVER_MS: String(Date.now() - 1000) });
    const t0 = Date.now();
    const res = await sendBack({
      offset,
      group: 'sbg',
      delayLevel: 0,
      originMsgId: fakeUniqKey(1),
      originTopic: 'SbTopic',
    });
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    // It waits in the schedule topic at level 3 (queue 2), then lands in the retry topic.
    const waiting = await records(SCHEDULE, 2);
    assert.equal(waiting.length, 1);
    assert.equal(decodeProperties(waiting[0]!.properties).get('REAL_TOPIC'), '%RETRY%sbg');
    await waitFor(async () => (await records('%RETRY%sbg', 0)).length === 1, 5_000, 'retry copy');
    assert.ok(Date.now() - t0 >= 140, `delivered after ${Date.now() - t0} ms, level 3 is 150 ms`);
    const [copy] = await records('%RETRY%sbg', 0);
    const p = decodeProperties(copy!.properties);
    assert.equal(copy!.reconsumeTimes, 1);
    assert.equal(Buffer.from(copy!.body).toString(), 'body-1');
    assert.equal(copy!.flag, 5);
    assert.equal(copy!.bornTimestamp, 1_700_000_000_123);
    assert.equal(p.get('UNIQ_KEY'), fakeUniqKey(1));
    assert.equal(p.get('RETRY_TOPIC'), 'SbTopic');
    assert.equal(p.get('ORIGIN_MESSAGE_ID'), fakeUniqKey(1));
    assert.equal(p.get('TAGS'), 'TagR');
    assert.equal(p.get('KEYS'), 'key-1');
    assert.equal(p.get('color'), 'blue');
    for (const k of ['DELAY', 'TIMER_DELIVER_MS', 'REAL_TOPIC', 'REAL_QID', 'TIMER_OUT_MS']) {
      assert.equal(p.has(k), false, `${k} is dropped`);
    }
    assert.ok(mq.broker.topics.get('%RETRY%sbg'), 'the retry topic exists');

    // The retry fails too: the next level is 3 + 1, and RETRY_TOPIC still names the first topic.
    const res2 = await sendBack({ offset: copy!.physicalOffset, group: 'sbg', delayLevel: 0 });
    assert.equal(res2.code, ResponseCode.SUCCESS, res2.remark);
    assert.equal((await records(SCHEDULE, 3)).length, 1, 'level 4 waits in queue 3');
    await waitFor(async () => (await records('%RETRY%sbg', 0)).length === 2, 5_000, 'second retry');
    const second = (await records('%RETRY%sbg', 0))[1]!;
    assert.equal(second.reconsumeTimes, 2);
    assert.equal(decodeProperties(second.properties).get('RETRY_TOPIC'), 'SbTopic');
  });

  test('a delay level given by the consumer is used as is', async () => {
    const offset = await stored('SbLevel', 2);
    const res = await sendBack({ offset, group: 'sbl', delayLevel: 1 });
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    assert.equal(
      (await records(SCHEDULE, 0)).filter(
        (r) => decodeProperties(r.properties).get('REAL_TOPIC') === '%RETRY%sbl',
      ).length,
      1,
    );
  });

  test('past maxReconsumeTimes (header, else the group) or with a negative level: %DLQ%<group> at once, origin kept', async () => {
    const offset = await stored('SbDead', 3);
    // reconsumeTimes 0 ≥ a header maximum of 0
    const res = await sendBack({ offset, group: 'sbd', delayLevel: 0, maxReconsumeTimes: 0 });
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    const dlq = await records('%DLQ%sbd', 0);
    assert.equal(dlq.length, 1, 'stored at once, no delay');
    const p = decodeProperties(dlq[0]!.properties);
    assert.equal(p.get('DLQ_ORIGIN_TOPIC'), 'SbDead');
    assert.equal(p.get('DLQ_ORIGIN_MESSAGE_ID'), fakeUniqKey(3));
    assert.equal(p.get('UNIQ_KEY'), fakeUniqKey(3));
    assert.equal(p.get('RETRY_TOPIC'), 'SbDead');
    assert.equal(dlq[0]!.reconsumeTimes, 1);
    assert.equal(mq.broker.topics.get('%DLQ%sbd')?.readQueueNums, 1);

    const neg = await sendBack({ offset, group: 'sbd', delayLevel: -1 });
    assert.equal(neg.code, ResponseCode.SUCCESS, neg.remark);
    assert.equal((await records('%DLQ%sbd', 0)).length, 2);

    // The group's retryMaxTimes applies without a header maximum.
    const upd = await client.invoke(
      mq.brokerAddr,
      createRequest(
        RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
        {},
        Buffer.from(JSON.stringify({ groupName: 'sbd2', retryMaxTimes: 0 })),
      ),
    );
    assert.equal(upd.code, ResponseCode.SUCCESS, upd.remark);
    assert.equal((await sendBack({ offset, group: 'sbd2', delayLevel: 0 })).code, ResponseCode.SUCCESS);
    assert.equal((await records('%DLQ%sbd2', 0)).length, 1);
  });

  test('refusals: a bad header, an offset holding no message, a stale lock version', async () => {
    const missing = await sendBack({ group: 'x', delayLevel: 0 });
    assert.equal(missing.code, ResponseCode.SYSTEM_ERROR);
    assert.match(missing.remark ?? '', /offset/);
    const nan = await sendBack({ offset: 'abc', group: 'x', delayLevel: 0 });
    assert.equal(nan.code, ResponseCode.SYSTEM_ERROR);
    const nowhere = await sendBack({ offset: 1 << 30, group: 'x', delayLevel: 0 });
    assert.equal(nowhere.code, ResponseCode.SYSTEM_ERROR);
    assert.match(nowhere.remark ?? '', /look message by offset failed/);

    // The record must be the failed message: not a waiting delayed one, not another message.
    const delayed = await client.invoke(
      mq.brokerAddr,
      sendV2({ topic: 'SbWait', body: Buffer.from('w'), queueId: 0, extraProperties: { DELAY: '18' } }),
    );
    const waiting = (await mq.broker.store.getMessageByOffsetMsgId(delayed.extFields!.msgId!)).physicalOffset;
    const early = await sendBack({ offset: waiting, group: 'sbx', delayLevel: 0 });
    assert.equal(early.code, ResponseCode.SYSTEM_ERROR);
    assert.match(early.remark ?? '', /SCHEDULE_TOPIC_XXXX, which consumers of sbx do not consume/);
    const other = await stored('SbOther', 9);
    const wrongId = await sendBack({
      offset: other,
      group: 'sbx',
      delayLevel: 0,
      originMsgId: fakeUniqKey(10),
    });
    assert.equal(wrongId.code, ResponseCode.SYSTEM_ERROR);
    assert.match(wrongId.remark ?? '', /is not message/);
    const wrongTopic = await sendBack({
      offset: other,
      group: 'sbx',
      delayLevel: 0,
      originTopic: 'Elsewhere',
    });
    assert.equal(wrongTopic.code, ResponseCode.SYSTEM_ERROR);
    assert.match(wrongTopic.remark ?? '', /is in SbOther, not Elsewhere/);
    assert.equal(mq.broker.topics.get('%RETRY%sbx')?.writeQueueNums ?? 0, 0, 'nothing stored for sbx');

    // Lock the message's queue twice (the second holder after the first's lease): A is stale.
    const offset = await stored('SbLock', 4);
    const lock = async (clientId: string, code: number = RequestCode.LOCK_BATCH_MQ) => {
      const r = await client.invoke(
        mq.brokerAddr,
        createRequest(
          code,
          {},
          encodeLockBatchRequest({
            consumerGroup: 'sbk',
            clientId,
            mqSet: [{ topic: 'SbLock', brokerName: mq.broker.config.brokerName, queueId: 0 }],
            onlyThisBroker: true,
          }),
        ),
      );
      if (code !== RequestCode.LOCK_BATCH_MQ) return undefined;
      return decodeLockBatchResponse(r.body).lockVersions[0]?.lockVersion;
    };
    const vA = await lock('A');
    assert.ok(vA !== undefined);
    await lock('A', RequestCode.UNLOCK_BATCH_MQ);
    const vB = await lock('B');
    assert.ok(vB !== undefined && vB > vA);
    const stale = await sendBack({ offset, group: 'sbk', delayLevel: -1, lockVersion: vA });
    assert.equal(stale.code, ResponseCode.NO_PERMISSION);
    assert.match(stale.remark ?? '', /stale lock version/);
    assert.equal((await records('%DLQ%sbk', 0)).length, 0, 'nothing stored for the stale holder');
    const fresh = await sendBack({ offset, group: 'sbk', delayLevel: -1, lockVersion: vB });
    assert.equal(fresh.code, ResponseCode.SUCCESS, fresh.remark);
    assert.equal((await records('%DLQ%sbk', 0)).length, 1);
  });

  test('a send to %RETRY%<group> past maxReconsumeTimes goes to the DLQ; a batch to a retry topic is refused', async () => {
    // Create the group and its retry topic as a consumer's heartbeat would.
    const hb = await client.invoke(
      mq.brokerAddr,
      consumerHeartbeat({ clientId: 'c1', group: 'sbs', topic: 'SbOrig' }),
    );
    assert.equal(hb.code, ResponseCode.SUCCESS, hb.remark);
    const retrySend = (reconsumeTimes: number, max?: number) => {
      const h = sendHeader({
        topic: '%RETRY%sbs',
        body: Buffer.from(`r${reconsumeTimes}`),
        extraProperties: { RETRY_TOPIC: 'SbOrig', DELAY: '3' },
      });
      return client.invoke(
        mq.brokerAddr,
        createRequest(
          RequestCode.SEND_MESSAGE_V2,
          encodeSendHeader(
            { ...h, reconsumeTimes, ...(max !== undefined && { maxReconsumeTimes: max }) },
            true,
          ),
          Buffer.from(`r${reconsumeTimes}`),
        ),
      );
    };
    const dead = await retrySend(16);
    assert.equal(dead.code, ResponseCode.SUCCESS, dead.remark);
    const dlq = await records('%DLQ%sbs', 0);
    assert.equal(dlq.length, 1);
    const p = decodeProperties(dlq[0]!.properties);
    assert.equal(p.get('DLQ_ORIGIN_TOPIC'), 'SbOrig');
    assert.equal(p.has('DELAY'), false);
    assert.equal((await retrySend(2, 2)).code, ResponseCode.SUCCESS);
    assert.equal((await records('%DLQ%sbs', 0)).length, 2, 'the header maximum applies');
    assert.equal((await retrySend(1)).code, ResponseCode.SUCCESS);
    assert.equal((await records('%DLQ%sbs', 0)).length, 2, 'below the maximum it is retried, not dead');

    const batch = await client.invoke(
      mq.brokerAddr,
      createRequest(
        RequestCode.SEND_BATCH_MESSAGE,
        encodeSendHeader(
          { ...sendHeader({ topic: '%RETRY%sbs', body: Buffer.alloc(0) }), batch: true },
          true,
        ),
        encodeBatchBody([{ body: Buffer.from('b'), properties: encodeProperties({}), flag: 0 }]),
      ),
    );
    assert.equal(batch.code, ResponseCode.MESSAGE_ILLEGAL);
    assert.match(batch.remark ?? '', /retry group/);
  });

  test('an unknown group on a broker that does not create groups: SUBSCRIPTION_GROUP_NOT_EXIST, nothing stored', async () => {
    const strict = await startEmbedded({ broker: { autoCreateSubscriptionGroup: false } });
    try {
      const res = await client.invoke(
        strict.brokerAddr,
        sendV2({ topic: 'SbStrict', body: Buffer.from('s'), queueId: 0 }),
      );
      assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
      const offset = (await strict.broker.store.getMessageByOffsetMsgId(res.extFields!.msgId!))
        .physicalOffset;
      const back = await client.invoke(
        strict.brokerAddr,
        headerRequest(RequestCode.CONSUMER_SEND_MSG_BACK, { offset, group: 'nobody', delayLevel: 0 }),
      );
      assert.equal(back.code, ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST);
      assert.match(back.remark ?? '', /nobody/);
      assert.equal(strict.broker.topics.get('%RETRY%nobody'), undefined);
    } finally {
      await strict.close();
    }
  });
});
