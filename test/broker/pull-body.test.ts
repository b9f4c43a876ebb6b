import assert from 'node:assert/strict';
import { test } from 'node:test';
import { joinRecords } from '../../src/broker/processors/pull-message.js';

test('a pull body of records back to back in one buffer is a view of it; others are one copy', () => {
  // Not from the shared pool, so that buffer identity means "the same memory".
  const log = Buffer.alloc(16);
  log.write('aaaabbbbccccdddd');
  const runs = [log.subarray(0, 4), log.subarray(4, 8), log.subarray(8, 12)];
  const joined = joinRecords(runs, 12);
  assert.equal(joined.toString(), 'aaaabbbbcccc');
  assert.equal(joined.buffer, log.buffer, 'no copy');
  assert.equal(joined.byteOffset, log.byteOffset);

  const gap = [log.subarray(0, 4), log.subarray(8, 12)];
  const copied = joinRecords(gap, 8);
  assert.equal(copied.toString(), 'aaaacccc');
  log[0] = 0x7a;
  assert.equal(copied.toString(), 'aaaacccc', 'a copy');

  const other = Buffer.from('eeee');
  assert.equal(joinRecords([log.subarray(0, 4), other], 8).toString(), 'zaaaeeee');
  assert.equal(joinRecords([other], 4), other, 'a lone record as it is');
});
