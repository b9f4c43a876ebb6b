import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startEmbedded } from '../../src/broker/index.js';
import {
  createResponse,
  decodeResetOffsetBody,
  type RemotingCommand,
  RequestCode,
  ResponseCode,
} from '../../src/protocol/index.js';
import { RemotingClient } from '../../src/remoting/index.js';
import { consumerHeartbeat, headerRequest, sendV2 } from '../../test-support/broker-fixtures.js';

const TOPIC = 'ResetTopic';

test('INVOKE_BROKER_TO_RESET_OFFSET moves a group to a time, the earliest or the latest, and tells its live consumers', async () => {
  const mq = await startEmbedded();
  const admin = new RemotingClient();
  const consumer = new RemotingClient();
  const notices: RemotingCommand[] = [];
  consumer.registerProcessor(RequestCode.RESET_CONSUMER_CLIENT_OFFSET, (req) => {
    notices.push(req);
    return createResponse(req, ResponseCode.SUCCESS);
  });
  try {
    const stored: number[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await admin.invoke(
        mq.brokerAddr,
        sendV2({ topic: TOPIC, body: Buffer.from(`m${i}`), queueId: 0 }),
      );
      assert.equal(res.code, ResponseCode.SUCCESS);
      stored.push(Date.now());
      // The next message must be stored in a later millisecond than this one.
      const now = Date.now();
      while (Date.now() <= now) await new Promise((r) => setImmediate(r));
    }
    const commit = (offset: number) =>
      admin.invoke(
        mq.brokerAddr,
        headerRequest(RequestCode.UPDATE_CONSUMER_OFFSET, {
          consumerGroup: 'rg',
          topic: TOPIC,
          queueId: 0,
          commitOffset: offset,
        }),
      );
    const committed = async () =>
      Number(
        (
          await admin.invoke(
            mq.brokerAddr,
            headerRequest(RequestCode.QUERY_CONSUMER_OFFSET, {
              consumerGroup: 'rg',
              topic: TOPIC,
              queueId: 0,
            }),
          )
        ).extFields?.offset,
      );
    const reset = (timestamp: number, isForce = true) =>
      admin.invoke(
        mq.brokerAddr,
        headerRequest(RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, {
          topic: TOPIC,
          group: 'rg',
          timestamp,
          isForce: String(isForce),
        }),
      );
    await commit(10);
    // The time just after message 5 was acknowledged: messages 6..9 were stored at or after it.
    const res = await reset(stored[5]! + 1);
    assert.equal(res.code, ResponseCode.SUCCESS);
    const table = decodeResetOffsetBody(res.body).offsetTable;
    const q0 = table.find((e) => e.queue.queueId === 0)!;
    assert.ok(q0.offsets >= 5 && q0.offsets <= 6, `offset ${q0.offsets} for a time between messages 5 and 6`);
    assert.equal(await committed(), q0.offsets);

    assert.equal((await reset(-1)).code, ResponseCode.SUCCESS);
    assert.equal(await committed(), 0);
    assert.equal((await reset(-2, false)).code, ResponseCode.SUCCESS);
    assert.equal(await committed(), 0, 'without force a queue only moves back');
    assert.equal((await reset(-2)).code, ResponseCode.SUCCESS);
    assert.equal(await committed(), 10);

    // A live consumer of the group is told, with the new offsets in the body.
    const hb = await consumer.invoke(
      mq.brokerAddr,
      consumerHeartbeat({ clientId: 'c1', group: 'rg', topic: TOPIC }),
    );
    assert.equal(hb.code, ResponseCode.SUCCESS);
    assert.equal((await reset(-1)).code, ResponseCode.SUCCESS);
    assert.equal(notices.length, 1);
    assert.equal(notices[0]!.extFields?.group, 'rg');
    assert.equal(
      decodeResetOffsetBody(notices[0]!.body).offsetTable.find((e) => e.queue.queueId === 0)?.offsets,
      0,
    );

    // Bad input.
    const unknown = await admin.invoke(
      mq.brokerAddr,
      headerRequest(RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, { topic: 'Nope', group: 'rg', timestamp: 0 }),
    );
    assert.equal(unknown.code, ResponseCode.TOPIC_NOT_EXIST);
    const missing = await admin.invoke(
      mq.brokerAddr,
      headerRequest(RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, { topic: TOPIC }),
    );
    assert.equal(missing.code, ResponseCode.SYSTEM_ERROR);
    assert.match(missing.remark ?? '', /group/);
  } finally {
    admin.close();
    consumer.close();
    await mq.close();
  }
});
