/**
 * A transactional producer in its own process, for tests that SIGKILL it mid-transaction: argv is
 * <namesrvAddr> <group> <topic> <body>. It sends one message in a transaction whose local part
 * never finishes, prints `half <transactionId>` once the half is stored, and waits to be killed.
 */
import { TransactionProducer } from '../src/client/index.js';

const [namesrvAddr, group, topic, body] = process.argv.slice(2);
if (!namesrvAddr || !group || !topic || !body) {
  console.error('usage: tx-producer-child <namesrvAddr> <group> <topic> <body>');
  process.exit(2);
}
const producer = new TransactionProducer({ group, namesrvAddr, checker: async () => 'UNKNOWN' });
await producer.start();
void producer.sendInTransaction({ topic, body }, async (_msg, sent) => {
  process.stdout.write(`half ${sent.msgId}\n`);
  return new Promise(() => undefined);
});
