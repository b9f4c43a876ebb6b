#!/usr/bin/env node
/**
 * The `tsmq` command. Today it runs the store on its own (`tsmq start`); the name server and
 * broker join it in the next step of the roadmap, behind the same command.
 */
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { isTsmqError } from '../common/errors.js';
import { createLogger } from '../common/log.js';
import { MessageStore } from '../store/index.js';

const program = new Command();
program
  .name('tsmq')
  .description('tsmq: a RocketMQ-compatible message broker for Node.js')
  .showHelpAfterError();

function flushMode(v: string): 'ASYNC' | 'SYNC' {
  const m = v.toUpperCase().replace(/_FLUSH$/, '');
  if (m !== 'ASYNC' && m !== 'SYNC') throw new InvalidArgumentError('expected ASYNC_FLUSH or SYNC_FLUSH');
  return m;
}

program
  .command('start')
  .description('run a single node with its data under ./data (today: the message store on its own)')
  .option('-d, --data <dir>', 'data directory', process.env.TSMQ_DATA ?? './data')
  .option('--flush <mode>', 'flushDiskType: ASYNC_FLUSH or SYNC_FLUSH', flushMode, 'ASYNC' as const)
  .action(async (o: { data: string; flush: 'ASYNC' | 'SYNC' }) => {
    const log = createLogger('tsmq');
    const rootDir = path.resolve(o.data, 'store');
    const store = await MessageStore.open({ rootDir, flushMode: o.flush });
    const r = store.recovery;
    log.info(
      { rootDir, flushMode: o.flush, recovery: r },
      r.crashed
        ? `store recovered after a crash in ${r.durationMs} ms: log ends at ${r.end}, ${r.recordsValidated} records validated`
        : `store opened in ${r.durationMs} ms: log ends at ${r.end}`,
    );
    // A round trip through the whole store, so a newcomer sees it work.
    const put = await store.put({
      topic: 'TSMQ_DEMO',
      queueId: 0,
      body: Buffer.from(`hello from tsmq at ${new Date().toISOString()}`),
      properties: `TAGS\u0001demo\u0002KEYS\u0001startup\u0002`,
    });
    await store.waitDispatched();
    const got = await store.getMessages('TSMQ_DEMO', 0, put.queueOffset, { maxCount: 1 });
    log.info(
      { offsetMsgId: put.offsetMsgId, queueOffset: put.queueOffset, status: got.status },
      `demo message stored at commit-log offset ${put.physicalOffset} and read back from TSMQ_DEMO/0`,
    );
    log.info('tsmq store is running; press Ctrl-C to stop');
    const stats = setInterval(() => log.info({ positions: store.positions() }, 'store positions'), 60_000);
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      clearInterval(stats);
      log.info({ signal }, 'shutting down');
      await store.close();
      log.info('store closed cleanly');
      process.exit(0);
    };
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  if (isTsmqError(e)) {
    console.error(`tsmq: ${e.message} [${e.codeName} ${e.code}]`);
  } else {
    console.error('tsmq:', e);
  }
  process.exit(1);
});
