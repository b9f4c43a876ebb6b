import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createRequest, RequestCode, ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';

const main = path.resolve(import.meta.dirname, '../../src/cli/main.js');

function run(args: string[]): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, exited };
}

async function waitForMatch(get: () => string, re: RegExp, what: string): Promise<RegExpMatchArray> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const m = get().match(re);
    if (m) return m;
    assert.ok(Date.now() < deadline, `${what} did not appear:\n${get()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('`tsmq namesrv` and `tsmq broker -c broker.conf` run the roles apart; the broker joins the cluster', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmq-cli-roles-'));
  const ns = run(['namesrv', '--port', '0']);
  let broker: ReturnType<typeof run> | undefined;
  const client = new RemotingClient();
  try {
    const [, nsPort] = await waitForMatch(ns.out, /name server listening on [\d.]+:(\d+)/, 'the name server');
    const conf = path.join(dir, 'broker.conf');
    fs.writeFileSync(
      conf,
      [
        '# a broker of cluster c1',
        'brokerClusterName=c1',
        'brokerName=broker-x',
        'brokerId=0',
        `namesrvAddr=127.0.0.1:${nsPort}`,
        'listenPort=0',
        `storePathRootDir=${path.join(dir, 'store')}`,
        'flushDiskType=SYNC_FLUSH',
      ].join('\n'),
    );
    broker = run(['broker', '-c', conf]);
    await waitForMatch(broker.out, /broker broker-x listening on/, 'the broker');
    const nsAddr = `127.0.0.1:${nsPort}`;
    let info: { clusterAddrTable?: Record<string, string[]> } = {};
    const deadline = Date.now() + 10_000;
    while (!info.clusterAddrTable?.c1?.includes('broker-x')) {
      assert.ok(Date.now() < deadline, 'the broker never registered');
      const res = await client.invoke(nsAddr, createRequest(RequestCode.GET_BROKER_CLUSTER_INFO));
      assert.equal(res.code, ResponseCode.SUCCESS);
      info = JSON.parse(res.body!.toString());
      if (!info.clusterAddrTable?.c1) await new Promise((r) => setTimeout(r, 50));
    }
    broker.child.kill('SIGINT');
    assert.equal(await broker.exited, 0, broker.out());
    ns.child.kill('SIGINT');
    assert.equal(await ns.exited, 0, ns.out());
  } finally {
    client.close();
    broker?.child.kill('SIGKILL');
    ns.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('`tsmq broker` with a bad broker.conf says which line and exits 1', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmq-cli-bad-'));
  try {
    const conf = path.join(dir, 'broker.conf');
    fs.writeFileSync(conf, 'brokerName=b\nlistenPort=not-a-port\n');
    const r = run(['broker', '-c', conf]);
    assert.equal(await r.exited, 1);
    assert.match(r.out(), /line 2/);
    assert.match(r.out(), /CONFIG_INVALID/);
    const missing = run(['broker', '-c', path.join(dir, 'nope.conf')]);
    assert.equal(await missing.exited, 1);
    assert.match(missing.out(), /cannot read/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
