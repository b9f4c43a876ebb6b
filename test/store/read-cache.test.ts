import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isTsmqError } from '../../src/common/errors.js';
import { decodeRecords } from '../../src/message/index.js';
import { type FileIo, MessageStore, type MessageStoreOptions, nodeFileIo } from '../../src/store/index.js';
import { tempDirsOfFile } from '../../test-support/store-fixtures.js';

const newDir = tempDirsOfFile();

/** The node file system, counting reads per folder (commitlog, consumequeue). */
function countingIo(): { io: FileIo; reads: Map<string, number> } {
  const reads = new Map<string, number>();
  const paths = new Map<number, string>();
  const io: FileIo = {
    ...nodeFileIo,
    async open(p, flags) {
      const fd = await nodeFileIo.open(p, flags);
      paths.set(fd, p);
      return fd;
    },
    read(fd, buf, offset, length, position) {
      const p = paths.get(fd) ?? '';
      const kind = p.includes(`${path.sep}commitlog${path.sep}`)
        ? 'commitlog'
        : p.includes(`${path.sep}consumequeue${path.sep}`)
          ? 'consumequeue'
          : 'other';
      reads.set(kind, (reads.get(kind) ?? 0) + 1);
      return nodeFileIo.read(fd, buf, offset, length, position);
    },
  };
  return { io, reads };
}

const QUEUES = 8;
const BATCH = 16;
const PER_QUEUE = 256;

/** Eight queues filled by batches in turn, as batched producers leave a log; then reopened cold. */
async function interleavedStore(opts: Partial<MessageStoreOptions>) {
  const dir = newDir();
  const filled = await MessageStore.open({ rootDir: dir, tailCacheBytes: 0 });
  for (let b = 0; b < PER_QUEUE / BATCH; b++) {
    for (let q = 0; q < QUEUES; q++) {
      await filled.putBatch(
        Array.from({ length: BATCH }, (_, i) => ({
          topic: 'Inter',
          queueId: q,
          body: Buffer.from(`q${q}-m${b * BATCH + i}-${'x'.repeat(900)}`),
          properties: `TAGS\u0001t${q}\u0002`,
        })),
      );
    }
  }
  await filled.close();
  const { io, reads } = countingIo();
  // tailCacheBytes 0 and a tiny consume-queue memory window: every read goes to the files.
  const store = await MessageStore.open({
    rootDir: dir,
    tailCacheBytes: 0,
    cqTailCacheUnits: 0,
    io,
    ...opts,
  });
  reads.clear();
  return { dir, store, reads };
}

/** Reads every queue to its end, the queues in turn, `maxCount` per call; bodies by queue. */
async function readQueuesInTurn(store: MessageStore, maxCount: number): Promise<string[][]> {
  const out: string[][] = Array.from({ length: QUEUES }, () => []);
  const next = new Array<number>(QUEUES).fill(0);
  for (let more = true; more; ) {
    more = false;
    await Promise.all(
      next.map(async (off, q) => {
        if (off >= store.dispatchedMaxOffsetInQueue('Inter', q)) return;
        const r = await store.getMessages('Inter', q, off, { maxCount });
        assert.equal(r.status, 'FOUND');
        for (const raw of r.records) out[q]!.push(decodeRecords(raw)[0]!.body.toString().slice(0, 12));
        next[q] = r.nextBeginOffset;
        more = true;
      }),
    );
  }
  return out;
}

test('queue reads of a backlog share read-ahead blocks: each block is read once, the records are the same', async () => {
  const cached = await interleavedStore({});
  const direct = await interleavedStore({ readCacheBytes: 0 });
  try {
    const a = await readQueuesInTurn(cached.store, 32);
    const b = await readQueuesInTurn(direct.store, 32);
    assert.deepEqual(a, b);
    for (let q = 0; q < QUEUES; q++) {
      assert.equal(a[q]!.length, PER_QUEUE);
      assert.equal(a[q]![PER_QUEUE - 1], `q${q}-m${PER_QUEUE - 1}-`.padEnd(12, 'x'));
    }
    const blocks = Math.ceil(cached.store.positions().writtenOffset / (512 * 1024));
    assert.equal(cached.store.readCache.reads, blocks, 'every block read once');
    // Records straddling two blocks come from the first one's overlap: no read of their own.
    assert.equal(cached.reads.get('commitlog'), blocks);
    assert.ok(
      direct.reads.get('commitlog')! > 4 * cached.reads.get('commitlog')!,
      `direct ${direct.reads.get('commitlog')} vs cached ${cached.reads.get('commitlog')} log reads`,
    );
    // Consume-queue units are read ahead: one file read serves many pulls of a queue.
    const pulls = (QUEUES * PER_QUEUE) / 32;
    assert.ok(
      cached.reads.get('consumequeue')! * 4 <= pulls,
      `${cached.reads.get('consumequeue')} unit reads`,
    );
  } finally {
    await cached.store.close();
    await direct.store.close();
  }
});

test('a record corrupted on disk is still refused when served from a read-ahead block', async () => {
  const { dir, store } = await interleavedStore({});
  try {
    const r = await store.getMessages('Inter', 3, 0, { maxCount: 1 });
    const [rec] = decodeRecords(r.records[0]!);
    await store.close();
    // Flip a body byte of queue 3's second message on disk, then read cold.
    const second = rec!.physicalOffset + rec!.totalSize;
    const seg = path.join(dir, 'commitlog', '00000000000000000000');
    const fd = fs.openSync(seg, 'r+');
    fs.writeSync(fd, Buffer.from([0x00]), 0, 1, second + 100);
    fs.closeSync(fd);
    const reopened = await MessageStore.open({ rootDir: dir, tailCacheBytes: 0 });
    try {
      const head = await reopened.getMessages('Inter', 3, 0, { maxCount: 8 });
      assert.equal(head.records.length, 1, 'stops before the corrupt record');
      await assert.rejects(reopened.getMessages('Inter', 3, 1, { maxCount: 8 }), (e) =>
        isTsmqError(e, 'CORRUPT_RECORD'),
      );
    } finally {
      await reopened.close();
    }
  } finally {
    await store.close();
  }
});

test('units read ahead never outlive a deleted topic: its next life reads its own messages', async () => {
  const store = await MessageStore.open({ rootDir: newDir(), tailCacheBytes: 0 });
  try {
    const put = (life: string, n: number) =>
      store.putBatch(
        Array.from({ length: n }, (_, i) => ({
          topic: 'Life',
          queueId: 0,
          body: Buffer.from(`${life}-${i}`),
        })),
      );
    await put('old', 200);
    await store.waitDispatched();
    const first = await store.getMessages('Life', 0, 0, { maxCount: 8 });
    assert.equal(decodeRecords(first.records[0]!)[0]!.body.toString(), 'old-0');
    await store.deleteTopic('Life');
    await put('new', 50);
    await store.waitDispatched();
    const again = await store.getMessages('Life', 0, 8, { maxCount: 8 });
    assert.equal(again.status, 'FOUND');
    assert.deepEqual(
      again.records.map((raw) => decodeRecords(raw)[0]!.body.toString()),
      Array.from({ length: 8 }, (_, i) => `new-${8 + i}`),
    );
  } finally {
    await store.close();
  }
});

test('records served from recycled read-ahead blocks stay intact after the blocks take other bytes', async () => {
  // Two blocks in all: reading the whole log recycles each buffer several times.
  const { store } = await interleavedStore({ readCacheBytes: 1024 * 1024 });
  try {
    const first = await store.getMessages('Inter', 0, 0, { maxCount: 32 });
    const before = first.records.map((r) => Buffer.from(r));
    const all = await readQueuesInTurn(store, 32);
    assert.equal(all[7]!.length, PER_QUEUE);
    assert.ok(store.readCache.reads > 4, `${store.readCache.reads} block reads`);
    assert.deepEqual(first.records, before);
    for (const raw of first.records) assert.equal(decodeRecords(raw, { checkCrc: true }).length, 1);
  } finally {
    await store.close();
  }
});

test('the first use of a block has the next two read ahead, so sequential readers find them loaded', async () => {
  const { store } = await interleavedStore({});
  try {
    await store.getMessages('Inter', 0, 0, { maxCount: 1 });
    for (let i = 0; i < 200 && store.readCache.reads < 3; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(store.readCache.reads, 3, 'block 0, then blocks 1 and 2 ahead');
    // Another queue's reads in those blocks cost no read of their own.
    const r = await store.getMessages('Inter', 7, 0, { maxCount: 32 });
    assert.equal(r.records.length, 32);
    assert.equal(store.readCache.reads, 3);
  } finally {
    await store.close();
  }
});
