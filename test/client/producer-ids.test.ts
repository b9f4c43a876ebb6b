import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createUniqId } from '../../src/message/index.js';

test('UNIQ_KEY layout: IP | pid | random | ms since the month began | counter, upper-case hex', () => {
  const now = new Date(2024, 2, 5, 6, 7, 8, 9).getTime();
  const sinceMonth = now - new Date(2024, 2, 1).getTime();
  const a = createUniqId(now, '192.168.1.20');
  const b = createUniqId(now, '192.168.1.20');
  assert.match(a, /^[0-9A-F]{32}$/);
  assert.equal(a.slice(0, 8), 'C0A80114');
  assert.equal(Number.parseInt(a.slice(8, 12), 16), process.pid & 0xffff);
  assert.equal(Number.parseInt(a.slice(20, 28), 16), sinceMonth);
  assert.equal(a.slice(0, 28), b.slice(0, 28), 'one prefix per process and IP');
  assert.equal(
    (Number.parseInt(b.slice(28), 16) - Number.parseInt(a.slice(28), 16)) & 0xffff,
    1,
    'the counter',
  );
  assert.equal(createUniqId(now).slice(0, 8), '7F000001', "the broker's default: 127.0.0.1");
  assert.equal(
    createUniqId(now, '10.0.0.1').slice(12, 20),
    a.slice(12, 20),
    'the random part is per process',
  );
});

test('UNIQ_KEY with an IPv6 client: 16 IP bytes, 56 hex digits', () => {
  const id = createUniqId(Date.now(), '2001:db8::1');
  assert.match(id, /^[0-9A-F]{56}$/);
  assert.equal(id.slice(0, 32), '20010DB8000000000000000000000001');
  assert.equal(createUniqId(Date.now(), '::ffff:10.1.2.3').slice(0, 32), '00000000000000000000FFFF0A010203');
});
