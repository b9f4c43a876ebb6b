/**
 * `tsmq tx list`: the transactions of the cluster not yet committed or rolled back — each half
 * message the brokers will still check with its producer group (../client/half-messages.ts).
 */
import type { Command } from 'commander';
import { clientCommand, withAdmin } from './admin-commands.js';
import { positiveInt } from './options.js';
import { print, table } from './output.js';

export function addTransactionCommands(program: Command): void {
  const tx = program.command('tx').description('transactional messages');
  clientCommand(tx.command('list').description('unresolved transactions (half messages still checked)'))
    .option('--max <n>', 'most per broker', positiveInt, 1000)
    .action((o: { namesrv: string; json?: boolean; max: number }) =>
      withAdmin(o, async (admin) => {
        const halves = await admin.halfMessages(o.max);
        const now = Date.now();
        print(
          o.json,
          halves.map((h) => ({
            transactionId: h.transactionId,
            topic: h.topic,
            queueId: h.queueId,
            producerGroup: h.producerGroup,
            brokerName: h.brokerName,
            checkTimes: h.checkTimes,
            bornTimestamp: h.bornTimestamp,
            body: h.msg.body.toString('utf8'),
          })),
          () =>
            halves.length === 0
              ? 'no unresolved transactions'
              : table(
                  ['TRANSACTION ID', 'TOPIC', 'PRODUCER GROUP', 'BROKER', 'AGE', 'CHECKS', 'BODY'],
                  halves.map((h) => [
                    h.transactionId,
                    `${h.topic}/${h.queueId}`,
                    h.producerGroup ?? '',
                    h.brokerName,
                    `${Math.round((now - h.bornTimestamp) / 1000)} s`,
                    h.checkTimes,
                    JSON.stringify(h.msg.body.toString('utf8').slice(0, 40)),
                  ]),
                ),
        );
      }),
    );
}
