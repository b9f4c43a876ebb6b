/**
 * An orderly push consumer in its own process, for tests that freeze it (SIGSTOP) past its queue
 * locks' lease: argv is <namesrvAddr> <group> <topic>. It prints `ready <clientId>` once started,
 * then `got <brokerName> <queueId> <queueOffset> <body>` per message consumed. Locks are renewed
 * every 500 ms and offsets persisted every 200 ms, so a woken process acts at once.
 */
import { PushConsumer } from '../src/client/index.js';

const [namesrvAddr, group, topic] = process.argv.slice(2);
if (!namesrvAddr || !group || !topic) {
  console.error('usage: orderly-consumer-child <namesrvAddr> <group> <topic>');
  process.exit(2);
}

const consumer = new PushConsumer({
  group,
  namesrvAddr,
  consumeFromWhere: 'FIRST_OFFSET',
  brokerSuspendMaxTimeMillis: 1000,
  persistConsumerOffsetIntervalMs: 200,
  rebalanceIntervalMs: 1000,
  lockRenewIntervalMs: 500,
});
consumer.subscribe(topic, '*').onMessageOrderly(async (msgs) => {
  for (const m of msgs)
    process.stdout.write(`got ${m.brokerName} ${m.queueId} ${m.queueOffset} ${m.body.toString()}\n`);
  return 'SUCCESS';
});
await consumer.start();
process.stdout.write(`ready ${consumer.clientId}\n`);
process.on('SIGINT', () => {
  void consumer.shutdown().then(() => process.exit(0));
});
