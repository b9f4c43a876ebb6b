/**
 * Retries and dead letters against a real broker process (levels: 3 s for the first retry, 100 ms
 * for the others): a retry waiting in the schedule topic survives a broker SIGKILL and arrives
 * after the restart with its reconsume count; a message failed 16 times lands in %DLQ%<group>,
 * `tsmq dlq list` shows it with its topic, and `tsmq dlq resend` sends it back to be consumed.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type MessageExt, PushConsumer } from '../../src/client/index.js';
import { createLogger } from '../../src/common/log.js';
import { RequestCode, ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { headerRequest, sendV2, waitFor } from '../../test-support/broker-fixtures.js';
import { Cluster, tsmqCli } from '../../test-support/cluster.js';
import { untilStoreOpen } from '../../test-support/timer-fixtures.js';

const LEVELS = ['100ms', '100ms', '3s', ...Array.from({ length: 15 }, () => '100ms')].join(' ');
let cluster: Cluster;
let client: RemotingClient;
const consumers: PushConsumer[] = [];

before(async () => {
  cluster = await Cluster.start({
    brokers: [
      {
        brokerName: 'broker-retry',
        conf: { messageDelayLevel: LEVELS, flushDelayOffsetInterval: 100, defaultTopicQueueNums: 1 },
      },
    ],
  });
  client = new RemotingClient();
  await untilStoreOpen(client, cluster.brokers[0]!.addr);
});

after(async () => {
  await Promise.all(consumers.map((c) => c.shutdown()));
  client?.close();
  await cluster?.close();
});

const tsmq = (args: string[]) => tsmqCli(args, cluster.namesrvAddr);

async function send(topic: string, body: string): Promise<void> {
  const res = await client.invoke(
    cluster.brokers[0]!.addr,
    sendV2({ topic, body: Buffer.from(body), queueId: 0 }),
  );
  assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
}

function consumer(group: string, topic: string, handler: (m: MessageExt) => boolean): PushConsumer {
  const pc = new PushConsumer({
    group,
    namesrvAddr: cluster.namesrvAddr,
    consumeFromWhere: 'FIRST_OFFSET',
    brokerSuspendMaxTimeMillis: 1_000,
    pullTimeDelayMillsWhenException: 300,
    persistConsumerOffsetIntervalMs: 200,
    rebalanceIntervalMs: 60_000,
    logger: createLogger('test', process.env.TSMQ_LOG_LEVEL ?? 'silent'),
  });
  pc.subscribe(topic, '*').onMessage(async (msgs) => (msgs.every(handler) ? 'SUCCESS' : 'RETRY_LATER'));
  consumers.push(pc);
  return pc;
}

test('a retry waiting for its delay survives a broker SIGKILL and arrives after the restart', async () => {
  const topic = 'RetryKill';
  await send(topic, 'again');
  const seen: { reconsumeTimes: number; topic: string; msgId: string }[] = [];
  const pc = consumer('g-retry-kill', topic, (m) => {
    seen.push({ reconsumeTimes: m.reconsumeTimes, topic: m.topic, msgId: m.msgId });
    return m.reconsumeTimes > 0;
  });
  await pc.start();
  const broker = cluster.brokers[0]!;
  // The send-back was stored: level 3's queue (2) of the schedule topic holds it.
  await waitFor(
    async () => {
      const r = await client.invoke(
        broker.addr,
        headerRequest(RequestCode.GET_MAX_OFFSET, { topic: 'SCHEDULE_TOPIC_XXXX', queueId: 2 }),
      );
      return r.code === ResponseCode.SUCCESS && Number(r.extFields?.offset) >= 1;
    },
    30_000,
    'the retry waits in the schedule topic',
  ).catch((e: Error) => {
    throw new Error(
      `${e.message}; deliveries ${JSON.stringify(seen)}, consumer ${JSON.stringify(pc.stats())}`,
    );
  });
  assert.equal(seen.length, 1, 'not yet redelivered');
  await broker.proc.kill();
  await broker.restart();
  await waitFor(() => seen.length >= 2, 30_000, 'redelivered after the restart');
  assert.deepEqual(seen[1], { reconsumeTimes: 1, topic, msgId: seen[0]!.msgId });
  await pc.shutdown();
});

test('16 failures → %DLQ%; `tsmq dlq list` shows it, `tsmq dlq resend` sends it back and it is consumed', async () => {
  const topic = 'DlqShop';
  const group = 'g-dlq-cli';
  await send(topic, 'poison pill');
  let healed = false;
  const deliveries: number[] = [];
  const pc = consumer(group, topic, (m) => {
    deliveries.push(m.reconsumeTimes);
    return healed;
  });
  await pc.start();
  let listed: { msgId: string; originTopic: string; reconsumeTimes: number; body: string }[] = [];
  await waitFor(
    async () => {
      listed = JSON.parse(await tsmq(['dlq', 'list', group, '--json']));
      return listed.length === 1;
    },
    60_000,
    'the DLQ holds the message',
  );
  assert.deepEqual(
    deliveries,
    Array.from({ length: 17 }, (_, i) => i),
  );
  assert.equal(listed[0]!.originTopic, topic);
  assert.equal(listed[0]!.body, 'poison pill');
  assert.equal(listed[0]!.reconsumeTimes, 17);
  assert.match(await tsmq(['dlq', 'list', group]), new RegExp(`${listed[0]!.msgId}\\s+${topic}`));

  healed = true;
  const resent = JSON.parse(await tsmq(['dlq', 'resend', group, '--id', listed[0]!.msgId, '--json']));
  assert.equal(resent.length, 1);
  assert.equal(resent[0].msgId, listed[0]!.msgId, 'the same message id');
  assert.equal(resent[0].status, 'SEND_OK');
  await waitFor(() => deliveries.length === 18, 15_000, 'consumed again');
  assert.equal(deliveries[17], 0, 'a fresh message: reconsumeTimes 0');

  await assert.rejects(tsmq(['dlq', 'resend', group, '--id', 'NOPE']), /not in the dead-letter queue/);
  await assert.rejects(tsmq(['dlq', 'resend', group]), /give --id/);
  assert.match(await tsmq(['dlq', 'list', 'g-nothing-failed']), /is empty/);
  await pc.shutdown();
});
