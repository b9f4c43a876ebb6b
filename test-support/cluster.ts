/**
 * Real clusters for end-to-end tests: a name server and brokers as child processes of the `tsmq`
 * command (dist/src/cli/main.js), on free ports, each broker with its own temp data directory.
 * A broker can be stopped (SIGINT), killed (SIGKILL), frozen (SIGSTOP/SIGCONT) and restarted on
 * the same port and data.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const main = path.resolve(import.meta.dirname, '../src/cli/main.js');

export class RoleProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  private output = '';

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [main, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TSMQ_LOG_LEVEL: process.env.TSMQ_LOG_LEVEL ?? 'info' },
    });
    const take = (c: Buffer) => {
      this.output += c.toString();
      if (this.output.length > 1 << 20) this.output = this.output.slice(-(1 << 19));
    };
    this.child.stdout!.on('data', take);
    this.child.stderr!.on('data', take);
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  out(): string {
    return this.output;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits until the output matches `re` (10 s), failing with the output so far. */
  async waitFor(re: RegExp, what: string, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.output.match(re);
      if (m) return m;
      assert.ok(this.alive, `${what}: the process exited:\n${this.output}`);
      assert.ok(Date.now() < deadline, `${what} did not appear:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.alive) this.child.kill(sig);
  }

  /** SIGINT and wait for a clean exit (SIGKILL after 10 s). */
  async stop(): Promise<number | null> {
    if (!this.alive) return this.child.exitCode;
    this.child.kill('SIGCONT');
    this.child.kill('SIGINT');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }

  async kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }
}

export interface BrokerSpec {
  brokerName: string;
  cluster?: string;
  /** Extra broker.conf keys (registerNameServerPeriod, autoCreateTopicEnable, …). */
  conf?: Record<string, string | number | boolean>;
}

export class BrokerProcess {
  proc: RoleProcess;
  port = 0;

  constructor(
    readonly spec: BrokerSpec,
    readonly dir: string,
    private readonly namesrvAddr: () => string,
  ) {
    this.proc = this.spawn(0);
  }

  get addr(): string {
    return `127.0.0.1:${this.port}`;
  }

  private spawn(port: number): RoleProcess {
    const conf = path.join(this.dir, 'broker.conf');
    const lines = {
      brokerClusterName: this.spec.cluster ?? 'DefaultCluster',
      brokerName: this.spec.brokerName,
      brokerId: 0,
      brokerIP1: '127.0.0.1',
      namesrvAddr: this.namesrvAddr(),
      listenPort: port,
      storePathRootDir: path.join(this.dir, 'store'),
      ...this.spec.conf,
    };
    fs.writeFileSync(
      conf,
      Object.entries(lines)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n'),
    );
    return new RoleProcess(['broker', '-c', conf]);
  }

  async started(): Promise<this> {
    const m = await this.proc.waitFor(
      /broker \S+ listening on [\d.]+:(\d+)/,
      `broker ${this.spec.brokerName}`,
    );
    this.port = Number(m[1]);
    return this;
  }

  /** Starts the broker again on the same port and data (after stop or kill). */
  async restart(): Promise<this> {
    assert.ok(!this.proc.alive, 'stop or kill the broker before restarting it');
    this.proc = this.spawn(this.port);
    return this.started();
  }
}

export interface ClusterOptions {
  brokers: BrokerSpec[];
  /** Name server expiry of silent brokers, ms (default: the name server's 120 s). */
  brokerExpiryMs?: number;
  scanIntervalMs?: number;
}

export class Cluster {
  readonly root: string;
  namesrv!: RoleProcess;
  namesrvAddr = '';
  readonly brokers: BrokerProcess[] = [];

  private constructor() {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmq-cluster-'));
  }

  static async start(opts: ClusterOptions): Promise<Cluster> {
    const c = new Cluster();
    try {
      const args = ['namesrv', '--port', '0'];
      if (opts.brokerExpiryMs !== undefined) args.push('--broker-expiry-ms', String(opts.brokerExpiryMs));
      if (opts.scanIntervalMs !== undefined) args.push('--scan-interval-ms', String(opts.scanIntervalMs));
      c.namesrv = new RoleProcess(args);
      const m = await c.namesrv.waitFor(/name server listening on [\d.]+:(\d+)/, 'the name server');
      c.namesrvAddr = `127.0.0.1:${m[1]}`;
      for (const spec of opts.brokers) {
        const dir = path.join(c.root, spec.brokerName);
        fs.mkdirSync(dir, { recursive: true });
        c.brokers.push(new BrokerProcess(spec, dir, () => c.namesrvAddr));
      }
      await Promise.all(c.brokers.map((b) => b.started()));
      return c;
    } catch (e) {
      await c.close();
      throw e;
    }
  }

  broker(name: string): BrokerProcess {
    const b = this.brokers.find((x) => x.spec.brokerName === name);
    assert.ok(b, `no broker ${name}`);
    return b;
  }

  /** Kills everything and removes the data. */
  async close(): Promise<void> {
    await Promise.all([...this.brokers.map((b) => b.proc.kill()), this.namesrv?.kill()]);
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** Runs the `tsmq` command against the name servers `namesrv`: its stdout, or a rejection with its output. */
export function tsmqCli(args: string[], namesrv: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [main, ...args, '-n', namesrv],
      { timeout: 30_000, env: { ...process.env, TSMQ_LOG_LEVEL: 'error' } },
      (err, stdout, stderr) =>
        err ? reject(new Error(`tsmq ${args.join(' ')}: ${stderr}${stdout}`)) : resolve(stdout),
    );
  });
}
