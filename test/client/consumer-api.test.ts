/** ConsumerApi: the pull and offset calls against a real broker, one response code at a time. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ClientInstance,
  ConsumerApi,
  isBrokerResponseError,
  type MessageQueue,
  type PullResult,
} from '../../src/client/index.js';
import { parseTagExpression } from '../../src/message/index.js';
import { ResponseCode } from '../../src/protocol/index.js';
import {
  type Cluster,
  createTopic,
  quiet,
  send,
  startCluster,
  unique,
  waitFor,
} from '../../test-support/consumer-fixtures.js';

describe('ConsumerApi', () => {
  let c: Cluster;
  let instance: ClientInstance;
  let api: ConsumerApi;
  let topic: string;
  let mq: MessageQueue;
  let sentAtMs = 0;

  before(async () => {
    c = await startCluster(1);
    instance = new ClientInstance({ namesrvAddr: c.namesrvAddr, logger: quiet() });
    api = new ConsumerApi(instance);
    topic = unique('Api');
    mq = { topic, brokerName: 'broker-a', queueId: 0 };
    await createTopic(c, topic, 1);
    await instance.route(topic);
    for (let i = 0; i < 6; i++) await send(c, topic, 'broker-a', 0, `m${i}`, i % 2 === 0 ? 'A' : 'B');
    sentAtMs = Date.now();
  });
  after(async () => {
    instance.close();
    await c.close();
  });

  const pull = (
    offset: number,
    expression = '*',
    extra: { commitOffset?: number } = {},
  ): Promise<PullResult> =>
    api.pull({
      group: 'api-group',
      queue: mq,
      offset,
      maxMsgNums: 4,
      expression,
      filter: parseTagExpression(expression)!,
      subVersion: 1,
      suspendTimeoutMs: 0,
      ...extra,
    });

  test('FOUND: decoded messages and the next offset; a tag list filters', async () => {
    const r = await pull(0);
    assert.equal(r.status, 'FOUND');
    assert.deepEqual(
      r.msgs.map((m) => m.queueOffset),
      [0, 1, 2, 3],
    );
    assert.equal(r.nextBeginOffset, 4);
    assert.equal(r.minOffset, 0);
    assert.equal(r.maxOffset, 6);
    assert.equal(r.msgs[0]!.body.toString(), 'm0');
    const b = await pull(0, 'B');
    assert.deepEqual(
      b.msgs.map((m) => m.body.toString()),
      ['m1', 'm3', 'm5'],
    );
  });

  test('NO_NEW_MSG at the end, NO_MATCHED_MSG past filtered messages, OFFSET_ILLEGAL beyond', async () => {
    const end = await pull(6);
    assert.equal(end.status, 'NO_NEW_MSG');
    assert.equal(end.nextBeginOffset, 6);
    const none = await pull(5, 'A');
    assert.equal(none.status, 'NO_MATCHED_MSG');
    assert.equal(none.nextBeginOffset, 6);
    const beyond = await pull(100);
    assert.equal(beyond.status, 'OFFSET_ILLEGAL');
    assert.equal(beyond.nextBeginOffset, 6);
  });

  test('offsets: none for a new group, COMMIT_OFFSET with a pull, UPDATE, max/min/search', async () => {
    const group = unique('gapi');
    assert.equal(await api.queryConsumerOffset(group, mq), undefined, 'QUERY_NOT_FOUND means none');
    await api.pull({
      group,
      queue: mq,
      offset: 0,
      maxMsgNums: 1,
      expression: '*',
      filter: { all: true },
      subVersion: 1,
      suspendTimeoutMs: 0,
      commitOffset: 3,
    });
    await waitFor(async () => (await api.queryConsumerOffset(group, mq)) === 3, 2_000, 'committed 3');
    await api.updateConsumerOffset(group, mq, 5);
    assert.equal(await api.queryConsumerOffset(group, mq), 5);
    assert.equal(await api.maxOffset(mq), 6);
    assert.equal(await api.minOffset(mq), 0);
    assert.equal(await api.searchOffset(mq, 0), 0);
    assert.equal(await api.searchOffset(mq, sentAtMs + 60_000), 6);
  });

  test('another answer code is a BrokerResponseError carrying it', async () => {
    const wrong = { ...mq, queueId: 9 };
    await assert.rejects(
      api.pull({
        group: 'g',
        queue: wrong,
        offset: 0,
        maxMsgNums: 1,
        expression: '*',
        filter: { all: true },
        subVersion: 1,
        suspendTimeoutMs: 0,
      }),
      (e) => isBrokerResponseError(e, ResponseCode.SYSTEM_ERROR),
    );
    await assert.rejects(
      api.maxOffset({ ...mq, brokerName: 'nowhere' }),
      (e) => (e as { codeName?: string }).codeName === 'NO_ROUTE',
    );
  });
});
