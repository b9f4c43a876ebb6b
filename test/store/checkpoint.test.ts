import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { crc32 as zlibCrc } from 'node:zlib';
import { isTsmqError } from '../../src/common/errors.js';
import { Checkpoint, decodeCheckpointSlot, encodeCheckpointSlot } from '../../src/store/checkpoint.js';
import { JsonFile, nodeFileIo } from '../../src/store/index.js';
import { FaultyIo, tempDir } from '../../test-support/store-fixtures.js';

const t = tempDir();
after(t.cleanup);

const state = (n: number) => ({
  flushedOffset: n * 1000 + 2 ** 33,
  dispatchedOffset: n * 900,
  physicStoreTimestamp: 1_700_000_000_000 + n,
  logicsStoreTimestamp: 1_700_000_000_000 + n,
  clean: n % 2 === 0,
});

test('checkpoint slot codec round-trips and rejects any damaged byte', () => {
  const slot = encodeCheckpointSlot(state(3), 7);
  assert.equal(slot.length, 64);
  assert.deepEqual(decodeCheckpointSlot(slot), { sequence: 7, state: state(3) });
  for (let i = 0; i < 64; i++) {
    const bad = Buffer.from(slot);
    bad[i]! ^= 0x40;
    assert.equal(decodeCheckpointSlot(bad), undefined, `flipped byte ${i} must be detected`);
  }
  assert.equal(decodeCheckpointSlot(Buffer.alloc(64)), undefined);
  const future = Buffer.from(slot);
  future.writeUInt16BE(99, 4);
  future.writeUInt32BE(zlibCrc(future.subarray(0, 60)) >>> 0, 60);
  assert.throws(
    () => decodeCheckpointSlot(future),
    (e) => isTsmqError(e, 'STORE_VERSION_UNSUPPORTED'),
  );
});

test('checkpoint writes alternate slots; a torn newest slot falls back to the previous state', async () => {
  const p = path.join(t.dir, 'checkpoint');
  let cp = await Checkpoint.open(nodeFileIo, p);
  assert.equal(cp.loaded, undefined);
  await cp.write(state(1));
  await cp.write(state(2));
  await cp.close();
  cp = await Checkpoint.open(nodeFileIo, p);
  assert.deepEqual(cp.loaded, state(2));
  await cp.write(state(3)); // sequence 3 goes to slot 1
  await cp.close();
  // Tear the newest slot (slot 1 holds sequence 3).
  const fd = fs.openSync(p, 'r+');
  fs.writeSync(fd, Buffer.alloc(10, 0xff), 0, 10, 64 + 20);
  fs.closeSync(fd);
  cp = await Checkpoint.open(nodeFileIo, p);
  assert.deepEqual(cp.loaded, state(2));
  await cp.close();
});

test('JsonFile writes atomically, coalesces bursts and reads back', async () => {
  const io = new FaultyIo();
  const f = new JsonFile<{ n: number; topics: string[] }>(path.join(t.dir, 'topics.json'), io);
  assert.deepEqual(await f.read({ n: 0, topics: [] }), { n: 0, topics: [] });
  const writesBefore = io.counts.fdatasync;
  await Promise.all(Array.from({ length: 50 }, (_, i) => f.write({ n: i, topics: [`T${i}`] })));
  assert.deepEqual(await f.read({ n: -1, topics: [] }), { n: 49, topics: ['T49'] });
  assert.equal(io.counts.fdatasync, writesBefore, 'JsonFile uses fsync, not fdatasync');
  assert.ok(!fs.existsSync(path.join(t.dir, 'topics.json.tmp')), 'no temp file left behind');
  // A failed write rejects and leaves the previous content intact.
  io.failNext('write', 'topics.json.tmp');
  await assert.rejects(f.write({ n: 99, topics: [] }));
  assert.deepEqual(await f.read({ n: -1, topics: [] }), { n: 49, topics: ['T49'] });
  // Malformed JSON is an error, not a silent default.
  fs.writeFileSync(path.join(t.dir, 'bad.json'), '{"n":');
  await assert.rejects(new JsonFile(path.join(t.dir, 'bad.json')).read({}), /not valid JSON/);
});
