#!/usr/bin/env node
/**
 * The `tsmq` command. `tsmq start` runs a name server and a broker in one process (the broker
 * opens, and after a crash recovers, the store under <data>/store and logs it); `tsmq namesrv`
 * and `tsmq broker -c broker.conf` run the roles separately, for a cluster.
 */
import { Command } from 'commander';
import { isTsmqError } from '../common/errors.js';
import { addAdminCommands } from './admin-commands.js';
import { addBenchCommands } from './bench.js';
import { addDlqCommands } from './dlq-commands.js';
import { addLimitCommands } from './limit-commands.js';
import { addMessageCommands } from './message-commands.js';
import { addRoleCommands } from './roles.js';
import { addTransactionCommands } from './transaction-commands.js';

const program = new Command();
program
  .name('tsmq')
  .description('tsmq: a RocketMQ-compatible message broker for Node.js')
  .showHelpAfterError();

addRoleCommands(program);
addAdminCommands(program);
addMessageCommands(program);
addDlqCommands(program);
addTransactionCommands(program);
addLimitCommands(program);
addBenchCommands(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  if (isTsmqError(e)) {
    console.error(`tsmq: ${e.message} [${e.codeName} ${e.code}]`);
  } else {
    console.error('tsmq:', e);
  }
  process.exit(1);
});
