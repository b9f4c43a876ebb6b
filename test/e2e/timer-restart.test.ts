/**
 * Timer messages across restarts of a real broker process (timerPrecisionMs 100, checkpoints
 * every 200 ms): a clean stop delivers each once; a SIGKILL with timers pending loses none,
 * delivers none early, delivers twice only what could have been delivered before the kill, and
 * delivers what came due during the downtime right after the restart. Read back by raw pulls.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type DecodedRecord, decodeProperties } from '../../src/message/index.js';
import { ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { fakeUniqKey, sendV2 } from '../../test-support/broker-fixtures.js';
import { Cluster } from '../../test-support/cluster.js';
import { Rng } from '../../test-support/prng.js';
import { collectByUniq, untilStoreOpen } from '../../test-support/timer-fixtures.js';

const PRECISION_MS = 100;
/** Event-loop slack on a busy machine on top of the precision (deliveries are normally at the ms). */
const SLACK_MS = 1000;
const QUEUES = 4;
let cluster: Cluster;
let client: RemotingClient;

before(async () => {
  cluster = await Cluster.start({
    brokers: [
      {
        brokerName: 'broker-timer',
        conf: { timerPrecisionMs: PRECISION_MS, timerFlushIntervalMs: 200, defaultTopicQueueNums: QUEUES },
      },
    ],
  });
  client = new RemotingClient();
  await untilStoreOpen(client, cluster.brokers[0]!.addr);
});

after(async () => {
  client?.close();
  await cluster?.close();
});

interface Sent {
  uniq: string;
  at: number;
  ackAt: number;
}

async function sendTimers(
  topic: string,
  n: number,
  first: number,
  fromMs: number,
  spanMs: number,
  seed: number,
): Promise<Sent[]> {
  const rng = new Rng(seed);
  const addr = cluster.brokers[0]!.addr;
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const at = fromMs + rng.int(0, spanMs);
      const uniq = fakeUniqKey(first + i);
      const res = await client.invoke(
        addr,
        sendV2({
          topic,
          body: Buffer.from(`t${i}`),
          queueId: i % QUEUES,
          uniqKey: uniq,
          extraProperties: { TIMER_DELIVER_MS: String(at) },
        }),
      );
      assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
      return { uniq, at, ackAt: Date.now() };
    }),
  );
}

function collect(topic: string, sent: Sent[], timeoutMs: number): Promise<Map<string, DecodedRecord[]>> {
  return collectByUniq(
    client,
    cluster.brokers[0]!.addr,
    topic,
    QUEUES,
    sent.map((s) => s.uniq),
    timeoutMs,
  );
}

function assertNotEarly(sent: Sent[], got: Map<string, DecodedRecord[]>): void {
  for (const s of sent) {
    for (const r of got.get(s.uniq)!) {
      assert.equal(decodeProperties(r.properties).get('TIMER_DELIVER_MS'), String(s.at));
      assert.ok(r.storeTimestamp >= s.at, `${s.uniq} delivered ${s.at - r.storeTimestamp} ms early`);
    }
  }
}

test('a clean stop and start with timers pending: each delivered once, none early, on time', async () => {
  const broker = cluster.brokers[0]!;
  const t0 = Date.now();
  const sent = await sendTimers('TimerClean', 300, 0, t0 + 1000, 5000, 1);
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(await broker.proc.stop(), 0);
  const stoppedAt = Date.now();
  await broker.restart();
  await untilStoreOpen(client, broker.addr);
  const restartedAt = Date.now();
  const got = await collect('TimerClean', sent, 20_000);
  assertNotEarly(sent, got);
  for (const s of sent) {
    const copies = got.get(s.uniq)!;
    assert.equal(copies.length, 1, `${s.uniq} delivered ${copies.length} times`);
    // Due while the broker was stopped: right after the restart; due later: at its time.
    if (s.at >= stoppedAt && s.at < restartedAt) {
      assert.ok(copies[0]!.storeTimestamp - restartedAt < 3000, `${s.uniq} due in the downtime came late`);
    } else if (s.at >= restartedAt + 3000) {
      const late = copies[0]!.storeTimestamp - Math.max(s.at, s.ackAt);
      assert.ok(late <= PRECISION_MS + SLACK_MS, `${s.uniq} delivered ${late} ms late`);
    }
  }
});

test('SIGKILL with timers pending: none lost, none early, duplicates bounded, the past due at once', async (t) => {
  const broker = cluster.brokers[0]!;
  const t0 = Date.now();
  const sent = await sendTimers('TimerKill', 600, 10_000, t0 + 500, 6000, 2);
  await new Promise((r) => setTimeout(r, 2000));
  await broker.proc.kill();
  const killedAt = Date.now();
  await new Promise((r) => setTimeout(r, 2000));
  await broker.restart();
  await untilStoreOpen(client, broker.addr);
  const restartedAt = Date.now();
  const got = await collect('TimerKill', sent, 20_000);
  assertNotEarly(sent, got);
  const couldBeforeKill = sent.filter((s) => s.at <= killedAt).length;
  const duplicates = [...got.values()].reduce((n, copies) => n + copies.length - 1, 0);
  t.diagnostic(
    `${duplicates} duplicates of ${sent.length}; ${couldBeforeKill} could have been delivered before the kill`,
  );
  for (const s of sent) {
    const copies = got.get(s.uniq)!;
    assert.ok(copies.length <= 2, `${s.uniq} delivered ${copies.length} times`);
    if (copies.length === 2)
      assert.ok(s.at <= killedAt, `${s.uniq} delivered twice though due after the kill`);
    const last = Math.max(...copies.map((r) => r.storeTimestamp));
    if (s.at > killedAt && s.at < restartedAt) {
      assert.ok(
        last - restartedAt < 3000,
        `${s.uniq}, due during the downtime, delivered ${last - restartedAt} ms after the restart`,
      );
    }
    if (s.at >= restartedAt + 3000) {
      const late = copies[0]!.storeTimestamp - s.at;
      assert.ok(late <= PRECISION_MS + SLACK_MS, `${s.uniq} delivered ${late} ms late`);
    }
  }
  assert.ok(duplicates <= couldBeforeKill);
});
