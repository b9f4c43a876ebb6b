/**
 * Transactional messages on an in-process broker with short timeouts (unresolved after 300 ms,
 * checked every 200 ms, 3 checks at most): commit, rollback, unknown-then-check, the give-up
 * topic, exactly-once under repeated ends, refusals, and a restart between half and commit.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Embedded, startEmbedded } from '../../src/broker/index.js';
import { type LocalTransactionState, type MessageExt, TransactionProducer } from '../../src/client/index.js';
import { createLogger } from '../../src/common/log.js';
import {
  type DecodedRecord,
  decodeOffsetMsgId,
  decodeProperties,
  decodeRecord,
} from '../../src/message/index.js';
import { RequestCode, ResponseCode } from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { headerRequest, waitFor } from '../../test-support/broker-fixtures.js';

const quiet = () => createLogger('test', process.env.TSMQ_LOG_LEVEL ?? 'silent');
const TX = { transactionTimeOut: 300, transactionCheckInterval: 200, transactionCheckMax: 3 };

async function records(mq: Embedded, topic: string, queueId = 0): Promise<DecodedRecord[]> {
  const r = await mq.broker.store.getMessages(topic, queueId, 0, { maxCount: 1000 });
  return r.records.map((b) => (decodeRecord(b, 0) as { kind: 'record'; record: DecodedRecord }).record);
}

async function visible(mq: Embedded, topic: string): Promise<string[]> {
  const out: string[] = [];
  for (let q = 0; q < 4; q++)
    for (const r of await records(mq, topic, q)) out.push(Buffer.from(r.body).toString());
  return out.sort();
}

describe('transactional messages', () => {
  let mq: Embedded;
  let client: RemotingClient;
  const producers: TransactionProducer[] = [];

  before(async () => {
    mq = await startEmbedded({ broker: { ...TX, defaultTopicQueueNums: 4 } });
    client = new RemotingClient();
  });
  after(async () => {
    await Promise.all(producers.map((p) => p.shutdown()));
    client.close();
    await mq.close();
  });

  function producer(group: string, checker: (m: MessageExt) => Promise<LocalTransactionState>) {
    const p = new TransactionProducer({ group, namesrvAddr: mq.namesrvAddr, checker, logger: quiet() });
    producers.push(p);
    return p;
  }

  test('commit makes the message visible once at its queue; rollback drops it; a half is invisible', async () => {
    const p = producer('tx-basic', async () => 'UNKNOWN');
    await p.start();
    let seenDuring: string[] = [];
    const c = await p.sendInTransaction({ topic: 'TxBasic', body: 'committed', keys: ['k1'] }, async () => {
      seenDuring = await visible(mq, 'TxBasic');
      return 'COMMIT';
    });
    assert.deepEqual(seenDuring, [], 'invisible while the local transaction runs');
    assert.equal(c.state, 'COMMIT');
    assert.equal(c.endAcknowledged, true);
    const r = await p.sendInTransaction({ topic: 'TxBasic', body: 'rolled back' }, async () => 'ROLLBACK');
    assert.equal(r.state, 'ROLLBACK');
    await waitFor(async () => (await visible(mq, 'TxBasic')).length === 1, 5_000, 'the commit');
    assert.deepEqual(await visible(mq, 'TxBasic'), ['committed']);
    const [msg] = (await records(mq, 'TxBasic', c.messageQueue.queueId)).filter(
      (x) => Buffer.from(x.body).toString() === 'committed',
    );
    assert.equal(msg!.queueId, c.messageQueue.queueId, 'stored at the queue the half was sent to');
    const props = decodeProperties(msg!.properties);
    assert.equal(props.get('UNIQ_KEY'), c.transactionId, 'the message keeps its id');
    assert.equal(props.get('KEYS'), 'k1');
    assert.equal(props.has('REAL_TOPIC'), false);
    // Several check rounds later nothing more appears (both were resolved).
    const checks = mq.broker.transactions.checksSent;
    await mq.broker.transactions.check();
    await new Promise((res) => setTimeout(res, 700));
    await mq.broker.transactions.check();
    assert.equal(mq.broker.transactions.checksSent, checks, 'resolved transactions are never checked');
    assert.deepEqual(await visible(mq, 'TxBasic'), ['committed']);
  });

  test('unknown, then the check: the checker commits; a throwing local transaction counts as unknown', async () => {
    const asked: string[] = [];
    const p = producer('tx-check', async (m) => {
      asked.push(m.body.toString());
      return m.body.toString() === 'yes' ? 'COMMIT' : 'ROLLBACK';
    });
    await p.start();
    const u = await p.sendInTransaction({ topic: 'TxCheck', body: 'yes', tags: 'T1' }, async () => 'UNKNOWN');
    const t = await p.sendInTransaction({ topic: 'TxCheck', body: 'no' }, async () => {
      throw new Error('the local transaction failed');
    });
    assert.equal(u.state, 'UNKNOWN');
    assert.equal(t.state, 'UNKNOWN');
    assert.match(String(t.error), /local transaction failed/);
    await waitFor(
      async () => (await visible(mq, 'TxCheck')).length === 1 && asked.length >= 2,
      10_000,
      'checked',
    );
    assert.deepEqual(asked.sort(), ['no', 'yes']);
    assert.deepEqual(await visible(mq, 'TxCheck'), ['yes']);
    await new Promise((res) => setTimeout(res, 800));
    assert.equal(asked.length, 2, 'each asked once: the answers resolved them');
    assert.deepEqual(await visible(mq, 'TxCheck'), ['yes']);
  });

  test('unanswered checks: after transactionCheckMax the half goes to TRANS_CHECK_MAX_TIME_TOPIC', async () => {
    let asked = 0;
    const p = producer('tx-max', async () => {
      asked++;
      return 'UNKNOWN';
    });
    await p.start();
    const r = await p.sendInTransaction({ topic: 'TxMax', body: 'never decided' }, async () => 'UNKNOWN');
    await waitFor(
      async () =>
        (await records(mq, 'TRANS_CHECK_MAX_TIME_TOPIC')).some(
          (x) => decodeProperties(x.properties).get('UNIQ_KEY') === r.transactionId,
        ),
      15_000,
      'given up',
    );
    assert.equal(asked, 3);
    assert.deepEqual(await visible(mq, 'TxMax'), []);
  });

  test('a second commit of the same transaction (a late answer) stores nothing more; bad ends are refused', async () => {
    const p = producer('tx-twice', async () => 'COMMIT');
    await p.start();
    const r = await p.sendInTransaction({ topic: 'TxTwice', body: 'once' }, async () => 'COMMIT');
    const end = (fields: Record<string, string | number>) =>
      client.invoke(
        mq.brokerAddr,
        headerRequest(RequestCode.END_TRANSACTION, {
          producerGroup: 'tx-twice',
          tranStateTableOffset: r.queueOffset,
          commitLogOffset: decodeOffsetMsgId(r.offsetMsgId).physicalOffset,
          commitOrRollback: 8,
          fromTransactionCheck: 'true',
          msgId: r.offsetMsgId,
          ...fields,
        }),
      );
    const again = await end({});
    assert.equal(again.code, ResponseCode.SUCCESS);
    assert.equal(again.remark, 'already resolved');
    const rollback = await end({ commitOrRollback: 12 });
    assert.equal(rollback.remark, 'already resolved');
    await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(await visible(mq, 'TxTwice'), ['once']);

    const wrongGroup = await end({ producerGroup: 'someone-else' });
    assert.equal(wrongGroup.code, ResponseCode.SYSTEM_ERROR);
    assert.match(wrongGroup.remark ?? '', /belongs to producer group tx-twice/);
    const wrongOffset = await end({ tranStateTableOffset: r.queueOffset + 1000 });
    assert.equal(wrongOffset.code, ResponseCode.SYSTEM_ERROR);
    const notHalf = await end({ commitLogOffset: 0 });
    assert.equal(notHalf.code, ResponseCode.SYSTEM_ERROR);
    const nowhere = await end({ commitLogOffset: 1 << 30 });
    assert.equal(nowhere.code, ResponseCode.SYSTEM_ERROR);
    const badState = await end({ commitOrRollback: 5 });
    assert.equal(badState.code, ResponseCode.SYSTEM_ERROR);
    assert.match(badState.remark ?? '', /expected 8/);
    const missing = await client.invoke(
      mq.brokerAddr,
      headerRequest(RequestCode.END_TRANSACTION, { producerGroup: 'x' }),
    );
    assert.equal(missing.code, ResponseCode.SYSTEM_ERROR);
    await assert.rejects(
      p.sendInTransaction({ topic: 'TxTwice', body: 'late', delayLevel: 2 }, async () => 'COMMIT'),
      /cannot also be delayed/,
    );
  });
});

test('a restart between the half and its end: the commit still works, the unresolved is still checked, the resolved is not', async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsmq-tx-restart-'));
  let mq = await startEmbedded({ dataDir, broker: { ...TX, transactionTimeOut: 60_000 } });
  const asked: string[] = [];
  const mk = (m: Embedded) =>
    new TransactionProducer({
      group: 'tx-restart',
      namesrvAddr: m.namesrvAddr,
      logger: quiet(),
      checker: async (msg) => {
        asked.push(msg.body.toString());
        return 'COMMIT';
      },
    });
  let p = mk(mq);
  try {
    await p.start();
    const held = await p.sendInTransaction({ topic: 'TxRestart', body: 'held' }, async () => 'UNKNOWN');
    await p.sendInTransaction({ topic: 'TxRestart', body: 'done' }, async () => 'COMMIT');
    await p.sendInTransaction({ topic: 'TxRestart', body: 'open' }, async () => 'UNKNOWN');
    await p.shutdown();
    await mq.close();

    mq = await startEmbedded({ dataDir, broker: { ...TX, transactionTimeOut: 300 } });
    // The producer commits `held` after the restart with the offsets it got before it.
    const client = new RemotingClient();
    const res = await client.invoke(
      mq.brokerAddr,
      headerRequest(RequestCode.END_TRANSACTION, {
        producerGroup: 'tx-restart',
        tranStateTableOffset: held.queueOffset,
        commitLogOffset: decodeOffsetMsgId(held.offsetMsgId).physicalOffset,
        commitOrRollback: 8,
        msgId: held.offsetMsgId,
      }),
    );
    client.close();
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
    assert.equal(res.remark, 'committed');
    p = mk(mq);
    await p.start();
    await waitFor(async () => (await visible(mq, 'TxRestart')).length === 3, 10_000, 'all three visible');
    assert.deepEqual(await visible(mq, 'TxRestart'), ['done', 'held', 'open']);
    assert.deepEqual(asked, ['open'], 'only the unresolved one was checked');
  } finally {
    await p.shutdown();
    await mq.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
});
