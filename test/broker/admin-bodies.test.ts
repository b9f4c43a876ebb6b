/**
 * The admin bodies (src/protocol/admin-bodies.ts) without sockets: fastjson's MessageQueue-keyed
 * maps both ways, defaults and refusals.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AdminBodyError,
  type ConsumeStats,
  computeConsumeLag,
  decodeConsumerConnection,
  decodeConsumeStats,
  decodeGroupList,
  decodeKVTable,
  decodeSubscriptionGroupConfig,
  decodeSubscriptionGroupWrapper,
  decodeTopicConfigAndQueueMapping,
  decodeTopicStatsTable,
  encodeConsumerConnection,
  encodeConsumeStats,
  encodeGroupList,
  encodeKVTable,
  encodeSubscriptionGroupConfig,
  encodeSubscriptionGroupWrapper,
  encodeTopicConfigAndQueueMapping,
  encodeTopicStatsTable,
  parseLaxJson,
  SUBSCRIPTION_GROUP_DEFAULTS,
  subscriptionGroupConfig,
} from '../../src/protocol/index.js';
import { seeded } from '../../test-support/prng.js';

const mq = (topic: string, queueId: number, brokerName = 'broker-a') => ({ topic, brokerName, queueId });
const utf8 = (s: string) => Buffer.from(s, 'utf8');

describe('parseLaxJson: JSON plus fastjson object and integer keys', () => {
  test('standard JSON parses as JSON.parse does', () => {
    const text = '{"a":[1,2.5,-3e2,true,false,null,"x\\"y\\u00e9"],"b":{"c":{}},"d":[]}';
    assert.deepEqual(parseLaxJson(text), JSON.parse(text));
  });

  test('an object key becomes its JSON text; a bare integer key its digits', () => {
    const v = parseLaxJson('{ {"brokerName":"b","queueId":0,"topic":"T"} : {"x":1}, 7:"seven", -2 : [] }');
    assert.deepEqual(v, {
      '{"brokerName":"b","queueId":0,"topic":"T"}': { x: 1 },
      '7': 'seven',
      '-2': [],
    });
  });

  test('"__proto__" is an ordinary key, as in JSON.parse', () => {
    const v = parseLaxJson('{{"k":1}:0,"__proto__":{"polluted":true}}') as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.deepEqual(Object.keys(v), ['{"k":1}', '__proto__']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('malformed text is refused with AdminBodyError naming the position', () => {
    for (const bad of [
      '{{"a":1}:}',
      '{{"a":1} 2}',
      '{{"a":1}:2',
      '{{"a":1}:2,}',
      '{{"a":"x}:1}',
      '{{"a":1}:2} extra',
      '{{"a":1}:tru}',
      '',
    ]) {
      assert.throws(() => parseLaxJson(bad), AdminBodyError, bad);
    }
    const deep = `{{"a":1}:${'['.repeat(100)}${']'.repeat(100)}}`;
    assert.throws(() => parseLaxJson(deep), /nested deeper than 64/);
  });
});

describe('ConsumeStats and TopicStatsTable: MessageQueue-keyed maps as fastjson writes them', () => {
  const stats: ConsumeStats = {
    offsetTable: [
      {
        queue: mq('T', 0),
        offsets: { brokerOffset: 20, consumerOffset: 12, pullOffset: 16, lastTimestamp: 1_700_000_000_123 },
      },
      { queue: mq('T', 1), offsets: { brokerOffset: 5, consumerOffset: 5, pullOffset: 5, lastTimestamp: 0 } },
    ],
    consumeTps: 1.5,
  };

  test('encodes byte for byte like a Java broker, which JSON.parse cannot read', () => {
    const text = encodeConsumeStats({
      ...stats,
      offsetTable: stats.offsetTable.slice(0, 1),
      consumeTps: 0,
    }).toString();
    assert.equal(
      text,
      '{"consumeTps":0.0,"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:' +
        '{"brokerOffset":20,"consumerOffset":12,"lastTimestamp":1700000000123,"pullOffset":16}}}',
    );
    assert.throws(() => JSON.parse(text), SyntaxError);
  });

  test('decode(encode(x)) is x, entries sorted by topic, broker and queue', () => {
    const shuffled = { ...stats, offsetTable: [...stats.offsetTable].reverse() };
    assert.deepEqual(decodeConsumeStats(encodeConsumeStats(shuffled)), stats);
    assert.deepEqual(decodeConsumeStats(encodeConsumeStats({ offsetTable: [], consumeTps: 0 })), {
      offsetTable: [],
      consumeTps: 0,
    });
  });

  test('also reads string keys holding a MessageQueue, and a 4.x body without pullOffset', () => {
    const body = JSON.stringify({
      offsetTable: {
        [JSON.stringify(mq('T', 3))]: { brokerOffset: 9, consumerOffset: 4, lastTimestamp: 7 },
      },
      consumeTps: 0,
    });
    assert.deepEqual(decodeConsumeStats(utf8(body)).offsetTable, [
      { queue: mq('T', 3), offsets: { brokerOffset: 9, consumerOffset: 4, pullOffset: 4, lastTimestamp: 7 } },
    ]);
  });

  test('lag per queue and in total; a consumer ahead of the broker counts 0', () => {
    const lag = computeConsumeLag({
      ...stats,
      offsetTable: [
        ...stats.offsetTable,
        {
          queue: mq('T', 2),
          offsets: { brokerOffset: 0, consumerOffset: 9, pullOffset: 9, lastTimestamp: 0 },
        },
      ],
    });
    assert.deepEqual(
      lag.queues.map((q) => [q.queue.queueId, q.lag]),
      [
        [0, 8],
        [1, 0],
        [2, 0],
      ],
    );
    assert.equal(lag.totalDiff, 8);
  });

  test('bodies of the wrong shape are refused with AdminBodyError', () => {
    for (const bad of [
      '',
      'not json',
      '[]',
      '{"offsetTable":{"T":{}}}',
      '{"offsetTable":{{"topic":"T","brokerName":"b"}:{}}}',
      '{"offsetTable":{{"topic":"T","brokerName":"b","queueId":0}:{"brokerOffset":"x"}}}',
      '{"offsetTable":{{"topic":"T","brokerName":"b","queueId":0}:{"brokerOffset":1e300}}}',
      '{"offsetTable":[],"consumeTps":"fast"}',
    ]) {
      assert.throws(() => decodeConsumeStats(utf8(bad)), AdminBodyError, bad);
    }
    assert.throws(() => decodeConsumeStats(undefined), /empty/);
  });

  seeded('seeded round trips with broker names full of JSON punctuation', 0xad01, (rng) => {
    const chars = ['a', 'Z', '{', '}', ':', ',', '"', '\\', ' ', 'é', '\n', '[', ']'];
    for (let round = 0; round < 200; round++) {
      const n = rng.int(0, 6);
      const offsetTable = Array.from({ length: n }, (_, i) => ({
        queue: mq(
          `T${rng.int(0, 3)}`,
          i,
          Array.from({ length: rng.int(1, 8) }, () => rng.pick(chars)).join(''),
        ),
        offsets: {
          minOffset: rng.int(0, 1000),
          maxOffset: rng.int(0, 2 ** 40),
          lastUpdateTimestamp: rng.int(0, 2 ** 42),
        },
      }));
      const back = decodeTopicStatsTable(encodeTopicStatsTable({ offsetTable }));
      const sorted = [...offsetTable].sort(
        (a, b) =>
          (a.queue.topic < b.queue.topic ? -1 : a.queue.topic > b.queue.topic ? 1 : 0) ||
          (a.queue.brokerName < b.queue.brokerName ? -1 : a.queue.brokerName > b.queue.brokerName ? 1 : 0) ||
          a.queue.queueId - b.queue.queueId,
      );
      assert.deepEqual(back.offsetTable, sorted, `round ${round}`);
    }
  });
});

describe('the other admin bodies', () => {
  test('SubscriptionGroupConfig: RocketMQ defaults for absent fields, refusals for bad ones', () => {
    const c = decodeSubscriptionGroupConfig(
      utf8('{"groupName":"G1","consumeEnable":false,"retryQueueNums":3}'),
    );
    assert.deepEqual(c, { ...subscriptionGroupConfig('G1'), consumeEnable: false, retryQueueNums: 3 });
    assert.deepEqual(SUBSCRIPTION_GROUP_DEFAULTS, {
      consumeEnable: true,
      consumeFromMinEnable: true,
      consumeBroadcastEnable: true,
      consumeMessageOrderly: false,
      retryQueueNums: 1,
      retryMaxTimes: 16,
      brokerId: 0,
      whichBrokerWhenConsumeSlowly: 1,
      notifyConsumerIdsChangedEnable: true,
    });
    assert.deepEqual(decodeSubscriptionGroupConfig(encodeSubscriptionGroupConfig(c)), c);
    // A 5.x body carries more fields; they are ignored.
    assert.equal(
      decodeSubscriptionGroupConfig(
        utf8('{"groupName":"G2","groupSysFlag":0,"attributes":{},"consumeTimeoutMinute":15}'),
      ).groupName,
      'G2',
    );
    for (const bad of [
      '{}',
      '{"groupName":""}',
      '{"groupName":"a b"}',
      '{"groupName":"a@b"}',
      `{"groupName":"${'g'.repeat(256)}"}`,
      '{"groupName":"G","consumeEnable":"no"}',
      '{"groupName":"G","retryQueueNums":0}',
      '{"groupName":"G","retryQueueNums":1.5}',
      '{"groupName":"G","brokerId":-1}',
      '{"groupName":7}',
      '{"groupName":"G"',
    ]) {
      assert.throws(() => decodeSubscriptionGroupConfig(utf8(bad)), AdminBodyError, bad);
    }
  });

  test('SubscriptionGroupWrapper round trip; a table entry under the wrong name is refused', () => {
    const w = {
      subscriptionGroupTable: {
        A: subscriptionGroupConfig('A'),
        B: subscriptionGroupConfig('B', { retryMaxTimes: 3 }),
      },
      dataVersion: { timestamp: 1_700_000_000_000, counter: 4 },
    };
    assert.deepEqual(decodeSubscriptionGroupWrapper(encodeSubscriptionGroupWrapper(w)), w);
    assert.throws(
      () => decodeSubscriptionGroupWrapper(utf8('{"subscriptionGroupTable":{"A":{"groupName":"B"}}}')),
      /holds the config of group B/,
    );
  });

  test('KVTable, GroupList, ConsumerConnection and TopicConfig round trips', () => {
    const kv = { table: { putTps: '1.00 0.50 0.05', runtime: '[ 0 days, 0 hours, 0 minutes, 1 seconds ]' } };
    assert.deepEqual(decodeKVTable(encodeKVTable(kv)), kv);
    assert.throws(() => decodeKVTable(utf8('{"table":{"a":1}}')), /table.a is not a string/);
    assert.deepEqual(decodeGroupList(encodeGroupList({ groupList: ['a', 'b'] })), { groupList: ['a', 'b'] });
    const cc = {
      connectionSet: [
        { clientId: '10.0.0.5@1', clientAddr: '10.0.0.5:5000', language: 'JAVA', version: 401 },
      ],
      subscriptionTable: {
        T: {
          topic: 'T',
          subString: 'A || B',
          tagsSet: ['A', 'B'],
          codeSet: [65, 66],
          subVersion: 9,
          expressionType: 'TAG',
        },
      },
      consumeType: 'CONSUME_PASSIVELY',
      messageModel: 'CLUSTERING',
      consumeFromWhere: 'CONSUME_FROM_LAST_OFFSET',
    };
    assert.deepEqual(decodeConsumerConnection(encodeConsumerConnection(cc)), cc);
    const tc = {
      topicName: 'T',
      readQueueNums: 8,
      writeQueueNums: 4,
      perm: 6,
      topicFilterType: 'SINGLE_TAG',
      topicSysFlag: 0,
      order: false,
    };
    assert.deepEqual(decodeTopicConfigAndQueueMapping(encodeTopicConfigAndQueueMapping(tc)), tc);
  });
});
