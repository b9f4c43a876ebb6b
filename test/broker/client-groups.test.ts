import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Embedded, startEmbedded } from '../../src/broker/index.js';
import { ManualClock } from '../../src/common/clock.js';
import { javaStringHashCode } from '../../src/common/java-hash.js';
import { decodeProperties, decodeRecords } from '../../src/message/index.js';
import { createRequest, type RemotingCommand, RequestCode, ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { headerRequest, pullRequest, sendV2, waitFor } from '../../test-support/broker-fixtures.js';

/** A consumer client that records the NOTIFY_CONSUMER_IDS_CHANGED the broker pushes to it. */
class Consumer {
  readonly remoting = new RemotingClient();
  readonly notified: string[] = [];
  constructor(readonly clientId: string) {
    this.remoting.registerProcessor(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, (req) => {
      this.notified.push(req.extFields?.consumerGroup ?? '?');
      return undefined;
    });
  }
}

function heartbeatRequest(clientId: string, group: string, topic: string, tags = '*'): RemotingCommand {
  const tagList = tags === '*' ? [] : tags.split('||').map((t) => t.trim());
  const body = {
    clientID: clientId,
    producerDataSet: [{ groupName: 'CLIENT_INNER_PRODUCER' }],
    consumerDataSet: [
      {
        groupName: group,
        consumeType: 'CONSUME_PASSIVELY',
        messageModel: 'CLUSTERING',
        consumeFromWhere: 'CONSUME_FROM_LAST_OFFSET',
        subscriptionDataSet: [
          {
            classFilterMode: false,
            topic,
            subString: tags,
            tagsSet: tagList,
            codeSet: tagList.map(javaStringHashCode),
            subVersion: Date.now(),
            expressionType: 'TAG',
          },
        ],
        unitMode: false,
      },
    ],
  };
  return createRequest(RequestCode.HEART_BEAT, {}, Buffer.from(JSON.stringify(body)));
}

describe('broker client groups: heartbeat, unregister, consumer list, notify', () => {
  let mq: Embedded;
  const clock = new ManualClock(Date.now());
  const clients: Consumer[] = [];
  const consumer = (id: string) => {
    const c = new Consumer(id);
    clients.push(c);
    return c;
  };
  const heartbeat = async (c: Consumer, group: string, topic = 'T', tags = '*') => {
    const res = await c.remoting.invoke(mq.brokerAddr, heartbeatRequest(c.clientId, group, topic, tags));
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
  };
  const consumerList = async (group: string) => {
    const c = consumer('lister');
    const res = await c.remoting.invoke(
      mq.brokerAddr,
      headerRequest(RequestCode.GET_CONSUMER_LIST_BY_GROUP, { consumerGroup: group }),
    );
    c.remoting.close();
    return res;
  };
  const ids = async (group: string) => {
    const res = await consumerList(group);
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    return (JSON.parse(res.body!.toString()) as { consumerIdList: string[] }).consumerIdList;
  };

  before(async () => {
    mq = await startEmbedded({ brokerOptions: { clock } });
  });
  after(async () => {
    for (const c of clients) c.remoting.close();
    await mq.close();
  });

  test('two heartbeats list both; the first is notified on join, unregister and disconnect', async () => {
    const a = consumer('10.0.0.1@a');
    const b = consumer('10.0.0.2@b');
    await heartbeat(a, 'g');
    // As in RocketMQ, a joining client is told too: every channel of the changed group is.
    await waitFor(() => a.notified.length === 1, 5_000, 'notify of the joining client itself');
    assert.deepEqual(await ids('g'), ['10.0.0.1@a']);
    await heartbeat(b, 'g');
    await waitFor(() => a.notified.length === 2, 5_000, 'notify on join');
    assert.deepEqual(a.notified, ['g', 'g']);
    assert.deepEqual((await ids('g')).sort(), ['10.0.0.1@a', '10.0.0.2@b']);

    // A repeated heartbeat changes nothing and notifies nobody (checked after the next change).
    await heartbeat(b, 'g');
    assert.deepEqual((await ids('g')).sort(), ['10.0.0.1@a', '10.0.0.2@b']);

    const un = await b.remoting.invoke(
      mq.brokerAddr,
      headerRequest(RequestCode.UNREGISTER_CLIENT, { clientID: b.clientId, consumerGroup: 'g' }),
    );
    assert.equal(un.code, ResponseCode.SUCCESS, un.remark);
    await waitFor(() => a.notified.length === 3, 5_000, 'notify on unregister');
    assert.deepEqual(await ids('g'), ['10.0.0.1@a']);

    await heartbeat(b, 'g');
    await waitFor(() => a.notified.length === 4, 5_000, 'notify on re-join');
    b.remoting.close();
    await waitFor(() => a.notified.length === 5, 5_000, 'notify on disconnect');
    assert.deepEqual(await ids('g'), ['10.0.0.1@a']);
    assert.deepEqual(a.notified, ['g', 'g', 'g', 'g', 'g']);
  });

  test('step(now) expires a client silent for more than 120 s and notifies the rest', async () => {
    const c = consumer('10.0.0.3@c');
    const d = consumer('10.0.0.4@d');
    const t0 = clock.now();
    await heartbeat(c, 'g2');
    clock.advance(60_000);
    await heartbeat(d, 'g2');
    await waitFor(() => d.notified.length === 1, 5_000, 'notify of d joining');
    mq.broker.clients.step(t0 + 120_000);
    assert.deepEqual((await ids('g2')).sort(), ['10.0.0.3@c', '10.0.0.4@d']);
    assert.ok(mq.broker.clients.step(t0 + 120_001) >= 1);
    assert.deepEqual(await ids('g2'), ['10.0.0.4@d']);
    await waitFor(() => d.notified.length === 2, 5_000, 'notify on expiry');
    // The broker closed the expired channel; the client reconnects and joins again.
    const ch = await c.remoting.channel(mq.brokerAddr);
    const res = await ch.invoke(heartbeatRequest(c.clientId, 'g2', 'T'), 3_000);
    assert.equal(res.code, ResponseCode.SUCCESS, 'a new connection heartbeats again');
    await waitFor(() => d.notified.length === 3, 5_000, 'notify on c re-joining');
  });

  test('a pull without the SUBSCRIPTION flag is filtered by the heartbeat subscription', async () => {
    const topic = 'GroupsPullTopic';
    const p = consumer('producer');
    for (let i = 0; i < 6; i++) {
      const res = await p.remoting.invoke(
        mq.brokerAddr,
        sendV2({ topic, queueId: 0, tags: i % 2 === 0 ? 'A' : 'B', body: Buffer.from(`m${i}`) }),
      );
      assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    }
    const maxOffset = async () =>
      Number(
        (
          await p.remoting.invoke(
            mq.brokerAddr,
            headerRequest(RequestCode.GET_MAX_OFFSET, { topic, queueId: 0 }),
          )
        ).extFields!.offset,
      );
    await waitFor(async () => (await maxOffset()) === 6, 5_000, '6 messages dispatched');

    const e = consumer('10.0.0.5@e');
    await heartbeat(e, 'g3', topic, 'B');
    const pull = (group: string) =>
      e.remoting.invoke(
        mq.brokerAddr,
        pullRequest({ topic, queueId: 0, queueOffset: 0, consumerGroup: group, sysFlag: 0 }),
      );
    const filtered = await pull('g3');
    assert.equal(filtered.code, ResponseCode.SUCCESS, filtered.remark);
    const recs = decodeRecords(filtered.body!);
    assert.deepEqual(
      recs.map((r) => r.body.toString()),
      ['m1', 'm3', 'm5'],
    );
    for (const r of recs) assert.equal(decodeProperties(r.properties).get('TAGS'), 'B');

    // A group with no registered subscription still takes every tag.
    const all = await pull('g-unregistered');
    assert.equal(all.code, ResponseCode.SUCCESS, all.remark);
    assert.equal(decodeRecords(all.body!).length, 6);
  });

  test('an unknown group answers SYSTEM_ERROR "no consumer for this group, <group>"', async () => {
    const res = await consumerList('nobody');
    assert.equal(res.code, ResponseCode.SYSTEM_ERROR);
    assert.equal(res.remark, 'no consumer for this group, nobody');
  });

  test("a consumer group's heartbeat creates its %RETRY% topic, routed by the name server", async () => {
    const c = consumer('retry-1');
    await heartbeat(c, 'gRetry', 'T');
    const tc = mq.broker.topics.get('%RETRY%gRetry');
    assert.ok(tc, 'retry topic created');
    assert.equal(tc.writeQueueNums, 1);
    await waitFor(async () => {
      const res = await c.remoting.invoke(
        mq.namesrvAddr,
        headerRequest(RequestCode.GET_ROUTEINFO_BY_TOPIC, { topic: '%RETRY%gRetry' }),
      );
      return res.code === ResponseCode.SUCCESS;
    }, 5000);
  });

  test('a heartbeat body that is not HeartbeatData gets SYSTEM_ERROR', async () => {
    const c = consumer('bad');
    const res = await c.remoting.invoke(
      mq.brokerAddr,
      createRequest(RequestCode.HEART_BEAT, {}, Buffer.from('{"clientID":')),
    );
    assert.equal(res.code, ResponseCode.SYSTEM_ERROR);
  });
});
