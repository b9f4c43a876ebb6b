import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { NamesrvClient } from '../../src/client/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { Cluster, RoleProcess } from '../../test-support/cluster.js';

async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let cluster: Cluster;
const remoting = new RemotingClient();
let ns: NamesrvClient;

async function brokersOf(clusterName: string): Promise<string[]> {
  const info = await ns.clusterInfo();
  return [...(info.clusterAddrTable[clusterName] ?? [])].sort();
}

before(async () => {
  cluster = await Cluster.start({
    brokers: [
      { brokerName: 'broker-a', conf: { registerNameServerPeriod: 500 } },
      { brokerName: 'broker-b', conf: { registerNameServerPeriod: 500 } },
    ],
    brokerExpiryMs: 2000,
    scanIntervalMs: 200,
  });
  ns = new NamesrvClient(remoting, cluster.namesrvAddr);
});

after(async () => {
  remoting.close();
  await cluster.close();
});

test('two broker processes register with the name server process', async () => {
  await until('both brokers registered', async () => (await brokersOf('DefaultCluster')).length === 2);
  assert.deepEqual(await brokersOf('DefaultCluster'), ['broker-a', 'broker-b']);
});

test('a frozen broker (SIGSTOP) expires from the name server and returns after SIGCONT', async () => {
  const b = cluster.broker('broker-b');
  await until('both brokers registered', async () => (await brokersOf('DefaultCluster')).length === 2);
  b.proc.signal('SIGSTOP');
  try {
    const frozenAt = Date.now();
    await until('broker-b expired', async () => !(await brokersOf('DefaultCluster')).includes('broker-b'));
    // Not before the expiry time: a silent broker is kept for brokerExpiryMs.
    assert.ok(Date.now() - frozenAt >= 1500, `expired after only ${Date.now() - frozenAt} ms`);
    assert.deepEqual(await brokersOf('DefaultCluster'), ['broker-a']);
  } finally {
    b.proc.signal('SIGCONT');
  }
  await until('broker-b registered again', async () =>
    (await brokersOf('DefaultCluster')).includes('broker-b'),
  );
});

test('a killed broker (SIGKILL) leaves the routes at once and a restart on its data brings it back', async () => {
  const b = cluster.broker('broker-a');
  await b.proc.kill();
  // The name server sees the connection close; no need to wait for the expiry.
  await until('broker-a gone', async () => !(await brokersOf('DefaultCluster')).includes('broker-a'), 1500);
  await b.restart();
  await until('broker-a back', async () => (await brokersOf('DefaultCluster')).includes('broker-a'));
});

test('broker.conf values can be overridden by the environment (TSMQ_BROKER_<key>)', async () => {
  const dir = path.join(cluster.root, 'env-broker');
  fs.mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'broker.conf');
  fs.writeFileSync(conf, `brokerName=from-file\nlistenPort=0\nstorePathRootDir=${path.join(dir, 'store')}\n`);
  const saved = { ...process.env };
  process.env.TSMQ_BROKER_brokerName = 'from-env';
  process.env.NAMESRV_ADDR = cluster.namesrvAddr;
  let proc: RoleProcess | undefined;
  try {
    proc = new RoleProcess(['broker', '-c', conf]);
    await proc.waitFor(/broker from-env listening on/, 'the env-named broker');
    await until('from-env registered', async () => (await brokersOf('DefaultCluster')).includes('from-env'));
  } finally {
    process.env = saved;
    await proc?.kill();
  }
});
