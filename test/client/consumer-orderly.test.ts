/**
 * The orderly push consumer (onMessageOrderly) against a name server and an in-process broker
 * with a short queue-lock lease: per-key order across members joining and leaving, one handler
 * call per queue at a time across members, suspend-and-retry of a failed message, and fencing of
 * a member frozen (SIGSTOP) past its lease.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type MessageExt,
  mqKey,
  type OrderlyMessageHandler,
  Producer,
  PushConsumer,
  type PushConsumerOptions,
} from '../../src/client/index.js';
import {
  brokerOffset,
  type Cluster,
  createTopic,
  quiet,
  send,
  startCluster,
  unique,
  waitFor,
} from '../../test-support/consumer-fixtures.js';

const QUEUES = 8;
/** The broker's lock lease in these tests, ms. */
const LEASE_MS = 3_000;

describe('orderly PushConsumer', () => {
  let c: Cluster;
  const consumers: PushConsumer[] = [];

  before(async () => {
    c = await startCluster(1, { rebalanceLockMaxLiveTime: LEASE_MS });
  });
  after(async () => {
    await Promise.all(consumers.map((x) => x.shutdown()));
    await c.close();
  });

  function orderly(
    group: string,
    topic: string,
    handler: OrderlyMessageHandler,
    over: Partial<PushConsumerOptions> = {},
  ): PushConsumer {
    const pc = new PushConsumer({
      group,
      namesrvAddr: c.namesrvAddr,
      consumeFromWhere: 'FIRST_OFFSET',
      rebalanceIntervalMs: 1_000,
      persistConsumerOffsetIntervalMs: 200,
      brokerSuspendMaxTimeMillis: 1_000,
      lockRenewIntervalMs: 500,
      logger: quiet(),
      ...over,
    });
    pc.subscribe(topic, '*').onMessageOrderly(handler);
    consumers.push(pc);
    return pc;
  }

  test('per-key order holds over 10,000 messages while members join and leave; one call per queue at a time', async () => {
    const topic = unique('OrderlyKeys');
    const group = unique('g_orderly');
    await createTopic(c, topic, QUEUES);
    const KEYS = 40;
    const PER_KEY = 250;
    /** key → consumed sequence numbers, in consumption order. */
    const seen = new Map<string, number[]>();
    /** queue → the call running for it (across both members). */
    const active = new Map<string, string>();
    const overlaps: string[] = [];
    const handler =
      (who: string): OrderlyMessageHandler =>
      async (msgs, { queue }) => {
        const q = mqKey(queue);
        const other = active.get(q);
        if (other !== undefined) overlaps.push(`${q}: ${who} while ${other}`);
        active.set(q, who);
        // Let the event loop run (pulls, the other member) while this call is "busy".
        await new Promise((r) => setImmediate(r));
        for (const m of msgs) {
          const [key, seq] = m.body.toString().split(':') as [string, string];
          const list = seen.get(key) ?? [];
          seen.set(key, list);
          list.push(Number(seq));
        }
        if (active.get(q) === who) active.delete(q);
        return 'SUCCESS';
      };

    const producer = new Producer({
      group: unique('p_orderly'),
      namesrvAddr: c.namesrvAddr,
      logger: quiet(),
    });
    await producer.start();
    let sent = 0;
    const sending = Promise.all(
      Array.from({ length: KEYS }, async (_, k) => {
        for (let i = 0; i < PER_KEY; i++) {
          await producer.sendOrderly({ topic, body: `k${k}:${i}` }, `k${k}`);
          sent++;
        }
      }),
    );
    try {
      const total = () => [...seen.values()].reduce((n, l) => n + new Set(l).size, 0);
      const a = orderly(group, topic, handler('a'));
      await a.start();
      await waitFor(() => total() >= 1_000, 30_000, 'a consumed 1,000');
      const b = orderly(group, topic, handler('b'));
      await b.start();
      await waitFor(() => a.assignedQueues().length === QUEUES / 2, 10_000, 'a and b split the queues');
      await waitFor(() => total() >= 4_000, 30_000, 'consumed 4,000');
      await a.shutdown();
      await waitFor(() => b.assignedQueues().length === QUEUES, 10_000, 'b took all queues');
      await waitFor(() => total() >= 6_000, 30_000, 'consumed 6,000');
      const a2 = orderly(group, topic, handler('a2'));
      await a2.start();
      await sending;
      assert.equal(sent, KEYS * PER_KEY);
      await waitFor(() => total() === KEYS * PER_KEY, 60_000, 'every message consumed');
    } finally {
      await sending.catch(() => undefined);
      await producer.shutdown();
    }
    assert.deepEqual(overlaps, []);
    for (const [key, list] of seen) {
      // A new message of a key is always the next one; anything else must be a re-delivery of one
      // already consumed (a handover), never a jump back to something unseen or ahead.
      let next = 0;
      for (const s of list) {
        if (s === next) next++;
        else assert.ok(s < next, `key ${key}: got ${s} while expecting ${next}`);
      }
      assert.equal(next, PER_KEY, `key ${key}`);
    }
  });

  test('a failed message is retried on its queue after the suspend time; nothing after it is consumed meanwhile', async () => {
    const topic = unique('OrderlyRetry');
    const group = unique('g_orderly_retry');
    await createTopic(c, topic, 1);
    for (let i = 0; i < 5; i++) await send(c, topic, 'broker-a', 0, `m${i}`);
    const calls: { body: string; at: number; reconsumeTimes: number }[] = [];
    let failures = 3;
    const pc = orderly(
      group,
      topic,
      async (msgs) => {
        for (const m of msgs)
          calls.push({ body: m.body.toString(), at: Date.now(), reconsumeTimes: m.reconsumeTimes });
        if (msgs[0]!.body.toString() === 'm2' && failures > 0) {
          failures--;
          if (failures === 0) throw new Error('boom');
          return 'SUSPEND_CURRENT_QUEUE_A_MOMENT';
        }
        return 'SUCCESS';
      },
      { suspendCurrentQueueTimeMillis: 300 },
    );
    await pc.start();
    await waitFor(() => calls.some((x) => x.body === 'm4'), 20_000, 'm4 consumed');
    assert.deepEqual(
      calls.map((x) => x.body),
      ['m0', 'm1', 'm2', 'm2', 'm2', 'm2', 'm3', 'm4'],
    );
    assert.deepEqual(
      calls.filter((x) => x.body === 'm2').map((x) => x.reconsumeTimes),
      [0, 1, 2, 3],
    );
    const m2 = calls.filter((x) => x.body === 'm2');
    for (let i = 1; i < m2.length; i++) {
      assert.ok(m2[i]!.at - m2[i - 1]!.at >= 290, `retry ${i} came after ${m2[i]!.at - m2[i - 1]!.at} ms`);
    }
    await waitFor(async () => (await brokerOffset(c, group, topic, 'broker-a', 0)) === 5, 10_000, 'offset 5');
  });

  test('past maxReconsumeTimes the failure policy decides: a policy that takes the message lets the queue move on', async () => {
    const topic = unique('OrderlyPoison');
    const group = unique('g_orderly_poison');
    await createTopic(c, topic, 1);
    for (let i = 0; i < 3; i++) await send(c, topic, 'broker-a', 0, `p${i}`);
    const got: string[] = [];
    const taken: string[] = [];
    const pc = orderly(
      group,
      topic,
      async (msgs) => {
        got.push(...msgs.map((m) => m.body.toString()));
        if (msgs.some((m) => m.body.toString() === 'p1')) throw new Error('poison');
        return 'SUCCESS';
      },
      {
        suspendCurrentQueueTimeMillis: 50,
        maxReconsumeTimes: 2,
        failurePolicy: {
          async onFailure(msgs) {
            taken.push(...msgs.map((m) => m.body.toString()));
            return [];
          },
        },
      },
    );
    await pc.start();
    await waitFor(() => got.includes('p2'), 20_000, 'p2 consumed');
    // First delivery plus two retries, then the third failure goes to the policy.
    assert.deepEqual(got, ['p0', 'p1', 'p1', 'p1', 'p2']);
    assert.deepEqual(taken, ['p1']);
    await waitFor(async () => (await brokerOffset(c, group, topic, 'broker-a', 0)) === 3, 10_000, 'offset 3');
  });

  test('BROADCASTING orderly: every member gets every queue in order, without locks', async () => {
    const topic = unique('OrderlyBroadcast');
    const group = unique('g_orderly_bc');
    await createTopic(c, topic, 2);
    for (let i = 0; i < 40; i++) await send(c, topic, 'broker-a', i % 2, `b${i}`);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsmq-orderly-bc-'));
    try {
      const got = [new Map<number, number[]>(), new Map<number, number[]>()];
      const members = got.map((byQueue, n) =>
        orderly(
          group,
          topic,
          async (msgs, { queue }) => {
            const list = byQueue.get(queue.queueId) ?? [];
            byQueue.set(queue.queueId, list);
            list.push(...msgs.map((m) => m.queueOffset));
          },
          { messageModel: 'BROADCASTING', offsetStoreDir: dir, instanceName: `bc${n}` },
        ),
      );
      for (const m of members) await m.start();
      const count = (byQueue: Map<number, number[]>) =>
        [...byQueue.values()].reduce((a, l) => a + l.length, 0);
      await waitFor(() => got.every((g) => count(g) >= 40), 20_000, 'both members got all 40');
      for (const byQueue of got) {
        for (const q of [0, 1])
          assert.deepEqual(
            byQueue.get(q),
            Array.from({ length: 20 }, (_, i) => i),
          );
      }
      for (const m of members) await m.shutdown();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('a member frozen past its lease cannot move offsets back over its successor and stops consuming', async () => {
    const topic = unique('OrderlyFreeze');
    const group = unique('g_orderly_freeze');
    await createTopic(c, topic, 2);
    for (let i = 0; i < 20; i++) await send(c, topic, 'broker-a', i % 2, `f${i}`);
    const child = spawnChild(c.namesrvAddr, group, topic);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise((r) => child.once('exit', r));
    try {
      const childGot = () => out.split('\n').filter((l) => l.startsWith('got '));
      // The child holds both queues and consumes the first 20; its offsets reach the broker.
      await waitFor(() => childGot().length >= 20, 20_000, `the child consumed 20 (${out})`);
      await waitFor(
        async () =>
          (await brokerOffset(c, group, topic, 'broker-a', 0)) === 10 &&
          (await brokerOffset(c, group, topic, 'broker-a', 1)) === 10,
        10_000,
        'the child committed 10/10',
      );
      child.kill('SIGSTOP');
      const frozenLines = childGot().length;
      // More messages; the successor must wait for the frozen member's lease to run out.
      for (let i = 20; i < 40; i++) await send(c, topic, 'broker-a', i % 2, `f${i}`);
      const got: MessageExt[] = [];
      // The frozen member still counts as one of the group (its connection is open), so the
      // successor claims every queue itself: it must wait for the locks, not for a rebalance.
      const s = orderly(
        group,
        topic,
        async (msgs) => {
          got.push(...msgs);
        },
        { allocate: (ctx) => [...ctx.queues] },
      );
      await s.start();
      await waitFor(() => got.length >= 20, 30_000, 'the successor consumed the 20 new messages');
      assert.deepEqual(
        got.map((m) => m.body.toString()).sort(),
        Array.from({ length: 20 }, (_, i) => `f${i + 20}`).sort(),
      );
      await waitFor(
        async () =>
          (await brokerOffset(c, group, topic, 'broker-a', 0)) === 20 &&
          (await brokerOffset(c, group, topic, 'broker-a', 1)) === 20,
        10_000,
        'the successor committed 20/20',
      );
      child.kill('SIGCONT');
      // Let the woken member run its timers (persist every 200 ms, renewal every 500 ms).
      const deadline = Date.now() + 3_000;
      while (Date.now() < deadline) {
        assert.equal(await brokerOffset(c, group, topic, 'broker-a', 0), 20);
        assert.equal(await brokerOffset(c, group, topic, 'broker-a', 1), 20);
        await new Promise((r) => setTimeout(r, 50));
      }
      // And it consumed nothing more on a lease it no longer has.
      assert.equal(childGot().length, frozenLines, out);
    } finally {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
    }
  });
});

function spawnChild(namesrvAddr: string, group: string, topic: string): ChildProcess {
  return spawn(
    process.execPath,
    [
      path.resolve(import.meta.dirname, '../../test-support/orderly-consumer-child.js'),
      namesrvAddr,
      group,
      topic,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
}
