import assert from 'node:assert/strict';
import { test } from 'node:test';
import zlib from 'node:zlib';
import {
  bodyCrc32,
  decodeDataVersion,
  decodeRegisterBrokerBody,
  encodeRegisterBrokerBody,
  parseBrokerIdentityHeader,
  parseRegisterBrokerHeader,
  type RegisterBrokerBody,
} from '../../src/namesrv/index.js';
import { parseFastjson, quoteBareIntegerKeys } from '../../src/protocol/index.js';
import { topic } from '../../test-support/namesrv-fixtures.js';

test('fastjson: bare integer keys are quoted, strings and arrays are left alone', () => {
  assert.equal(quoteBareIntegerKeys('{0:"a",1:"b"}'), '{"0":"a","1":"b"}');
  assert.equal(quoteBareIntegerKeys('{ 0 : "a" ,\n -12:"b"}'), '{ "0" : "a" ,\n "-12":"b"}');
  const tricky = '{"s":"{0:x},1:","a":[1,2,{3:4}],"e":"\\"{5:"}';
  assert.deepEqual(parseFastjson(tricky), { s: '{0:x},1:', a: [1, 2, { 3: 4 }], e: '"{5:' });
  assert.equal(quoteBareIntegerKeys('[1,2,3]'), '[1,2,3]');
  assert.deepEqual(parseFastjson('{"brokerAddrs":{0:"h:1",1:"h:2"}}'), {
    brokerAddrs: { 0: 'h:1', 1: 'h:2' },
  });
});

test('fastjson: standard JSON parses unchanged; non-JSON still throws SyntaxError', () => {
  assert.deepEqual(parseFastjson('{"0":"a"}'), { 0: 'a' });
  assert.throws(() => parseFastjson('{a:1}'), SyntaxError);
  assert.throws(() => parseFastjson('{0:}'), SyntaxError);
  assert.throws(() => parseFastjson(''), SyntaxError);
});

const sample: RegisterBrokerBody = {
  topicConfigs: [
    topic('TopicA', { readQueueNums: 8, writeQueueNums: 8 }),
    topic('TopicB', { perm: 4, topicFilterType: 'MULTI_TAG', attributes: { '+message.type': 'FIFO' } }),
  ],
  dataVersion: { timestamp: 1_700_000_000_123, counter: 7 },
  filterServerList: [],
};

test('register body: JSON form round-trips', () => {
  const decoded = decodeRegisterBrokerBody(encodeRegisterBrokerBody(sample, false), false);
  assert.deepEqual(decoded, { ok: true, value: sample });
});

test('register body: compressed form round-trips, minus what its topic lines do not carry', () => {
  const withFlags: RegisterBrokerBody = {
    ...sample,
    topicConfigs: [topic('Ordered', { order: true, topicSysFlag: 3 })],
  };
  const decoded = decodeRegisterBrokerBody(encodeRegisterBrokerBody(withFlags, true), true);
  assert.ok(decoded.ok);
  assert.deepEqual(decoded.value.topicConfigs, [topic('Ordered')]);
  assert.deepEqual(decoded.value.dataVersion, withFlags.dataVersion);
  const both = decodeRegisterBrokerBody(encodeRegisterBrokerBody(sample, true), true);
  assert.deepEqual(both, { ok: true, value: sample });
});

test('register body: a compressed 5.x body with the trailing static-topic section decodes', () => {
  const parts: Buffer[] = [];
  const put = (s: string) => {
    const b = Buffer.from(s);
    const len = Buffer.alloc(4);
    len.writeInt32BE(b.length);
    parts.push(len, b);
  };
  const count = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    parts.push(b);
  };
  put('{"counter":2,"stateVersion":0,"timestamp":1700000000000}');
  count(2);
  put('TopicX 8 8 6 SINGLE_TAG {}');
  put('TopicY 2 2 6 SINGLE_TAG ');
  put('[]');
  count(1);
  put('{"bname":"broker-a","currIdMap":{0:0},"topic":"S","totalQueues":1}');
  const decoded = decodeRegisterBrokerBody(zlib.deflateSync(Buffer.concat(parts)), true);
  assert.ok(decoded.ok, decoded.ok ? '' : decoded.error);
  assert.deepEqual(
    decoded.value.topicConfigs.map((t) => [t.topicName, t.readQueueNums, t.attributes]),
    [
      ['TopicX', 8, {}],
      ['TopicY', 2, undefined],
    ],
  );
  assert.deepEqual(decoded.value.dataVersion, { timestamp: 1_700_000_000_000, counter: 2, stateVersion: 0 });
});

test('register body: fastjson output of a 5.x broker, with unquoted integer keys, decodes', () => {
  const javaBody =
    '{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":5,"stateVersion":0,' +
    '"timestamp":1700000000123},"mappingDataVersion":{"counter":0,"stateVersion":0,"timestamp":1700000000000},' +
    '"topicConfigTable":{"TopicTest":{"attributes":{},"order":false,"perm":6,"readQueueNums":4,' +
    '"topicFilterType":"SINGLE_TAG","topicName":"TopicTest","topicSysFlag":0,"writeQueueNums":4}},' +
    '"topicQueueMappingDetailMap":{},"topicQueueMappingInfoMap":{"StaticTopic":{"bname":"broker-a",' +
    '"currIdMap":{0:0,1:1},"dirty":false,"epoch":1,"scope":"__global__","topic":"StaticTopic","totalQueues":2}}}}';
  const decoded = decodeRegisterBrokerBody(Buffer.from(javaBody), false);
  assert.ok(decoded.ok, decoded.ok ? '' : decoded.error);
  assert.deepEqual(decoded.value.topicConfigs, [topic('TopicTest', { attributes: {} })]);
  assert.deepEqual(decoded.value.dataVersion, { timestamp: 1_700_000_000_123, counter: 5, stateVersion: 0 });
});

test('register body: the pre-3.0.11 form (the wrapper alone) and no body at all', () => {
  const old = '{"dataVersion":{"counter":1,"timestamp":5},"topicConfigTable":{"T":{"topicName":"T"}}}';
  const decoded = decodeRegisterBrokerBody(Buffer.from(old), false);
  assert.ok(decoded.ok);
  assert.deepEqual(decoded.value.topicConfigs, [{ ...topic('T'), readQueueNums: 16, writeQueueNums: 16 }]);
  assert.deepEqual(decodeRegisterBrokerBody(undefined, false), {
    ok: true,
    value: { topicConfigs: [], dataVersion: { timestamp: 0, counter: 0 }, filterServerList: [] },
  });
});

test('register body: malformed bodies are refused with a reason, never thrown', () => {
  const bad: Array<[string | Buffer, boolean, RegExp]> = [
    ['not json', false, /not JSON/],
    ['[1,2]', false, /not a JSON object/],
    ['{"topicConfigSerializeWrapper":{"topicConfigTable":[]}}', false, /topicConfigTable is not an object/],
    [
      '{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":{"readQueueNums":"8"}}}}',
      false,
      /readQueueNums/,
    ],
    [
      '{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":{"topicFilterType":"X"}}}}',
      false,
      /topicFilterType/,
    ],
    ['{"topicConfigSerializeWrapper":{"dataVersion":{"counter":1.5}}}', false, /counter/],
    ['{"filterServerList":[1],"topicConfigSerializeWrapper":{}}', false, /filterServerList/],
    [Buffer.from('garbage, not zlib'), true, /does not inflate/],
    [zlib.deflateSync(Buffer.from([0, 0, 0, 9, 0x7b])), true, /ends inside data version/],
    [zlib.deflateSync(Buffer.from([0xff, 0xff, 0xff, 0xff])), true, /negative/],
  ];
  for (const [body, compressed, why] of bad) {
    const r = decodeRegisterBrokerBody(Buffer.isBuffer(body) ? body : Buffer.from(body), compressed);
    assert.equal(r.ok, false, String(body));
    assert.match(r.ok ? '' : r.error, why);
  }
  const truncated = encodeRegisterBrokerBody(sample, true);
  const inflated = zlib.inflateSync(truncated);
  const cut = decodeRegisterBrokerBody(zlib.deflateSync(inflated.subarray(0, inflated.length - 3)), true);
  assert.equal(cut.ok, false);
});

test('data version body: decodes, and refuses an empty or non-JSON body', () => {
  assert.deepEqual(decodeDataVersion(Buffer.from('{"counter":3,"timestamp":9}')), {
    ok: true,
    value: { timestamp: 9, counter: 3 },
  });
  assert.equal(decodeDataVersion(undefined).ok, false);
  assert.equal(decodeDataVersion(Buffer.from('{')).ok, false);
});

test('headers: required fields and their RocketMQ wording; Java toString forms parse', () => {
  const ext = {
    brokerName: 'broker-a',
    brokerAddr: '10.0.0.1:10911',
    clusterName: 'C',
    haServerAddr: '10.0.0.1:10912',
    brokerId: '0',
    compressed: 'false',
    bodyCrc32: '123',
    heartbeatTimeoutMillis: '30000',
  };
  const ok = parseRegisterBrokerHeader(ext);
  assert.ok(ok.ok);
  assert.equal(ok.value.brokerId, 0);
  assert.equal(ok.value.compressed, false);
  assert.equal(ok.value.bodyCrc32, 123);
  assert.equal(ok.value.heartbeatTimeoutMillis, 30000);
  const { brokerName: _, ...missing } = ext;
  assert.deepEqual(parseRegisterBrokerHeader(missing), {
    ok: false,
    error: 'the custom field <brokerName> is null',
  });
  assert.equal(parseRegisterBrokerHeader({ ...ext, brokerId: 'x' }).ok, false);
  assert.equal(parseRegisterBrokerHeader({ ...ext, brokerId: '-1' }).ok, false);
  assert.equal(parseRegisterBrokerHeader(undefined).ok, false);
  assert.equal(parseRegisterBrokerHeader({ ...ext, compressed: 'TRUE' }).ok && true, true);
  assert.equal(parseBrokerIdentityHeader({ ...ext, brokerId: '1' }).ok, true);
});

test('bodyCrc32 is CRC-32 with the sign bit cleared, as RocketMQ UtilAll.crc32', () => {
  assert.equal(bodyCrc32(Buffer.from('123456789')), 0xcbf43926 & 0x7fffffff);
  assert.equal(bodyCrc32(undefined), 0);
});
