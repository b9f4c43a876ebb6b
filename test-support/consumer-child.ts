/**
 * A push consumer in its own process, for tests that SIGKILL a consumer: argv is
 * <namesrvAddr> <group> <topic>. It prints `ready <clientId>` once started, then one line
 * `got <msgId> <brokerName> <queueId> <queueOffset>` per message it has consumed.
 */
import { PushConsumer } from '../src/client/index.js';

const [namesrvAddr, group, topic] = process.argv.slice(2);
if (!namesrvAddr || !group || !topic) {
  console.error('usage: consumer-child <namesrvAddr> <group> <topic>');
  process.exit(2);
}

const consumer = new PushConsumer({
  group,
  namesrvAddr,
  consumeFromWhere: 'FIRST_OFFSET',
  brokerSuspendMaxTimeMillis: 2000,
  persistConsumerOffsetIntervalMs: 200,
  rebalanceIntervalMs: 60_000,
});
consumer.subscribe(topic, '*').onMessage(async (msgs) => {
  for (const m of msgs)
    process.stdout.write(`got ${m.msgId} ${m.brokerName} ${m.queueId} ${m.queueOffset}\n`);
});
await consumer.start();
process.stdout.write(`ready ${consumer.clientId}\n`);
process.on('SIGINT', () => {
  void consumer.shutdown().then(() => process.exit(0));
});
