import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../src/common/clock.js';
import {
  type BrokerRegistration,
  type DataVersion,
  RouteInfoManager,
  type RouteInfoOptions,
  type TopicConfig,
} from '../../src/namesrv/index.js';
import { topic } from '../../test-support/namesrv-fixtures.js';

const V1: DataVersion = { timestamp: 1000, counter: 1 };
const V2: DataVersion = { timestamp: 2000, counter: 2 };

function setup(opts: RouteInfoOptions = {}) {
  const clock = new ManualClock();
  return { clock, routes: new RouteInfoManager({ clock, ...opts }) };
}

function reg(
  brokerName: string,
  brokerAddr: string,
  topics: TopicConfig[],
  over: Partial<BrokerRegistration> = {},
): BrokerRegistration {
  return {
    clusterName: 'C',
    brokerAddr,
    brokerName,
    brokerId: 0,
    haServerAddr: `${brokerAddr}-ha`,
    topicConfigs: topics,
    dataVersion: V1,
    ...over,
  };
}

test('same data version: liveness refreshed, topic configs not re-applied; a new version applies them', () => {
  const { clock, routes } = setup();
  assert.equal(routes.registerBroker(reg('a', 'h:1', [topic('T1')])).topicsApplied, true);
  clock.advance(60_000);
  const again = routes.registerBroker(reg('a', 'h:1', [topic('T1'), topic('T2')]));
  assert.equal(again.topicsApplied, false);
  assert.equal(again.newBroker, false);
  assert.equal(routes.liveBroker('h:1')?.lastUpdateMs, clock.now());
  assert.equal(routes.pickupTopicRouteData('T2'), undefined);
  assert.equal(
    routes.registerBroker(reg('a', 'h:1', [topic('T1'), topic('T2')], { dataVersion: V2 })).topicsApplied,
    true,
  );
  assert.ok(routes.pickupTopicRouteData('T2'));
});

test('expiry: alive exactly at brokerExpiryMs, gone 1 ms later, with its topics and cluster entry', () => {
  const { clock, routes } = setup({ brokerExpiryMs: 10_000 });
  routes.registerBroker(reg('a', 'h:1', [topic('T')]));
  const t0 = clock.now();
  assert.deepEqual(routes.scanNotActiveBrokers(t0 + 10_000), []);
  assert.ok(routes.pickupTopicRouteData('T'));
  const expired = routes.scanNotActiveBrokers(t0 + 10_001);
  assert.deepEqual(
    expired.map((b) => b.brokerAddr),
    ['h:1'],
  );
  assert.equal(routes.pickupTopicRouteData('T'), undefined);
  assert.deepEqual(routes.getClusterInfo(), { brokerAddrTable: {}, clusterAddrTable: {} });
  assert.deepEqual(routes.getAllTopicList(), { topicList: [] });
});

test("a broker's own heartbeat timeout overrides brokerExpiryMs", () => {
  const { clock, routes } = setup({ brokerExpiryMs: 120_000 });
  routes.registerBroker(reg('a', 'h:1', [topic('T')], { timeoutMs: 5_000 }));
  routes.registerBroker(reg('b', 'h:2', [topic('T')]));
  assert.deepEqual(
    routes.scanNotActiveBrokers(clock.now() + 5_001).map((b) => b.brokerAddr),
    ['h:1'],
  );
  assert.deepEqual(
    routes.pickupTopicRouteData('T')?.brokerDatas.map((b) => b.brokerName),
    ['b'],
  );
});

test("slaves' topics are not registered; the master's queues stay while the slave lives", () => {
  const { routes } = setup();
  const slave = routes.registerBroker(reg('a', 'h:2', [topic('FromSlave')], { brokerId: 1 }));
  assert.equal(slave.topicsApplied, false);
  assert.equal(slave.masterAddr, undefined);
  routes.registerBroker(reg('a', 'h:1', [topic('T')]));
  const slaveAgain = routes.registerBroker(reg('a', 'h:2', [topic('FromSlave')], { brokerId: 1 }));
  assert.equal(slaveAgain.masterAddr, 'h:1');
  assert.equal(slaveAgain.haServerAddr, 'h:1-ha');
  assert.equal(routes.pickupTopicRouteData('FromSlave'), undefined);
  routes.unregisterBroker('C', 'h:1', 'a', 0);
  assert.deepEqual(routes.pickupTopicRouteData('T')?.brokerDatas[0]?.brokerAddrs, { 1: 'h:2' });
});

test('a slave promoted at the same address keeps one entry per address', () => {
  const { routes } = setup();
  routes.registerBroker(reg('a', 'h:2', [], { brokerId: 1 }));
  routes.registerBroker(reg('a', 'h:2', [topic('T')], { brokerId: 0, dataVersion: V2 }));
  assert.deepEqual(routes.getClusterInfo().brokerAddrTable.a?.brokerAddrs, { 0: 'h:2' });
});

test("a late unregister of an old address does not remove the id's new address", () => {
  const { routes } = setup();
  routes.registerBroker(reg('a', 'h:1', [topic('T')]));
  routes.registerBroker(reg('a', 'h:9', [topic('T')]));
  routes.unregisterBroker('C', 'h:1', 'a', 0);
  assert.deepEqual(routes.pickupTopicRouteData('T')?.brokerDatas[0]?.brokerAddrs, { 0: 'h:9' });
});

test('removeByChannel removes every broker registered over that channel, and only those', () => {
  const { routes } = setup();
  const ch1 = {};
  const ch2 = {};
  routes.registerBroker(reg('a', 'h:1', [topic('T')], { channel: ch1 }));
  routes.registerBroker(reg('b', 'h:2', [topic('T')], { channel: ch1 }));
  routes.registerBroker(reg('c', 'h:3', [topic('T')], { channel: ch2 }));
  assert.deepEqual(routes.removeByChannel(ch1).sort(), ['h:1', 'h:2']);
  assert.deepEqual(
    routes.pickupTopicRouteData('T')?.queueDatas.map((q) => q.brokerName),
    ['c'],
  );
  assert.deepEqual(routes.removeByChannel({}), []);
});

test('a broker re-registering over a new channel is not removed when the old one closes', () => {
  const { routes } = setup();
  const old = {};
  routes.registerBroker(reg('a', 'h:1', [topic('T')], { channel: old }));
  routes.registerBroker(reg('a', 'h:1', [topic('T')], { channel: {} }));
  assert.deepEqual(routes.removeByChannel(old), []);
  assert.ok(routes.pickupTopicRouteData('T'));
});

test('deleteTopic: everywhere, or only on one cluster', () => {
  const { routes } = setup();
  routes.registerBroker(reg('a', 'h:1', [topic('T'), topic('U')], { clusterName: 'C1' }));
  routes.registerBroker(reg('b', 'h:2', [topic('T')], { clusterName: 'C2' }));
  assert.equal(routes.deleteTopic('T', 'C1'), true);
  assert.deepEqual(
    routes.pickupTopicRouteData('T')?.queueDatas.map((q) => q.brokerName),
    ['b'],
  );
  assert.equal(routes.deleteTopic('T'), true);
  assert.equal(routes.deleteTopic('T'), false);
  assert.deepEqual(routes.getAllTopicList(), { topicList: ['U'] });
});

test('deleteTopicWithBrokerRegistration drops topics a master no longer lists', () => {
  for (const on of [false, true]) {
    const { routes } = setup({ deleteTopicWithBrokerRegistration: on });
    routes.registerBroker(reg('a', 'h:1', [topic('T'), topic('Gone')]));
    routes.registerBroker(reg('a', 'h:1', [topic('T')], { dataVersion: V2 }));
    assert.deepEqual(routes.getAllTopicList().topicList, on ? ['T'] : ['Gone', 'T']);
  }
});

test('data version queries and liveness refresh', () => {
  const { clock, routes } = setup();
  assert.equal(routes.isBrokerTopicConfigChanged('h:1', V1), true);
  routes.registerBroker(reg('a', 'h:1', []));
  assert.equal(routes.isBrokerTopicConfigChanged('h:1', { ...V1 }), false);
  assert.equal(routes.isBrokerTopicConfigChanged('h:1', { ...V1, stateVersion: 1 }), true);
  assert.deepEqual(routes.queryBrokerDataVersion('h:1'), V1);
  clock.advance(1000);
  assert.equal(routes.refreshBrokerLiveness('h:1'), true);
  assert.equal(routes.liveBroker('h:1')?.lastUpdateMs, clock.now());
  assert.equal(routes.refreshBrokerLiveness('h:404'), false);
});

test('names that are Object.prototype keys are plain keys in every body', () => {
  const { routes } = setup();
  routes.registerBroker(reg('__proto__', 'h:1', [topic('constructor')], { clusterName: '__proto__' }));
  const info = routes.getClusterInfo();
  assert.deepEqual(Object.keys(info.brokerAddrTable), ['__proto__']);
  assert.deepEqual(
    JSON.parse(JSON.stringify(info)).clusterAddrTable,
    JSON.parse('{"__proto__":["__proto__"]}'),
  );
  assert.equal(routes.pickupTopicRouteData('constructor')?.queueDatas[0]?.brokerName, '__proto__');
  assert.equal(routes.pickupTopicRouteData('toString'), undefined);
});

test('brokerExpiryMs must be positive', () => {
  assert.throws(() => new RouteInfoManager({ brokerExpiryMs: 0 }), RangeError);
});
