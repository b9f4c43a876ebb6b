/**
 * Seeded fault fuzzer for crash recovery: random appends across small segments, then the damage a
 * power loss can do to bytes that were never fdatasync'ed — a file cut at a random byte, a random
 * range zeroed, random garbage — and a reopen. Whatever the damage, recovery must yield a gap-free
 * prefix of what was appended, every flushed message intact, consume queues matching the log, and
 * appends that carry on. Replay a failure with TSMQ_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { decodeRecords } from '../src/message/index.js';
import { MessageStore, segmentFileName } from '../src/store/index.js';
import { mulberry32 } from './prng.js';
import { tempDir } from './store-fixtures.js';

const opts = {
  segmentBytes: 16 * 1024,
  cqUnitsPerFile: 50,
  indexSlotCount: 64,
  indexMaxEntries: 400,
  flushIntervalMs: 3_600_000,
  checkpointIntervalMs: 3_600_000,
};

/** Runs `rounds` seeded rounds from `baseSeed`; a failing assertion names its seed. */
export async function runRecoveryFuzz(baseSeed: number, rounds: number): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    const seed = baseSeed + round;
    const rnd = mulberry32(seed);
    const where = `seed ${seed}`;
    const t = tempDir();
    try {
      let store = await MessageStore.open({ rootDir: t.dir, ...opts });
      const bodies: string[] = [];
      const put = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const body = `m${bodies.length}-${'x'.repeat(Math.floor(rnd() * 1500))}`;
          const r = await store.put({ topic: 'Fz', queueId: 0, body: Buffer.from(body) });
          assert.equal(r.queueOffset, bodies.length, where);
          bodies.push(body);
        }
      };
      await put(5 + Math.floor(rnd() * 40));
      // Flush and checkpoint: everything so far is durable.
      await store.commitLog.flushAll();
      await store.waitDispatched();
      await store.runCheckpoint();
      const durable = bodies.length;
      const flushedAt = store.positions().flushedOffset;
      // More appends that a power loss may damage.
      await put(Math.floor(rnd() * 40));
      await store.waitDispatched();
      const end = store.positions().writtenOffset;
      await store.abandon();

      // Damage somewhere in [flushedAt, end).
      if (end > flushedAt) {
        const at = flushedAt + Math.floor(rnd() * (end - flushedAt));
        const segBase = at - (at % opts.segmentBytes);
        const file = path.join(t.dir, 'commitlog', segmentFileName(segBase));
        const kind = Math.floor(rnd() * 3);
        const fd = fs.openSync(file, 'r+');
        if (kind === 0) {
          fs.ftruncateSync(fd, at - segBase); // torn: the file ends mid-record
          for (const later of fs.readdirSync(path.join(t.dir, 'commitlog'))) {
            if (Number(later) > segBase) fs.unlinkSync(path.join(t.dir, 'commitlog', later));
          }
        } else {
          const len = 1 + Math.floor(rnd() * 600);
          const junk =
            kind === 1
              ? Buffer.alloc(len)
              : Buffer.from(Array.from({ length: len }, () => Math.floor(rnd() * 256)));
          fs.writeSync(fd, junk, 0, Math.min(len, segBase + opts.segmentBytes - at), at - segBase);
        }
        fs.closeSync(fd);
      }

      store = await MessageStore.open({ rootDir: t.dir, ...opts });
      assert.ok(store.recovery.crashed, where);
      const max = store.maxOffsetInQueue('Fz', 0);
      assert.ok(max >= durable, `${where}: ${max} < ${durable} durable messages`);
      assert.ok(max <= bodies.length, where);
      // The queue holds exactly the first `max` messages, in order, intact.
      const got: string[] = [];
      for (let off = 0; off < max; ) {
        const r = await store.getMessages('Fz', 0, off, { maxCount: 64 });
        assert.equal(r.status, 'FOUND', `${where}: offset ${off}`);
        for (const raw of r.records) got.push(decodeRecords(raw)[0]!.body.toString());
        off = r.nextBeginOffset;
      }
      assert.deepEqual(got, bodies.slice(0, max), where);
      // Appends go on right after the recovered end.
      const next = await store.put({ topic: 'Fz', queueId: 0, body: Buffer.from('after') });
      assert.equal(next.queueOffset, max, where);
      assert.equal(next.physicalOffset, store.recovery.end, where);
      await store.close();
      const again = await MessageStore.open({ rootDir: t.dir, ...opts });
      assert.equal(again.maxOffsetInQueue('Fz', 0), max + 1, where);
      await again.close();
    } finally {
      t.cleanup();
    }
  }
}
