/**
 * Compatibility: the npm RocketMQ remoting client `ali-ons`, unmodified, produces to and consumes
 * from a tsmq name server + broker through its `nameSrv` option.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { type Embedded, startEmbedded } from '../../src/broker/index.js';
import { createRequest, RequestCode, ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';

interface OnsMessage {
  topic: string;
  reconsumeTimes: number;
  tags: string;
  /** The KEYS property as ali-ons hands it over: one string, keys separated by spaces. */
  keys: string;
  body: Buffer;
  msgId: string;
}
interface OnsProducer {
  ready(): Promise<void>;
  send(msg: unknown): Promise<{ sendStatus: string; msgId: string; queueOffset: number }>;
  close(): Promise<void>;
  on(event: 'error', cb: (e: Error) => void): void;
}
interface OnsConsumer {
  ready(): Promise<void>;
  subscribe(topic: string, expression: string, handler: (msg: OnsMessage) => Promise<void>): void;
  close(): Promise<void>;
  on(event: 'error', cb: (e: Error) => void): void;
}
const require = createRequire(import.meta.url);
const ons = require('ali-ons') as {
  Producer: new (opts: Record<string, unknown>) => OnsProducer;
  Consumer: new (opts: Record<string, unknown>) => OnsConsumer;
  Message: new (topic: string, tags: string, body: string) => { keys: string[] };
};

// ali-ons asserts an HTTP client even when nameSrv is given (it is only used for onsAddr).
const httpclient = { request: async () => ({ status: 200, data: '' }) };
// ali-ons' background loops sleep for their whole interval before they notice a close: keep the
// intervals short so this test process ends soon after the clients close.
const intervals = {
  pollNameServerInteval: 500,
  heartbeatBrokerInterval: 500,
  rebalanceInterval: 500,
  persistConsumerOffsetInterval: 500,
};
const TOPIC = 'OnsCompat';
const RETRY_TEST_TOPIC = 'OnsRetry';

let mq: Embedded;

before(async () => {
  // Short delay levels, so a failed message's retry (level 3) comes back in 150 ms.
  mq = await startEmbedded({ broker: { messageDelayLevel: '50ms 100ms 150ms 200ms 250ms' } });
  // ali-ons does not fall back to the TBW102 template: the topics must exist.
  const admin = new RemotingClient();
  for (const topic of [TOPIC, RETRY_TEST_TOPIC]) await createTopic(admin, topic);
  admin.close();
});

async function createTopic(admin: RemotingClient, topic: string): Promise<void> {
  const res = await admin.invoke(
    mq.brokerAddr,
    createRequest(RequestCode.UPDATE_AND_CREATE_TOPIC, {
      topic,
      defaultTopic: 'TBW102',
      readQueueNums: '4',
      writeQueueNums: '4',
      perm: '6',
      topicFilterType: 'SINGLE_TAG',
      topicSysFlag: '0',
      order: 'false',
    }),
  );
  assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
}

after(() => {
  // ali-ons keeps reconnecting after close() (its tcp-base channels), and a closed broker would
  // make those attempts throw ECONNREFUSED from ali-ons' own timers. So the broker stays up until
  // this test process exits (the runner's --test-force-exit ends it); its data goes with it.
  const dir = mq.dataDir;
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
});

test('ali-ons sends messages with tags and keys and a consumer group receives its tag', {
  timeout: 60_000,
}, async () => {
  const producer = new ons.Producer({
    producerGroup: 'ons-pg',
    nameSrv: mq.namesrvAddr,
    httpclient,
    ...intervals,
  });
  producer.on('error', () => undefined);
  await producer.ready();
  const sent: string[] = [];
  for (let i = 0; i < 10; i++) {
    const msg = new ons.Message(TOPIC, i % 2 === 0 ? 'TagA' : 'TagB', `ons-${i}`);
    msg.keys = [`key-${i}`];
    const r = await producer.send(msg);
    assert.equal(r.sendStatus, 'SEND_OK');
    assert.match(r.msgId, /^[0-9A-F]{32}$/);
    sent.push(`ons-${i}`);
  }
  await producer.close();

  const consumer = new ons.Consumer({
    consumerGroup: 'ons-cg',
    nameSrv: mq.namesrvAddr,
    httpclient,
    ...intervals,
    consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET',
    persistent: false,
  });
  // ali-ons reports a missing retry-topic route and a new group's missing offsets as errors
  // before it recovers from them, as it does against RocketMQ.
  consumer.on('error', () => undefined);
  await consumer.ready();
  const got = new Map<string, { tags: string; keys: string }>();
  const allA = new Promise<void>((resolve) => {
    consumer.subscribe(TOPIC, 'TagA', async (msg) => {
      got.set(msg.body.toString(), { tags: msg.tags, keys: msg.keys });
      if (got.size === 5) resolve();
    });
  });
  const deadline = new Promise<never>((_, reject) =>
    setTimeout(
      () => reject(new Error(`only ${got.size} of 5 TagA messages consumed in 30 s`)),
      30_000,
    ).unref(),
  );
  await Promise.race([allA, deadline]);
  await consumer.close();
  assert.deepEqual(
    [...got.keys()].sort(),
    sent.filter((_, i) => i % 2 === 0),
  );
  for (const [body, m] of got) {
    assert.equal(m.tags, 'TagA');
    assert.equal(m.keys, `key-${body.slice(4)}`);
  }
});

test('an ali-ons consumer whose handler throws gets the message again through %RETRY% (CONSUMER_SEND_MSG_BACK)', {
  timeout: 60_000,
}, async () => {
  const producer = new ons.Producer({
    producerGroup: 'ons-pg-retry',
    nameSrv: mq.namesrvAddr,
    httpclient,
    ...intervals,
  });
  producer.on('error', () => undefined);
  await producer.ready();
  const r = await producer.send(new ons.Message(RETRY_TEST_TOPIC, 'TagR', 'fail once'));
  assert.equal(r.sendStatus, 'SEND_OK');
  await producer.close();

  const consumer = new ons.Consumer({
    consumerGroup: 'ons-cg-retry',
    nameSrv: mq.namesrvAddr,
    httpclient,
    ...intervals,
    consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET',
    persistent: false,
  });
  consumer.on('error', () => undefined);
  await consumer.ready();
  const seen: { topic: string; reconsumeTimes: number; msgId: string }[] = [];
  const twice = new Promise<void>((resolve) => {
    consumer.subscribe(RETRY_TEST_TOPIC, '*', async (msg) => {
      seen.push({ topic: msg.topic, reconsumeTimes: msg.reconsumeTimes, msgId: msg.msgId });
      if (seen.length === 1) throw new Error('the first delivery fails');
      resolve();
    });
  });
  const deadline = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`delivered ${seen.length} times in 30 s`)), 30_000).unref(),
  );
  await Promise.race([twice, deadline]);
  await consumer.close();
  assert.equal(seen[0]!.reconsumeTimes, 0);
  assert.equal(seen[1]!.reconsumeTimes, 1, 'the retry carries its reconsume count');
  assert.equal(seen[1]!.topic, RETRY_TEST_TOPIC, 'ali-ons shows the original topic');
  const stored = await mq.broker.store.getMessages('%RETRY%ons-cg-retry', 0, 0, { maxCount: 10 });
  assert.equal(stored.records.length, 1, 'the broker stored the retry (not an ali-ons local retry)');
});
