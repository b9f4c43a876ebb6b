/**
 * The role commands: `tsmq start` (name server + broker in one process, data under ./data),
 * `tsmq namesrv` and `tsmq broker -c broker.conf` (the roles apart, for a cluster).
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { Broker, DEFAULT_BROKER_PORT, parseBrokerConf } from '../broker/index.js';
import { TsmqError } from '../common/errors.js';
import { createLogger } from '../common/log.js';
import { DEFAULT_NAMESRV_PORT, NameServer } from '../namesrv/index.js';
import { port, positiveInt } from './options.js';

function flushMode(v: string): 'ASYNC' | 'SYNC' {
  const m = v.toUpperCase().replace(/_FLUSH$/, '');
  if (m !== 'ASYNC' && m !== 'SYNC') throw new InvalidArgumentError('expected ASYNC_FLUSH or SYNC_FLUSH');
  return m;
}

/**
 * broker.conf keys from the environment: `TSMQ_BROKER_<key>=<value>` for any key (spelled as in
 * broker.conf), and RocketMQ's `NAMESRV_ADDR` for namesrvAddr. Values are checked like the file's;
 * a bad one names its variable.
 */
export function brokerEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const lines: string[] = [];
  const names: string[] = [];
  if (env.NAMESRV_ADDR) {
    lines.push(`namesrvAddr=${env.NAMESRV_ADDR}`);
    names.push('NAMESRV_ADDR');
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('TSMQ_BROKER_') || value === undefined) continue;
    lines.push(`${name.slice('TSMQ_BROKER_'.length)}=${value}`);
    names.push(name);
  }
  let parsed: ReturnType<typeof parseBrokerConf>;
  try {
    parsed = parseBrokerConf(lines.join('\n'));
  } catch (e) {
    const line = Number(/line (\d+)/.exec((e as Error).message)?.[1] ?? 0);
    throw new TsmqError(
      'CONFIG_INVALID',
      `${names[line - 1] ?? 'environment'}: ${(e as Error).message.replace(/^line \d+: /, '')}`,
    );
  }
  const unknown = parsed.unknownKeys[0];
  if (unknown)
    throw new TsmqError(
      'CONFIG_INVALID',
      `${names[unknown.line - 1]}: ${unknown.key} is not a broker.conf key`,
    );
  return parsed.config;
}

/** Closes `closers` in order on SIGINT/SIGTERM, then exits 0. */
function stopOnSignal(log: ReturnType<typeof createLogger>, closers: Array<() => Promise<void>>): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    for (const close of closers) await close();
    log.info('tsmq stopped cleanly');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

export function addRoleCommands(program: Command): void {
  program
    .command('start')
    .description('run a name server and a broker in one process, with their data under ./data')
    .option('-d, --data <dir>', 'data directory', process.env.TSMQ_DATA ?? './data')
    .option('--flush <mode>', 'flushDiskType: ASYNC_FLUSH or SYNC_FLUSH', flushMode, 'ASYNC' as const)
    .option('--namesrv-port <port>', 'name server port (0: any free port)', port, DEFAULT_NAMESRV_PORT)
    .option('--broker-port <port>', 'broker port (0: any free port)', port, DEFAULT_BROKER_PORT)
    .action(async (o: { data: string; flush: 'ASYNC' | 'SYNC'; namesrvPort: number; brokerPort: number }) => {
      const log = createLogger('tsmq');
      const nameServer = new NameServer({ port: o.namesrvPort, logger: log.child({ role: 'namesrv' }) });
      const ns = await nameServer.start();
      const broker = new Broker(
        {
          namesrvAddr: `127.0.0.1:${ns.port}`,
          listenPort: o.brokerPort,
          storePathRootDir: path.resolve(o.data, 'store'),
          flushDiskType: o.flush === 'SYNC' ? 'SYNC_FLUSH' : 'ASYNC_FLUSH',
        },
        { logger: log.child({ role: 'broker' }) },
      );
      try {
        await broker.start();
      } catch (e) {
        await nameServer.close();
        throw e;
      }
      log.info(
        { namesrvAddr: `127.0.0.1:${ns.port}`, brokerAddr: broker.address },
        `tsmq is running: name server 127.0.0.1:${ns.port}, broker ${broker.address}; press Ctrl-C to stop`,
      );
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'shutting down');
        await broker.close();
        await nameServer.close();
        log.info('tsmq stopped cleanly');
        process.exit(0);
      };
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
    });

  program
    .command('namesrv')
    .description('run a name server')
    .option('-p, --port <port>', 'listen port (0: any free port)', port, DEFAULT_NAMESRV_PORT)
    .option('--broker-expiry-ms <ms>', 'drop a broker silent this long (default 120000)', positiveInt)
    .option('--scan-interval-ms <ms>', 'how often to look for silent brokers (default 5000)', positiveInt)
    .action(async (o: { port: number; brokerExpiryMs?: number; scanIntervalMs?: number }) => {
      const log = createLogger('tsmq');
      const nameServer = new NameServer({
        port: o.port,
        logger: log.child({ role: 'namesrv' }),
        ...(o.brokerExpiryMs !== undefined && { brokerExpiryMs: o.brokerExpiryMs }),
        ...(o.scanIntervalMs !== undefined && { scanIntervalMs: o.scanIntervalMs }),
      });
      await nameServer.start();
      stopOnSignal(log, [() => nameServer.close()]);
    });

  program
    .command('broker')
    .description(
      'run a broker configured by a broker.conf file (RocketMQ keys); environment variables ' +
        'TSMQ_BROKER_<key> (e.g. TSMQ_BROKER_listenPort=10921) and NAMESRV_ADDR override the file, flags override both',
    )
    .requiredOption(
      '-c, --config <file>',
      'broker.conf: key=value lines (brokerName, namesrvAddr, listenPort, ...)',
    )
    .option('-n, --namesrv <addrs>', 'name servers, host:port;host:port (overrides namesrvAddr)')
    .option('-p, --port <port>', 'listen port (overrides listenPort; 0: any free port)', port)
    .action(async (o: { config: string; namesrv?: string; port?: number }) => {
      const log = createLogger('tsmq');
      let text: string;
      try {
        text = fs.readFileSync(o.config, 'utf8');
      } catch (e) {
        throw new InvalidArgumentError(`cannot read ${o.config}: ${(e as Error).message}`);
      }
      const { config, unknownKeys } = parseBrokerConf(text);
      for (const u of unknownKeys)
        log.warn({ key: u.key, line: u.line }, `unknown broker.conf key ${u.key} ignored`);
      Object.assign(config, brokerEnv(process.env));
      if (o.namesrv) config.namesrvAddr = o.namesrv;
      if (o.port !== undefined) config.listenPort = o.port;
      const broker = new Broker(config, { logger: log.child({ role: 'broker' }) });
      // The broker says where it listens before its store is open: a signal from then on waits
      // for the start to finish and closes cleanly (not Node's default exit on SIGINT).
      const started = broker.start();
      stopOnSignal(log, [
        async () => {
          await started.catch(() => undefined);
          await broker.close();
        },
      ]);
      await started;
    });
}
