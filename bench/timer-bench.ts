/**
 * `npm run bench:timer`: timer messages against a real broker process (a name server and a
 * broker, children of `tsmq`, on free ports with a temp data dir). One JSON line per phase:
 *
 *   lateness   BENCH_TIMERS (100,000) timers sent with TIMER_DELIVER_MS spread evenly over
 *              [T + lead, T + lead + BENCH_SPREAD_MS] (T = start of sending, lead = 10 s, spread
 *              20 s), consumed by a push consumer: lateness = receive time − max(deliverAt,
 *              time the send was acknowledged), p50 / p99 / max; storedLateness the same for the
 *              time the broker stored the message at its real queue (the timer's own precision,
 *              without the consumer's long poll); early = stored before deliverAt; the broker's
 *              RSS while they wait; the 1-minute load average (the figures suffer on a busy host)
 *   fill       BENCH_FILL (1,000,000) timers due 1 h .. 25 h ahead, sent as fast as the broker
 *              takes them, in four steps; after each, once the broker has linked them all: its
 *              RSS and V8 heap, pending count and timers held in memory (timerPending,
 *              timerHeld of GET_BROKER_RUNTIME_INFO)
 *
 * Env: BENCH_TIMERS, BENCH_SPREAD_MS, BENCH_FILL, BENCH_PRECISION_MS (the broker's
 * timerPrecisionMs, default 1000), BENCH_IN_FLIGHT (sends in flight, default 256).
 */
import fs from 'node:fs';
import os from 'node:os';
import { Admin, type MessageExt, PushConsumer } from '../src/client/index.js';
import { createRequest, RequestCode, ResponseCode } from '../src/protocol/index.js';
import { RemotingClient } from '../src/remoting/index.js';
import { fakeUniqKey, sendV2 } from '../test-support/broker-fixtures.js';
import { Cluster } from '../test-support/cluster.js';

const TIMERS = Number(process.env.BENCH_TIMERS ?? 100_000);
const SPREAD_MS = Number(process.env.BENCH_SPREAD_MS ?? 20_000);
const LEAD_MS = 10_000;
const FILL = Number(process.env.BENCH_FILL ?? 1_000_000);
const PRECISION_MS = Number(process.env.BENCH_PRECISION_MS ?? 1000);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 256);
const TOPIC = 'TimerBench';

function line(result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Sends `n` timer messages (deliverAt(i)), IN_FLIGHT at a time; returns each one's ack time. */
async function sendTimers(
  client: RemotingClient,
  addr: string,
  n: number,
  offset: number,
  deliverAt: (i: number) => number,
): Promise<Float64Array> {
  const acked = new Float64Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const at = deliverAt(i);
      const body = Buffer.from(JSON.stringify({ i, at }));
      for (let attempt = 0; ; attempt++) {
        const res = await client.invoke(
          addr,
          sendV2({
            topic: TOPIC,
            body,
            queueId: i % 4,
            uniqKey: fakeUniqKey(offset + i),
            extraProperties: { TIMER_DELIVER_MS: String(at) },
          }),
          10_000,
        );
        if (res.code === ResponseCode.SUCCESS) break;
        if (res.code !== ResponseCode.SYSTEM_BUSY || attempt > 100) {
          throw new Error(`send ${i} failed: ${res.code} ${res.remark}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      acked[i] = Date.now();
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return acked;
}

async function runtimeInfo(client: RemotingClient, addr: string): Promise<Record<string, string>> {
  const res = await client.invoke(addr, createRequest(RequestCode.GET_BROKER_RUNTIME_INFO));
  const body = JSON.parse(res.body!.toString('utf8')) as { table: Record<string, string> };
  return body.table;
}

async function until(what: string, cond: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const cluster = await Cluster.start({
    brokers: [
      {
        brokerName: 'broker-timer',
        conf: { timerPrecisionMs: PRECISION_MS, defaultTopicQueueNums: 4 },
      },
    ],
  });
  const broker = cluster.brokers[0]!;
  const pid = broker.proc.child.pid!;
  const client = new RemotingClient();
  const admin = new Admin({ namesrvAddr: cluster.namesrvAddr });
  let consumer: PushConsumer | undefined;
  try {
    const rssStart = rssMiB(pid);
    // ---- lateness
    const received = new Map<number, { at: number; recv: number; stored: number }>();
    let dup = 0;
    consumer = new PushConsumer({
      group: 'timer-bench',
      namesrvAddr: cluster.namesrvAddr,
      consumeFromWhere: 'FIRST_OFFSET',
      consumeBatchMaxSize: 32,
      pullBatchSize: 64,
    });
    consumer.subscribe(TOPIC, '*').onMessage(async (msgs: MessageExt[]) => {
      const now = Date.now();
      for (const m of msgs) {
        const { i, at } = JSON.parse(m.body.toString('utf8')) as { i: number; at: number };
        if (received.has(i)) dup++;
        else received.set(i, { at, recv: now, stored: m.storeTimestamp });
      }
    });
    // The topic is routed and the consumer owns its queues before any timer is sent.
    await admin.createTopic({ topic: TOPIC, brokerAddr: broker.addr, readQueueNums: 4, writeQueueNums: 4 });
    await until(
      'the topic routed',
      async () => (await admin.topicRoute(TOPIC).catch(() => undefined))?.queueDatas.length === 1,
      30_000,
    );
    await consumer.start();
    await until('the consumer owns the 4 queues', () => consumer!.assignedQueues().length === 4, 30_000);
    const t0 = Date.now();
    const acked = await sendTimers(
      client,
      broker.addr,
      TIMERS,
      0,
      (i) => t0 + LEAD_MS + Math.floor((i * SPREAD_MS) / TIMERS),
    );
    const sendMs = Date.now() - t0;
    const rssWaiting = rssMiB(pid);
    let rssMax = rssWaiting;
    const sampler = setInterval(() => {
      rssMax = Math.max(rssMax, rssMiB(pid));
    }, 200);
    await until('every timer consumed', () => received.size >= TIMERS, LEAD_MS + SPREAD_MS + 60_000);
    clearInterval(sampler);
    const late: number[] = [];
    const storedLate: number[] = [];
    let early = 0;
    for (const [i, r] of received) {
      if (r.stored < r.at) early++;
      late.push(r.recv - Math.max(r.at, acked[i]!));
      storedLate.push(r.stored - Math.max(r.at, acked[i]!));
    }
    late.sort((a, b) => a - b);
    storedLate.sort((a, b) => a - b);
    line({
      phase: 'lateness',
      timers: TIMERS,
      spreadMs: SPREAD_MS,
      precisionMs: PRECISION_MS,
      sendMs,
      sendRate: Math.round(TIMERS / (sendMs / 1000)),
      latenessMs: { p50: percentile(late, 50), p99: percentile(late, 99), max: late.at(-1) },
      storedLatenessMs: {
        p50: percentile(storedLate, 50),
        p99: percentile(storedLate, 99),
        max: storedLate.at(-1),
      },
      loadAverage: os.loadavg()[0],
      early,
      duplicates: dup,
      brokerRssMiB: { start: rssStart, whileWaiting: rssWaiting, max: rssMax },
    });
    await consumer.shutdown();
    consumer = undefined;

    // ---- fill: in four steps, so the broker's memory can be seen not to follow the pending count
    if (FILL === 0) return;
    const f0 = Date.now();
    const hour = 3_600_000;
    const steps: Array<Record<string, number>> = [];
    const per = Math.ceil(FILL / 4);
    let fillSendMs = 0;
    for (let k = 0; k * per < FILL; k++) {
      const n = Math.min(per, FILL - k * per);
      const s0 = Date.now();
      await sendTimers(client, broker.addr, n, TIMERS + k * per, (i) => {
        const j = k * per + i;
        return f0 + hour + Math.floor((((j * 7919) % FILL) * 24 * hour) / FILL);
      });
      fillSendMs += Date.now() - s0;
      await until(
        'every timer linked',
        async () => Number((await runtimeInfo(client, broker.addr)).timerOffsetBehind ?? 1) === 0,
        300_000,
      );
      const info = await runtimeInfo(client, broker.addr);
      steps.push({
        timerPending: Number(info.timerPending),
        timerHeld: Number(info.timerHeld),
        brokerRssMiB: rssMiB(pid),
        brokerHeapUsedMiB: Math.round(Number(info.memoryHeapUsed) / 1024 / 1024),
      });
    }
    line({
      phase: 'fill',
      timers: FILL,
      sendMs: fillSendMs,
      sendRate: Math.round(FILL / (fillSendMs / 1000)),
      steps,
    });
  } finally {
    await consumer?.shutdown().catch(() => undefined);
    admin.close();
    client.close();
    await cluster.close();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
