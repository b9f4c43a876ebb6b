import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createRequest,
  createResponse,
  isOneway,
  isResponse,
  nextOpaque,
  OpaqueCounter,
  RequestCode,
  ResponseCode,
} from '../../src/protocol/index.js';
import { COMMAND_KEYS } from '../../test-support/protocol-fixtures.js';

test('createRequest: defaults, a fresh opaque, one-way flag', () => {
  const body = Buffer.from('x');
  const a = createRequest(RequestCode.GET_ROUTEINFO_BY_TOPIC, { topic: 'T' });
  const b = createRequest(RequestCode.SEND_MESSAGE_V2, { a: 'G' }, body, { oneway: true, serializeType: 1 });
  assert.deepEqual(Object.keys(a), COMMAND_KEYS);
  assert.equal(a.code, 105);
  assert.equal(a.language, 'JAVA');
  assert.equal(a.version, 0);
  assert.equal(a.flag, 0);
  assert.equal(a.serializeType, 0);
  assert.equal(b.opaque, (a.opaque + 1) | 0);
  assert.equal(b.flag, 2);
  assert.equal(b.body, body);
  assert.ok(!isResponse(a) && !isOneway(a));
  assert.ok(!isResponse(b) && isOneway(b));
  const c = createRequest(1, undefined, undefined, {
    opaque: -5,
    language: 'NODE_JS',
    version: 7,
    remark: 'r',
  });
  assert.equal(c.opaque, -5);
  assert.equal(c.language, 'NODE_JS');
  assert.equal(c.version, 7);
  assert.equal(c.remark, 'r');
});

test('createResponse: same opaque and serialize type, response flag only', () => {
  const req = createRequest(RequestCode.HEART_BEAT, undefined, undefined, { oneway: true, serializeType: 1 });
  const res = createResponse(req, ResponseCode.SYSTEM_ERROR, 'boom', { k: 'v' }, Buffer.from('b'));
  assert.equal(res.opaque, req.opaque);
  assert.equal(res.serializeType, 1);
  assert.equal(res.flag, 1);
  assert.ok(isResponse(res) && !isOneway(res));
  assert.equal(res.code, 1);
  assert.equal(res.remark, 'boom');
  assert.deepEqual(res.extFields, { k: 'v' });
  assert.equal(res.language, 'JAVA');
  const mine = createResponse(req, 0, undefined, undefined, undefined, { version: 401, language: 'NODE_JS' });
  assert.equal(mine.version, 401);
  assert.equal(mine.language, 'NODE_JS');
});

test('nextOpaque: process-wide, increasing', () => {
  const a = nextOpaque();
  const b = nextOpaque();
  assert.equal(b, (a + 1) | 0);
});

test('OpaqueCounter: int32 wrap to negative, never 0', () => {
  const c = new OpaqueCounter(0x7ffffffe);
  assert.deepEqual([c.next(), c.next(), c.next()], [0x7ffffffe, 0x7fffffff, -0x80000000]);
  const d = new OpaqueCounter(-2);
  assert.deepEqual([d.next(), d.next(), d.next()], [-2, -1, 1]);
  assert.equal(new OpaqueCounter(0).next(), 1);
  assert.equal(new OpaqueCounter().next(), 1);
});
