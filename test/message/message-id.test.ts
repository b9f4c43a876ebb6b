import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, isTsmqError } from '../../src/common/errors.js';
import type { HostAddress } from '../../src/common/types.js';
import { createOffsetMsgId, decodeOffsetMsgId } from '../../src/message/index.js';

const invalid = (e: unknown) =>
  isTsmqError(e, 'INVALID_MESSAGE_ID') && e.code === ErrorCode.INVALID_MESSAGE_ID;

test('IPv4: address, port, offset as 32 uppercase hex digits', () => {
  const host = { address: '192.168.0.1', port: 10911 };
  assert.equal(createOffsetMsgId(host, 0), 'C0A80001' + '00002A9F' + '0000000000000000');
  assert.equal(createOffsetMsgId(host, 0x123_4567_89ab), 'C0A80001' + '00002A9F' + '00000123456789AB');
  assert.deepEqual(decodeOffsetMsgId('C0A8000100002A9F00000123456789AB'), {
    storeHost: host,
    physicalOffset: 0x123_4567_89ab,
  });
});

test('IPv6: 56 hex digits; IPv4-mapped addresses count as IPv4', () => {
  const id = createOffsetMsgId({ address: '2001:db8::1', port: 10911 }, 2 ** 40);
  assert.equal(id, '20010DB8000000000000000000000001' + '00002A9F' + '0000010000000000');
  assert.deepEqual(decodeOffsetMsgId(id), {
    storeHost: { address: '2001:db8::1', port: 10911 },
    physicalOffset: 2 ** 40,
  });
  assert.equal(createOffsetMsgId({ address: '::ffff:10.0.0.1', port: 1 }, 5).length, 32);
});

test('round trips, lowercase accepted, largest safe offset', () => {
  const hosts: HostAddress[] = [
    { address: '10.0.0.1', port: 0 },
    { address: '255.255.255.255', port: 65535 },
    { address: 'fe80::1', port: 8080 },
  ];
  for (const h of hosts) {
    for (const off of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) {
      const id = createOffsetMsgId(h, off);
      assert.deepEqual(decodeOffsetMsgId(id), { storeHost: h, physicalOffset: off });
      assert.deepEqual(decodeOffsetMsgId(id.toLowerCase()), { storeHost: h, physicalOffset: off });
    }
  }
});

test('INVALID_MESSAGE_ID on bad length, bad hex, port or offset out of range', () => {
  const good = 'C0A8000100002A9F0000000000000000';
  for (const id of [
    '',
    good.slice(1),
    `${good}0`,
    `${good.slice(0, -1)}G`,
    `${good.slice(0, -2)} 1`,
    'C0A80001' + '00010000' + '0000000000000000', // port 65536
    'C0A80001' + '00002A9F' + 'FFFFFFFFFFFFFFFF', // negative offset
    'C0A80001' + '00002A9F' + '0020000000000000', // 2^53: not exact as a JS number
  ]) {
    assert.throws(() => decodeOffsetMsgId(id), invalid, id);
  }
  assert.equal(ErrorCode.INVALID_MESSAGE_ID, 1009);
});
