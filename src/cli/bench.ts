/**
 * `tsmq bench`, in the spirit of RocketMQ's benchmark tool: load against a running cluster, one
 * JSON line per run on stdout (for scripts) and one human line on stderr.
 *
 *   tsmq bench produce  -t T --size 1024 --count N --concurrency C [--batch B | --auto-batch]
 *       acknowledged sends per second, with send latency p50/p99/max; --auto-batch makes single
 *       send()s through a producer with autoBatch on (--batch-delay-ms, --batch-max-bytes)
 *   tsmq bench consume  -t T -g G --count N [--pull-batch-size B]
 *       messages per second through a push consumer reading the topic from the start
 *   tsmq bench latency  -t T --rate R --seconds S [--same-process]
 *       end-to-end latency (consumer receipt − producer send time, on the host's wall clock with
 *       sub-millisecond resolution) of messages sent at a steady rate, after 2 s unmeasured at that
 *       rate; the consumer runs in a process of its own unless --same-process
 */
import { fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { type Command, InvalidArgumentError } from 'commander';
import { DEFAULT_PULLS_IN_FLIGHT, type Message, Producer, PushConsumer } from '../client/index.js';
import { clientCommand } from './admin-commands.js';
import { SERVER_NODE_FLAGS } from './node-flags.js';
import { nonNegativeInt, positiveInt } from './options.js';

interface BenchFlags {
  namesrv: string;
  topic: string;
  size: number;
}

/** Percentile of ascending numbers (nearest rank). */
function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round = (n: number, d = 3) => Math.round(n * 10 ** d) / 10 ** d;

function report(result: Record<string, unknown>, human: string): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.stderr.write(`${human}\n`);
}

function latencySummary(ms: number[]): { p50Ms: number; p99Ms: number; maxMs: number } {
  ms.sort((a, b) => a - b);
  return { p50Ms: round(pct(ms, 50)), p99Ms: round(pct(ms, 99)), maxMs: round(ms[ms.length - 1] ?? 0) };
}

interface ProduceFlags extends BenchFlags {
  count: number;
  concurrency: number;
  batch: number;
  autoBatch?: boolean;
  batchDelayMs?: number;
  batchMaxBytes?: number;
}

async function produce(o: ProduceFlags): Promise<void> {
  if (o.autoBatch && o.batch > 1)
    throw new InvalidArgumentError('--auto-batch sends single messages: no --batch');
  const autoBatch = o.autoBatch
    ? {
        ...(o.batchDelayMs !== undefined && { maxDelayMs: o.batchDelayMs }),
        ...(o.batchMaxBytes !== undefined && { maxBytes: o.batchMaxBytes }),
      }
    : undefined;
  const producer = new Producer({
    group: 'tsmq-bench-producer',
    namesrvAddr: o.namesrv,
    sendTimeoutMs: 30_000,
    ...(autoBatch && { autoBatch }),
  });
  await producer.start();
  const body = Buffer.alloc(o.size, 'x');
  const message = (): Message => ({ topic: o.topic, body, tags: 'bench' });
  // Warm up: routes, connections, JIT.
  for (let i = 0; i < 200; i++) await producer.send(message());
  const latencies: number[] = [];
  let sent = 0;
  let errors = 0;
  let next = 0;
  const started = process.hrtime.bigint();
  const worker = async () => {
    while (next < o.count) {
      const n = Math.min(o.batch, o.count - next);
      next += n;
      const t0 = process.hrtime.bigint();
      try {
        if (o.batch > 1) await producer.sendBatch(Array.from({ length: n }, message));
        else await producer.send(message());
        sent += n;
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch {
        errors += n;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await producer.shutdown();
  const msgsPerSec = Math.round(sent / seconds);
  const result = {
    bench: 'produce',
    size: o.size,
    concurrency: o.concurrency,
    batch: o.batch,
    ...(producer.autoBatch && { autoBatch: producer.autoBatch }),
    sent,
    errors,
    seconds: round(seconds),
    msgsPerSec,
    mibPerSec: round((msgsPerSec * o.size) / 1048576, 1),
    ...latencySummary(latencies),
  };
  report(
    result,
    `produce${producer.autoBatch ? ' (auto-batch)' : ''}: ${sent} × ${o.size} B in ${result.seconds} s = ${msgsPerSec} msgs/s (${result.mibPerSec} MiB/s), ` +
      `send p50 ${result.p50Ms} ms p99 ${result.p99Ms} ms, ${errors} errors`,
  );
}

async function consume(
  o: BenchFlags & {
    group: string;
    count: number;
    timeoutMs: number;
    pullBatchSize: number;
    pullsInFlight?: number;
  },
): Promise<void> {
  const consumer = new PushConsumer({
    group: o.group,
    namesrvAddr: o.namesrv,
    consumeFromWhere: 'FIRST_OFFSET',
    pullBatchSize: o.pullBatchSize,
    ...(o.pullsInFlight !== undefined && { pullsInFlightPerQueue: o.pullsInFlight }),
    consumeBatchMaxSize: 32,
  });
  let got = 0;
  let first = 0n;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  consumer.subscribe(o.topic, '*').onMessage(async (msgs) => {
    if (got === 0) first = process.hrtime.bigint();
    got += msgs.length;
    if (got >= o.count) done();
  });
  const timer = setTimeout(done, o.timeoutMs);
  await consumer.start();
  await finished;
  clearTimeout(timer);
  const seconds = got > 0 ? Number(process.hrtime.bigint() - first) / 1e9 : 0;
  const { pulls, pullsDiscarded } = consumer.stats();
  await consumer.shutdown();
  const msgsPerSec = seconds > 0 ? Math.round(got / seconds) : 0;
  report(
    {
      bench: 'consume',
      pullBatchSize: o.pullBatchSize,
      pullsInFlightPerQueue: o.pullsInFlight ?? DEFAULT_PULLS_IN_FLIGHT,
      received: got,
      pulls,
      pullsDiscarded,
      seconds: round(seconds),
      msgsPerSec,
      complete: got >= o.count,
    },
    `consume: ${got} messages in ${round(seconds)} s = ${msgsPerSec} msgs/s${got < o.count ? ' (timed out)' : ''}`,
  );
}

/**
 * Sends `rate` messages a second for `seconds`, from a 1 ms timer: each tick sends what is due by
 * then, so a late tick sends a few at once (every message is stamped when it is really sent).
 */
function paced(rate: number, seconds: number, send: () => void, nowMs: () => number): Promise<number> {
  const total = Math.round(rate * seconds);
  const start = nowMs();
  let sent = 0;
  return new Promise<number>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((nowMs() - start) / 1000) * rate));
      while (sent < due) {
        sent++;
        send();
      }
      if (sent >= total) {
        clearInterval(tick);
        resolve(sent);
      }
    }, 1);
  });
}

/** Unmeasured sending at the measured rate before measuring (JIT, buffers, heap sizes settle). */
const LATENCY_WARMUP_SECONDS = 2;

/** Wall-clock milliseconds with sub-millisecond resolution, comparable between processes of one host. */
const wallMs = (): number => performance.timeOrigin + performance.now();

/** The receiving side of `tsmq bench latency`: a push consumer that keeps each message's latency. */
interface LatencyReceiver {
  /** Messages received so far (warm-up ones included). */
  arrived(): number;
  /** Waits (up to 10 s) for `sent` measured messages, stops, and returns their latencies in ms. */
  finish(sent: number): Promise<number[]>;
}

async function startLatencyReceiver(
  namesrv: string,
  topic: string,
  onFirstArrival: () => void = () => {},
): Promise<LatencyReceiver> {
  const group = `tsmq-bench-latency-${process.pid}`;
  const consumer = new PushConsumer({ group, namesrvAddr: namesrv, consumeFromWhere: 'LAST_OFFSET' });
  const latencies: number[] = [];
  let arrived = 0;
  consumer.subscribe(topic, 'latency').onMessage(async (msgs) => {
    const at = wallMs();
    if (arrived === 0) onFirstArrival();
    arrived += msgs.length;
    for (const m of msgs) {
      // Warm-up messages carry a stamp that is not a number.
      const sentAt = Number(m.properties.get('benchSentAtMs'));
      if (Number.isFinite(sentAt)) latencies.push(at - sentAt);
    }
  });
  await consumer.start();
  return {
    arrived: () => arrived,
    async finish(sent) {
      const deadline = Date.now() + 10_000;
      while (latencies.length < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await consumer.shutdown();
      return latencies;
    },
  };
}

/**
 * The receiver in a child process (`tsmq bench latency-receiver`), as RocketMQ's benchmark runs its
 * producer and consumer as separate programs: each process then carries only its own half of the
 * work and of the garbage collection. Messages go over the IPC channel: {arrived} once messages
 * flow, {sent} from the parent when it is done, {latencies} back.
 */
async function childLatencyReceiver(namesrv: string, topic: string): Promise<LatencyReceiver> {
  const main = fileURLToPath(new URL('./main.js', import.meta.url));
  const child = fork(main, ['bench', 'latency-receiver', '-t', topic, '-n', namesrv], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    // A consumer process that cares about its latency runs with the server's heap flags too.
    execArgv: [...process.execArgv, ...SERVER_NODE_FLAGS],
  });
  let flowing = false;
  let result: ((ms: number[]) => void) | undefined;
  let failed: ((e: Error) => void) | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (m: { ready?: boolean; arrived?: boolean; latencies?: number[] }) => {
      if (m.ready) resolve();
      if (m.arrived) flowing = true;
      if (m.latencies) result?.(m.latencies);
    });
    child.once('exit', (code) => {
      const e = new Error(`the latency receiver exited (code ${code})`);
      reject(e);
      failed?.(e);
    });
  });
  await ready;
  return {
    arrived: () => (flowing ? 1 : 0),
    finish(sent) {
      return new Promise<number[]>((resolve, reject) => {
        result = resolve;
        failed = reject;
        child.send({ sent });
      });
    },
  };
}

/** `tsmq bench latency-receiver`: the child side of childLatencyReceiver. */
async function latencyReceiverChild(o: BenchFlags): Promise<void> {
  const send = process.send?.bind(process);
  if (!send) throw new InvalidArgumentError('latency-receiver is started by `tsmq bench latency`');
  const receiver = await startLatencyReceiver(o.namesrv, o.topic, () => send({ arrived: true }));
  process.on('message', (m: { sent?: number }) => {
    if (m.sent === undefined) return;
    void receiver.finish(m.sent).then((latencies) => send({ latencies }, () => process.exit(0)));
  });
  send({ ready: true });
}

async function latency(
  o: BenchFlags & { rate: number; seconds: number; sameProcess?: boolean },
): Promise<void> {
  const receiver = o.sameProcess
    ? await startLatencyReceiver(o.namesrv, o.topic)
    : await childLatencyReceiver(o.namesrv, o.topic);
  const producer = new Producer({ group: 'tsmq-bench-producer', namesrvAddr: o.namesrv });
  await producer.start();
  const body = Buffer.alloc(o.size, 'x');
  // Only messages sent while measuring count: the others' stamp is not a number.
  let stamp = '';
  const sendOne = () =>
    producer
      .send({
        topic: o.topic,
        body,
        tags: 'latency',
        properties: { benchSentAtMs: stamp + wallMs().toFixed(3) },
      })
      .catch(() => undefined);
  // Warm up: one at a time until the consumer owns its queues and messages flow, then at the
  // measured rate (a jump from a trickle to the full rate at the start of the measurement
  // used to put its first few hundred milliseconds of adaptation into the p99).
  stamp = 'warm-';
  const flowDeadline = Date.now() + 10_000;
  while (receiver.arrived() === 0 && Date.now() < flowDeadline) {
    await sendOne();
    await new Promise((r) => setTimeout(r, 5));
  }
  await paced(o.rate, LATENCY_WARMUP_SECONDS, () => void sendOne(), wallMs);
  stamp = '';
  const sent = await paced(o.rate, o.seconds, () => void sendOne(), wallMs);
  const latencies = await receiver.finish(sent);
  await producer.shutdown();
  const summary = latencySummary(latencies);
  report(
    {
      bench: 'latency',
      rate: o.rate,
      seconds: o.seconds,
      processes: o.sameProcess ? 'one' : 'producer and consumer apart',
      sent,
      received: latencies.length,
      ...summary,
    },
    `latency at ${o.rate} msgs/s: ${latencies.length}/${sent} received, p50 ${summary.p50Ms} ms, ` +
      `p99 ${summary.p99Ms} ms, max ${summary.maxMs} ms`,
  );
}

function bytes(v: string): number {
  const n = positiveInt(v);
  if (n > 4 * 1024 * 1024) throw new InvalidArgumentError('at most 4 MiB');
  return n;
}

export function addBenchCommands(program: Command): void {
  const bench = program.command('bench').description('load a running cluster and print JSON figures');
  const common = (c: Command) =>
    clientCommand(c)
      .requiredOption('-t, --topic <topic>', 'topic (create it first, e.g. 8 queues)')
      .option('-s, --size <bytes>', 'message body size', bytes, 1024);
  common(bench.command('produce').description('acknowledged sends per second'))
    .option('-c, --count <n>', 'messages to send', positiveInt, 200_000)
    .option('--concurrency <n>', 'sends in flight', positiveInt, 256)
    .option('--batch <n>', 'messages per send (SEND_BATCH_MESSAGE when > 1)', positiveInt, 1)
    .option('--auto-batch', 'single send()s through a producer with autoBatch on')
    .option('--batch-delay-ms <ms>', 'autoBatch.maxDelayMs (with --auto-batch; default 0)', nonNegativeInt)
    .option('--batch-max-bytes <bytes>', 'autoBatch.maxBytes (with --auto-batch; default 128 KiB)', bytes)
    .action(produce);
  common(bench.command('consume').description('messages per second through a push consumer'))
    .option(
      '-g, --group <group>',
      'consumer group (a new one reads from the start)',
      `tsmq-bench-${process.pid}`,
    )
    .option('-c, --count <n>', 'messages to receive', positiveInt, 200_000)
    .option('--timeout-ms <ms>', 'give up after', positiveInt, 120_000)
    .option('--pull-batch-size <n>', 'messages asked per pull (RocketMQ default 32)', positiveInt, 32)
    .option(
      '--pulls-in-flight <n>',
      `pulls of a queue in flight (default ${DEFAULT_PULLS_IN_FLIGHT})`,
      positiveInt,
    )
    .action(consume);
  common(bench.command('latency').description('end-to-end latency at a steady rate'))
    .option('-r, --rate <n>', 'messages per second', positiveInt, 5000)
    .option('--seconds <n>', 'how long', positiveInt, 10)
    .option('--same-process', 'receive in the producing process (default: a consumer process of its own)')
    .action(latency);
  common(bench.command('latency-receiver', { hidden: true })).action(latencyReceiverChild);
}
