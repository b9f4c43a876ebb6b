import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Broker, startEmbedded } from '../../src/broker/index.js';
import { createLogger } from '../../src/common/log.js';
import { decodeOffsetMsgId, decodeRecords } from '../../src/message/index.js';
import { NameServer } from '../../src/namesrv/index.js';
import { createRequest, RequestCode, ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { headerRequest, pullRequest, sendV2, waitFor } from '../../test-support/broker-fixtures.js';

const TOPIC = 'DoomedTopic';
const KEEP = 'KeptTopic';
const silent = () => createLogger('test', 'silent');

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'tsmq-delete-topic-'));
}

test('DELETE_TOPIC_IN_BROKER removes config, messages and offsets; nothing comes back after a restart', async () => {
  const dataDir = await tempDir();
  const client = new RemotingClient();
  const invoke = (addr: string, code: number, fields: Record<string, string | number>) =>
    client.invoke(addr, headerRequest(code, fields));
  try {
    let mq = await startEmbedded({ dataDir });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      for (const topic of [TOPIC, KEEP]) {
        const res = await client.invoke(
          mq.brokerAddr,
          sendV2({ topic, queueId: 0, keys: `key-${topic}`, body: Buffer.from(`${topic}-${i}`) }),
        );
        assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
        if (topic === TOPIC) ids.push(res.extFields!.msgId!);
      }
    }
    for (const [group, topic, offset] of [
      ['G1', TOPIC, 3],
      ['G2', TOPIC, 5],
      ['G1', KEEP, 2],
    ] as const) {
      const res = await invoke(mq.brokerAddr, RequestCode.UPDATE_CONSUMER_OFFSET, {
        consumerGroup: group,
        topic,
        queueId: 0,
        commitOffset: offset,
      });
      assert.equal(res.code, ResponseCode.SUCCESS);
    }
    await mq.broker.store.waitDispatched();
    await mq.broker.registerNow();
    const route = await invoke(mq.namesrvAddr, RequestCode.GET_ROUTEINFO_BY_TOPIC, { topic: TOPIC });
    assert.equal(route.code, ResponseCode.SUCCESS, 'the topic is routed before the deletion');

    const del = await invoke(mq.brokerAddr, RequestCode.DELETE_TOPIC_IN_BROKER, { topic: TOPIC });
    assert.equal(del.code, ResponseCode.SUCCESS, del.remark);

    const pull = await client.invoke(
      mq.brokerAddr,
      pullRequest({ topic: TOPIC, queueId: 0, queueOffset: 0 }),
    );
    assert.equal(pull.code, ResponseCode.TOPIC_NOT_EXIST);
    const cfg = await invoke(mq.brokerAddr, RequestCode.GET_TOPIC_CONFIG, { topic: TOPIC });
    assert.equal(cfg.code, ResponseCode.TOPIC_NOT_EXIST);
    const max = await invoke(mq.brokerAddr, RequestCode.GET_MAX_OFFSET, { topic: TOPIC, queueId: 0 });
    assert.equal(max.extFields!.offset, '0');
    const offsets = await invoke(mq.brokerAddr, RequestCode.GET_ALL_CONSUMER_OFFSET, {});
    assert.deepEqual(JSON.parse(offsets.body!.toString()).offsetTable, { [`${KEEP}@G1`]: { 0: 2 } });
    // The deleted topic's messages are gone from queries by key and by id; the other topic's stay.
    const byKey = await invoke(mq.brokerAddr, RequestCode.QUERY_MESSAGE, {
      topic: TOPIC,
      key: `key-${TOPIC}`,
      maxNum: 32,
      beginTimestamp: 0,
      endTimestamp: Number.MAX_SAFE_INTEGER,
    });
    assert.equal(byKey.code, ResponseCode.QUERY_NOT_FOUND);
    const byId = await invoke(mq.brokerAddr, RequestCode.VIEW_MESSAGE_BY_ID, {
      offset: decodeOffsetMsgId(ids[0]!).physicalOffset,
    });
    assert.equal(byId.code, ResponseCode.SYSTEM_ERROR);
    assert.match(byId.remark!, /was deleted/);
    const kept = await client.invoke(mq.brokerAddr, pullRequest({ topic: KEEP, queueId: 0, queueOffset: 0 }));
    assert.equal(decodeRecords(kept.body!).length, 5);

    // The name servers drop the route when told (mqadmin sends 216 next); re-registering does not restore it.
    const nsDel = await client.invoke(
      mq.namesrvAddr,
      createRequest(RequestCode.DELETE_TOPIC_IN_NAMESRV, { topic: TOPIC }),
    );
    assert.equal(nsDel.code, ResponseCode.SUCCESS);
    await mq.broker.registerNow();
    const gone = await invoke(mq.namesrvAddr, RequestCode.GET_ROUTEINFO_BY_TOPIC, { topic: TOPIC });
    assert.equal(gone.code, ResponseCode.TOPIC_NOT_EXIST);

    await mq.close();
    mq = await startEmbedded({ dataDir });
    try {
      const all = await invoke(mq.brokerAddr, RequestCode.GET_ALL_TOPIC_CONFIG, {});
      const topics = Object.keys(JSON.parse(all.body!.toString()).topicConfigTable);
      assert.ok(!topics.includes(TOPIC), 'the topic config stays deleted');
      assert.ok(topics.includes(KEEP));
      const after = await client.invoke(
        mq.brokerAddr,
        pullRequest({ topic: TOPIC, queueId: 0, queueOffset: 0 }),
      );
      assert.equal(after.code, ResponseCode.TOPIC_NOT_EXIST);
      const offsetsAfter = await invoke(mq.brokerAddr, RequestCode.GET_ALL_CONSUMER_OFFSET, {});
      assert.deepEqual(JSON.parse(offsetsAfter.body!.toString()).offsetTable, { [`${KEEP}@G1`]: { 0: 2 } });
      const routeAfter = await invoke(mq.namesrvAddr, RequestCode.GET_ROUTEINFO_BY_TOPIC, { topic: TOPIC });
      assert.equal(routeAfter.code, ResponseCode.TOPIC_NOT_EXIST);

      // Sending again starts a new life of the topic at offset 0, without the old messages.
      const again = await client.invoke(
        mq.brokerAddr,
        sendV2({ topic: TOPIC, queueId: 0, body: Buffer.from('reborn') }),
      );
      assert.equal(again.code, ResponseCode.SUCCESS, again.remark);
      assert.equal(again.extFields!.queueOffset, '0');
      await mq.broker.store.waitDispatched();
      const reborn = await client.invoke(
        mq.brokerAddr,
        pullRequest({ topic: TOPIC, queueId: 0, queueOffset: 0 }),
      );
      assert.deepEqual(
        decodeRecords(reborn.body!).map((r) => r.body.toString()),
        ['reborn'],
      );
    } finally {
      await mq.close();
    }
  } finally {
    client.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
});

test('DELETE_TOPIC_IN_BROKER refuses system topics and bad headers, and is idempotent', async () => {
  const mq = await startEmbedded();
  const client = new RemotingClient();
  try {
    const del = (fields: Record<string, string>) =>
      client.invoke(mq.brokerAddr, headerRequest(RequestCode.DELETE_TOPIC_IN_BROKER, fields));
    for (const topic of [
      'TBW102',
      'SELF_TEST_TOPIC',
      'SCHEDULE_TOPIC_XXXX',
      'rmq_sys_wheel_timer',
      'DefaultCluster',
      'broker-a',
    ]) {
      const res = await del({ topic });
      assert.equal(res.code, ResponseCode.SYSTEM_ERROR, topic);
      assert.match(res.remark!, /conflict with system topic/);
    }
    assert.ok(mq.broker.topics.get('TBW102'), 'TBW102 is still there');
    assert.ok(mq.broker.topics.get('DefaultCluster'));
    const missing = await del({});
    assert.equal(missing.code, ResponseCode.SYSTEM_ERROR);
    assert.match(missing.remark!, /<topic> is null/);
    const invalid = await del({ topic: 'no spaces allowed' });
    assert.equal(invalid.code, ResponseCode.SYSTEM_ERROR);
    assert.equal((await del({ topic: 'NeverExisted' })).code, ResponseCode.SUCCESS);
    // The broker keeps serving.
    const sent = await client.invoke(
      mq.brokerAddr,
      sendV2({ topic: 'StillFine', queueId: 0, body: Buffer.from('x') }),
    );
    assert.equal(sent.code, ResponseCode.SUCCESS);
  } finally {
    client.close();
    await mq.close();
  }
});

test('with deleteTopicWithBrokerRegistration on the name server, the broker-side delete alone drops the route', async () => {
  const dataDir = await tempDir();
  const nameServer = new NameServer({
    host: '127.0.0.1',
    port: 0,
    deleteTopicWithBrokerRegistration: true,
    logger: silent(),
  });
  const ns = await nameServer.start();
  const namesrvAddr = `127.0.0.1:${ns.port}`;
  const broker = new Broker(
    { listenHost: '127.0.0.1', listenPort: 0, storePathRootDir: path.join(dataDir, 'store'), namesrvAddr },
    { logger: silent() },
  );
  const client = new RemotingClient();
  try {
    await broker.start();
    const sent = await client.invoke(
      broker.address,
      sendV2({ topic: TOPIC, queueId: 0, body: Buffer.from('x') }),
    );
    assert.equal(sent.code, ResponseCode.SUCCESS);
    const routeCode = async () =>
      (await client.invoke(namesrvAddr, headerRequest(RequestCode.GET_ROUTEINFO_BY_TOPIC, { topic: TOPIC })))
        .code;
    await waitFor(async () => (await routeCode()) === ResponseCode.SUCCESS, 5_000, 'the route to appear');
    const del = await client.invoke(
      broker.address,
      headerRequest(RequestCode.DELETE_TOPIC_IN_BROKER, { topic: TOPIC }),
    );
    assert.equal(del.code, ResponseCode.SUCCESS);
    await waitFor(
      async () => (await routeCode()) === ResponseCode.TOPIC_NOT_EXIST,
      5_000,
      'the route to drop',
    );
  } finally {
    client.close();
    await broker.close();
    await nameServer.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
});
