import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, afterEach, test } from 'node:test';
import { pino } from 'pino';
import {
  type ClusterInfo,
  encodeBrokerIdentityHeader,
  encodeDataVersion,
  NameServer,
  type TopicList,
  type TopicRouteData,
} from '../../src/namesrv/index.js';
import { createRequest, type RemotingCommand, RequestCode, ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import {
  type FakeBroker,
  jsonOf,
  type RunningNameServer,
  registerRequest,
  routeRequest,
  startNameServer,
  topic,
  unregisterRequest,
} from '../../test-support/namesrv-fixtures.js';
import { waitUntil } from '../../test-support/store-fixtures.js';

const brokerA: FakeBroker = {
  brokerName: 'broker-a',
  brokerAddr: '10.0.0.1:10911',
  topics: [topic('TopicTest', { readQueueNums: 8, writeQueueNums: 8 }), topic('OnlyA')],
};
const brokerB: FakeBroker = {
  brokerName: 'broker-b',
  brokerAddr: '10.0.0.2:10911',
  topics: [topic('TopicTest', { perm: 4 })],
};

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function nameServer(opts: Parameters<typeof startNameServer>[0] = {}): Promise<RunningNameServer> {
  const s = await startNameServer(opts);
  cleanups.push(() => s.ns.close());
  return s;
}

function client(): RemotingClient {
  const c = new RemotingClient();
  cleanups.push(() => c.close());
  return c;
}

async function ok(c: RemotingClient, addr: string, req: RemotingCommand): Promise<RemotingCommand> {
  const res = await c.invoke(addr, req);
  assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
  return res;
}

test('two brokers of one cluster: route (sorted by brokerName), cluster info and topic list', async () => {
  const { addr } = await nameServer();
  const c = client();
  // Register b first: the route must still list a before b, as RocketMQ clients sort them.
  await ok(c, addr, registerRequest(brokerB));
  await ok(c, addr, registerRequest(brokerA));

  const route = jsonOf<TopicRouteData>(await ok(c, addr, routeRequest('TopicTest')));
  assert.deepEqual(route, {
    queueDatas: [
      { brokerName: 'broker-a', readQueueNums: 8, writeQueueNums: 8, perm: 6, topicSysFlag: 0 },
      { brokerName: 'broker-b', readQueueNums: 4, writeQueueNums: 4, perm: 4, topicSysFlag: 0 },
    ],
    brokerDatas: [
      { cluster: 'DefaultCluster', brokerName: 'broker-a', brokerAddrs: { 0: '10.0.0.1:10911' } },
      { cluster: 'DefaultCluster', brokerName: 'broker-b', brokerAddrs: { 0: '10.0.0.2:10911' } },
    ],
    filterServerTable: {},
  });
  const onlyA = jsonOf<TopicRouteData>(await ok(c, addr, routeRequest('OnlyA')));
  assert.deepEqual(
    onlyA.brokerDatas.map((b) => b.brokerName),
    ['broker-a'],
  );

  const info = jsonOf<ClusterInfo>(await ok(c, addr, createRequest(RequestCode.GET_BROKER_CLUSTER_INFO)));
  assert.deepEqual(info.clusterAddrTable, { DefaultCluster: ['broker-a', 'broker-b'] });
  assert.deepEqual(info.brokerAddrTable['broker-b'], {
    cluster: 'DefaultCluster',
    brokerName: 'broker-b',
    brokerAddrs: { 0: '10.0.0.2:10911' },
  });

  const list = jsonOf<TopicList>(
    await ok(c, addr, createRequest(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER)),
  );
  assert.deepEqual(list, { topicList: ['OnlyA', 'TopicTest'] });
});

test('route bodies are standard JSON with quoted brokerId keys', async () => {
  const { addr } = await nameServer();
  const c = client();
  await ok(c, addr, registerRequest(brokerA));
  const text = (await ok(c, addr, routeRequest('TopicTest'))).body!.toString();
  assert.match(text, /"brokerAddrs":\{"0":"10\.0\.0\.1:10911"\}/);
});

test('unknown topic → TOPIC_NOT_EXIST with RocketMQ remark', async () => {
  const { addr } = await nameServer();
  const c = client();
  await ok(c, addr, registerRequest(brokerA));
  const res = await c.invoke(addr, routeRequest('NoSuchTopic'));
  assert.equal(res.code, ResponseCode.TOPIC_NOT_EXIST);
  assert.equal(res.remark, 'No topic route info in name server for the topic: NoSuchTopic');
  assert.equal(res.body, undefined);
});

test('re-registration with the same data version refreshes liveness only', async () => {
  const { ns, addr, clock } = await nameServer({ brokerExpiryMs: 120_000 });
  const c = client();
  await ok(c, addr, registerRequest(brokerA));
  clock.advance(100_000);
  // Same data version, one more topic: only a heartbeat as far as the routes go.
  await ok(c, addr, registerRequest({ ...brokerA, topics: [...brokerA.topics!, topic('Added')] }));
  assert.equal((await c.invoke(addr, routeRequest('Added'))).code, ResponseCode.TOPIC_NOT_EXIST);
  clock.advance(100_000); // 200 s after the first registration, 100 s after the second
  assert.deepEqual(ns.scanNotActiveBrokers(), []);
  await ok(c, addr, routeRequest('TopicTest'));

  await ok(
    c,
    addr,
    registerRequest({ ...brokerA, topics: [topic('Added')], dataVersion: { timestamp: 1, counter: 2 } }),
  );
  await ok(c, addr, routeRequest('Added'));
});

test('a broker expires after brokerExpiryMs via the scan step, and not before', async () => {
  const { ns, addr, clock } = await nameServer({ brokerExpiryMs: 30_000 });
  const c = client();
  await ok(c, addr, registerRequest(brokerA));
  await ok(c, addr, registerRequest(brokerB));
  clock.advance(20_000);
  await ok(c, addr, registerRequest(brokerB)); // b keeps registering, a has gone quiet

  clock.advance(10_000); // a: exactly 30 s
  assert.deepEqual(ns.scanNotActiveBrokers(), []);
  await ok(c, addr, routeRequest('OnlyA'));

  clock.advance(1);
  assert.deepEqual(
    ns.scanNotActiveBrokers().map((b) => b.brokerAddr),
    ['10.0.0.1:10911'],
  );
  assert.equal((await c.invoke(addr, routeRequest('OnlyA'))).code, ResponseCode.TOPIC_NOT_EXIST);
  const route = jsonOf<TopicRouteData>(await ok(c, addr, routeRequest('TopicTest')));
  assert.deepEqual(
    route.brokerDatas.map((b) => b.brokerName),
    ['broker-b'],
  );
});

test("an expired broker's connection is closed by the scan step", async () => {
  const { ns, addr, clock } = await nameServer({ brokerExpiryMs: 1_000 });
  const quiet = client();
  const chatty = client();
  await ok(quiet, addr, registerRequest(brokerA));
  await ok(chatty, addr, registerRequest(brokerB));
  const quietChannel = await quiet.channel(addr);
  clock.advance(1_001);
  await ok(chatty, addr, registerRequest(brokerB));
  ns.scanNotActiveBrokers();
  await waitUntil(() => quietChannel.closed, 2_000, 'the expired broker connection to close');
  const chattyChannel = await chatty.channel(addr);
  assert.equal(chattyChannel.closed, false);
  await ok(chatty, addr, routeRequest('TopicTest'));
});

test('UNREGISTER_BROKER removes the broker at once', async () => {
  const { addr } = await nameServer();
  const c = client();
  await ok(c, addr, registerRequest(brokerA));
  await ok(c, addr, registerRequest(brokerB));
  await ok(c, addr, unregisterRequest(brokerA));
  assert.equal((await c.invoke(addr, routeRequest('OnlyA'))).code, ResponseCode.TOPIC_NOT_EXIST);
  const info = jsonOf<ClusterInfo>(await ok(c, addr, createRequest(RequestCode.GET_BROKER_CLUSTER_INFO)));
  assert.deepEqual(info.clusterAddrTable, { DefaultCluster: ['broker-b'] });
  assert.deepEqual(Object.keys(info.brokerAddrTable), ['broker-b']);
});

test("a broker's connection closing removes it at once", async () => {
  const { ns, addr } = await nameServer();
  const a = new RemotingClient();
  const other = client();
  await ok(a, addr, registerRequest(brokerA));
  await ok(other, addr, registerRequest(brokerB));
  a.close();
  await waitUntil(() => ns.routes.liveBroker(brokerA.brokerAddr) === undefined, 2_000, 'broker-a removal');
  assert.equal((await other.invoke(addr, routeRequest('OnlyA'))).code, ResponseCode.TOPIC_NOT_EXIST);
  assert.ok(ns.routes.liveBroker(brokerB.brokerAddr));
});

test('master and slave (brokerId 0 and 1) of one brokerName appear together in brokerAddrs', async () => {
  const { addr } = await nameServer();
  const master = client();
  const slave = client();
  await ok(master, addr, registerRequest(brokerA));
  const res = await ok(
    slave,
    addr,
    registerRequest({
      ...brokerA,
      brokerId: 1,
      brokerAddr: '10.0.0.3:10911',
      haServerAddr: '10.0.0.3:10912',
    }),
  );
  // The slave learns where to replicate from.
  assert.equal(res.extFields?.masterAddr, '10.0.0.1:10911');
  assert.equal(res.extFields?.haServerAddr, '10.0.0.1:10912');
  const route = jsonOf<TopicRouteData>(await ok(master, addr, routeRequest('TopicTest')));
  assert.deepEqual(route.brokerDatas, [
    {
      cluster: 'DefaultCluster',
      brokerName: 'broker-a',
      brokerAddrs: { 0: '10.0.0.1:10911', 1: '10.0.0.3:10911' },
    },
  ]);
  // A master's response names no master.
  const again = await ok(master, addr, registerRequest(brokerA));
  assert.equal(again.extFields?.masterAddr, undefined);
});

test('two NameServer instances are independent', async () => {
  const one = await nameServer();
  const two = await nameServer();
  assert.notEqual(one.addr, two.addr);
  const c = client();
  await ok(c, one.addr, registerRequest(brokerA));
  await ok(c, two.addr, registerRequest(brokerB));
  assert.deepEqual(
    jsonOf<TopicList>(await ok(c, one.addr, createRequest(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER))),
    {
      topicList: ['OnlyA', 'TopicTest'],
    },
  );
  assert.deepEqual(
    jsonOf<TopicList>(await ok(c, two.addr, createRequest(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER))),
    {
      topicList: ['TopicTest'],
    },
  );
  await one.ns.close();
  await ok(c, two.addr, routeRequest('TopicTest'));
});

test('a register body with unquoted integer keys (fastjson) parses', async () => {
  const { addr } = await nameServer();
  const c = client();
  const body = Buffer.from(
    '{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":1,"timestamp":1},' +
      '"topicConfigTable":{"Static":{"order":false,"perm":6,"readQueueNums":2,"topicFilterType":"SINGLE_TAG",' +
      '"topicName":"Static","topicSysFlag":0,"writeQueueNums":2}},' +
      '"topicQueueMappingInfoMap":{"Static":{"bname":"broker-a","currIdMap":{0:0,1:1},"topic":"Static"}}}}',
  );
  await ok(c, addr, registerRequest(brokerA, body));
  const route = jsonOf<TopicRouteData>(await ok(c, addr, routeRequest('Static')));
  assert.equal(route.queueDatas[0]?.writeQueueNums, 2);
});

test('a compressed register body registers the same routes', async () => {
  const { addr } = await nameServer();
  const c = client();
  await ok(c, addr, registerRequest({ ...brokerA, compressed: true }));
  const route = jsonOf<TopicRouteData>(await ok(c, addr, routeRequest('TopicTest')));
  assert.equal(route.queueDatas[0]?.readQueueNums, 8);
});

test('a malformed register body gets SYSTEM_ERROR, not a crash; the server keeps serving', async () => {
  const { addr } = await nameServer();
  const c = client();
  for (const [body, compressed] of [
    [Buffer.from('{"topicConfigSerializeWrapper":'), false],
    [Buffer.from('\u0000\u0001binary'), false],
    [Buffer.from('not zlib at all'), true],
  ] as const) {
    const res = await c.invoke(addr, registerRequest({ ...brokerA, compressed }, body));
    assert.equal(res.code, ResponseCode.SYSTEM_ERROR);
    assert.match(res.remark ?? '', /^Failed to decode RegisterBrokerBody: /);
  }
  const crc = registerRequest(brokerA);
  crc.extFields!.bodyCrc32 = '12345';
  const bad = await c.invoke(addr, crc);
  assert.equal(bad.code, ResponseCode.SYSTEM_ERROR);
  assert.equal(bad.remark, 'crc32 not match');
  const noName = registerRequest(brokerA);
  delete noName.extFields!.brokerName;
  const missing = await c.invoke(addr, noName);
  assert.equal(missing.code, ResponseCode.SYSTEM_ERROR);
  assert.equal(missing.remark, 'the custom field <brokerName> is null');
  const noTopic = await c.invoke(addr, createRequest(RequestCode.GET_ROUTEINFO_BY_TOPIC, {}));
  assert.equal(noTopic.code, ResponseCode.SYSTEM_ERROR);

  // Nothing was registered, and the same connection still works.
  assert.equal((await c.invoke(addr, routeRequest('TopicTest'))).code, ResponseCode.TOPIC_NOT_EXIST);
  await ok(c, addr, registerRequest(brokerA));
  await ok(c, addr, routeRequest('TopicTest'));
});

test('DELETE_TOPIC_IN_NAMESRV deletes a topic everywhere or on one cluster', async () => {
  const { addr } = await nameServer();
  const c = client();
  await ok(c, addr, registerRequest(brokerA));
  await ok(c, addr, registerRequest({ ...brokerB, cluster: 'OtherCluster' }));
  await ok(
    c,
    addr,
    createRequest(RequestCode.DELETE_TOPIC_IN_NAMESRV, { topic: 'TopicTest', clusterName: 'OtherCluster' }),
  );
  const route = jsonOf<TopicRouteData>(await ok(c, addr, routeRequest('TopicTest')));
  assert.deepEqual(
    route.queueDatas.map((q) => q.brokerName),
    ['broker-a'],
  );
  await ok(c, addr, createRequest(RequestCode.DELETE_TOPIC_IN_NAMESRV, { topic: 'TopicTest' }));
  assert.equal((await c.invoke(addr, routeRequest('TopicTest'))).code, ResponseCode.TOPIC_NOT_EXIST);
  await ok(c, addr, createRequest(RequestCode.DELETE_TOPIC_IN_NAMESRV, { topic: 'NeverExisted' }));
  assert.deepEqual(
    jsonOf<TopicList>(await ok(c, addr, createRequest(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER))),
    {
      topicList: ['OnlyA'],
    },
  );
});

test('QUERY_DATA_VERSION says whether the broker must re-register, and counts as liveness', async () => {
  const { ns, addr, clock } = await nameServer({ brokerExpiryMs: 10_000 });
  const c = client();
  const dv = { timestamp: 1_700_000_000_000, counter: 1 };
  const query = (v: typeof dv) =>
    createRequest(
      RequestCode.QUERY_DATA_VERSION,
      encodeBrokerIdentityHeader({
        brokerName: 'broker-a',
        brokerAddr: '10.0.0.1:10911',
        clusterName: 'DefaultCluster',
        brokerId: 0,
      }),
      encodeDataVersion(v),
    );
  const unknown = await ok(c, addr, query(dv));
  assert.equal(unknown.extFields?.changed, 'true');
  assert.equal(unknown.body, undefined);

  await ok(c, addr, registerRequest({ ...brokerA, dataVersion: dv }));
  clock.advance(9_000);
  const same = await ok(c, addr, query(dv));
  assert.equal(same.extFields?.changed, 'false');
  assert.deepEqual(jsonOf(same), dv);
  clock.advance(9_000); // 18 s after registering, 9 s after the query
  assert.deepEqual(ns.scanNotActiveBrokers(), []);

  const newer = await ok(c, addr, query({ ...dv, counter: 2 }));
  assert.equal(newer.extFields?.changed, 'true');
});

test('start() logs where it listens; close() is clean and idempotent', async () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const ns = new NameServer({ host: '127.0.0.1', port: 0, logger: pino({ level: 'info' }, sink) });
  const { host, port } = await ns.start();
  assert.equal(host, '127.0.0.1');
  assert.ok(port > 0);
  assert.ok(lines.some((l) => l.includes(`name server listening on 127.0.0.1:${port}`)));
  await ns.close();
  await ns.close();
});

after(() => {
  assert.equal(cleanups.length, 0);
});
