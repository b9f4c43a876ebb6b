import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Embedded, startEmbedded } from '../../src/broker/index.js';
import { decodeOffsetMsgId, decodeProperties, decodeRecords } from '../../src/message/index.js';
import { RequestCode, ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { fakeUniqKey, headerRequest, sendV2 } from '../../test-support/broker-fixtures.js';

const TOPIC = 'QueryTopic';
const LONG_MAX = '9223372036854775807';

describe('QUERY_MESSAGE and VIEW_MESSAGE_BY_ID', () => {
  let mq: Embedded;
  let client: RemotingClient;
  const offsetMsgIds: string[] = [];
  let sentAt = 0;

  const query = (fields: Record<string, string | number>) =>
    client.invoke(
      mq.brokerAddr,
      headerRequest(RequestCode.QUERY_MESSAGE, {
        topic: TOPIC,
        maxNum: 32,
        beginTimestamp: 0,
        endTimestamp: LONG_MAX,
        ...fields,
      }),
    );
  const bodiesOf = (body: Buffer | undefined) =>
    decodeRecords(body!, { checkCrc: true }).map((r) => r.body.toString());

  before(async () => {
    mq = await startEmbedded();
    client = new RemotingClient();
    sentAt = Date.now() - 1;
    const specs = [
      { keys: 'order-1 shared', uniqKey: fakeUniqKey(1), body: 'm0' },
      { keys: 'order-2 shared', uniqKey: fakeUniqKey(2), body: 'm1' },
      // Its KEYS is m0's UNIQ_KEY: a key query finds it, a unique-key query must not.
      { keys: fakeUniqKey(1), uniqKey: fakeUniqKey(3), body: 'm2' },
    ];
    for (const s of specs) {
      const res = await client.invoke(
        mq.brokerAddr,
        sendV2({ topic: TOPIC, queueId: 0, keys: s.keys, uniqKey: s.uniqKey, body: Buffer.from(s.body) }),
      );
      assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
      offsetMsgIds.push(res.extFields!.msgId!);
    }
    await mq.broker.store.waitDispatched();
  });
  after(async () => {
    client.close();
    await mq.close();
  });

  test('by key: exactly the messages whose KEYS hold it, newest first, with the index position', async () => {
    const res = await query({ key: 'shared' });
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    assert.deepEqual(bodiesOf(res.body).sort(), ['m0', 'm1']);
    const one = await query({ key: 'order-2' });
    assert.deepEqual(bodiesOf(one.body), ['m1']);
    assert.ok(Number(res.extFields!.indexLastUpdateTimestamp) >= sentAt);
    const lastPhys = decodeOffsetMsgId(offsetMsgIds[2]!).physicalOffset;
    assert.equal(Number(res.extFields!.indexLastUpdatePhyoffset), lastPhys);
    // A key query also matches a message's UNIQ_KEY (the index holds both), as in RocketMQ.
    assert.deepEqual(bodiesOf((await query({ key: fakeUniqKey(1) })).body).sort(), ['m0', 'm2']);
  });

  test('by UNIQ_KEY with _UNIQUE_KEY_QUERY=true: only the message with that id', async () => {
    const res = await query({ key: fakeUniqKey(1), _UNIQUE_KEY_QUERY: 'true' });
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    const recs = decodeRecords(res.body!);
    assert.equal(recs.length, 1);
    assert.equal(recs[0]!.body.toString(), 'm0');
    assert.equal(decodeProperties(recs[0]!.properties).get('UNIQ_KEY'), fakeUniqKey(1));
  });

  test('nothing in the time range, an unknown key or another topic → QUERY_NOT_FOUND', async () => {
    const early = await query({ key: 'shared', beginTimestamp: 0, endTimestamp: sentAt - 60_000 });
    assert.equal(early.code, ResponseCode.QUERY_NOT_FOUND);
    assert.match(early.remark!, /can not find message/);
    assert.equal((await query({ key: 'nope' })).code, ResponseCode.QUERY_NOT_FOUND);
    assert.equal((await query({ key: 'shared', topic: 'OtherTopic' })).code, ResponseCode.QUERY_NOT_FOUND);
  });

  test('maxNum caps the answer', async () => {
    const res = await query({ key: 'shared', maxNum: 1 });
    assert.equal(res.code, ResponseCode.SUCCESS);
    assert.equal(decodeRecords(res.body!).length, 1);
  });

  test('bad query headers → SYSTEM_ERROR naming the field; the broker keeps serving', async () => {
    const noKey = await client.invoke(
      mq.brokerAddr,
      headerRequest(RequestCode.QUERY_MESSAGE, {
        topic: TOPIC,
        maxNum: 1,
        beginTimestamp: 0,
        endTimestamp: 1,
      }),
    );
    assert.equal(noKey.code, ResponseCode.SYSTEM_ERROR);
    assert.match(noKey.remark!, /<key> is null/);
    const badNum = await query({ key: 'shared', maxNum: 'many' });
    assert.equal(badNum.code, ResponseCode.SYSTEM_ERROR);
    assert.match(badNum.remark!, /<maxNum> is not a number/);
    const zero = await query({ key: 'shared', maxNum: 0 });
    assert.equal(zero.code, ResponseCode.SYSTEM_ERROR);
    assert.equal((await query({ key: 'shared' })).code, ResponseCode.SUCCESS);
  });

  test('VIEW_MESSAGE_BY_ID: the offset an offsetMsgId carries gives that record, byte for byte', async () => {
    for (const [i, id] of offsetMsgIds.entries()) {
      const { physicalOffset } = decodeOffsetMsgId(id);
      const res = await client.invoke(
        mq.brokerAddr,
        headerRequest(RequestCode.VIEW_MESSAGE_BY_ID, { offset: physicalOffset }),
      );
      assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
      const recs = decodeRecords(res.body!, { checkCrc: true });
      assert.equal(recs.length, 1);
      assert.equal(recs[0]!.body.toString(), `m${i}`);
      assert.equal(recs[0]!.topic, TOPIC);
      assert.equal(recs[0]!.physicalOffset, physicalOffset);
      assert.equal(recs[0]!.totalSize, res.body!.length);
    }
  });

  test('VIEW_MESSAGE_BY_ID at no record → SYSTEM_ERROR with the offset; the broker keeps serving', async () => {
    const first = decodeOffsetMsgId(offsetMsgIds[0]!).physicalOffset;
    const end = mq.broker.store.positions().writtenOffset;
    for (const offset of [first + 1, first + 20, end, end + 1_000_000, -1]) {
      const res = await client.invoke(
        mq.brokerAddr,
        headerRequest(RequestCode.VIEW_MESSAGE_BY_ID, { offset }),
      );
      assert.equal(res.code, ResponseCode.SYSTEM_ERROR, `offset ${offset}`);
      assert.match(res.remark!, new RegExp(`can not find message by the offset, ${offset}`));
    }
    for (const fields of [{}, { offset: 'x' }, { offset: '1e3' }] as Record<string, string>[]) {
      const res = await client.invoke(mq.brokerAddr, headerRequest(RequestCode.VIEW_MESSAGE_BY_ID, fields));
      assert.equal(res.code, ResponseCode.SYSTEM_ERROR);
      assert.match(res.remark!, /<offset>/);
    }
    const ok = await client.invoke(
      mq.brokerAddr,
      headerRequest(RequestCode.VIEW_MESSAGE_BY_ID, { offset: first }),
    );
    assert.equal(ok.code, ResponseCode.SUCCESS);
  });
});
