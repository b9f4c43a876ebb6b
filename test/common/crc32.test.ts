import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { crc32Range } from '../../src/common/crc32.js';

test('crc32Range equals zlib.crc32 over any range, and continues across ranges', () => {
  // A seeded generator: the same bytes every run.
  let seed = 12345;
  const next = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed >>> 24;
  };
  const buf = Buffer.alloc(300);
  for (let i = 0; i < buf.length; i++) buf[i] = next();
  for (let start = 0; start < 20; start++) {
    for (let end = start; end <= 200; end += 1 + (end % 7)) {
      assert.equal(crc32Range(buf, start, end), crc32(buf.subarray(start, end)), `[${start}, ${end})`);
      const mid = start + ((end - start) >> 1);
      assert.equal(crc32Range(buf, mid, end, crc32Range(buf, start, mid)), crc32(buf.subarray(start, end)));
    }
  }
  assert.equal(crc32Range(Buffer.from('123456789'), 0, 9), 0xcbf43926);
});
