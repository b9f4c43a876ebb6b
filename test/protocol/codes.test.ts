import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  LANGUAGE_NAMES,
  LanguageCode,
  languageFromName,
  languageFromNumber,
  RemotingFlag,
  RequestCode,
  ResponseCode,
  RPC_ONEWAY_BIT,
  RPC_TYPE_BIT,
  requestCodeName,
  responseCodeName,
  SerializeType,
} from '../../src/protocol/index.js';

test('request codes are unique and carry RocketMQ numbers', () => {
  const values = Object.values(RequestCode);
  assert.equal(new Set(values).size, values.length);
  // A sample across the table (reference §2.3).
  assert.equal(RequestCode.SEND_MESSAGE, 10);
  assert.equal(RequestCode.PULL_MESSAGE, 11);
  assert.equal(RequestCode.HEART_BEAT, 34);
  assert.equal(RequestCode.REGISTER_BROKER, 103);
  assert.equal(RequestCode.GET_ROUTEINFO_BY_TOPIC, 105);
  assert.equal(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER, 206);
  assert.equal(RequestCode.SEND_MESSAGE_V2, 310);
  assert.equal(RequestCode.SEND_BATCH_MESSAGE, 320);
  assert.equal(RequestCode.LITE_PULL_MESSAGE, 361);
  assert.equal(RequestCode.POP_MESSAGE, 200050);
  assert.equal(RequestCode.BATCH_ACK_MESSAGE, 200151);
  assert.equal(requestCodeName(310), 'SEND_MESSAGE_V2');
  assert.equal(requestCodeName(16), undefined);
});

test('response codes are unique and carry RocketMQ numbers', () => {
  const values = Object.values(ResponseCode);
  assert.equal(new Set(values).size, values.length);
  assert.equal(ResponseCode.SUCCESS, 0);
  assert.equal(ResponseCode.SYSTEM_ERROR, 1);
  assert.equal(ResponseCode.REQUEST_CODE_NOT_SUPPORTED, 3);
  assert.equal(ResponseCode.TOPIC_NOT_EXIST, 17);
  assert.equal(ResponseCode.PULL_NOT_FOUND, 19);
  assert.equal(ResponseCode.PULL_OFFSET_MOVED, 21);
  assert.equal(ResponseCode.GO_AWAY, 1500);
  assert.equal(ResponseCode.RPC_TIME_OUT, -1006);
  assert.equal(responseCodeName(17), 'TOPIC_NOT_EXIST');
  assert.equal(responseCodeName(14), 'SERVICE_NOT_AVAILABLE');
});

test('language codes: JAVA=0 … NODE_JS=13, both directions', () => {
  assert.deepEqual(LANGUAGE_NAMES, [
    'JAVA',
    'CPP',
    'DOTNET',
    'PYTHON',
    'DELPHI',
    'ERLANG',
    'RUBY',
    'OTHER',
    'HTTP',
    'GO',
    'PHP',
    'OMS',
    'RUST',
    'NODE_JS',
  ]);
  LANGUAGE_NAMES.forEach((name, i) => {
    assert.equal(LanguageCode[name], i);
    assert.equal(languageFromNumber(i), name);
    assert.equal(languageFromName(name), name);
  });
  assert.equal(languageFromNumber(14), undefined);
  assert.equal(languageFromNumber(-1), undefined);
  assert.equal(languageFromNumber(1.5), undefined);
  assert.equal(languageFromName('java'), undefined);
  assert.equal(languageFromName('toString'), undefined);
  assert.equal(languageFromName('__proto__'), undefined);
});

test('serialize types and flag bits', () => {
  assert.deepEqual(SerializeType, { JSON: 0, ROCKETMQ: 1 });
  assert.equal(RPC_TYPE_BIT, 0);
  assert.equal(RPC_ONEWAY_BIT, 1);
  assert.deepEqual(RemotingFlag, { RESPONSE: 1, ONEWAY: 2 });
});
