import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Embedded, startEmbedded } from '../../src/broker/index.js';
import { decodeProperties, encodeBatchBody, encodeProperties } from '../../src/message/index.js';
import {
  createRequest,
  encodeSendHeader,
  parseFastjson,
  RequestCode,
  ResponseCode,
} from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { fakeUniqKey, sendHeader, sendV1, sendV2 } from '../../test-support/broker-fixtures.js';

const MAX_MESSAGE_SIZE = 64 * 1024;

describe('broker send path (auto-create on)', () => {
  let mq: Embedded;
  let client: RemotingClient;

  before(async () => {
    mq = await startEmbedded({ broker: { maxMessageSize: MAX_MESSAGE_SIZE } });
    client = new RemotingClient();
  });
  after(async () => {
    client.close();
    await mq.close();
  });

  test('SEND_MESSAGE_V2 with tags and keys: SUCCESS with msgId/queueId/queueOffset, stored byte-identical', async () => {
    for (let i = 0; i < 3; i++) {
      const body = Buffer.from(`hello ${i} \u00e9\u0000\u00ff`, 'utf8');
      const uniq = fakeUniqKey(i);
      const res = await client.invoke(
        mq.brokerAddr,
        sendV2({ topic: 'TopicV2', body, queueId: 1, tags: 'TagA', keys: `k${i} other`, uniqKey: uniq }),
      );
      assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
      const ext = res.extFields!;
      assert.equal(ext.queueId, '1');
      assert.equal(ext.queueOffset, String(i));
      assert.equal(ext.transactionId, uniq, 'transactionId is the UNIQ_KEY (RocketMQ 5.x)');
      assert.match(ext.msgId!, /^[0-9A-F]{32}$/);
      const rec = await mq.broker.store.getMessageByOffsetMsgId(ext.msgId!);
      assert.deepEqual(rec.body, body);
      assert.equal(rec.topic, 'TopicV2');
      assert.equal(rec.queueId, 1);
      assert.equal(rec.queueOffset, i);
      assert.equal(rec.bornTimestamp, 1_700_000_000_123);
      assert.equal(rec.bornHost.address, '127.0.0.1');
      assert.equal(`${rec.storeHost.address}:${rec.storeHost.port}`, mq.brokerAddr);
      const props = decodeProperties(rec.properties);
      assert.equal(props.get('TAGS'), 'TagA');
      assert.equal(props.get('KEYS'), `k${i} other`);
      assert.equal(props.get('UNIQ_KEY'), uniq);
      assert.equal(props.get('CLUSTER'), 'DefaultCluster');
    }
  });

  test('SEND_MESSAGE (v1 header) stores the message; a missing UNIQ_KEY is made up by the broker', async () => {
    const body = Buffer.from('v1 body');
    const h = sendHeader({ topic: 'TopicV1', body, queueId: 0, tags: 'T1' });
    h.properties = encodeProperties({ TAGS: 'T1' });
    const res = await client.invoke(
      mq.brokerAddr,
      createRequest(RequestCode.SEND_MESSAGE, encodeSendHeader(h, false), body),
    );
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    const rec = await mq.broker.store.getMessageByOffsetMsgId(res.extFields!.msgId!);
    assert.deepEqual(rec.body, body);
    assert.equal(decodeProperties(rec.properties).get('UNIQ_KEY'), res.extFields!.transactionId);
    assert.match(res.extFields!.transactionId!, /^[0-9A-F]{32}$/);
    // v1 header with the v1 helper too
    const res2 = await client.invoke(mq.brokerAddr, sendV1({ topic: 'TopicV1', body, tags: 'T1' }));
    assert.equal(res2.code, ResponseCode.SUCCESS, res2.remark);
    assert.equal(res2.extFields!.queueOffset, '1');
  });

  test('SEND_BATCH_MESSAGE of 10 messages: contiguous offsets, each stored with its own flag and properties', async () => {
    const inner = Array.from({ length: 10 }, (_, i) => ({
      flag: i,
      body: Buffer.from(`batch-${i}`),
      properties: encodeProperties({ KEYS: `bk${i}`, UNIQ_KEY: fakeUniqKey(100 + i) }),
    }));
    const h = sendHeader({ topic: 'TopicBatch', body: Buffer.alloc(0), queueId: 2 });
    h.batch = true;
    const res = await client.invoke(
      mq.brokerAddr,
      createRequest(RequestCode.SEND_BATCH_MESSAGE, encodeSendHeader(h, true), encodeBatchBody(inner)),
    );
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    const ids = res.extFields!.msgId!.split(',');
    assert.equal(ids.length, 10);
    assert.equal(res.extFields!.queueOffset, '0');
    for (let i = 0; i < 10; i++) {
      const rec = await mq.broker.store.getMessageByOffsetMsgId(ids[i]!);
      assert.deepEqual(rec.body, inner[i]!.body);
      assert.equal(rec.flag, i);
      assert.equal(rec.queueId, 2);
      assert.equal(rec.queueOffset, i);
      const props = decodeProperties(rec.properties);
      assert.equal(props.get('KEYS'), `bk${i}`);
      assert.equal(props.get('WAIT'), 'true', 'batch header properties are added to each message');
    }
  });

  test("SEND_BATCH_MESSAGE: inner properties as producers write them or not (no closing separator, a key twice, their own WAIT) all get the batch header's", async () => {
    const texts = [
      encodeProperties({ TAGS: 'a', UNIQ_KEY: fakeUniqKey(201) }),
      `KEYS\u0001k2\u0002UNIQ_KEY\u0001${fakeUniqKey(202)}`, // no closing \u0002
      `TAGS\u0001x\u0002TAGS\u0001y\u0002UNIQ_KEY\u0001${fakeUniqKey(203)}\u0002`, // TAGS twice: last wins
      encodeProperties({ WAIT: 'false', DELAY: '0', UNIQ_KEY: fakeUniqKey(204) }), // own WAIT kept; DELAY 0 is no delay
    ];
    const h = sendHeader({ topic: 'TopicBatchProps', body: Buffer.alloc(0), queueId: 0 });
    h.batch = true;
    h.properties = encodeProperties({ WAIT: 'true', color: 'red' });
    const res = await client.invoke(
      mq.brokerAddr,
      createRequest(
        RequestCode.SEND_BATCH_MESSAGE,
        encodeSendHeader(h, true),
        encodeBatchBody(texts.map((properties, i) => ({ flag: 0, body: Buffer.from(`p${i}`), properties }))),
      ),
    );
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    const ids = res.extFields!.msgId!.split(',');
    const props = await Promise.all(
      ids.map(async (id) => decodeProperties((await mq.broker.store.getMessageByOffsetMsgId(id)).properties)),
    );
    assert.deepEqual(
      props.map((p) => [p.get('TAGS'), p.get('KEYS'), p.get('WAIT'), p.get('color'), p.get('UNIQ_KEY')]),
      [
        ['a', undefined, 'true', 'red', fakeUniqKey(201)],
        [undefined, 'k2', 'true', 'red', fakeUniqKey(202)],
        ['y', undefined, 'true', 'red', fakeUniqKey(203)],
        [undefined, undefined, 'false', 'red', fakeUniqKey(204)],
      ],
    );
    for (const p of props) assert.equal(p.get('CLUSTER'), mq.broker.config.brokerClusterName);
  });

  test('auto-create: a new topic gets min(requested, TBW102 write queues) queues and a route on the name server', async () => {
    const res = await client.invoke(
      mq.brokerAddr,
      sendV2({ topic: 'AutoTopic', body: Buffer.from('x'), defaultTopicQueueNums: 3 }),
    );
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    assert.equal(mq.broker.topics.get('AutoTopic')?.writeQueueNums, 3);
    const big = await client.invoke(
      mq.brokerAddr,
      sendV2({ topic: 'AutoBig', body: Buffer.from('x'), defaultTopicQueueNums: 100 }),
    );
    assert.equal(big.code, ResponseCode.SUCCESS, big.remark);
    assert.equal(mq.broker.topics.get('AutoBig')?.writeQueueNums, 8);
    await mq.broker.registerNow();
    const route = await client.invoke(
      mq.namesrvAddr,
      createRequest(RequestCode.GET_ROUTEINFO_BY_TOPIC, { topic: 'AutoTopic' }),
    );
    assert.equal(route.code, ResponseCode.SUCCESS, route.remark);
    const data = parseFastjson(route.body!.toString('utf8')) as {
      queueDatas: Array<{ brokerName: string; writeQueueNums: number }>;
      brokerDatas: Array<{ brokerName: string; brokerAddrs: Record<string, string> }>;
    };
    assert.equal(data.queueDatas[0]!.writeQueueNums, 3);
    assert.equal(data.brokerDatas[0]!.brokerAddrs['0'], mq.brokerAddr);
  });

  test('queue id: -1 picks a write queue, one past the queues is SYSTEM_ERROR naming it', async () => {
    const ok = await client.invoke(
      mq.brokerAddr,
      sendV2({ topic: 'TopicV2', body: Buffer.from('r'), queueId: -1 }),
    );
    assert.equal(ok.code, ResponseCode.SUCCESS, ok.remark);
    assert.ok(Number(ok.extFields!.queueId) >= 0 && Number(ok.extFields!.queueId) < 4);
    const bad = await client.invoke(
      mq.brokerAddr,
      sendV2({ topic: 'TopicV2', body: Buffer.from('r'), queueId: 4 }),
    );
    assert.equal(bad.code, ResponseCode.SYSTEM_ERROR);
    assert.match(bad.remark!, /queueId\[4\] is illegal/);
  });

  test('illegal messages: empty body and oversize body → MESSAGE_ILLEGAL; reserved topic and bad name → SYSTEM_ERROR', async () => {
    const empty = await client.invoke(mq.brokerAddr, sendV2({ topic: 'TopicV2', body: Buffer.alloc(0) }));
    assert.equal(empty.code, ResponseCode.MESSAGE_ILLEGAL, empty.remark);
    const big = await client.invoke(
      mq.brokerAddr,
      sendV2({ topic: 'TopicV2', body: Buffer.alloc(MAX_MESSAGE_SIZE + 1) }),
    );
    assert.equal(big.code, ResponseCode.MESSAGE_ILLEGAL, big.remark);
    const tbw = await client.invoke(mq.brokerAddr, sendV2({ topic: 'TBW102', body: Buffer.from('x') }));
    assert.equal(tbw.code, ResponseCode.SYSTEM_ERROR);
    assert.match(tbw.remark!, /reserved/);
    const name = await client.invoke(mq.brokerAddr, sendV2({ topic: 'bad topic!', body: Buffer.from('x') }));
    assert.equal(name.code, ResponseCode.SYSTEM_ERROR);
    const noHeader = await client.invoke(
      mq.brokerAddr,
      createRequest(RequestCode.SEND_MESSAGE_V2, { b: 'T' }, Buffer.from('x')),
    );
    assert.equal(noHeader.code, ResponseCode.SYSTEM_ERROR);
    assert.match(noHeader.remark!, /<producerGroup> is null/);
  });

  test('no write permission → NO_PERMISSION; UPDATE_AND_CREATE_TOPIC and GET_ALL_TOPIC_CONFIG', async () => {
    const create = await client.invoke(
      mq.brokerAddr,
      createRequest(RequestCode.UPDATE_AND_CREATE_TOPIC, {
        topic: 'ReadOnly',
        defaultTopic: 'TBW102',
        readQueueNums: '2',
        writeQueueNums: '2',
        perm: '4',
        topicFilterType: 'SINGLE_TAG',
        topicSysFlag: '0',
        order: 'false',
      }),
    );
    assert.equal(create.code, ResponseCode.SUCCESS, create.remark);
    const res = await client.invoke(mq.brokerAddr, sendV2({ topic: 'ReadOnly', body: Buffer.from('x') }));
    assert.equal(res.code, ResponseCode.NO_PERMISSION);
    assert.match(res.remark!, /ReadOnly/);
    const all = await client.invoke(mq.brokerAddr, createRequest(RequestCode.GET_ALL_TOPIC_CONFIG));
    const table = JSON.parse(all.body!.toString()) as { topicConfigTable: Record<string, { perm: number }> };
    assert.equal(table.topicConfigTable.ReadOnly?.perm, 4);
    assert.ok(table.topicConfigTable.TBW102);
  });
});

describe('broker send path (auto-create off)', () => {
  test('an unknown topic is TOPIC_NOT_EXIST with a remark naming it', async () => {
    const mq = await startEmbedded({ broker: { autoCreateTopicEnable: false } });
    const client = new RemotingClient();
    try {
      const res = await client.invoke(
        mq.brokerAddr,
        sendV2({ topic: 'NoSuchTopic', body: Buffer.from('x') }),
      );
      assert.equal(res.code, ResponseCode.TOPIC_NOT_EXIST);
      assert.match(res.remark!, /topic\[NoSuchTopic\] not exist/);
      assert.equal(mq.broker.topics.get('TBW102'), undefined);
    } finally {
      client.close();
      await mq.close();
    }
  });
});
