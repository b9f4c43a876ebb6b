/**
 * SQL92 subscriptions end to end on an in-process broker: the push and the lite pull consumer get
 * exactly the messages whose properties satisfy the expression, the others never cross the network
 * (a raw pull's body holds only matches), an invalid expression is refused at subscribe time by the
 * SDK and with SUBSCRIPTION_PARSE_FAILED by the broker, and a broker can turn the filter off.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Embedded, startEmbedded } from '../../src/broker/index.js';
import {
  Admin,
  LitePullConsumer,
  type MessageExt,
  MessageSelector,
  Producer,
  PushConsumer,
} from '../../src/client/index.js';
import { isTsmqError } from '../../src/common/errors.js';
import { createLogger } from '../../src/common/log.js';
import { decodeRecords, getProperty } from '../../src/message/index.js';
import { createRequest, RequestCode, ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { pullRequest, sendV2, waitFor } from '../../test-support/broker-fixtures.js';

const quiet = () => createLogger('test', process.env.TSMQ_LOG_LEVEL ?? 'silent');
const TOPIC = 'SqlOrders';
const SQL = "amount > 50 AND region IN ('eu', 'uk') AND NOT (priority IS NULL)";

interface Sent {
  n: number;
  amount: number;
  region: string;
  priority: string | undefined;
}

const SENT: Sent[] = Array.from({ length: 60 }, (_, n) => ({
  n,
  amount: (n * 7) % 100,
  region: ['eu', 'us', 'uk', 'apac'][n % 4]!,
  priority: n % 3 === 0 ? undefined : String(n % 3),
}));
const MATCHING = SENT.filter(
  (s) => s.amount > 50 && (s.region === 'eu' || s.region === 'uk') && s.priority !== undefined,
)
  .map((s) => `o${s.n}`)
  .sort();

const SQL_PULL = (extra: Record<string, unknown> = {}) => ({
  topic: TOPIC,
  queueId: 0,
  queueOffset: 0,
  maxMsgNums: 100,
  consumerGroup: 'sql-raw',
  ...extra,
});

describe('SQL92 subscriptions', () => {
  let mq: Embedded;
  let client: RemotingClient;

  before(async () => {
    mq = await startEmbedded({ broker: { defaultTopicQueueNums: 2 } });
    client = new RemotingClient();
    const producer = new Producer({ group: 'sql-pg', namesrvAddr: mq.namesrvAddr, logger: quiet() });
    await producer.start();
    for (const s of SENT) {
      await producer.send({
        topic: TOPIC,
        body: `o${s.n}`,
        tags: 'order',
        properties: {
          amount: String(s.amount),
          region: s.region,
          ...(s.priority !== undefined && { priority: s.priority }),
        },
      });
    }
    await producer.shutdown();
    assert.ok(MATCHING.length > 3 && MATCHING.length < SENT.length);
  });
  after(async () => {
    client.close();
    await mq.close();
  });

  test('a push consumer gets exactly the matching messages', async () => {
    const got: MessageExt[] = [];
    const pc = new PushConsumer({
      group: 'sql-push',
      namesrvAddr: mq.namesrvAddr,
      consumeFromWhere: 'FIRST_OFFSET',
      logger: quiet(),
    });
    pc.subscribe(TOPIC, MessageSelector.bySql(SQL)).onMessage(async (msgs) => {
      got.push(...msgs);
    });
    await pc.start();
    try {
      await waitFor(() => got.length >= MATCHING.length, 10_000, 'the matching messages');
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(got.map((m) => m.body.toString()).sort(), MATCHING);
    } finally {
      await pc.shutdown();
    }
  });

  test('a lite pull consumer gets exactly the matching messages', async () => {
    const l = new LitePullConsumer({
      group: 'sql-lite',
      namesrvAddr: mq.namesrvAddr,
      consumeFromWhere: 'FIRST_OFFSET',
      logger: quiet(),
    });
    l.subscribe(TOPIC, MessageSelector.bySql(SQL));
    await l.start();
    try {
      const got: string[] = [];
      const deadline = Date.now() + 10_000;
      while (got.length < MATCHING.length && Date.now() < deadline) {
        for (const m of await l.poll(200)) got.push(m.body.toString());
      }
      for (const m of await l.poll(300)) got.push(m.body.toString());
      assert.deepEqual(got.sort(), MATCHING);
    } finally {
      await l.shutdown();
    }
  });

  test('the broker filters: a raw SQL92 pull carries only matching records', async () => {
    const matchingOnQueue0: string[] = [];
    for (let q = 0; q < 2; q++) {
      const res = await client.invoke(
        mq.brokerAddr,
        pullRequest(SQL_PULL({ queueId: q, subscription: SQL, expressionType: 'SQL92' })),
      );
      if (res.code !== ResponseCode.SUCCESS) continue;
      for (const r of decodeRecords(res.body!)) {
        const amount = Number(getProperty(r.properties, 'amount'));
        assert.ok(amount > 50, `amount ${amount} crossed the network`);
        matchingOnQueue0.push(Buffer.from(r.body).toString());
      }
    }
    assert.ok(matchingOnQueue0.length > 0);
  });

  test('an invalid expression: SUBSCRIPTION_INVALID at subscribe (with where), SUBSCRIPTION_PARSE_FAILED from the broker', async () => {
    const pc = new PushConsumer({ group: 'sql-bad', namesrvAddr: mq.namesrvAddr, logger: quiet() });
    assert.throws(
      () => pc.subscribe(TOPIC, MessageSelector.bySql('amount > ')),
      (e) => isTsmqError(e, 'SUBSCRIPTION_INVALID') && /position 8/.test((e as Error).message),
    );
    assert.throws(
      () => pc.subscribe(TOPIC, MessageSelector.bySql("region IN ('eu'")),
      (e) => isTsmqError(e, 'SUBSCRIPTION_INVALID'),
    );
    const res = await client.invoke(
      mq.brokerAddr,
      pullRequest(SQL_PULL({ subscription: "a = 'x' AND", expressionType: 'SQL92' })),
    );
    assert.equal(res.code, ResponseCode.SUBSCRIPTION_PARSE_FAILED);
    assert.match(res.remark ?? '', /position \d+/);
  });

  test('CHECK_CLIENT_CONFIG (what a Java client asks before it subscribes by SQL92) says whether it parses', async () => {
    const check = (subString: string, expressionType = 'SQL92') =>
      client.invoke(mq.brokerAddr, {
        ...createRequest(RequestCode.CHECK_CLIENT_CONFIG),
        body: Buffer.from(
          JSON.stringify({
            clientId: 'c',
            group: 'g',
            subscriptionData: { topic: TOPIC, subString, expressionType },
          }),
        ),
      });
    assert.equal((await check(SQL)).code, ResponseCode.SUCCESS);
    assert.equal((await check('*', 'TAG')).code, ResponseCode.SUCCESS);
    const bad = await check('amount >>');
    assert.equal(bad.code, ResponseCode.SUBSCRIPTION_PARSE_FAILED);
    assert.match(bad.remark ?? '', /position/);
    assert.equal((await check('x', 'CLASS')).code, ResponseCode.SYSTEM_ERROR);
  });

  test('enablePropertyFilter=false: a SQL92 pull is refused, a TAG pull still served', async () => {
    const off = await startEmbedded({ broker: { enablePropertyFilter: false } });
    try {
      const sent = await client.invoke(
        off.brokerAddr,
        sendV2({ topic: TOPIC, body: Buffer.from('x'), queueId: 0 }),
      );
      assert.equal(sent.code, ResponseCode.SUCCESS);
      const sql = await client.invoke(
        off.brokerAddr,
        pullRequest(SQL_PULL({ subscription: 'a > 1', expressionType: 'SQL92' })),
      );
      assert.equal(sql.code, ResponseCode.SYSTEM_ERROR);
      assert.match(sql.remark ?? '', /enablePropertyFilter=false/);
      const tag = await client.invoke(off.brokerAddr, pullRequest(SQL_PULL()));
      assert.equal(tag.code, ResponseCode.SUCCESS);
      // A push consumer asks first (CHECK_CLIENT_CONFIG), so its start() fails with the reason.
      const admin = new Admin({ namesrvAddr: off.namesrvAddr, logger: quiet() });
      await waitFor(
        async () => (await admin.topicRoute(TOPIC).catch(() => undefined)) !== undefined,
        10_000,
        'route',
      );
      admin.close();
      const pc = new PushConsumer({ group: 'sql-off', namesrvAddr: off.namesrvAddr, logger: quiet() });
      pc.subscribe(TOPIC, MessageSelector.bySql('amount > 1')).onMessage(async () => undefined);
      await assert.rejects(pc.start(), /enablePropertyFilter=false/);
    } finally {
      await off.close();
    }
  });
});
