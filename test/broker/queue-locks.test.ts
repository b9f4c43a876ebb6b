import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startEmbedded } from '../../src/broker/index.js';
import { QueueLockManager } from '../../src/broker/queue-locks.js';
import { ManualClock } from '../../src/common/clock.js';
import {
  createRequest,
  decodeLockBatchResponse,
  encodeLockBatchRequest,
  type MessageQueue,
  type RemotingCommand,
  RequestCode,
  ResponseCode,
} from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { headerRequest, sendV2 } from '../../test-support/broker-fixtures.js';

const q = (queueId: number, topic = 'T', brokerName = 'broker-a'): MessageQueue => ({
  topic,
  brokerName,
  queueId,
});

test('locks: one holder per group and queue; renewal keeps the version; expiry hands over with a newer one', () => {
  const clock = new ManualClock();
  const locks = new QueueLockManager(clock, 60_000);
  const [a0, a1] = locks.tryLockBatch('g', 'A', [q(0), q(1)]);
  assert.ok(a0 && a1 && a0.lockVersion !== a1.lockVersion);
  assert.deepEqual(
    locks.tryLockBatch('g', 'B', [q(0), q(2)]).map((g) => g.queue.queueId),
    [2],
  );
  assert.deepEqual(
    locks.tryLockBatch('other-group', 'B', [q(0)]).map((g) => g.queue.queueId),
    [0],
  );
  clock.advance(30_000);
  assert.equal(
    locks.tryLockBatch('g', 'A', [q(0)])[0]!.lockVersion,
    a0.lockVersion,
    'renewal keeps the version',
  );
  clock.advance(59_000);
  assert.equal(locks.tryLockBatch('g', 'B', [q(0)]).length, 0, 'renewed 59 s ago: still A’s');
  clock.advance(2_000);
  const [b0] = locks.tryLockBatch('g', 'B', [q(0)]);
  assert.ok(b0 && b0.lockVersion > a0.lockVersion, 'an expired lock goes to B with a newer version');
  assert.equal(locks.holder('g', q(0))?.clientId, 'B');
  // Fencing: A's old version is refused now that B holds the queue; B's is accepted.
  assert.equal(locks.checkVersion('g', q(0), a0.lockVersion).ok, false);
  assert.equal(locks.checkVersion('g', q(0), b0.lockVersion).ok, true);
  // A's lock on queue 1 expired with no successor: its version still passes.
  assert.equal(locks.checkVersion('g', q(1), a1.lockVersion).ok, true);
  // Unlocking a queue one does not hold changes nothing.
  assert.equal(locks.unlockBatch('g', 'A', [q(0)]), 0);
  assert.equal(locks.holder('g', q(0))?.clientId, 'B');
  assert.equal(locks.unlockBatch('g', 'B', [q(0)]), 1);
  assert.equal(locks.holder('g', q(0)), undefined);
  const [a0again] = locks.tryLockBatch('g', 'A', [q(0)]);
  assert.ok(a0again!.lockVersion > b0.lockVersion);
});

test('lock versions keep growing across a broker restart', () => {
  const clock = new ManualClock(1_800_000_000_000);
  const before = new QueueLockManager(clock);
  const v = before.tryLockBatch('g', 'A', [q(0), q(1), q(2)]).map((g) => g.lockVersion);
  clock.advance(1);
  const after = new QueueLockManager(clock);
  const [w] = after.tryLockBatch('g', 'B', [q(0)]);
  assert.ok(w!.lockVersion > Math.max(...v));
});

function lockRequest(code: number, group: string, clientId: string, mqSet: MessageQueue[]): RemotingCommand {
  return createRequest(
    code,
    {},
    encodeLockBatchRequest({ consumerGroup: group, clientId, mqSet, onlyThisBroker: true }),
  );
}

test('LOCK_BATCH_MQ / UNLOCK_BATCH_MQ over the wire, and a stale holder’s offset commit is refused', async () => {
  const clock = new ManualClock(Date.now());
  const mq = await startEmbedded({ brokerOptions: { clock } });
  const client = new RemotingClient();
  try {
    const send = await client.invoke(
      mq.brokerAddr,
      sendV2({ topic: 'LockTopic', body: Buffer.from('x'), queueId: 0 }),
    );
    assert.equal(send.code, ResponseCode.SUCCESS);
    const queues = [
      q(0, 'LockTopic'),
      q(1, 'LockTopic'),
      q(99, 'LockTopic'),
      q(0, 'NoSuchTopic'),
      q(0, 'LockTopic', 'broker-z'),
    ];
    const resA = await client.invoke(
      mq.brokerAddr,
      lockRequest(RequestCode.LOCK_BATCH_MQ, 'og', 'A', queues),
    );
    assert.equal(resA.code, ResponseCode.SUCCESS);
    const a = decodeLockBatchResponse(resA.body);
    assert.deepEqual(
      a.lockOKMQSet.map((x) => x.queueId),
      [0, 1],
      'only real queues of this broker are granted',
    );
    const versionA = a.lockVersions.find((x) => x.queueId === 0)!.lockVersion;

    const commit = (version: number, offset: number) =>
      client.invoke(
        mq.brokerAddr,
        headerRequest(RequestCode.UPDATE_CONSUMER_OFFSET, {
          consumerGroup: 'og',
          topic: 'LockTopic',
          queueId: 0,
          commitOffset: offset,
          lockVersion: version,
        }),
      );
    assert.equal((await commit(versionA, 1)).code, ResponseCode.SUCCESS);

    const resB = await client.invoke(
      mq.brokerAddr,
      lockRequest(RequestCode.LOCK_BATCH_MQ, 'og', 'B', [q(0, 'LockTopic')]),
    );
    assert.equal(decodeLockBatchResponse(resB.body).lockOKMQSet.length, 0, 'A holds it');
    clock.advance(61_000); // A froze past its lease
    const resB2 = await client.invoke(
      mq.brokerAddr,
      lockRequest(RequestCode.LOCK_BATCH_MQ, 'og', 'B', [q(0, 'LockTopic')]),
    );
    const versionB = decodeLockBatchResponse(resB2.body).lockVersions[0]!.lockVersion;
    assert.ok(versionB > versionA);
    assert.equal((await commit(versionB, 5)).code, ResponseCode.SUCCESS);
    const stale = await commit(versionA, 2); // A wakes up and commits
    assert.equal(stale.code, ResponseCode.NO_PERMISSION);
    assert.match(stale.remark ?? '', /stale lock version/);
    const offset = await client.invoke(
      mq.brokerAddr,
      headerRequest(RequestCode.QUERY_CONSUMER_OFFSET, {
        consumerGroup: 'og',
        topic: 'LockTopic',
        queueId: 0,
      }),
    );
    assert.equal(offset.extFields?.offset, '5', 'the successor’s progress stands');

    // B unlocks; a bad body is answered, and the broker keeps serving.
    const un = await client.invoke(
      mq.brokerAddr,
      lockRequest(RequestCode.UNLOCK_BATCH_MQ, 'og', 'B', [q(0, 'LockTopic')]),
    );
    assert.equal(un.code, ResponseCode.SUCCESS);
    const bad = await client.invoke(
      mq.brokerAddr,
      createRequest(RequestCode.LOCK_BATCH_MQ, {}, Buffer.from('{"mqSet":7')),
    );
    assert.equal(bad.code, ResponseCode.SYSTEM_ERROR);
    assert.match(bad.remark ?? '', /bad lock request/);
    const again = await client.invoke(
      mq.brokerAddr,
      lockRequest(RequestCode.LOCK_BATCH_MQ, 'og', 'A', [q(0, 'LockTopic')]),
    );
    assert.equal(decodeLockBatchResponse(again.body).lockOKMQSet.length, 1);
  } finally {
    client.close();
    await mq.close();
  }
});
