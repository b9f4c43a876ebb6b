import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { type Embedded, parseBrokerConf, startEmbedded } from '../../src/broker/index.js';
import {
  createRequest,
  decodeSubscriptionGroupConfig,
  decodeSubscriptionGroupWrapper,
  RequestCode,
  ResponseCode,
  SUBSCRIPTION_GROUP_DEFAULTS,
  subscriptionGroupConfig,
} from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { consumerHeartbeat, headerRequest, pullRequest, sendV2 } from '../../test-support/broker-fixtures.js';

const TOPIC = 'GroupTopic';

function createGroupRequest(body: string | object) {
  return createRequest(
    RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
    {},
    Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
  );
}

async function withBroker<T>(
  opts: { dataDir?: string; autoCreateSubscriptionGroup?: boolean },
  fn: (mq: Embedded, client: RemotingClient) => Promise<T>,
): Promise<T> {
  const mq = await startEmbedded({
    ...(opts.dataDir !== undefined && { dataDir: opts.dataDir }),
    broker: { autoCreateSubscriptionGroup: opts.autoCreateSubscriptionGroup ?? true },
  });
  const client = new RemotingClient();
  try {
    return await fn(mq, client);
  } finally {
    client.close();
    await mq.close();
  }
}

const getGroup = (mq: Embedded, client: RemotingClient, group: string) =>
  client.invoke(mq.brokerAddr, headerRequest(RequestCode.GET_SUBSCRIPTIONGROUP_CONFIG, { group }));

describe('subscription groups', () => {
  test('create, read, list, pull refused while consumeEnable=false, delete with and without offsets; persisted across a restart', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsmq-groups-'));
    try {
      await withBroker({ dataDir }, async (mq, client) => {
        const created = await client.invoke(
          mq.brokerAddr,
          createGroupRequest({ groupName: 'G_OFF', consumeEnable: false, retryQueueNums: 2 }),
        );
        assert.equal(created.code, ResponseCode.SUCCESS, created.remark);
        const got = await getGroup(mq, client, 'G_OFF');
        assert.equal(got.code, ResponseCode.SUCCESS);
        assert.deepEqual(
          decodeSubscriptionGroupConfig(got.body),
          subscriptionGroupConfig('G_OFF', { consumeEnable: false, retryQueueNums: 2 }),
        );
        assert.deepEqual(JSON.parse(got.body!.toString()), {
          groupName: 'G_OFF',
          ...SUBSCRIPTION_GROUP_DEFAULTS,
          consumeEnable: false,
          retryQueueNums: 2,
        });

        await client.invoke(mq.brokerAddr, sendV2({ topic: TOPIC, queueId: 0, body: Buffer.from('x') }));
        const refused = await client.invoke(
          mq.brokerAddr,
          pullRequest({ topic: TOPIC, queueId: 0, queueOffset: 0, consumerGroup: 'G_OFF' }),
        );
        assert.equal(refused.code, ResponseCode.NO_PERMISSION);
        assert.match(refused.remark!, /subscription group no permission, G_OFF/);

        // A heartbeat makes the retry topic with the group's retryQueueNums.
        const hb = await client.invoke(
          mq.brokerAddr,
          consumerHeartbeat({ clientId: 'c1', group: 'G_OFF', topic: TOPIC }),
        );
        assert.equal(hb.code, ResponseCode.SUCCESS);
        assert.equal(mq.broker.topics.get('%RETRY%G_OFF')?.readQueueNums, 2);

        const all = await client.invoke(
          mq.brokerAddr,
          headerRequest(RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG, {}),
        );
        const wrapper = decodeSubscriptionGroupWrapper(all.body);
        assert.equal(wrapper.subscriptionGroupTable.G_OFF?.consumeEnable, false);
        for (const builtIn of ['TOOLS_CONSUMER', 'FILTERSRV_CONSUMER', 'SELF_TEST_C_GROUP']) {
          assert.ok(wrapper.subscriptionGroupTable[builtIn], builtIn);
        }
        assert.ok(wrapper.dataVersion.counter > 0);

        // Two groups with offsets; delete one keeping them, the other cleaning them.
        for (const group of ['G_KEEP', 'G_CLEAN']) {
          assert.equal(
            (await client.invoke(mq.brokerAddr, createGroupRequest({ groupName: group }))).code,
            ResponseCode.SUCCESS,
          );
          await client.invoke(
            mq.brokerAddr,
            headerRequest(RequestCode.UPDATE_CONSUMER_OFFSET, {
              consumerGroup: group,
              topic: TOPIC,
              queueId: 0,
              commitOffset: 1,
            }),
          );
        }
        const delKeep = await client.invoke(
          mq.brokerAddr,
          headerRequest(RequestCode.DELETE_SUBSCRIPTIONGROUP, { groupName: 'G_KEEP' }),
        );
        assert.equal(delKeep.code, ResponseCode.SUCCESS);
        const delClean = await client.invoke(
          mq.brokerAddr,
          headerRequest(RequestCode.DELETE_SUBSCRIPTIONGROUP, { groupName: 'G_CLEAN', cleanOffset: 'true' }),
        );
        assert.equal(delClean.code, ResponseCode.SUCCESS);
        assert.equal((await getGroup(mq, client, 'G_KEEP')).code, ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST);
        assert.equal((await getGroup(mq, client, 'G_CLEAN')).code, ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST);
        assert.equal(mq.broker.offsets.query('G_KEEP', TOPIC, 0), 1);
        assert.equal(mq.broker.offsets.query('G_CLEAN', TOPIC, 0), undefined);
        // Deleting a group that does not exist is fine too.
        const again = await client.invoke(
          mq.brokerAddr,
          headerRequest(RequestCode.DELETE_SUBSCRIPTIONGROUP, { groupName: 'G_CLEAN' }),
        );
        assert.equal(again.code, ResponseCode.SUCCESS);
      });

      const file = JSON.parse(
        await fs.readFile(path.join(dataDir, 'store', 'config', 'subscriptionGroup.json'), 'utf8'),
      );
      assert.deepEqual(Object.keys(file).sort(), ['dataVersion', 'subscriptionGroupTable']);
      assert.equal(file.subscriptionGroupTable.G_OFF.consumeEnable, false);
      assert.equal(file.subscriptionGroupTable.G_KEEP, undefined);

      await withBroker({ dataDir }, async (mq, client) => {
        const got = await getGroup(mq, client, 'G_OFF');
        assert.equal(got.code, ResponseCode.SUCCESS);
        assert.equal(decodeSubscriptionGroupConfig(got.body).retryQueueNums, 2);
        const refused = await client.invoke(
          mq.brokerAddr,
          pullRequest({ topic: TOPIC, queueId: 0, queueOffset: 0, consumerGroup: 'G_OFF' }),
        );
        assert.equal(refused.code, ResponseCode.NO_PERMISSION, 'consumeEnable=false survives the restart');
        assert.equal((await getGroup(mq, client, 'G_KEEP')).code, ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST);
        // Re-enabled, the group pulls.
        await client.invoke(mq.brokerAddr, createGroupRequest({ groupName: 'G_OFF', consumeEnable: true }));
        const pulled = await client.invoke(
          mq.brokerAddr,
          pullRequest({ topic: TOPIC, queueId: 0, queueOffset: 0, consumerGroup: 'G_OFF' }),
        );
        assert.equal(pulled.code, ResponseCode.SUCCESS, pulled.remark);
      });
    } finally {
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });

  test('bad input: missing header fields, malformed or invalid bodies; the broker keeps serving', async () => {
    await withBroker({}, async (mq, client) => {
      for (const body of [
        '{"groupName":',
        'null',
        '[]',
        '{"consumeEnable":true}',
        '{"groupName":"has space"}',
        '{"groupName":"G","retryQueueNums":"two"}',
      ]) {
        const res = await client.invoke(mq.brokerAddr, createGroupRequest(body));
        assert.equal(res.code, ResponseCode.SYSTEM_ERROR, body);
        assert.match(res.remark!, /invalid subscription group config/);
      }
      const noBody = await client.invoke(
        mq.brokerAddr,
        createRequest(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, {}),
      );
      assert.equal(noBody.code, ResponseCode.SYSTEM_ERROR);
      const noName = await client.invoke(
        mq.brokerAddr,
        headerRequest(RequestCode.DELETE_SUBSCRIPTIONGROUP, {}),
      );
      assert.equal(noName.code, ResponseCode.SYSTEM_ERROR);
      assert.match(noName.remark!, /<groupName> is null/);
      const noGroup = await client.invoke(
        mq.brokerAddr,
        headerRequest(RequestCode.GET_SUBSCRIPTIONGROUP_CONFIG, {}),
      );
      assert.equal(noGroup.code, ResponseCode.SYSTEM_ERROR);
      assert.match(noGroup.remark!, /<group> is null/);
      const unknown = await getGroup(mq, client, 'NOBODY');
      assert.equal(unknown.code, ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST);
      assert.equal(
        (await getGroup(mq, client, 'NOBODY')).code,
        ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST,
        'reading never creates',
      );
      const ok = await client.invoke(mq.brokerAddr, createGroupRequest({ groupName: 'G_FINE' }));
      assert.equal(ok.code, ResponseCode.SUCCESS);
    });
  });

  test('autoCreateSubscriptionGroup=true: a heartbeat or a pull creates the group', async () => {
    await withBroker({}, async (mq, client) => {
      await client.invoke(mq.brokerAddr, consumerHeartbeat({ clientId: 'c1', group: 'G_HB', topic: TOPIC }));
      assert.equal((await getGroup(mq, client, 'G_HB')).code, ResponseCode.SUCCESS);
      assert.ok(mq.broker.topics.get('%RETRY%G_HB'));
      await client.invoke(mq.brokerAddr, sendV2({ topic: TOPIC, queueId: 0, body: Buffer.from('x') }));
      const pulled = await client.invoke(
        mq.brokerAddr,
        pullRequest({ topic: TOPIC, queueId: 0, queueOffset: 0, consumerGroup: 'G_PULL' }),
      );
      assert.notEqual(pulled.code, ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST);
      assert.equal((await getGroup(mq, client, 'G_PULL')).code, ResponseCode.SUCCESS);
      // A name RocketMQ would refuse is not created (as RocketMQ 5 does), and the answer says why.
      const bad = await client.invoke(
        mq.brokerAddr,
        pullRequest({ topic: TOPIC, queueId: 0, queueOffset: 0, consumerGroup: 'bad@group' }),
      );
      assert.equal(bad.code, ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST);
      assert.match(bad.remark!, /contains characters outside/);
    });
  });

  test('a subscriptionGroup.json that does not hold configs stops the broker from starting', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsmq-groups-bad-'));
    try {
      const file = path.join(dataDir, 'store', 'config', 'subscriptionGroup.json');
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, '{"subscriptionGroupTable":{"G":{"groupName":"G","consumeEnable":"no"}}}');
      await assert.rejects(startEmbedded({ dataDir }), /subscriptionGroup\.json is invalid: .*consumeEnable/);
      await fs.writeFile(file, '{"subscriptionGroupTable":');
      await assert.rejects(startEmbedded({ dataDir }), /subscriptionGroup\.json is invalid/);
    } finally {
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });

  test('autoCreateSubscriptionGroup=false: unknown groups may not pull until created; built-in and CID_RMQ_SYS_ groups may', async () => {
    await withBroker({ autoCreateSubscriptionGroup: false }, async (mq, client) => {
      await client.invoke(mq.brokerAddr, sendV2({ topic: TOPIC, queueId: 0, body: Buffer.from('x') }));
      const pull = (consumerGroup: string) =>
        client.invoke(
          mq.brokerAddr,
          pullRequest({ topic: TOPIC, queueId: 0, queueOffset: 0, consumerGroup }),
        );
      const refused = await pull('G_UNKNOWN');
      assert.equal(refused.code, ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST);
      assert.match(refused.remark!, /subscription group \[G_UNKNOWN\] does not exist/);
      // The heartbeat registers the client but creates neither the group nor its retry topic.
      const hb = await client.invoke(
        mq.brokerAddr,
        consumerHeartbeat({ clientId: 'c1', group: 'G_UNKNOWN', topic: TOPIC }),
      );
      assert.equal(hb.code, ResponseCode.SUCCESS);
      assert.equal(mq.broker.topics.get('%RETRY%G_UNKNOWN'), undefined);
      assert.equal((await getGroup(mq, client, 'G_UNKNOWN')).code, ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST);
      assert.equal((await pull('TOOLS_CONSUMER')).code, ResponseCode.SUCCESS);
      assert.equal((await pull('CID_RMQ_SYS_TRANS')).code, ResponseCode.SUCCESS);

      await client.invoke(mq.brokerAddr, createGroupRequest({ groupName: 'G_UNKNOWN' }));
      assert.equal((await pull('G_UNKNOWN')).code, ResponseCode.SUCCESS);
    });
  });

  test('consumeBroadcastEnable=false refuses a BROADCASTING group', async () => {
    await withBroker({}, async (mq, client) => {
      await client.invoke(mq.brokerAddr, sendV2({ topic: TOPIC, queueId: 0, body: Buffer.from('x') }));
      await client.invoke(
        mq.brokerAddr,
        createGroupRequest({ groupName: 'G_BC', consumeBroadcastEnable: false }),
      );
      await client.invoke(
        mq.brokerAddr,
        consumerHeartbeat({ clientId: 'c1', group: 'G_BC', topic: TOPIC, messageModel: 'BROADCASTING' }),
      );
      const res = await client.invoke(
        mq.brokerAddr,
        pullRequest({ topic: TOPIC, queueId: 0, queueOffset: 0, consumerGroup: 'G_BC' }),
      );
      assert.equal(res.code, ResponseCode.NO_PERMISSION);
      assert.match(res.remark!, /can not consume by broadcast way/);
    });
  });

  test('notifyConsumerIdsChangedEnable=false: members are not told of a newcomer', async () => {
    await withBroker({}, async (mq, client) => {
      await client.invoke(
        mq.brokerAddr,
        createGroupRequest({ groupName: 'G_QUIET', notifyConsumerIdsChangedEnable: false }),
      );
      for (const [group, expectNotified] of [
        ['G_QUIET', false],
        ['G_LOUD', true],
      ] as const) {
        const first = new RemotingClient();
        const second = new RemotingClient();
        const notified: string[] = [];
        first.registerProcessor(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, (req) => {
          notified.push(req.extFields?.consumerGroup ?? '?');
          return undefined;
        });
        try {
          await first.invoke(mq.brokerAddr, consumerHeartbeat({ clientId: 'first', group, topic: TOPIC }));
          await second.invoke(mq.brokerAddr, consumerHeartbeat({ clientId: 'second', group, topic: TOPIC }));
          // The broker writes a notice to `first` while it handles `second`'s heartbeat, before
          // answering it; a round trip on `first`'s connection afterwards comes back behind it.
          await first.invoke(mq.brokerAddr, consumerHeartbeat({ clientId: 'first', group, topic: TOPIC }));
          // Told of its own arrival and of the second member's (or of neither).
          assert.deepEqual(notified, expectNotified ? [group, group] : [], group);
        } finally {
          first.close();
          second.close();
        }
      }
    });
  });

  test('broker.conf: autoCreateSubscriptionGroup is a boolean key', () => {
    assert.deepEqual(parseBrokerConf('autoCreateSubscriptionGroup=false').config, {
      autoCreateSubscriptionGroup: false,
    });
    assert.throws(() => parseBrokerConf('autoCreateSubscriptionGroup=maybe'), /line 1: .*true or false/);
  });
});
