/**
 * Store benchmark (`npm run bench:store`): prints one JSON line per scenario, then a human summary.
 *
 *   append-async      ASYNC flush, a window of appends in flight: msgs/s, MiB/s, latency p50/p99,
 *                     after --warmup untimed appends (the JIT compiles the put path, the CRC
 *                     thread starts: a broker's steady state rather than its first second)
 *   append-sync-N     SYNC flush (group commit) with N concurrent appenders, each awaiting its ack
 *   read-queue-hot    getMessages (32 per call) of the newest messages, which the tail cache
 *                     holds (consumers keeping up with producers), by 10 consumer groups: msgs/s;
 *                     framing checked, CRCs not (the bytes never left this process's memory)
 *   read-queue        one group over everything appended, mostly from disk (a backlog), every
 *                     record's CRCs verified: msgs/s
 *   read-units        raw consume-queue unit reads (32 per call): units/s
 *   recovery          a child appends with checkpoints off and is SIGKILLed; reopening scans,
 *                     validates and re-dispatches the whole dirty log: seconds per GiB
 *
 * `npm run bench:store` runs it with the broker's Node flags (`--initial-old-space-size=64`, see
 * src/cli/node-flags.ts), so the store is measured as `npm start` runs it.
 *
 * Options: --messages N (default 500000), --warmup N (100000), --size BYTES (1024), --sync-seconds S (3),
 * --recovery-mib M (512), --dir DIR (a temp dir), --only a,b.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { MessageStore } from '../src/store/index.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '500000' },
    warmup: { type: 'string', default: '100000' },
    size: { type: 'string', default: '1024' },
    'sync-seconds': { type: 'string', default: '3' },
    'recovery-mib': { type: 'string', default: '512' },
    dir: { type: 'string' },
    only: { type: 'string' },
    child: { type: 'string' },
  },
});

const MESSAGES = Number(values.messages);
const WARMUP = Number(values.warmup);
const SIZE = Number(values.size);
const only = values.only ? new Set(values.only.split(',')) : undefined;
const want = (name: string) => !only || only.has(name);
const baseDir = values.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tsmq-bench-'));
const TOPIC = 'BenchTopic';
const QUEUES = 8;
const body = Buffer.alloc(SIZE, 0x61);
// Like every RocketMQ client, each message carries a unique id (UNIQ_KEY), which the index stores:
// 32 hex digits, the last 20 a counter. Its low 16 bits come from a table, so that making the
// properties costs the harness little next to what the store does with them.
let uniq = 0;
const HEX4 = Array.from({ length: 65536 }, (_, i) => i.toString(16).toUpperCase().padStart(4, '0'));
let uniqHigh = -1;
let propsHead = '';
const props = () => {
  const n = uniq++;
  const high = Math.floor(n / 65536);
  if (high !== uniqHigh) {
    uniqHigh = high;
    propsHead = `TAGS\u0001bench\u0002UNIQ_KEY\u00017F0000010000${high.toString(16).toUpperCase().padStart(16, '0')}`;
  }
  return `${propsHead}${HEX4[n & 0xffff]}\u0002`;
};

function pct(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;
const results: Array<Record<string, unknown>> = [];
function emit(r: Record<string, unknown>): void {
  results.push(r);
  console.log(JSON.stringify(r));
}

/**
 * CPU time (µs) the main thread has used, from /proc (Linux; undefined elsewhere): with a helper
 * thread, process.cpuUsage() counts both, and the main thread is what bounds throughput.
 */
function mainThreadCpuUs(): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 (1-based) of stat, in clock ticks (100 per second).
    return (Number(f[11]) + Number(f[12])) * 10_000;
  } catch {
    return undefined;
  }
}

async function appendAsync(dir: string): Promise<void> {
  const store = await MessageStore.open({ rootDir: dir, flushMode: 'ASYNC' });
  // Untimed first: the JIT compiles the put path and the CRC thread starts, as in a broker that
  // has been running for a while (the timed appends measure that steady state).
  await appendUntimed(store, WARMUP);
  await store.waitDispatched();
  const lat = new Float64Array(MESSAGES);
  const window = 8192;
  let issued = 0;
  let done = 0;
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpuUs();
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const pump = () => {
      while (issued < MESSAGES && issued - done < window) {
        const i = issued++;
        // performance.now() (a double, in ms) rather than hrtime.bigint(): no BigInt per message;
        // imported, since the global `performance` is a getter that optimized code cannot inline.
        // The start time waits in lat[i] itself, so the callback holds nothing but i.
        lat[i] = performance.now();
        store.put({ topic: TOPIC, queueId: i % QUEUES, body, properties: props() }).then(() => {
          lat[i] = performance.now() - lat[i]!;
          done++;
          if (done === MESSAGES) resolve();
          else if (issued < MESSAGES && issued - done <= window / 2) pump();
        }, reject);
      }
    };
    pump();
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const main1 = mainThreadCpuUs();
  lat.sort();
  emit({
    scenario: 'append-async',
    messages: MESSAGES,
    messageBytes: SIZE,
    msgsPerSec: Math.round(MESSAGES / secs),
    mibPerSec: round((MESSAGES * SIZE) / secs / 1048576),
    p50Ms: round(pct(lat, 50), 3),
    p99Ms: round(pct(lat, 99), 3),
    windowInFlight: window,
    warmupMessages: WARMUP,
    // CPU per message over the timed appends: every thread of the process, and the main thread.
    cpuUsPerMsg: round((cpu.user + cpu.system) / MESSAGES, 2),
    mainCpuUsPerMsg: main0 === undefined || main1 === undefined ? null : round((main1 - main0) / MESSAGES, 2),
  });
  await store.waitDispatched();
  await readQueue(store);
  await store.close();
}

async function readQueue(store: MessageStore): Promise<void> {
  if (want('read-queue-hot')) {
    // Consumers that keep up read what was just written: the tail cache, no syscall. Read the
    // newest messages that fit in the cache (half of it, to stay clear of its edge).
    const perQueue = Math.floor(store.opts.tailCacheBytes / 2 / (SIZE + 120) / QUEUES);
    // Ten consumer groups (a fan-out) read the same newest messages, one after the other.
    const groups = 10;
    let n = 0;
    const t0 = process.hrtime.bigint();
    for (let g = 0; g < groups; g++) {
      for (let q = 0; q < QUEUES; q++) {
        const max = store.maxOffsetInQueue(TOPIC, q);
        let off = Math.max(store.minOffsetInQueue(TOPIC, q), max - perQueue);
        while (off < max) {
          const r = await store.getMessages(TOPIC, q, off, { maxCount: 32 });
          n += r.records.length;
          off = r.nextBeginOffset;
        }
      }
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    emit({ scenario: 'read-queue-hot', messages: n, groups, perCall: 32, msgsPerSec: Math.round(n / secs) });
  }
  if (want('read-queue')) {
    let n = 0;
    const t0 = process.hrtime.bigint();
    for (let q = 0; q < QUEUES; q++) {
      let off = store.minOffsetInQueue(TOPIC, q);
      const max = store.maxOffsetInQueue(TOPIC, q);
      while (off < max) {
        const r = await store.getMessages(TOPIC, q, off, { maxCount: 32 });
        n += r.records.length;
        off = r.nextBeginOffset;
      }
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    emit({
      scenario: 'read-queue',
      messages: n,
      perCall: 32,
      msgsPerSec: Math.round(n / secs),
      crcChecked: true,
    });
  }
  if (want('read-units')) {
    let n = 0;
    const t0 = process.hrtime.bigint();
    for (let q = 0; q < QUEUES; q++) {
      const cq = store.consumeQueues.get(TOPIC, q)!;
      for (let off = cq.minOffset(); off < cq.maxOffset(); ) {
        const units = await cq.readUnits(off, 32);
        const k = units.length / 20;
        n += k;
        off += k;
      }
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    emit({ scenario: 'read-units', units: n, perCall: 32, unitsPerSec: Math.round(n / secs) });
  }
}

async function appendSync(dir: string, appenders: number): Promise<void> {
  const store = await MessageStore.open({ rootDir: dir, flushMode: 'SYNC' });
  const seconds = Number(values['sync-seconds']);
  const lats: number[] = [];
  const deadline = Date.now() + seconds * 1000;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: appenders }, async (_, a) => {
      while (Date.now() < deadline) {
        const s = process.hrtime.bigint();
        await store.put({ topic: TOPIC, queueId: a % QUEUES, body, properties: props() });
        lats.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
    }),
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const sorted = Float64Array.from(lats).sort();
  emit({
    scenario: `append-sync-${appenders}`,
    appenders,
    messages: lats.length,
    messageBytes: SIZE,
    msgsPerSec: Math.round(lats.length / secs),
    mibPerSec: round((lats.length * SIZE) / secs / 1048576),
    p50Ms: round(pct(sorted, 50), 3),
    p99Ms: round(pct(sorted, 99), 3),
  });
  await store.close();
}

/** Appends `n` messages, 8192 in flight, without measuring anything. */
function appendUntimed(store: MessageStore, n: number): Promise<void> {
  let issued = 0;
  let done = 0;
  return new Promise<void>((resolve, reject) => {
    if (n === 0) resolve();
    const pump = () => {
      while (issued < n && issued - done < 8192) {
        const i = issued++;
        store.put({ topic: TOPIC, queueId: i % QUEUES, body, properties: props() }).then(() => {
          done++;
          if (done === n) resolve();
          else pump();
        }, reject);
      }
    };
    pump();
  });
}

/** Child mode: append `mib` MiB with no checkpoints, print "done", wait to be killed. */
async function recoveryChild(dir: string, mib: number): Promise<void> {
  const store = await MessageStore.open({
    rootDir: dir,
    flushMode: 'ASYNC',
    checkpointIntervalMs: 3_600_000,
  });
  await appendUntimed(store, Math.ceil((mib * 1048576) / (SIZE + 120)));
  await store.commitLog.flushAll();
  process.stdout.write(`done ${store.positions().writtenOffset}\n`);
  setInterval(() => {}, 1000);
}

async function recovery(dir: string): Promise<void> {
  const mib = Number(values['recovery-mib']);
  const child = spawn(
    process.execPath,
    [
      new URL(import.meta.url).pathname,
      '--child',
      dir,
      '--recovery-mib',
      String(mib),
      '--size',
      String(SIZE),
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const bytes = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /done (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (c) => reject(new Error(`recovery child exited ${c}`)));
  });
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  const t0 = process.hrtime.bigint();
  const store = await MessageStore.open({ rootDir: dir, flushMode: 'ASYNC' });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const r = store.recovery;
  emit({
    scenario: 'recovery',
    dirtyBytes: r.end - (r.scannedFrom ?? 0),
    logBytes: bytes,
    recordsValidated: r.recordsValidated,
    redispatchedBytes: r.redispatchedBytes,
    seconds: round(secs, 3),
    secondsPerGiB: round(secs / ((r.end - (r.scannedFrom ?? 0)) / 1073741824), 3),
  });
  await store.close();
}

async function main(): Promise<void> {
  if (values.child) {
    await recoveryChild(values.child, Number(values['recovery-mib']));
    return;
  }
  try {
    if (want('append-async') || want('read-queue') || want('read-queue-hot') || want('read-units'))
      await appendAsync(path.join(baseDir, 'async'));
    for (const n of [1, 16, 256]) {
      if (want(`append-sync-${n}`)) await appendSync(path.join(baseDir, `sync-${n}`), n);
    }
    if (want('recovery')) await recovery(path.join(baseDir, 'recovery'));
  } finally {
    if (!values.dir) fs.rmSync(baseDir, { recursive: true, force: true });
  }
  const by = Object.fromEntries(results.map((r) => [r.scenario, r]));
  const f = (s: string, k: string) => (by[s] ? String(by[s][k]) : '-');
  console.log(
    `store bench (${SIZE} B messages, ${os.cpus().length} cores): ASYNC ${f('append-async', 'msgsPerSec')} msgs/s; ` +
      `SYNC 1/16/256 appenders ${f('append-sync-1', 'msgsPerSec')}/${f('append-sync-16', 'msgsPerSec')}/${f('append-sync-256', 'msgsPerSec')} msgs/s; ` +
      `queue reads hot/backlog ${f('read-queue-hot', 'msgsPerSec')}/${f('read-queue', 'msgsPerSec')} msgs/s; recovery ${f('recovery', 'secondsPerGiB')} s/GiB`,
  );
}

await main();
