/**
 * `npm run bench:e2e`: the end-to-end benchmark. Starts `tsmq start` (name server + broker, ASYNC
 * flush) in a child process on free ports with a temp data dir, then runs `tsmq bench` clients as
 * separate processes against it, and prints one JSON line per phase plus a summary:
 *
 *   produce        single-message sends, 256 in flight
 *   produce-auto-batch  single-message sends, 1024 in flight, through a producer with autoBatch
 *                  on (the defaults: they leave as SEND_BATCH_MESSAGEs of ≤ 128 KiB, at the latest at
 *                  the end of the event-loop turn;
 *                  a batch of ~115 messages needs that many sends in flight to fill it)
 *   produce-batch  SEND_BATCH_MESSAGE of 32, 16 in flight (fills the store past 1,000,000 messages)
 *   rss            the broker's resident memory after those 1,000,000+ stored messages
 *   consume        a new group reading the whole topic through a push consumer
 *   latency        end-to-end latency at 5,000 msgs/s for 10 s
 *
 * Options via env: BENCH_SINGLE (default 300000), BENCH_AUTO (default 300000), BENCH_BATCHED
 * (default 800000).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SERVER_NODE_FLAGS } from '../src/cli/node-flags.js';

const cli = path.resolve(import.meta.dirname, '../src/cli/main.js');
const SINGLE = Number(process.env.BENCH_SINGLE ?? 300_000);
const AUTO = Number(process.env.BENCH_AUTO ?? 300_000);
const BATCHED = Number(process.env.BENCH_BATCHED ?? 800_000);

function runCli(args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cli, ...args], { maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`tsmq ${args.join(' ')} failed: ${stderr || err.message}`));
      const last = stdout.trim().split('\n').pop() ?? '{}';
      try {
        resolve(JSON.parse(last) as Record<string, unknown>);
      } catch {
        resolve({ output: stdout.trim() });
      }
    });
  });
}

function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

async function startServer(dir: string): Promise<{ child: ChildProcess; namesrv: string }> {
  const child = spawn(
    process.execPath,
    // As `npm start` runs it.
    [...SERVER_NODE_FLAGS, cli, 'start', '--data', dir, '--namesrv-port', '0', '--broker-port', '0'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const m = /tsmq is running: name server ([\d.]+:\d+)/.exec(out);
    if (m) return { child, namesrv: m[1]! };
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`tsmq start did not come up:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function line(result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmq-bench-e2e-'));
  const { child, namesrv } = await startServer(dir);
  const n = ['-n', namesrv];
  try {
    await runCli(['topic', 'create', 'BenchTopic', '-r', '8', '-w', '8', '--json', ...n]);
    const produce = await runCli([
      'bench',
      'produce',
      '-t',
      'BenchTopic',
      '-c',
      String(SINGLE),
      '--concurrency',
      '256',
      ...n,
    ]);
    line({ phase: 'produce', ...produce });
    const auto = await runCli([
      'bench',
      'produce',
      '-t',
      'BenchTopic',
      '-c',
      String(AUTO),
      '--concurrency',
      '1024',
      '--auto-batch',
      ...n,
    ]);
    line({ phase: 'produce-auto-batch', ...auto });
    const batch = await runCli([
      'bench',
      'produce',
      '-t',
      'BenchTopic',
      '-c',
      String(BATCHED),
      '--concurrency',
      '16',
      '--batch',
      '32',
      ...n,
    ]);
    line({ phase: 'produce-batch', ...batch });
    const stored = SINGLE + AUTO + BATCHED + 600; // + the warm-up sends
    const rss = { phase: 'rss', storedMessages: stored, brokerRssMiB: rssMiB(child.pid!) };
    line(rss);
    const consume = await runCli([
      'bench',
      'consume',
      '-t',
      'BenchTopic',
      '-c',
      String(SINGLE + AUTO + BATCHED),
      ...n,
    ]);
    line({ phase: 'consume', ...consume });
    const latency = await runCli([
      'bench',
      'latency',
      '-t',
      'BenchTopic',
      '--rate',
      '5000',
      '--seconds',
      '10',
      ...n,
    ]);
    line({ phase: 'latency', ...latency });
    line({
      phase: 'summary',
      cores: os.cpus().length,
      produceMsgsPerSec: produce.msgsPerSec,
      produceAutoBatchMsgsPerSec: auto.msgsPerSec,
      produceBatchMsgsPerSec: batch.msgsPerSec,
      consumeMsgsPerSec: consume.msgsPerSec,
      latencyP99Ms: latency.p99Ms,
      brokerRssMiB: rss.brokerRssMiB,
      targets: { produce: 100_000, consume: 250_000, latencyP99Ms: 3, brokerRssMiB: 200 },
    });
    process.stderr.write(
      `e2e bench (${os.cpus().length} cores): produce ${produce.msgsPerSec} msgs/s ` +
        `(auto-batched ${auto.msgsPerSec}, batched ${batch.msgsPerSec}), ` +
        `consume ${consume.msgsPerSec} msgs/s, latency p99 ${latency.p99Ms} ms at 5000/s, ` +
        `broker RSS ${rss.brokerRssMiB} MiB after ${stored} messages\n`,
    );
  } finally {
    child.kill('SIGINT');
    await new Promise((r) => child.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
