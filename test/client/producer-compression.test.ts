import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { storedBodyToUser } from '../../src/client/message.js';
import { SysFlag } from '../../src/message/index.js';

test('decode: COMPRESSED bodies are inflated (4.x: no type bits; 5.x: zlib bits); others pass as stored', () => {
  const body = Buffer.from('x'.repeat(1000));
  const z = deflateSync(body);
  assert.deepEqual(storedBodyToUser(z, SysFlag.COMPRESSED), body);
  assert.deepEqual(storedBodyToUser(z, SysFlag.COMPRESSED | SysFlag.COMPRESSION_ZLIB), body);
  assert.deepEqual(storedBodyToUser(z, 0), z, 'no flag: not inflated');
  const notZlib = Buffer.from('not a zlib stream');
  assert.deepEqual(storedBodyToUser(notZlib, SysFlag.COMPRESSED), notZlib, 'not zlib: as stored');
  assert.deepEqual(storedBodyToUser(z, SysFlag.COMPRESSED | SysFlag.COMPRESSION_LZ4), z, 'LZ4: as stored');
});

test('decode: the body handed out is a copy, never a view into the pull buffer', () => {
  const pulled = Buffer.from('abc');
  const out = storedBodyToUser(pulled, 0);
  pulled[0] = 0x7a;
  assert.equal(out.toString(), 'abc');
});
