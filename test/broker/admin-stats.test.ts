import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Embedded, startEmbedded } from '../../src/broker/index.js';
import { decodeRecords } from '../../src/message/index.js';
import {
  computeConsumeLag,
  decodeConsumerConnection,
  decodeConsumeStats,
  decodeGroupList,
  decodeKVTable,
  decodeTopicConfigAndQueueMapping,
  decodeTopicStatsTable,
  RequestCode,
  ResponseCode,
} from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import {
  consumerHeartbeat,
  headerRequest,
  pullRequest,
  sendV2,
  waitFor,
} from '../../test-support/broker-fixtures.js';

const TOPIC = 'StatsTopic';
const OTHER = 'StatsOther';

describe('consume stats, topic stats, connections, consumers of a topic, topic config, runtime info', () => {
  let mq: Embedded;
  let client: RemotingClient;
  const invoke = (code: number, fields: Record<string, string | number> = {}) =>
    client.invoke(mq.brokerAddr, headerRequest(code, fields));
  const commit = (consumerGroup: string, topic: string, queueId: number, commitOffset: number) =>
    invoke(RequestCode.UPDATE_CONSUMER_OFFSET, { consumerGroup, topic, queueId, commitOffset });
  const runtime = async () => {
    const res = await invoke(RequestCode.GET_BROKER_RUNTIME_INFO);
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    return decodeKVTable(res.body).table;
  };
  let runtimeBefore: Record<string, string>;

  before(async () => {
    mq = await startEmbedded();
    client = new RemotingClient();
    runtimeBefore = await runtime();
    const created = await invoke(RequestCode.UPDATE_AND_CREATE_TOPIC, {
      topic: TOPIC,
      readQueueNums: 2,
      writeQueueNums: 2,
      perm: 6,
    });
    assert.equal(created.code, ResponseCode.SUCCESS, created.remark);
    // Queue 0 gets 6 messages, queue 1 gets 4; OTHER gets 1.
    for (let i = 0; i < 10; i++) {
      const res = await client.invoke(
        mq.brokerAddr,
        sendV2({ topic: TOPIC, queueId: i < 6 ? 0 : 1, body: Buffer.from(`m${i}`) }),
      );
      assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    }
    await client.invoke(mq.brokerAddr, sendV2({ topic: OTHER, queueId: 0, body: Buffer.from('o') }));
    await mq.broker.store.waitDispatched();
  });
  after(async () => {
    client.close();
    await mq.close();
  });

  test('GET_CONSUME_STATS: the lag drops as offsets are committed; pullOffset and consumeTps follow pulls', async () => {
    const stats = async (fields: Record<string, string>) => {
      const res = await invoke(RequestCode.GET_CONSUME_STATS, fields);
      assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
      return decodeConsumeStats(res.body);
    };
    const fresh = await stats({ consumerGroup: 'G_STATS', topic: TOPIC });
    assert.deepEqual(
      fresh.offsetTable.map((e) => [e.queue, e.offsets.brokerOffset, e.offsets.consumerOffset]),
      [
        [{ topic: TOPIC, brokerName: 'broker-a', queueId: 0 }, 6, 0],
        [{ topic: TOPIC, brokerName: 'broker-a', queueId: 1 }, 4, 0],
      ],
    );
    assert.equal(computeConsumeLag(fresh).totalDiff, 10);

    assert.equal((await commit('G_STATS', TOPIC, 0, 4)).code, ResponseCode.SUCCESS);
    assert.equal((await commit('G_STATS', TOPIC, 1, 4)).code, ResponseCode.SUCCESS);
    const later = await stats({ consumerGroup: 'G_STATS', topic: TOPIC });
    const lag = computeConsumeLag(later);
    assert.deepEqual(
      lag.queues.map((q) => q.lag),
      [2, 0],
    );
    assert.equal(lag.totalDiff, 2);
    const stored3 = await mq.broker.store.storeTimestampOf(TOPIC, 0, 3);
    assert.equal(
      later.offsetTable[0]!.offsets.lastTimestamp,
      stored3,
      'store time of the last consumed message',
    );
    assert.equal(later.offsetTable[0]!.offsets.pullOffset, 4, 'no pull yet: the committed offset');
    assert.equal(later.consumeTps, 0);

    const pulled = await client.invoke(
      mq.brokerAddr,
      pullRequest({ topic: TOPIC, queueId: 0, queueOffset: 4, consumerGroup: 'G_STATS' }),
    );
    assert.equal(decodeRecords(pulled.body!).length, 2);
    const afterPull = await stats({ consumerGroup: 'G_STATS', topic: TOPIC });
    assert.equal(afterPull.offsetTable[0]!.offsets.pullOffset, 6);
    assert.ok(afterPull.consumeTps > 0, `consumeTps ${afterPull.consumeTps}`);

    // Without a topic: every topic the group has offsets for.
    await commit('G_STATS', OTHER, 0, 1);
    const everything = await stats({ consumerGroup: 'G_STATS' });
    assert.deepEqual(
      everything.offsetTable.map((e) => `${e.queue.topic}/${e.queue.queueId}`),
      [`${OTHER}/0`, `${OTHER}/1`, `${OTHER}/2`, `${OTHER}/3`, `${TOPIC}/0`, `${TOPIC}/1`],
    );
    assert.equal(computeConsumeLag(everything).totalDiff, 2);
  });

  test('GET_CONSUME_STATS writes MessageQueue keys as objects, as RocketMQ does', async () => {
    const res = await invoke(RequestCode.GET_CONSUME_STATS, { consumerGroup: 'G_RAW', topic: TOPIC });
    const text = res.body!.toString();
    assert.match(
      text,
      /^\{"consumeTps":0\.0,"offsetTable":\{\{"brokerName":"broker-a","queueId":0,"topic":"StatsTopic"\}:\{/,
    );
    assert.throws(() => JSON.parse(text), SyntaxError);
  });

  test('GET_CONSUME_STATS: unknown group or topic → empty table; missing consumerGroup → SYSTEM_ERROR', async () => {
    const unknown = await invoke(RequestCode.GET_CONSUME_STATS, { consumerGroup: 'NOBODY' });
    assert.equal(unknown.code, ResponseCode.SUCCESS);
    assert.deepEqual(decodeConsumeStats(unknown.body).offsetTable, []);
    const noTopic = await invoke(RequestCode.GET_CONSUME_STATS, {
      consumerGroup: 'G_STATS',
      topic: 'NoSuchTopic',
    });
    assert.deepEqual(decodeConsumeStats(noTopic.body).offsetTable, []);
    const missing = await invoke(RequestCode.GET_CONSUME_STATS, { topic: TOPIC });
    assert.equal(missing.code, ResponseCode.SYSTEM_ERROR);
    assert.match(missing.remark!, /<consumerGroup> is null/);
  });

  test('GET_TOPIC_STATS_INFO: min, max and last store time per queue; unknown topic → TOPIC_NOT_EXIST', async () => {
    const res = await invoke(RequestCode.GET_TOPIC_STATS_INFO, { topic: TOPIC });
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    const table = decodeTopicStatsTable(res.body).offsetTable;
    assert.deepEqual(
      table.map((e) => [e.queue.queueId, e.offsets.minOffset, e.offsets.maxOffset]),
      [
        [0, 0, 6],
        [1, 0, 4],
      ],
    );
    assert.equal(table[0]!.offsets.lastUpdateTimestamp, await mq.broker.store.storeTimestampOf(TOPIC, 0, 5));
    assert.equal(
      (await invoke(RequestCode.GET_TOPIC_STATS_INFO, { topic: 'NoSuchTopic' })).code,
      ResponseCode.TOPIC_NOT_EXIST,
    );
    const missing = await invoke(RequestCode.GET_TOPIC_STATS_INFO);
    assert.equal(missing.code, ResponseCode.SYSTEM_ERROR);
  });

  test('GET_CONSUMER_CONNECTION_LIST and QUERY_TOPIC_CONSUME_BY_WHO follow live consumers and offsets', async () => {
    const consumer = new RemotingClient();
    try {
      const hb = await consumer.invoke(
        mq.brokerAddr,
        consumerHeartbeat({ clientId: '10.1.1.1@live', group: 'G_LIVE', topic: TOPIC, tags: 'A || B' }),
      );
      assert.equal(hb.code, ResponseCode.SUCCESS);
      const res = await invoke(RequestCode.GET_CONSUMER_CONNECTION_LIST, { consumerGroup: 'G_LIVE' });
      assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
      const cc = decodeConsumerConnection(res.body);
      assert.equal(cc.connectionSet.length, 1);
      assert.equal(cc.connectionSet[0]!.clientId, '10.1.1.1@live');
      assert.equal(cc.connectionSet[0]!.language, 'JAVA');
      assert.match(cc.connectionSet[0]!.clientAddr, /^127\.0\.0\.1:\d+$/);
      assert.deepEqual(Object.keys(cc.subscriptionTable), [TOPIC]);
      assert.deepEqual(cc.subscriptionTable[TOPIC]!.tagsSet, ['A', 'B']);
      assert.equal(cc.messageModel, 'CLUSTERING');
      assert.equal(cc.consumeType, 'CONSUME_PASSIVELY');
      assert.equal(cc.consumeFromWhere, 'CONSUME_FROM_LAST_OFFSET');

      await commit('G_OFFLINE', TOPIC, 0, 1);
      const who = await invoke(RequestCode.QUERY_TOPIC_CONSUME_BY_WHO, { topic: TOPIC });
      assert.equal(who.code, ResponseCode.SUCCESS);
      const groups = decodeGroupList(who.body).groupList;
      for (const g of ['G_LIVE', 'G_OFFLINE', 'G_STATS']) assert.ok(groups.includes(g), `${g} in ${groups}`);
      assert.deepEqual(groups, [...groups].sort());
      const nobody = await invoke(RequestCode.QUERY_TOPIC_CONSUME_BY_WHO, { topic: 'Unconsumed' });
      assert.deepEqual(decodeGroupList(nobody.body).groupList, []);
      assert.equal((await invoke(RequestCode.QUERY_TOPIC_CONSUME_BY_WHO)).code, ResponseCode.SYSTEM_ERROR);
    } finally {
      consumer.close();
    }
    await waitFor(
      async () =>
        (await invoke(RequestCode.GET_CONSUMER_CONNECTION_LIST, { consumerGroup: 'G_LIVE' })).code ===
        ResponseCode.CONSUMER_NOT_ONLINE,
      5_000,
      'the group to go offline with its only connection',
    );
    const unknown = await invoke(RequestCode.GET_CONSUMER_CONNECTION_LIST, { consumerGroup: 'NOBODY' });
    assert.equal(unknown.code, ResponseCode.CONSUMER_NOT_ONLINE);
    assert.match(unknown.remark!, /the consumer group\[NOBODY\] not online/);
    const missing = await invoke(RequestCode.GET_CONSUMER_CONNECTION_LIST);
    assert.equal(missing.code, ResponseCode.SYSTEM_ERROR);
  });

  test('GET_TOPIC_CONFIG: the topic config; unknown → TOPIC_NOT_EXIST; missing header → SYSTEM_ERROR', async () => {
    const res = await invoke(RequestCode.GET_TOPIC_CONFIG, { topic: TOPIC });
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    assert.deepEqual(decodeTopicConfigAndQueueMapping(res.body), {
      topicName: TOPIC,
      readQueueNums: 2,
      writeQueueNums: 2,
      perm: 6,
      topicFilterType: 'SINGLE_TAG',
      topicSysFlag: 0,
      order: false,
    });
    const unknown = await invoke(RequestCode.GET_TOPIC_CONFIG, { topic: 'NoSuchTopic' });
    assert.equal(unknown.code, ResponseCode.TOPIC_NOT_EXIST);
    assert.match(unknown.remark!, /NoSuchTopic/);
    assert.equal((await invoke(RequestCode.GET_TOPIC_CONFIG)).code, ResponseCode.SYSTEM_ERROR);
  });

  test('GET_BROKER_RUNTIME_INFO: counters grow with sends and pulls; RocketMQ keys and formats', async () => {
    const before = runtimeBefore;
    const now = await runtime();
    assert.equal(Number(now.msgPutTotalTodayNow) - Number(before.msgPutTotalTodayNow), 11);
    assert.ok(Number(now.msgGetTotalTodayNow) >= 2, `msgGetTotalTodayNow ${now.msgGetTotalTodayNow}`);
    assert.ok(Number(now.commitLogMaxOffset) > Number(before.commitLogMaxOffset));
    assert.equal(now.commitLogMinOffset, '0');
    const [tps10, tps60, tps600] = now.putTps!.split(' ').map(Number);
    assert.ok(tps10! > 0 && tps60! > 0 && tps600! > 0, `putTps ${now.putTps}`);
    assert.equal(now.getTransferedTps!.split(' ').length, 3);
    assert.match(now.runtime!, /^\[ \d+ days, \d+ hours, \d+ minutes, \d+ seconds \]$/);
    assert.equal(now.bootTimestamp, String(mq.broker.stats.bootTimestamp));
    assert.match(now.brokerVersionDesc!, /^tsmq \d+\.\d+\.\d+/);
    assert.ok(Number(now.earliestMessageTimeStamp) <= Date.now());
    assert.equal(now.earliestMessageTimeStamp, String(await mq.broker.store.storeTimestampOf(TOPIC, 0, 0)));
    assert.equal(before.earliestMessageTimeStamp, undefined, 'no message, no earliest time');
    assert.match(now.dispatchBehindBytes!, /^\d+$/);
    assert.match(now.remainHowManyDataToFlush!, /^\d+(\.\d)? [KMGTPE]?i?B$/);
    const ratio = Number(now.commitLogDiskRatio);
    assert.ok(ratio >= 0 && ratio <= 1, `commitLogDiskRatio ${now.commitLogDiskRatio}`);
    assert.match(now.commitLogDirCapacity!, /^Total : .+, Free : .+\.$/);
    for (const key of ['msgPutTotalTodayMorning', 'msgPutTotalYesterdayMorning', 'msgGetTotalTodayMorning']) {
      assert.match(now[key]!, /^\d+$/, key);
    }
  });
});
