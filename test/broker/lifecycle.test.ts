import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { BrokerConfigError, parseBrokerConf, startEmbedded } from '../../src/broker/index.js';
import { decodeBatchBody, encodeBatchBody } from '../../src/message/index.js';
import { createRequest, RequestCode, ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';

test('broker.conf: RocketMQ keys, comments, unknown keys reported, bad values name the line', () => {
  const { config, unknownKeys } = parseBrokerConf(
    [
      '# a comment',
      'brokerClusterName = MyCluster',
      'brokerName=broker-b',
      'brokerId=0',
      'namesrvAddr=127.0.0.1:9876;127.0.0.2:9876',
      'flushDiskType=SYNC_FLUSH',
      'autoCreateTopicEnable=false',
      'deleteWhen=04',
      '',
    ].join('\n'),
  );
  assert.deepEqual(config, {
    brokerClusterName: 'MyCluster',
    brokerName: 'broker-b',
    brokerId: 0,
    namesrvAddr: '127.0.0.1:9876;127.0.0.2:9876',
    flushDiskType: 'SYNC_FLUSH',
    autoCreateTopicEnable: false,
  });
  assert.deepEqual(unknownKeys, [{ key: 'deleteWhen', line: 8 }]);
  assert.throws(
    () => parseBrokerConf('flushDiskType=SOMETIMES'),
    /line 1: flushDiskType must be ASYNC_FLUSH/,
  );
  assert.throws(() => parseBrokerConf('listenPort=70000'), BrokerConfigError);
  assert.throws(() => parseBrokerConf('autoCreateTopicEnable=yes'), /true or false/);
});

test('batch body codec: round trip, and a lying total size fails the batch', () => {
  const msgs = [
    { flag: 1, body: Buffer.from('a'), properties: 'KEYS\u0001k\u0002' },
    { flag: 2, body: Buffer.from('bb'), properties: '' },
  ];
  const buf = encodeBatchBody(msgs);
  assert.equal(buf.readInt32BE(0), 22 + 1 + 7);
  const back = decodeBatchBody(buf);
  assert.ok(back.ok);
  assert.deepEqual(back.messages, msgs);
  for (let cut = 1; cut < buf.length; cut++) {
    const r = decodeBatchBody(buf.subarray(0, cut));
    if (cut !== 30) assert.equal(r.ok, false, `cut at ${cut}`);
  }
  const lying = Buffer.from(buf);
  lying.writeInt32BE(99, 0);
  assert.equal(decodeBatchBody(lying).ok, false);
});

test('topics.json survives a broker restart with its data version', async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsmq-broker-restart-'));
  const client = new RemotingClient();
  try {
    const mq = await startEmbedded({ dataDir });
    const res = await client.invoke(
      mq.brokerAddr,
      createRequest(RequestCode.UPDATE_AND_CREATE_TOPIC, {
        topic: 'Kept',
        readQueueNums: '3',
        writeQueueNums: '5',
        perm: '6',
      }),
    );
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    const version = mq.broker.topics.dataVersion();
    await mq.close();
    const file = JSON.parse(await fs.readFile(path.join(dataDir, 'store', 'config', 'topics.json'), 'utf8'));
    assert.equal(file.topicConfigTable.Kept.writeQueueNums, 5);
    assert.deepEqual(file.dataVersion, version);

    const again = await startEmbedded({ dataDir });
    try {
      const kept = again.broker.topics.get('Kept');
      assert.equal(kept?.readQueueNums, 3);
      assert.equal(kept?.writeQueueNums, 5);
      assert.deepEqual(again.broker.topics.dataVersion(), version);
    } finally {
      await again.close();
    }
  } finally {
    client.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
});

test('`tsmq start` logs where the name server and broker listen and exits 0 on SIGINT', async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsmq-cli-start-'));
  const main = path.resolve(import.meta.dirname, '../../src/cli/main.js');
  const child = spawn(
    process.execPath,
    [main, 'start', '--data', dataDir, '--namesrv-port', '0', '--broker-port', '0'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 10_000;
    while (!/tsmq is running/.test(out)) {
      assert.ok(Date.now() < deadline, `tsmq start did not come up:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(out, /name server listening on [\d.]+:\d+/);
    assert.match(out, /broker broker-a listening on [\d.]+:\d+/);
    assert.match(out, /store opened/);
    child.kill('SIGINT');
    assert.equal(await exited, 0, out);
    assert.match(out, /tsmq stopped cleanly/);
  } finally {
    child.kill('SIGKILL');
    await fs.rm(dataDir, { recursive: true, force: true });
  }
});
