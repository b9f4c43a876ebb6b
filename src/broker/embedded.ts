/**
 * The embedding API for users' own tests: a name server and a broker in this process, on free
 * ports, with their data in a fresh temp directory (removed on close unless the caller gave one).
 *
 *   const mq = await startEmbedded();
 *   // producers/consumers use mq.namesrvAddr ...
 *   await mq.close();
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger, type Logger } from '../common/log.js';
import { NameServer } from '../namesrv/index.js';
import { Broker, type BrokerOptions } from './broker.js';
import type { BrokerConfig } from './config.js';

export interface EmbeddedOptions {
  /** Where the store and configs live; a temp dir (deleted on close) if absent. */
  dataDir?: string;
  /** Broker settings beyond the embedded defaults (ports and paths are set here). */
  broker?: Partial<BrokerConfig>;
  brokerOptions?: BrokerOptions;
  /** Default: silent unless TSMQ_LOG_LEVEL says otherwise. */
  logger?: Logger;
}

export interface Embedded {
  namesrvAddr: string;
  brokerAddr: string;
  nameServer: NameServer;
  broker: Broker;
  dataDir: string;
  close(): Promise<void>;
}

export async function startEmbedded(opts: EmbeddedOptions = {}): Promise<Embedded> {
  const logger = opts.logger ?? createLogger('tsmq-embedded', process.env.TSMQ_LOG_LEVEL ?? 'silent');
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'tsmq-embedded-')));
  const nameServer = new NameServer({
    host: '127.0.0.1',
    port: 0,
    logger: logger.child({ role: 'namesrv' }),
  });
  const ns = await nameServer.start();
  const namesrvAddr = `127.0.0.1:${ns.port}`;
  const broker = new Broker(
    {
      listenHost: '127.0.0.1',
      listenPort: 0,
      storePathRootDir: path.join(dataDir, 'store'),
      ...opts.broker,
      namesrvAddr,
    },
    { logger: logger.child({ role: 'broker' }), ...opts.brokerOptions },
  );
  try {
    await broker.start();
  } catch (e) {
    await nameServer.close();
    throw e;
  }
  let closed = false;
  return {
    namesrvAddr,
    brokerAddr: broker.address,
    nameServer,
    broker,
    dataDir,
    async close() {
      if (closed) return;
      closed = true;
      await broker.close();
      await nameServer.close();
      if (ownDir) await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}
