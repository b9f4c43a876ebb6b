/**
 * End to end over real processes: a name server and two brokers (child processes of `tsmq`), the
 * SDK's Producer and PushConsumers in this process (and one consumer in a child process that
 * gets SIGKILLed). A topic of 8 queues spread over both brokers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import {
  Admin,
  type MessageExt,
  Producer,
  PushConsumer,
  type PushConsumerOptions,
} from '../../src/client/index.js';
import { Cluster } from '../../test-support/cluster.js';

const TOPIC = 'E2ETopic';
let cluster: Cluster;
let admin: Admin;
let producer: Producer;
const consumers: PushConsumer[] = [];

async function until(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A push consumer that records what it got; started and tracked for cleanup. */
async function consumer(
  group: string,
  expression = '*',
  opts: Partial<PushConsumerOptions> = {},
): Promise<{ c: PushConsumer; got: MessageExt[] }> {
  const got: MessageExt[] = [];
  const c = new PushConsumer({
    group,
    namesrvAddr: cluster.namesrvAddr,
    consumeFromWhere: 'FIRST_OFFSET',
    brokerSuspendMaxTimeMillis: 3000,
    persistConsumerOffsetIntervalMs: 200,
    rebalanceIntervalMs: 60_000,
    ...opts,
  });
  c.subscribe(TOPIC, expression).onMessage(async (msgs) => {
    got.push(...msgs);
  });
  consumers.push(c);
  await c.start();
  return { c, got };
}

async function sendMany(
  n: number,
  make: (i: number) => { tags?: string; body?: string } = () => ({}),
): Promise<string[]> {
  const ids: string[] = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const extra = make(i);
      const r = await producer.send({
        topic: TOPIC,
        body: extra.body ?? `m${i}`,
        ...(extra.tags && { tags: extra.tags }),
      });
      ids[i] = r.msgId;
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  return ids;
}

before(async () => {
  cluster = await Cluster.start({
    brokers: [{ brokerName: 'broker-a' }, { brokerName: 'broker-b' }],
  });
  admin = new Admin({ namesrvAddr: cluster.namesrvAddr });
  for (const b of cluster.brokers) {
    await admin.createTopic({ topic: TOPIC, brokerAddr: b.addr, readQueueNums: 4, writeQueueNums: 4 });
  }
  await until('the topic routed on both brokers', async () => {
    const route = await admin.topicRoute(TOPIC).catch(() => undefined);
    return route?.queueDatas.length === 2;
  });
  producer = new Producer({ group: 'e2e-producer', namesrvAddr: cluster.namesrvAddr });
  await producer.start();
});

// Each test's consumers leave with it, so the next test sees only its own.
afterEach(async () => {
  await Promise.all(consumers.splice(0).map((c) => c.shutdown().catch(() => undefined)));
});

after(async () => {
  await producer?.shutdown().catch(() => undefined);
  admin?.close();
  await cluster?.close();
});

test('a group of two consumes 10,000 messages over 8 queues on two brokers: disjoint and complete', async () => {
  const a = await consumer('g-split');
  const b = await consumer('g-split');
  await until(
    'each member owns 4 of the 8 queues',
    () => a.c.assignedQueues().length === 4 && b.c.assignedQueues().length === 4,
  );
  const brokersOf = (c: PushConsumer) =>
    new Set(c.assignedQueues().map((q) => `${q.brokerName}/${q.queueId}`));
  const ownA = brokersOf(a.c);
  for (const q of brokersOf(b.c)) assert.ok(!ownA.has(q), `queue ${q} assigned to both`);

  const ids = await sendMany(10_000);
  await until('all 10,000 consumed', () => a.got.length + b.got.length >= 10_000, 60_000);
  const idsA = new Set(a.got.map((m) => m.msgId));
  const idsB = new Set(b.got.map((m) => m.msgId));
  assert.equal(idsA.size, a.got.length, 'member a got a message twice');
  assert.equal(idsB.size, b.got.length, 'member b got a message twice');
  for (const id of idsA) assert.ok(!idsB.has(id), `message ${id} went to both members`);
  const all = new Set([...idsA, ...idsB]);
  assert.equal(all.size, 10_000);
  for (const id of ids) assert.ok(all.has(id), `message ${id} was never consumed`);
  // Each got messages only from its own queues, and both brokers were used.
  for (const m of a.got) assert.ok(ownA.has(`${m.brokerName}/${m.queueId}`));
  const brokers = new Set([...a.got, ...b.got].map((m) => m.brokerName));
  assert.deepEqual([...brokers].sort(), ['broker-a', 'broker-b']);
});

test('broadcasting: every member gets every message', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmq-bcast-'));
  try {
    const opts = {
      messageModel: 'BROADCASTING' as const,
      consumeFromWhere: 'LAST_OFFSET' as const,
      offsetStoreDir: dir,
    };
    // Broadcasting members keep offsets in files named by client id: one instance name each.
    const a = await consumer('g-bcast', '*', { ...opts, instanceName: 'bcast-a' });
    const b = await consumer('g-bcast', '*', { ...opts, instanceName: 'bcast-b' });
    await until(
      'both own all 8 queues',
      () => a.c.assignedQueues().length === 8 && b.c.assignedQueues().length === 8,
    );
    // LAST_OFFSET: wait until every queue has its start offset, so nothing sent below is skipped.
    await until('offsets initialised', () =>
      [a.c, b.c].every((c) => c.queueStats().every((s) => s.offset !== undefined)),
    );
    const ids = await sendMany(500, (i) => ({ body: `bcast-${i}` }));
    const mine = (got: MessageExt[]) =>
      new Set(got.filter((m) => m.body.toString().startsWith('bcast-')).map((m) => m.msgId));
    await until('both got all 500', () => mine(a.got).size === 500 && mine(b.got).size === 500);
    for (const id of ids) assert.ok(mine(a.got).has(id) && mine(b.got).has(id));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('tag filtering: a "TagA || TagC" subscription gets exactly those tags', async () => {
  const f = await consumer('g-tags', 'TagA || TagC', { consumeFromWhere: 'LAST_OFFSET' });
  await until(
    'queues owned and positioned',
    () => f.c.assignedQueues().length === 8 && f.c.queueStats().every((s) => s.offset !== undefined),
  );
  const tags = ['TagA', 'TagB', 'TagC', 'TagD'];
  const ids = await sendMany(400, (i) => ({ tags: tags[i % 4]!, body: `tag-${i}` }));
  const wanted = new Set(ids.filter((_, i) => i % 4 === 0 || i % 4 === 2));
  await until(
    'the 200 matching messages arrived',
    () => f.got.filter((m) => wanted.has(m.msgId)).length === 200,
  );
  // Give nothing extra a chance to slip through: send a marker and wait for it.
  const marker = await producer.send({ topic: TOPIC, body: 'marker', tags: 'TagA' });
  await until('the marker arrived', () => f.got.some((m) => m.msgId === marker.msgId));
  for (const m of f.got) assert.ok(m.tags === 'TagA' || m.tags === 'TagC', `got a message tagged ${m.tags}`);
});

test('a restarted consumer resumes after its committed offset', async () => {
  const first = await consumer('g-resume', '*', { consumeFromWhere: 'LAST_OFFSET' });
  await until(
    'positioned',
    () => first.c.assignedQueues().length === 8 && first.c.queueStats().every((s) => s.offset !== undefined),
  );
  const before = await sendMany(300, (i) => ({ body: `before-${i}` }));
  const beforeSet = new Set(before);
  await until('the first 300 consumed', () => first.got.filter((m) => beforeSet.has(m.msgId)).length === 300);
  await first.c.shutdown();

  const afterIds = await sendMany(300, (i) => ({ body: `after-${i}` }));
  const second = await consumer('g-resume', '*', { consumeFromWhere: 'FIRST_OFFSET' });
  const afterSet = new Set(afterIds);
  await until(
    'the next 300 consumed',
    () => new Set(second.got.filter((m) => afterSet.has(m.msgId)).map((m) => m.msgId)).size === 300,
  );
  // FIRST_OFFSET would re-read everything if the committed offsets had been lost.
  const again = second.got.filter((m) => beforeSet.has(m.msgId));
  assert.equal(again.length, 0, `${again.length} messages consumed before the restart came again`);
});

test('long polling: a message sent while the consumer waits arrives well under the poll timeout', async () => {
  const w = await consumer('g-poll', '*', {
    consumeFromWhere: 'LAST_OFFSET',
    brokerSuspendMaxTimeMillis: 15_000,
  });
  await until(
    'positioned',
    () => w.c.assignedQueues().length === 8 && w.c.queueStats().every((s) => s.offset !== undefined),
  );
  // Wait until the brokers hold the consumer's pulls (they found nothing new), so the message
  // below has to wake a held pull rather than be found by a fresh one.
  await until('pulls held on both brokers', async () => {
    for (const b of cluster.brokers) {
      const held = Number((await admin.brokerRuntimeInfo(b.addr)).pullRequestsHeld);
      if (!(held >= 4)) return false;
    }
    return true;
  });
  const sentAt = Date.now();
  const r = await producer.send({ topic: TOPIC, body: 'wake up' });
  await until('delivered', () => w.got.some((m) => m.msgId === r.msgId), 15_000);
  const took = Date.now() - sentAt;
  assert.ok(took < 2000, `delivery took ${took} ms against a 15 s poll`);
});

test('a SIGKILLed consumer’s queues are taken over by the survivor, and nothing is lost', async () => {
  const child = spawn(
    process.execPath,
    [
      path.resolve(import.meta.dirname, '../../test-support/consumer-child.js'),
      cluster.namesrvAddr,
      'g-takeover',
      TOPIC,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let childOut = '';
  child.stdout!.on('data', (c: Buffer) => {
    childOut += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    childOut += c.toString();
  });
  const exited = new Promise((r) => child.once('exit', r));
  try {
    await until('the child consumer started', () => childOut.includes('ready '));
    const s = await consumer('g-takeover');
    await until('the queues split 4/4', () => s.c.assignedQueues().length === 4);
    child.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();
    await until('the survivor owns all 8 queues', () => s.c.assignedQueues().length === 8, 20_000);
    // Well before the 60 s periodic rebalance: the broker's notice drove it.
    assert.ok(Date.now() - killedAt < 15_000);
    const ids = await sendMany(800, (i) => ({ body: `takeover-${i}` }));
    const got = () => new Set(s.got.map((m) => m.msgId));
    await until('the survivor got all 800', () => ids.every((id) => got().has(id)));
  } finally {
    child.kill('SIGKILL');
  }
});

test('reset to a timestamp while consuming re-delivers exactly the messages stored after it', async () => {
  const r = await consumer('g-reset', '*', { consumeFromWhere: 'LAST_OFFSET' });
  await until(
    'positioned',
    () => r.c.assignedQueues().length === 8 && r.c.queueStats().every((s) => s.offset !== undefined),
  );
  const old = new Set(await sendMany(200, (i) => ({ body: `old-${i}` })));
  // The old ones were stored before now; one may share this very millisecond, and a reset to a
  // time re-delivers what was stored at or after it: cut at the next millisecond.
  const cut = Date.now() + 1;
  // Every message sent from here on is stored at a later millisecond than `cut`.
  while (Date.now() <= cut) await new Promise((res) => setImmediate(res));
  const fresh = new Set(await sendMany(100, (i) => ({ body: `new-${i}` })));
  await until('all 300 consumed once', () => r.got.length >= 300);
  const before = r.got.length;

  const table = await admin.resetOffset('g-reset', TOPIC, cut);
  assert.equal(table.length, 8);
  await until('the 100 newer messages came again', () => {
    const again = new Set(r.got.slice(before).map((m) => m.msgId));
    return [...fresh].every((id) => again.has(id));
  });
  // A marker after the reset bounds what else could still arrive.
  const marker = await producer.send({ topic: TOPIC, body: 'after-reset' });
  await until('the marker arrived', () => r.got.slice(before).some((m) => m.msgId === marker.msgId));
  const replayed = r.got.slice(before).filter((m) => m.msgId !== marker.msgId);
  assert.equal(
    replayed.filter((m) => old.has(m.msgId)).length,
    0,
    'a message stored before the time came again',
  );
  assert.equal(new Set(replayed.map((m) => m.msgId)).size, 100);
});

test('malformed frames to a broker close only that connection; producers keep going', async () => {
  const b = cluster.broker('broker-a');
  const [host, port] = b.addr.split(':');
  const closed = await new Promise<boolean>((resolve) => {
    const s = net.connect({ host: host!, port: Number(port) }, () => {
      // A frame claiming 2 GiB, then garbage.
      s.write(Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8]));
    });
    s.on('close', () => resolve(true));
    s.on('error', () => undefined);
    setTimeout(() => {
      s.destroy();
      resolve(false);
    }, 10_000).unref();
  });
  assert.ok(closed, 'the broker kept a connection that sent an impossible frame');
  const garbage = net.connect({ host: host!, port: Number(port) }, () => {
    garbage.write(Buffer.from([0, 0, 0, 12, 0, 0, 0, 200, 1, 2, 3, 4]));
  });
  garbage.on('error', () => undefined);
  const ids = await sendMany(200);
  assert.equal(ids.filter(Boolean).length, 200);
  assert.ok(b.proc.alive);
  garbage.destroy();
});
