/**
 * Delay levels across restarts of a real broker process (levels 1 s .. 4 s, progress written
 * every 200 ms): a clean stop delivers everything once; a SIGKILL with messages pending loses
 * none, delivers twice only what could have been delivered before the kill, and after the
 * downtime delivers what came due meanwhile at once. Messages are read back by raw pulls, so
 * every stored copy counts.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { DecodedRecord } from '../../src/message/index.js';
import { ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { fakeUniqKey, sendV2 } from '../../test-support/broker-fixtures.js';
import { Cluster } from '../../test-support/cluster.js';
import { collectByUniq, untilStoreOpen } from '../../test-support/timer-fixtures.js';

const LEVELS_MS = [1000, 2000, 3000, 4000];
const QUEUES = 4;
let cluster: Cluster;
let client: RemotingClient;

before(async () => {
  cluster = await Cluster.start({
    brokers: [
      {
        brokerName: 'broker-delay',
        conf: {
          messageDelayLevel: '1s 2s 3s 4s',
          flushDelayOffsetInterval: 200,
          defaultTopicQueueNums: QUEUES,
        },
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
  level: number;
  /** Before the send: the broker's deliver-at time is at least this plus the level's delay. */
  sentAt: number;
  ackAt: number;
}

async function sendDelayed(topic: string, n: number, first: number): Promise<Sent[]> {
  const addr = cluster.brokers[0]!.addr;
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const level = 1 + (i % LEVELS_MS.length);
      const uniq = fakeUniqKey(first + i);
      const sentAt = Date.now();
      const res = await client.invoke(
        addr,
        sendV2({
          topic,
          body: Buffer.from(`d${i}`),
          queueId: i % QUEUES,
          uniqKey: uniq,
          extraProperties: { DELAY: String(level) },
        }),
      );
      assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
      return { uniq, level, sentAt, ackAt: Date.now() };
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
      const earliest = s.sentAt + LEVELS_MS[s.level - 1]!;
      assert.ok(
        r.storeTimestamp >= earliest,
        `${s.uniq} (level ${s.level}) delivered ${earliest - r.storeTimestamp} ms early`,
      );
    }
  }
}

test('a clean stop and start with delayed messages pending: each delivered once, none early', async () => {
  const broker = cluster.brokers[0]!;
  const sent = await sendDelayed('DelayClean', 200, 0);
  await new Promise((r) => setTimeout(r, 1500)); // level 1 delivered, the rest pending
  assert.equal(await broker.proc.stop(), 0);
  await broker.restart();
  await untilStoreOpen(client, broker.addr);
  const got = await collect('DelayClean', sent, 20_000);
  assertNotEarly(sent, got);
  for (const s of sent)
    assert.equal(got.get(s.uniq)!.length, 1, `${s.uniq} delivered ${got.get(s.uniq)!.length} times`);
});

test('SIGKILL with delayed messages pending: none lost, duplicates bounded, the past due delivered at once', async (t) => {
  const broker = cluster.brokers[0]!;
  const sent = await sendDelayed('DelayKill', 400, 10_000);
  await new Promise((r) => setTimeout(r, 1600));
  await broker.proc.kill();
  const killedAt = Date.now();
  await new Promise((r) => setTimeout(r, 2500)); // levels 1..3 come due while the broker is down
  await broker.restart();
  await untilStoreOpen(client, broker.addr);
  const restartedAt = Date.now();
  const got = await collect('DelayKill', sent, 20_000);
  assertNotEarly(sent, got);
  // Only messages that could have been delivered before the kill may be delivered again.
  const couldBeforeKill = sent.filter((s) => s.sentAt + LEVELS_MS[s.level - 1]! <= killedAt).length;
  const duplicates = [...got.values()].reduce((n, copies) => n + copies.length - 1, 0);
  t.diagnostic(
    `${duplicates} duplicates of ${sent.length}; ${couldBeforeKill} could have been delivered before the kill`,
  );
  for (const s of sent) {
    const copies = got.get(s.uniq)!;
    assert.ok(copies.length <= 2, `${s.uniq} delivered ${copies.length} times`);
    if (copies.length === 2) {
      assert.ok(
        s.sentAt + LEVELS_MS[s.level - 1]! <= killedAt,
        `${s.uniq} delivered twice though due after the kill`,
      );
    }
  }
  assert.ok(duplicates <= couldBeforeKill);
  // What came due during the downtime is delivered right after the restart, not a level later.
  for (const s of sent) {
    const dueBy = s.ackAt + LEVELS_MS[s.level - 1]!;
    const last = Math.max(...got.get(s.uniq)!.map((r) => r.storeTimestamp));
    if (dueBy < restartedAt) {
      assert.ok(
        last - restartedAt < 3000,
        `${s.uniq}, due during the downtime, delivered ${last - restartedAt} ms after the restart`,
      );
    }
  }
});
