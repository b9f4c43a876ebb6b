import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Embedded, startEmbedded } from '../../src/broker/index.js';
import { decodeProperties, decodeRecords } from '../../src/message/index.js';
import { RequestCode, ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { headerRequest, pullRequest, sendV2, waitFor } from '../../test-support/broker-fixtures.js';

const TOPIC = 'PullTopic';
const COMMIT_OFFSET = 1;
const SUSPEND = 2;
const SUBSCRIPTION = 4;

describe('broker pull path and offsets', () => {
  let mq: Embedded;
  let client: RemotingClient;
  let beforeSendMs = 0;

  const maxOffset = async (topic: string, queueId: number) => {
    const res = await client.invoke(
      mq.brokerAddr,
      headerRequest(RequestCode.GET_MAX_OFFSET, { topic, queueId }),
    );
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    return Number(res.extFields!.offset);
  };

  before(async () => {
    mq = await startEmbedded();
    client = new RemotingClient();
    beforeSendMs = Date.now() - 1;
    for (let i = 0; i < 20; i++) {
      const res = await client.invoke(
        mq.brokerAddr,
        sendV2({ topic: TOPIC, queueId: 0, tags: i % 2 === 0 ? 'A' : 'B', body: Buffer.from(`m${i}`) }),
      );
      assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    }
    await waitFor(async () => (await maxOffset(TOPIC, 0)) === 20, 5_000, '20 messages dispatched');
  });
  after(async () => {
    client.close();
    await mq.close();
  });

  test('PULL_MESSAGE from 0 with maxMsgNums 8: 8 raw records in order, nextBeginOffset 8', async () => {
    const res = await client.invoke(
      mq.brokerAddr,
      pullRequest({ topic: TOPIC, queueId: 0, queueOffset: 0, maxMsgNums: 8 }),
    );
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    assert.equal(res.extFields!.nextBeginOffset, '8');
    assert.equal(res.extFields!.minOffset, '0');
    assert.equal(res.extFields!.maxOffset, '20');
    assert.equal(res.extFields!.suggestWhichBrokerId, '0');
    const recs = decodeRecords(res.body!, { checkCrc: true });
    assert.deepEqual(
      recs.map((r) => r.body.toString()),
      Array.from({ length: 8 }, (_, i) => `m${i}`),
    );
    assert.deepEqual(
      recs.map((r) => r.queueOffset),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
    assert.equal(recs[0]!.topic, TOPIC);
  });

  test('PULL_MESSAGE with subscription "B" returns only B messages; "A || B" returns all', async () => {
    const res = await client.invoke(
      mq.brokerAddr,
      pullRequest({ topic: TOPIC, queueId: 0, queueOffset: 0, subscription: 'B' }),
    );
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    const recs = decodeRecords(res.body!);
    assert.equal(recs.length, 10);
    for (const r of recs) assert.equal(decodeProperties(r.properties).get('TAGS'), 'B');
    assert.deepEqual(
      recs.map((r) => r.body.toString()),
      Array.from({ length: 10 }, (_, i) => `m${2 * i + 1}`),
    );
    assert.equal(res.extFields!.nextBeginOffset, '20');
    const both = await client.invoke(
      mq.brokerAddr,
      pullRequest({ topic: TOPIC, queueId: 0, queueOffset: 0, subscription: 'A || B' }),
    );
    assert.equal(decodeRecords(both.body!).length, 20);
    const none = await client.invoke(
      mq.brokerAddr,
      pullRequest({ topic: TOPIC, queueId: 0, queueOffset: 0, subscription: 'C' }),
    );
    assert.equal(none.code, ResponseCode.PULL_RETRY_IMMEDIATELY, 'NO_MATCHED_MESSAGE');
    assert.equal(none.extFields!.nextBeginOffset, '20');
  });

  test('PULL_MESSAGE above max → PULL_OFFSET_MOVED to max; at max without SUSPEND → PULL_NOT_FOUND', async () => {
    const moved = await client.invoke(
      mq.brokerAddr,
      pullRequest({ topic: TOPIC, queueId: 0, queueOffset: 100 }),
    );
    assert.equal(moved.code, ResponseCode.PULL_OFFSET_MOVED);
    assert.equal(moved.extFields!.nextBeginOffset, '20');
    const atMax = await client.invoke(
      mq.brokerAddr,
      pullRequest({ topic: TOPIC, queueId: 0, queueOffset: 20 }),
    );
    assert.equal(atMax.code, ResponseCode.PULL_NOT_FOUND);
    assert.equal(atMax.extFields!.nextBeginOffset, '20');
  });

  test('PULL_MESSAGE for an unknown topic → TOPIC_NOT_EXIST; a bad queueId → SYSTEM_ERROR', async () => {
    const res = await client.invoke(
      mq.brokerAddr,
      pullRequest({ topic: 'NoSuchTopic', queueId: 0, queueOffset: 0 }),
    );
    assert.equal(res.code, ResponseCode.TOPIC_NOT_EXIST);
    const bad = await client.invoke(
      mq.brokerAddr,
      pullRequest({ topic: TOPIC, queueId: 99, queueOffset: 0 }),
    );
    assert.equal(bad.code, ResponseCode.SYSTEM_ERROR);
  });

  test('long polling: a suspended pull at max is answered well under a second after a matching send', async () => {
    const held = client.invoke(
      mq.brokerAddr,
      pullRequest({
        topic: TOPIC,
        queueId: 1,
        queueOffset: 0,
        sysFlag: SUSPEND | SUBSCRIPTION,
        suspendTimeoutMillis: 5_000,
      }),
      10_000,
    );
    await waitFor(() => mq.broker.pullHoldService.size === 1, 5_000, 'the pull to be held');
    const sentAt = Date.now();
    const sent = await client.invoke(
      mq.brokerAddr,
      sendV2({ topic: TOPIC, queueId: 1, tags: 'A', body: Buffer.from('late') }),
    );
    assert.equal(sent.code, ResponseCode.SUCCESS, sent.remark);
    const res = await held;
    const latencyMs = Date.now() - sentAt;
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    assert.deepEqual(
      decodeRecords(res.body!).map((r) => r.body.toString()),
      ['late'],
    );
    assert.ok(latencyMs < 1_000, `answered ${latencyMs} ms after the send`);
  });

  test('long polling: a suspended pull with nothing arriving is answered PULL_NOT_FOUND at its 300 ms timeout', async () => {
    const startedAt = Date.now();
    const res = await client.invoke(
      mq.brokerAddr,
      pullRequest({
        topic: TOPIC,
        queueId: 2,
        queueOffset: 0,
        sysFlag: SUSPEND | SUBSCRIPTION,
        suspendTimeoutMillis: 300,
      }),
    );
    const waitedMs = Date.now() - startedAt;
    assert.equal(res.code, ResponseCode.PULL_NOT_FOUND);
    assert.equal(res.extFields!.nextBeginOffset, '0');
    assert.ok(waitedMs >= 290, `answered after ${waitedMs} ms, before its 300 ms timeout`);
    assert.ok(waitedMs < 2_000, `answered after ${waitedMs} ms`);
    assert.equal(mq.broker.pullHoldService.size, 0);
  });

  test('long polling: step(now) past the deadline answers a held pull; a closed connection drops it', async () => {
    const other = new RemotingClient();
    const held = other.invoke(
      mq.brokerAddr,
      pullRequest({
        topic: TOPIC,
        queueId: 3,
        queueOffset: 0,
        sysFlag: SUSPEND | SUBSCRIPTION,
        suspendTimeoutMillis: 10_000,
      }),
    );
    await waitFor(() => mq.broker.pullHoldService.size === 1, 5_000, 'the pull to be held');
    mq.broker.pullHoldService.step(Date.now() + 20_000);
    assert.equal((await held).code, ResponseCode.PULL_NOT_FOUND);
    void other
      .invoke(
        mq.brokerAddr,
        pullRequest({
          topic: TOPIC,
          queueId: 3,
          queueOffset: 0,
          sysFlag: SUSPEND | SUBSCRIPTION,
          suspendTimeoutMillis: 10_000,
        }),
      )
      .catch(() => {});
    await waitFor(() => mq.broker.pullHoldService.size === 1, 5_000, 'the second pull to be held');
    other.close();
    await waitFor(() => mq.broker.pullHoldService.size === 0, 5_000, 'the held pull to be dropped');
  });

  test('GET_MAX/MIN_OFFSET, SEARCH_OFFSET_BY_TIMESTAMP and GET_EARLIEST_MSG_STORETIME', async () => {
    assert.equal(await maxOffset(TOPIC, 0), 20);
    const min = await client.invoke(
      mq.brokerAddr,
      headerRequest(RequestCode.GET_MIN_OFFSET, { topic: TOPIC, queueId: 0 }),
    );
    assert.equal(min.code, ResponseCode.SUCCESS);
    assert.equal(min.extFields!.offset, '0');
    const earliest = await client.invoke(
      mq.brokerAddr,
      headerRequest(RequestCode.GET_EARLIEST_MSG_STORETIME, { topic: TOPIC, queueId: 0 }),
    );
    assert.equal(earliest.code, ResponseCode.SUCCESS);
    const first = await mq.broker.store.storeTimestampOf(TOPIC, 0, 0);
    assert.equal(earliest.extFields!.timestamp, String(first));
    assert.ok(Number(earliest.extFields!.timestamp) >= beforeSendMs);
    const search = async (timestamp: number) => {
      const res = await client.invoke(
        mq.brokerAddr,
        headerRequest(RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, { topic: TOPIC, queueId: 0, timestamp }),
      );
      assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
      return Number(res.extFields!.offset);
    };
    assert.equal(await search(beforeSendMs), 0);
    const t10 = (await mq.broker.store.storeTimestampOf(TOPIC, 0, 10))!;
    const atT10 = await search(t10);
    assert.ok(atT10 <= 10, `offset for the 11th message's time is ${atT10}`);
    const stamp = (await mq.broker.store.storeTimestampOf(TOPIC, 0, atT10))!;
    assert.ok(stamp >= t10, 'the offset found was stored at or after the timestamp');
    const empty = await client.invoke(
      mq.brokerAddr,
      headerRequest(RequestCode.GET_EARLIEST_MSG_STORETIME, { topic: TOPIC, queueId: 5 }),
    );
    assert.equal(empty.extFields!.timestamp, '-1');
    const badHeader = await client.invoke(
      mq.brokerAddr,
      headerRequest(RequestCode.GET_MAX_OFFSET, { topic: TOPIC }),
    );
    assert.equal(badHeader.code, ResponseCode.SYSTEM_ERROR);
  });

  test('QUERY_CONSUMER_OFFSET for an unknown group → QUERY_NOT_FOUND', async () => {
    const onEmpty = await client.invoke(
      mq.brokerAddr,
      headerRequest(RequestCode.QUERY_CONSUMER_OFFSET, {
        consumerGroup: 'CG_NONE',
        topic: TOPIC,
        queueId: 6,
      }),
    );
    assert.equal(onEmpty.code, ResponseCode.QUERY_NOT_FOUND);
    const strict = await client.invoke(
      mq.brokerAddr,
      headerRequest(RequestCode.QUERY_CONSUMER_OFFSET, {
        consumerGroup: 'CG_NONE',
        topic: TOPIC,
        queueId: 0,
        setZeroIfNotFound: 'false',
      }),
    );
    assert.equal(strict.code, ResponseCode.QUERY_NOT_FOUND);
    const young = await client.invoke(
      mq.brokerAddr,
      headerRequest(RequestCode.QUERY_CONSUMER_OFFSET, {
        consumerGroup: 'CG_NONE',
        topic: TOPIC,
        queueId: 0,
      }),
    );
    assert.equal(young.code, ResponseCode.SUCCESS, 'a young queue starts a new group at 0, as RocketMQ 4.x');
    assert.equal(young.extFields!.offset, '0');
  });
});

describe('consumer offsets across a broker restart', () => {
  test('commit via the PULL flag and UPDATE_CONSUMER_OFFSET, read back, and after a restart from consumerOffset.json', async () => {
    const fs = await import('node:fs/promises');
    const os = await import('node:os');
    const path = await import('node:path');
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsmq-offsets-'));
    const client = new RemotingClient();
    const query = async (addr: string, consumerGroup: string, queueId: number) =>
      client.invoke(
        addr,
        headerRequest(RequestCode.QUERY_CONSUMER_OFFSET, { consumerGroup, topic: TOPIC, queueId }),
      );
    try {
      let mq = await startEmbedded({ dataDir });
      const sent = await client.invoke(
        mq.brokerAddr,
        sendV2({ topic: TOPIC, queueId: 0, tags: 'A', body: Buffer.from('x') }),
      );
      assert.equal(sent.code, ResponseCode.SUCCESS, sent.remark);

      const pulled = await client.invoke(
        mq.brokerAddr,
        pullRequest({
          topic: TOPIC,
          queueId: 0,
          queueOffset: 0,
          consumerGroup: 'CG_PULL',
          sysFlag: COMMIT_OFFSET | SUBSCRIPTION,
          commitOffset: 7,
        }),
      );
      assert.ok(
        [ResponseCode.SUCCESS, ResponseCode.PULL_NOT_FOUND].includes(pulled.code as 0),
        pulled.remark,
      );
      const viaPull = await query(mq.brokerAddr, 'CG_PULL', 0);
      assert.equal(viaPull.code, ResponseCode.SUCCESS);
      assert.equal(viaPull.extFields!.offset, '7');

      await client.invokeOneway(
        mq.brokerAddr,
        headerRequest(RequestCode.UPDATE_CONSUMER_OFFSET, {
          consumerGroup: 'CG_UPD',
          topic: TOPIC,
          queueId: 2,
          commitOffset: 42,
        }),
      );
      await waitFor(
        async () => (await query(mq.brokerAddr, 'CG_UPD', 2)).extFields?.offset === '42',
        5_000,
        'the one-way commit',
      );
      const sync = await client.invoke(
        mq.brokerAddr,
        headerRequest(RequestCode.UPDATE_CONSUMER_OFFSET, {
          consumerGroup: 'CG_UPD',
          topic: TOPIC,
          queueId: 3,
          commitOffset: 5,
        }),
      );
      assert.equal(sync.code, ResponseCode.SUCCESS);

      const all = await client.invoke(mq.brokerAddr, headerRequest(RequestCode.GET_ALL_CONSUMER_OFFSET, {}));
      assert.equal(all.code, ResponseCode.SUCCESS);
      assert.deepEqual(JSON.parse(all.body!.toString('utf8')).offsetTable, {
        [`${TOPIC}@CG_PULL`]: { 0: 7 },
        [`${TOPIC}@CG_UPD`]: { 2: 42, 3: 5 },
      });

      await mq.close();
      const file = JSON.parse(
        await fs.readFile(path.join(dataDir, 'store', 'config', 'consumerOffset.json'), 'utf8'),
      );
      assert.deepEqual(file, {
        offsetTable: { [`${TOPIC}@CG_PULL`]: { 0: 7 }, [`${TOPIC}@CG_UPD`]: { 2: 42, 3: 5 } },
      });

      mq = await startEmbedded({ dataDir });
      try {
        const after = await query(mq.brokerAddr, 'CG_UPD', 2);
        assert.equal(after.code, ResponseCode.SUCCESS);
        assert.equal(after.extFields!.offset, '42');
        assert.equal((await query(mq.brokerAddr, 'CG_PULL', 0)).extFields!.offset, '7');
      } finally {
        await mq.close();
      }
    } finally {
      client.close();
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });
});
