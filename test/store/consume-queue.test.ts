import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { isTsmqError } from '../../src/common/errors.js';
import {
  ConsumeQueue,
  type ConsumeQueueOptions,
  CQ_HINT_BYTES,
  CQ_UNIT_BYTES,
  consumeQueueDir,
  DEFAULT_MAX_OPEN_FILES,
  decodeMaxOffsetHint,
  encodeMaxOffsetHint,
  unitAt,
} from '../../src/store/consume-queue.js';
import { ConsumeQueueStore } from '../../src/store/consume-queue-store.js';
import { type FileIo, nodeFileIo } from '../../src/store/io.js';
import { waitUntil } from '../../test-support/store-fixtures.js';

const TOPIC = 'TopicTest';
const OPTS: ConsumeQueueOptions = { unitsPerFile: 10, tailCacheUnits: 4 };
const FILE_BYTES = OPTS.unitsPerFile * CQ_UNIT_BYTES;

/** The unit the tests put at queue offset q: offsets past 2^32, negative and 64-bit tag codes. */
function unitFor(q: number): { physicalOffset: number; size: number; tagsCode: number } {
  return {
    physicalOffset: 5 * 2 ** 32 + q * 100,
    size: 60 + (q % 7),
    tagsCode: q % 3 === 0 ? -(q + 1) : q % 3 === 1 ? 1_700_000_000_000 + q : q,
  };
}

function putRange(cq: ConsumeQueue, from: number, to: number): void {
  for (let q = from; q < to; q++) {
    const u = unitFor(q);
    cq.put(q, u.physicalOffset, u.size, u.tagsCode);
  }
}

function decodeAll(buf: Buffer): Array<ReturnType<typeof unitAt>> {
  assert.equal(buf.length % CQ_UNIT_BYTES, 0);
  return Array.from({ length: buf.length / CQ_UNIT_BYTES }, (_, i) => unitAt(buf, i));
}

function expected(from: number, to: number): Array<ReturnType<typeof unitAt>> {
  return Array.from({ length: to - from }, (_, i) => unitFor(from + i));
}

const HOLE = { physicalOffset: 0, size: 0, tagsCode: 0 };

let root: string;
let open: ConsumeQueue[] = [];

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmq-cq-'));
  open = [];
});

afterEach(async () => {
  for (const q of open) await q.close().catch(() => undefined);
  fs.rmSync(root, { recursive: true, force: true });
});

async function openCq(io: FileIo = nodeFileIo, opts: ConsumeQueueOptions = OPTS, queueId = 0) {
  const cq = await ConsumeQueue.open(io, root, TOPIC, queueId, opts);
  open.push(cq);
  return cq;
}

function filesOf(queueId = 0): Array<[string, number]> {
  const dir = consumeQueueDir(root, TOPIC, queueId);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .sort()
    .map((n) => [n, fs.statSync(path.join(dir, n)).size]);
}

function name(startUnit: number): string {
  return String(startUnit * CQ_UNIT_BYTES).padStart(20, '0');
}

/**
 * A FileIo that tracks the descriptors it hands out (open now, and the most open at once), counts
 * I/O on descriptors it does not consider open (closed under a user), and can hold reads and
 * fdatasyncs.
 */
function countingIo(inner: FileIo = nodeFileIo) {
  const paths = new Map<number, string>();
  const stats = { highWater: 0, onClosedFd: 0 };
  const hooks: {
    beforeRead?: (path: string) => Promise<void> | void;
    beforeFdatasync?: (path: string) => Promise<void> | void;
  } = {};
  const checkOpen = (fd: number): string => {
    const p = paths.get(fd);
    if (p === undefined) stats.onClosedFd++;
    return p ?? '';
  };
  const io: FileIo = {
    ...inner,
    open: async (p, flags) => {
      const fd = await inner.open(p, flags);
      paths.set(fd, p);
      stats.highWater = Math.max(stats.highWater, paths.size);
      return fd;
    },
    close: (fd) => {
      checkOpen(fd);
      paths.delete(fd);
      return inner.close(fd);
    },
    read: async (fd, buf, offset, length, position) => {
      await hooks.beforeRead?.(checkOpen(fd));
      checkOpen(fd);
      return inner.read(fd, buf, offset, length, position);
    },
    write: (fd, buf, offset, length, position) => {
      checkOpen(fd);
      return inner.write(fd, buf, offset, length, position);
    },
    fdatasync: async (fd) => {
      await hooks.beforeFdatasync?.(checkOpen(fd));
      checkOpen(fd);
      return inner.fdatasync(fd);
    },
  };
  return { io, stats, hooks, openFds: () => paths.size };
}

/** Lets pending I/O callbacks and promise reactions run. */
async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('ConsumeQueue', () => {
  test('put, flush and reopen round-trip across several files', async () => {
    const cq = await openCq();
    assert.equal(cq.minOffset(), 0);
    assert.equal(cq.maxOffset(), 0);
    assert.deepEqual(filesOf(), [], 'nothing on disk before the first flush');
    putRange(cq, 0, 35);
    assert.equal(cq.maxOffset(), 35);
    await cq.flush();
    assert.deepEqual(filesOf(), [
      ['00000000000000000000', FILE_BYTES],
      ['00000000000000000200', FILE_BYTES],
      ['00000000000000000400', FILE_BYTES],
      ['00000000000000000600', 5 * CQ_UNIT_BYTES],
    ]);
    await cq.close();

    const again = await openCq();
    assert.equal(again.minOffset(), 0);
    assert.equal(again.maxOffset(), 35);
    assert.deepEqual(decodeAll(await again.readUnits(0, 100)), expected(0, 35));
    assert.equal(await again.maxPhysicalEnd(), unitFor(34).physicalOffset + unitFor(34).size);
    // Appends continue where the files end.
    putRange(again, 35, 42);
    await again.flush();
    await again.close();
    const third = await openCq();
    assert.equal(third.maxOffset(), 42);
    assert.deepEqual(decodeAll(await third.readUnits(30, 12)), expected(30, 42));
  });

  test('unit encoding keeps 64-bit offsets and sign-extended tag codes', async () => {
    const cq = await openCq();
    cq.put(0, 2 ** 53 - 1, 0x7fffffff, -2147483648);
    cq.put(1, 0, 1, 2 ** 52 + 3);
    cq.put(2, 2 ** 32, 20, -1);
    await cq.flush();
    const raw = fs.readFileSync(path.join(consumeQueueDir(root, TOPIC, 0), name(0)));
    assert.equal(raw.readBigInt64BE(0), 2n ** 53n - 1n);
    assert.equal(raw.readInt32BE(8), 0x7fffffff);
    assert.equal(raw.readBigInt64BE(12), -2147483648n);
    assert.equal(raw.readBigInt64BE(32), 2n ** 52n + 3n);
    assert.equal(raw.readBigInt64BE(52), -1n);
    assert.deepEqual(decodeAll(await cq.readUnits(0, 3)), [
      { physicalOffset: 2 ** 53 - 1, size: 0x7fffffff, tagsCode: -2147483648 },
      { physicalOffset: 0, size: 1, tagsCode: 2 ** 52 + 3 },
      { physicalOffset: 2 ** 32, size: 20, tagsCode: -1 },
    ]);
  });

  test('re-putting a unit is a no-op, in memory and after a reopen', async () => {
    const cq = await openCq();
    putRange(cq, 0, 12);
    putRange(cq, 5, 12); // replay of pending units
    assert.equal(cq.maxOffset(), 12);
    const u = unitFor(7);
    assert.throws(() => cq.put(7, u.physicalOffset + 1, u.size, u.tagsCode), /assertion failed/);
    await cq.flush();
    putRange(cq, 0, 12); // replay of flushed units, some still in the tail cache
    assert.equal(cq.maxOffset(), 12);
    await cq.close();

    const again = await openCq();
    putRange(again, 0, 14); // the dispatcher replays from its checkpoint after a restart
    assert.equal(again.maxOffset(), 14);
    await again.flush();
    assert.deepEqual(decodeAll(await again.readUnits(0, 100)), expected(0, 14));
    assert.deepEqual(
      filesOf().map(([, size]) => size),
      [FILE_BYTES, 4 * CQ_UNIT_BYTES],
    );
  });

  test('readUnits crosses files, mixes memory and disk, and clips at both ends', async () => {
    const cq = await openCq();
    putRange(cq, 0, 27);
    // Pending only: all from memory.
    assert.deepEqual(decodeAll(await cq.readUnits(8, 5)), expected(8, 13));
    await cq.flush();
    // The tail cache keeps 4 flushed units: [23, 27) from memory, the rest from disk.
    putRange(cq, 27, 29); // pending
    assert.deepEqual(decodeAll(await cq.readUnits(0, 100)), expected(0, 29));
    assert.deepEqual(decodeAll(await cq.readUnits(9, 3)), expected(9, 12));
    assert.deepEqual(decodeAll(await cq.readUnits(19, 10)), expected(19, 29));
    assert.deepEqual(decodeAll(await cq.readUnits(25, 2)), expected(25, 27));
    // Below minOffset: nothing, never a silent shift of the start.
    assert.equal((await cq.readUnits(-5, 8)).length, 0);
    assert.equal((await cq.readUnits(29, 10)).length, 0);
    assert.equal((await cq.readUnits(50, 10)).length, 0);
    assert.equal((await cq.readUnits(3, 0)).length, 0);
    await cq.close();

    const again = await openCq();
    assert.deepEqual(decodeAll(await again.readUnits(0, 100)), expected(0, 29));
    assert.deepEqual(decodeAll(await again.readUnits(8, 14)), expected(8, 22));
    assert.deepEqual(decodeAll(await again.readUnits(28, 1)), expected(28, 29));
  });

  test('a partial trailing unit and trailing zero units are dropped on load', async () => {
    const cq = await openCq();
    putRange(cq, 0, 13);
    await cq.close();
    const last = path.join(consumeQueueDir(root, TOPIC, 0), name(10));
    fs.appendFileSync(last, Buffer.from([1, 2, 3, 4, 5, 6, 7]));
    const torn = await openCq();
    assert.equal(torn.maxOffset(), 13);
    assert.equal(fs.statSync(last).size, 3 * CQ_UNIT_BYTES, 'the torn bytes are cut off the file');
    assert.deepEqual(decodeAll(await torn.readUnits(0, 100)), expected(0, 13));
    await torn.close();

    // Zero units at the tail, spilling into a later, all-zero file.
    fs.appendFileSync(last, Buffer.alloc(7 * CQ_UNIT_BYTES));
    fs.writeFileSync(
      path.join(consumeQueueDir(root, TOPIC, 0), name(20)),
      Buffer.alloc(3 * CQ_UNIT_BYTES + 5),
    );
    const zeros = await openCq();
    assert.equal(zeros.maxOffset(), 13);
    assert.deepEqual(filesOf(), [
      [name(0), FILE_BYTES],
      [name(10), 3 * CQ_UNIT_BYTES],
    ]);
    putRange(zeros, 13, 21);
    await zeros.flush();
    assert.deepEqual(decodeAll(await zeros.readUnits(0, 100)), expected(0, 21));
  });

  test('open refuses files that do not fit the configured file size', async () => {
    const cq = await openCq();
    putRange(cq, 0, 12); // files at bytes 0 and 200
    await cq.close();
    await assert.rejects(
      ConsumeQueue.open(nodeFileIo, root, TOPIC, 0, { unitsPerFile: 3, tailCacheUnits: 0 }),
      (e: unknown) => isTsmqError(e, 'STORE_LAYOUT_INVALID'),
    );
  });

  test('truncateByPhysicalOffset drops units past the end of the commit log', async () => {
    const cq = await openCq();
    putRange(cq, 0, 35);
    await cq.flush();
    putRange(cq, 35, 38); // pending units go too
    await cq.truncateByPhysicalOffset(unitFor(17).physicalOffset + 1);
    assert.equal(cq.maxOffset(), 18);
    assert.deepEqual(filesOf(), [
      [name(0), FILE_BYTES],
      [name(10), 8 * CQ_UNIT_BYTES],
    ]);
    assert.deepEqual(decodeAll(await cq.readUnits(0, 100)), expected(0, 18));
    assert.equal(await cq.maxPhysicalEnd(), unitFor(17).physicalOffset + unitFor(17).size);
    // Nothing to drop: no change.
    await cq.truncateByPhysicalOffset(unitFor(17).physicalOffset + 10_000);
    assert.equal(cq.maxOffset(), 18);
    // Dispatch resumes at the cut.
    putRange(cq, 18, 22);
    await cq.flush();
    await cq.close();

    const again = await openCq();
    assert.equal(again.maxOffset(), 22);
    assert.deepEqual(decodeAll(await again.readUnits(0, 100)), expected(0, 22));
    // A cut at a file boundary keeps the (now empty) file, so the end survives a restart.
    await again.truncateByPhysicalOffset(unitFor(20).physicalOffset);
    assert.equal(again.maxOffset(), 20);
    assert.deepEqual(filesOf(), [
      [name(0), FILE_BYTES],
      [name(10), FILE_BYTES],
      [name(20), 0],
    ]);
    await again.close();
    const third = await openCq();
    assert.equal(third.maxOffset(), 20);
    // Everything goes.
    await third.truncateByPhysicalOffset(0);
    assert.equal(third.maxOffset(), 0);
    assert.equal(third.minOffset(), 0);
    assert.equal(await third.maxPhysicalEnd(), -1);
    assert.deepEqual(filesOf(), [[name(0), 0]]);
  });

  test('correctMinOffset moves minOffset and deletes whole files below it', async () => {
    const cq = await openCq();
    putRange(cq, 0, 35);
    await cq.flush();
    assert.equal(await cq.correctMinOffset(0), 0);
    assert.equal(await cq.correctMinOffset(unitFor(23).physicalOffset - 1), 23);
    assert.equal(cq.minOffset(), 23);
    assert.deepEqual(
      filesOf().map(([n]) => n),
      [name(20), name(30)],
    );
    assert.equal((await cq.readUnits(20, 6)).length, 0, 'below minOffset');
    assert.deepEqual(decodeAll(await cq.readUnits(23, 3)), expected(23, 26));
    // minOffset never moves back.
    assert.equal(await cq.correctMinOffset(0), 23);
    // Everything expired: the file holding the last unit stays, so maxOffset survives a restart.
    assert.equal(await cq.correctMinOffset(unitFor(34).physicalOffset + 1_000), 35);
    assert.equal(cq.minOffset(), 35);
    assert.equal(cq.maxOffset(), 35);
    assert.equal((await cq.readUnits(0, 100)).length, 0);
    assert.deepEqual(
      filesOf().map(([n]) => n),
      [name(30)],
    );
    await cq.close();
    const again = await openCq();
    assert.equal(again.maxOffset(), 35);
    // The minimum is not persisted: the first unit on disk until the store corrects it again.
    assert.equal(again.minOffset(), 30);
    assert.equal(await again.correctMinOffset(unitFor(34).physicalOffset + 1_000), 35);
  });

  test('correctMinOffset keeps files whose units are still pending', async () => {
    const cq = await openCq();
    putRange(cq, 0, 25); // nothing flushed
    assert.equal(await cq.correctMinOffset(unitFor(22).physicalOffset), 22);
    assert.deepEqual(filesOf(), []);
    await cq.flush();
    assert.equal(await cq.correctMinOffset(unitFor(22).physicalOffset), 22);
    assert.deepEqual(
      filesOf().map(([n]) => n),
      [name(20)],
    );
  });

  test('a gap on an empty queue starts it at the gap, without writing the holes', async () => {
    const cq = await openCq();
    putRange(cq, 25, 28);
    assert.equal(cq.minOffset(), 25);
    assert.equal(cq.maxOffset(), 28);
    assert.equal((await cq.readUnits(0, 100)).length, 0, 'below minOffset');
    assert.deepEqual(decodeAll(await cq.readUnits(25, 100)), expected(25, 28));
    await cq.flush();
    assert.deepEqual(filesOf(), [[name(20), 8 * CQ_UNIT_BYTES]]);
    await cq.close();
    const again = await openCq();
    assert.equal(again.minOffset(), 25);
    assert.equal(again.maxOffset(), 28);
    assert.deepEqual(decodeAll(await again.readUnits(25, 100)), expected(25, 28));
    assert.equal(await again.correctMinOffset(0), 25);
  });

  test('a gap in a non-empty queue leaves holes', async () => {
    const cq = await openCq();
    putRange(cq, 0, 3);
    putRange(cq, 5, 6); // gap while units are pending: zero units in memory
    await cq.flush();
    putRange(cq, 13, 14); // gap with nothing pending: nothing written for the holes
    assert.equal(cq.maxOffset(), 14);
    const want = [...expected(0, 3), HOLE, HOLE, unitFor(5), ...Array(7).fill(HOLE), unitFor(13)];
    assert.deepEqual(decodeAll(await cq.readUnits(0, 100)), want);
    await cq.flush();
    await cq.close();
    const again = await openCq();
    assert.equal(again.minOffset(), 0);
    assert.equal(again.maxOffset(), 14);
    assert.deepEqual(decodeAll(await again.readUnits(0, 100)), want);
  });

  test('offsetForTimestamp finds the first message stored at or after a time', async () => {
    const cq = await openCq();
    putRange(cq, 0, 30);
    await cq.flush();
    // Store times by queue offset, with duplicates: 1000, 1000, 1010, 1010, 1020, ...
    const timeOf = new Map<number, number>();
    for (let q = 0; q < 30; q++) timeOf.set(unitFor(q).physicalOffset, 1000 + 10 * Math.floor(q / 2));
    const storeTimeOf = async (phys: number, size: number) => {
      const t = timeOf.get(phys);
      if (t === undefined) throw new Error(`no message at ${phys}`);
      assert.equal(size, unitFor((phys - unitFor(0).physicalOffset) / 100).size);
      return t;
    };
    assert.equal(await cq.offsetForTimestamp(0, storeTimeOf), 0);
    assert.equal(await cq.offsetForTimestamp(1000, storeTimeOf), 0);
    assert.equal(await cq.offsetForTimestamp(1001, storeTimeOf), 2);
    assert.equal(await cq.offsetForTimestamp(1010, storeTimeOf), 2);
    assert.equal(await cq.offsetForTimestamp(1075, storeTimeOf), 16);
    assert.equal(await cq.offsetForTimestamp(1140, storeTimeOf), 28);
    assert.equal(await cq.offsetForTimestamp(1141, storeTimeOf), 30);
    assert.equal(await cq.offsetForTimestamp(9e12, storeTimeOf), 30);
    // Messages gone from the commit log count as earlier than any time.
    for (let q = 0; q < 9; q++) timeOf.delete(unitFor(q).physicalOffset);
    assert.equal(await cq.offsetForTimestamp(0, storeTimeOf), 9);
    assert.equal(await cq.offsetForTimestamp(1050, storeTimeOf), 10);
    // Only [minOffset, maxOffset) is searched.
    await cq.correctMinOffset(unitFor(12).physicalOffset);
    assert.equal(await cq.offsetForTimestamp(0, storeTimeOf), 12);
    const empty = await openCq(nodeFileIo, OPTS, 1);
    assert.equal(await empty.offsetForTimestamp(5, storeTimeOf), 0);
  });

  test('readUnits from disk runs alongside flush and retention', async () => {
    const cq = await openCq(nodeFileIo, { unitsPerFile: 10, tailCacheUnits: 0 });
    putRange(cq, 0, 100);
    await cq.flush();
    const reads: Array<Promise<void>> = [];
    for (let i = 0; i < 40; i++) {
      const from = (i * 7) % 100;
      reads.push(
        cq.readUnits(from, 15).then((buf) => {
          const units = decodeAll(buf);
          if (units.length === 0) return;
          const first = (units[0]!.physicalOffset - unitFor(0).physicalOffset) / 100;
          assert.ok(
            first >= from && first + units.length <= from + 15,
            `read ${from}: got ${first}+${units.length}`,
          );
          assert.deepEqual(units, expected(first, first + units.length));
        }),
      );
      if (i === 10) putRange(cq, 100, 120);
      if (i === 15) reads.push(cq.flush());
      if (i === 20) reads.push(cq.correctMinOffset(unitFor(30).physicalOffset).then(() => undefined));
    }
    await Promise.all(reads);
    assert.equal(cq.minOffset(), 30);
    assert.deepEqual(decodeAll(await cq.readUnits(30, 200)), expected(30, 120));
  });

  test('a failed write or fdatasync rejects flush, and the next flush writes the units again', async () => {
    for (const failing of ['write', 'fdatasync'] as const) {
      const fault = { armed: false, calls: 0 };
      const io: FileIo = {
        ...nodeFileIo,
        [failing]: async (...args: unknown[]) => {
          fault.calls++;
          if (fault.armed) {
            fault.armed = false;
            throw Object.assign(new Error(`injected ${failing} failure`), { code: 'EIO' });
          }
          return (nodeFileIo[failing] as (...a: unknown[]) => Promise<unknown>)(...args);
        },
      };
      const cq = await openCq(io, OPTS, failing === 'write' ? 1 : 2);
      putRange(cq, 0, 8);
      await cq.flush();
      putRange(cq, 8, 25);
      fault.armed = true;
      await assert.rejects(cq.flush(), /injected/);
      assert.equal(cq.maxOffset(), 25);
      assert.deepEqual(decodeAll(await cq.readUnits(0, 100)), expected(0, 25), `${failing}: still readable`);
      putRange(cq, 25, 27);
      await cq.flush();
      await cq.close();
      const again = await openCq(nodeFileIo, OPTS, failing === 'write' ? 1 : 2);
      assert.equal(again.maxOffset(), 27, failing);
      assert.deepEqual(decodeAll(await again.readUnits(0, 100)), expected(0, 27), failing);
    }
  });

  test('concurrent flushes are serialized and each unit is written once', async () => {
    let writes = 0;
    const io: FileIo = {
      ...nodeFileIo,
      write: (...args) => {
        writes++;
        return nodeFileIo.write(...args);
      },
    };
    const cq = await openCq(io);
    putRange(cq, 0, 15);
    const a = cq.flush();
    await new Promise((resolve) => setImmediate(resolve)); // the first flush is under way
    putRange(cq, 15, 18);
    const b = cq.flush();
    const c = cq.flush();
    await Promise.all([a, b, c]);
    assert.equal(writes, 3, 'two files in the first flush, one in the second, none in the third');
    await cq.close();
    const again = await openCq();
    assert.deepEqual(decodeAll(await again.readUnits(0, 100)), expected(0, 18));
  });

  test('a closed or destroyed queue refuses work; destroy removes its directory', async () => {
    const cq = await openCq();
    putRange(cq, 0, 5);
    await cq.flush();
    await cq.destroy();
    assert.equal(fs.existsSync(consumeQueueDir(root, TOPIC, 0)), false);
    assert.throws(
      () => cq.put(5, 1, 1, 0),
      (e: unknown) => isTsmqError(e, 'STORE_CLOSED'),
    );
    await assert.rejects(cq.flush(), (e: unknown) => isTsmqError(e, 'STORE_CLOSED'));
    await assert.rejects(cq.readUnits(0, 1), (e: unknown) => isTsmqError(e, 'STORE_CLOSED'));
  });

  test('maxOffset never goes backwards across restarts when the queue ends on holes', async () => {
    // A queue rebuilt after the log head was deleted: its first real unit is 50, units 0-49 are
    // holes inside the first file (never written: they read as zeros).
    const opts = { unitsPerFile: 100, tailCacheUnits: 4 };
    const cq = await openCq(nodeFileIo, opts);
    putRange(cq, 50, 60);
    await cq.flush();
    // A crash cut the log before unit 50: recovery cuts the queue to 50 holes.
    await cq.truncateByPhysicalOffset(unitFor(50).physicalOffset);
    assert.equal(cq.maxOffset(), 50);
    assert.deepEqual(filesOf(), [
      [name(0), 50 * CQ_UNIT_BYTES],
      ['maxoffset', CQ_HINT_BYTES],
    ]);
    await cq.close();
    for (const round of [1, 2]) {
      const again = await openCq(nodeFileIo, opts);
      assert.equal(again.maxOffset(), 50, `reopen ${round}: offsets 0-49 are not handed out again`);
      assert.equal(again.minOffset(), 50, `reopen ${round}`);
      assert.equal(await again.maxPhysicalEnd(), -1);
      await again.close();
    }
    // New messages continue at 50, and a real tail needs no hint to survive a restart.
    const next = await openCq(nodeFileIo, opts);
    putRange(next, 50, 53);
    await next.close();
    const third = await openCq(nodeFileIo, opts);
    assert.deepEqual([third.minOffset(), third.maxOffset()], [50, 53]);
    assert.deepEqual(decodeAll(await third.readUnits(50, 10)), expected(50, 53));
  });

  test('the max-offset hint follows truncations down and covers holes written by a flush', async () => {
    const cq = await openCq();
    putRange(cq, 0, 10);
    putRange(cq, 20, 25); // nothing pending at the gap: 10-19 are holes never written
    await cq.flush();
    await cq.truncateByPhysicalOffset(unitFor(20).physicalOffset);
    assert.equal(cq.maxOffset(), 20);
    await cq.close();
    const a = await openCq();
    assert.equal(a.maxOffset(), 20);
    // Cut below the hint: the hint comes down with the queue, so the units the log will bring
    // again at 5-19 are not taken for replays of units already stored.
    await a.truncateByPhysicalOffset(unitFor(5).physicalOffset);
    assert.equal(a.maxOffset(), 5);
    await a.close();
    const b = await openCq();
    assert.equal(b.maxOffset(), 5);
    putRange(b, 5, 8);
    b.put(10, unitFor(10).physicalOffset, unitFor(10).size, unitFor(10).tagsCode); // 8, 9 holes, pending
    // Truncated with its holes still pending; the flush then writes them as the tail.
    await b.truncateByPhysicalOffset(unitFor(10).physicalOffset);
    assert.equal(b.maxOffset(), 10);
    await b.flush();
    await b.close();
    const c = await openCq();
    assert.equal(c.maxOffset(), 10);
    assert.deepEqual(decodeAll(await c.readUnits(0, 100)), [...expected(0, 8), HOLE, HOLE]);
  });

  test('max-offset hint codec: layout, and any damaged byte is refused', async () => {
    const max = 2 ** 53 - 1;
    const b = encodeMaxOffsetHint(max);
    assert.equal(b.length, CQ_HINT_BYTES);
    assert.equal(b.readUInt32BE(0), 0x43514d58);
    assert.equal(b.readUInt32BE(4), 1);
    assert.equal(b.readBigUInt64BE(8), BigInt(max));
    assert.deepEqual(decodeMaxOffsetHint(b), { ok: true, maxOffset: max });
    assert.deepEqual(decodeMaxOffsetHint(encodeMaxOffsetHint(50)), { ok: true, maxOffset: 50 });
    for (let i = 0; i < CQ_HINT_BYTES; i++) {
      const bad = Buffer.from(b);
      bad[i]! ^= 0x10;
      assert.equal(decodeMaxOffsetHint(bad).ok, false, `byte ${i}`);
    }
    assert.equal(decodeMaxOffsetHint(b.subarray(0, 19)).ok, false);

    // On disk: a damaged hint fails the open; a temp file left by a cut-short write is removed.
    const cq = await openCq();
    putRange(cq, 3, 5);
    await cq.truncateByPhysicalOffset(unitFor(3).physicalOffset);
    await cq.close();
    const dir = consumeQueueDir(root, TOPIC, 0);
    fs.writeFileSync(path.join(dir, 'maxoffset.tmp'), 'half');
    const again = await openCq();
    assert.equal(again.maxOffset(), 3);
    assert.equal(fs.existsSync(path.join(dir, 'maxoffset.tmp')), false);
    await again.close();
    const hint = fs.readFileSync(path.join(dir, 'maxoffset'));
    hint[10]! ^= 1;
    fs.writeFileSync(path.join(dir, 'maxoffset'), hint);
    await assert.rejects(ConsumeQueue.open(nodeFileIo, root, TOPIC, 0, OPTS), (e: unknown) =>
      isTsmqError(e, 'STORE_LAYOUT_INVALID'),
    );
  });

  test('seeded model check: puts, gaps, flushes, reads, truncation, retention, faults and reopens', async () => {
    const seed = Number(process.env.TSMQ_SEED ?? 20240601);
    let s = seed >>> 0;
    const rand = (n: number) => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s % n;
    };
    // Writes, syncs, truncations and deletions fail now and then while `faults` is on.
    let faults = false;
    const maybeFail = <A extends unknown[], R>(fn: (...a: A) => Promise<R>) => {
      return (...a: A): Promise<R> => {
        if (faults && rand(12) === 0)
          return Promise.reject(Object.assign(new Error('injected EIO'), { code: 'EIO' }));
        return fn(...a);
      };
    };
    const io: FileIo = {
      ...nodeFileIo,
      write: maybeFail(nodeFileIo.write),
      fdatasync: maybeFail(nodeFileIo.fdatasync),
      ftruncate: maybeFail(nodeFileIo.ftruncate),
      unlink: maybeFail(nodeFileIo.unlink),
    };
    const opts = { unitsPerFile: 7, tailCacheUnits: 3 };
    let cq = await openCq(io, opts, 9);
    // The model: the unit at each offset (undefined: a hole), minOffset, and the next log offset.
    const units: Array<ReturnType<typeof unitFor> | undefined> = [];
    let min = 0;
    let physical = 0;
    const where = (step: number, what: string) => `seed ${seed} step ${step}: ${what}`;
    const firstRealAtOrAfter = (q: number) => {
      while (q < units.length && units[q] === undefined) q++;
      return q;
    };
    try {
      for (let step = 0; step < 1000; step++) {
        faults = true;
        const op = rand(100);
        if (op < 50) {
          if (rand(12) === 0) {
            const gap = 1 + rand(15);
            if (min === units.length) min += gap;
            units.length += gap;
          }
          const n = 1 + rand(12);
          for (let i = 0; i < n; i++) {
            const u = { physicalOffset: physical, size: 10 + rand(50), tagsCode: rand(1000) - 500 };
            physical += u.size;
            cq.put(units.length, u.physicalOffset, u.size, u.tagsCode);
            units.push(u);
          }
          const q = rand(units.length);
          const u = units[q];
          if (u !== undefined) cq.put(q, u.physicalOffset, u.size, u.tagsCode); // a replay
        } else if (op < 65) {
          await cq.flush().catch(() => undefined);
        } else if (op < 82) {
          const from = rand(units.length + 5) - 2;
          const count = rand(20);
          const got = decodeAll(await cq.readUnits(from, count));
          // Below minOffset nothing comes back (never a shifted start).
          const want =
            from < min ? [] : Array.from(units.slice(from, Math.max(from, from + count)), (u) => u ?? HOLE);
          assert.deepEqual(got, want, where(step, `readUnits(${from}, ${count})`));
          const end = await cq.maxPhysicalEnd();
          if (end !== -1) assert.equal(end, physical, where(step, 'maxPhysicalEnd'));
        } else if (op < 88 && units.length > min) {
          const q = firstRealAtOrAfter(min + rand(units.length - min));
          if (q < units.length) {
            physical = units[q]!.physicalOffset;
            await cq.truncateByPhysicalOffset(physical).catch(() => undefined); // memory is cut regardless
            units.length = q;
          }
        } else if (op < 94) {
          const r = firstRealAtOrAfter(min + rand(units.length - min + 1));
          const minPhysical = r < units.length ? units[r]!.physicalOffset : physical;
          const want = Math.max(min, r);
          const got = await cq.correctMinOffset(minPhysical).catch(() => cq.minOffset());
          assert.equal(got, want, where(step, 'correctMinOffset'));
          min = want;
        } else {
          faults = false;
          await cq.close(); // flushes, and retries a pending cut of the files
          cq = await openCq(io, opts, 9);
          // Nothing is forgotten, trailing holes included (left by truncating right after a gap):
          // the max-offset hint keeps the end the files alone cannot tell.
          assert.equal(cq.maxOffset(), units.length, where(step, 'max after reopen'));
          // The minimum is not persisted: it falls back to the first unit on disk until corrected.
          const r = firstRealAtOrAfter(min);
          assert.ok(cq.minOffset() <= r, where(step, `min after reopen: ${cq.minOffset()} > ${r}`));
          const minPhysical = r < units.length ? units[r]!.physicalOffset : physical;
          assert.equal(await cq.correctMinOffset(minPhysical), r, where(step, 'min corrected after reopen'));
          min = r;
        }
        assert.equal(cq.maxOffset(), units.length, where(step, 'maxOffset'));
        assert.equal(cq.minOffset(), min, where(step, 'minOffset'));
      }
    } catch (e) {
      console.error(`consume queue model check failed; replay with TSMQ_SEED=${seed}`);
      throw e;
    } finally {
      faults = false;
    }
  });
});

describe('ConsumeQueueStore', () => {
  test('loads what it wrote', async () => {
    const store = await ConsumeQueueStore.open(nodeFileIo, root, OPTS);
    assert.deepEqual(store.all(), [], 'no consumequeue directory: an empty store');
    for (const [topic, queueId, n] of [
      ['A', 0, 12],
      ['A', 3, 2],
      ['A', 1, 25],
      ['B%RETRY', 0, 1],
    ] as const) {
      const q = store.getOrCreate(topic, queueId);
      assert.equal(store.getOrCreate(topic, queueId), q);
      putRange(q, 0, n);
    }
    store.getOrCreate('Empty', 0); // created, never written: leaves nothing on disk
    await store.flushAll();
    assert.equal(await store.maxPhysicalEnd(), unitFor(24).physicalOffset + unitFor(24).size);
    await store.close();

    const again = await ConsumeQueueStore.open(nodeFileIo, root, OPTS);
    assert.deepEqual(again.topics().sort(), ['A', 'B%RETRY']);
    assert.deepEqual(
      again.queuesOf('A').map((q) => [q.queueId, q.minOffset(), q.maxOffset()]),
      [
        [0, 0, 12],
        [1, 0, 25],
        [3, 0, 2],
      ],
    );
    assert.equal(again.get('B%RETRY', 0)?.maxOffset(), 1);
    assert.equal(again.get('A', 2), undefined);
    assert.deepEqual(decodeAll(await again.get('A', 1)!.readUnits(0, 100)), expected(0, 25));
    assert.equal(await again.maxPhysicalEnd(), unitFor(24).physicalOffset + unitFor(24).size);

    await again.truncateAllByPhysicalOffset(unitFor(5).physicalOffset);
    assert.deepEqual(
      [again.get('A', 0), again.get('A', 1), again.get('A', 3), again.get('B%RETRY', 0)].map((q) =>
        q?.maxOffset(),
      ),
      [5, 5, 2, 1],
    );
    await again.correctAllMinOffsets(unitFor(1).physicalOffset);
    assert.equal(again.get('A', 0)?.minOffset(), 1);
    assert.equal(again.get('B%RETRY', 0)?.minOffset(), 1);

    await again.deleteTopic('A');
    assert.deepEqual(again.topics(), ['B%RETRY']);
    assert.equal(fs.existsSync(path.join(root, 'consumequeue', 'A')), false);
    const fresh = again.getOrCreate('A', 0);
    assert.equal(fresh.maxOffset(), 0);
    await again.close();
    assert.throws(
      () => again.getOrCreate('C', 0),
      (e: unknown) => isTsmqError(e, 'STORE_CLOSED'),
    );
  });

  test('a deleted consumequeue directory opens as an empty store, and refills', async () => {
    const store = await ConsumeQueueStore.open(nodeFileIo, root, OPTS);
    putRange(store.getOrCreate('T', 0), 0, 3);
    await store.close();
    fs.rmSync(path.join(root, 'consumequeue'), { recursive: true });
    const again = await ConsumeQueueStore.open(nodeFileIo, root, OPTS);
    assert.deepEqual(again.all(), []);
    assert.equal(await again.maxPhysicalEnd(), -1);
    // The dispatcher rebuilds from a log whose oldest messages are gone.
    putRange(again.getOrCreate('T', 0), 40, 44);
    await again.close();
    const third = await ConsumeQueueStore.open(nodeFileIo, root, OPTS);
    const q = third.get('T', 0)!;
    assert.deepEqual([q.minOffset(), q.maxOffset()], [40, 44]);
    await third.close();
  });

  test('300 queues flushed and read hold at most the shared descriptor budget', async () => {
    const { io, stats, openFds } = countingIo();
    const opts = { unitsPerFile: 10, tailCacheUnits: 0 }; // every read goes to the files
    const store = await ConsumeQueueStore.open(io, root, opts);
    const queues: ConsumeQueue[] = [];
    for (let i = 0; i < 300; i++) queues.push(store.getOrCreate(`T${i % 10}`, Math.floor(i / 10)));
    for (const q of queues) putRange(q, 0, 25); // three files each
    await store.flushAll();
    const reads = await Promise.all(queues.map((q) => q.readUnits(0, 100)));
    for (const r of reads) assert.deepEqual(decodeAll(r), expected(0, 25));
    assert.ok(stats.highWater <= DEFAULT_MAX_OPEN_FILES, `${stats.highWater} descriptors open at once`);
    assert.ok(store.openDescriptors() <= DEFAULT_MAX_OPEN_FILES);
    await store.close();
    assert.equal(openFds(), 0);

    // A tight budget, below the store's I/O concurrency: opens wait for a slot.
    const tight = await ConsumeQueueStore.open(io, root, { ...opts, maxOpenFiles: 4 });
    stats.highWater = 0;
    const all = tight.all();
    assert.equal(all.length, 300);
    const again = await Promise.all(all.map((q) => q.readUnits(0, 100)));
    for (const r of again) assert.deepEqual(decodeAll(r), expected(0, 25));
    for (const q of all) putRange(q, 25, 32);
    await tight.flushAll();
    const tails = await Promise.all(all.map((q) => q.readUnits(20, 100)));
    for (const r of tails) assert.deepEqual(decodeAll(r), expected(20, 32));
    assert.ok(stats.highWater <= 4, `${stats.highWater} descriptors open at once`);
    await tight.close();
    assert.equal(openFds(), 0);
    assert.equal(stats.onClosedFd, 0, 'no I/O on a descriptor after it was closed');
  });

  test('a descriptor in use is never closed under its read; other queues wait for it', async () => {
    const { io, stats, hooks, openFds } = countingIo();
    const store = await ConsumeQueueStore.open(io, root, {
      unitsPerFile: 10,
      tailCacheUnits: 0,
      maxOpenFiles: 1,
    });
    const a = store.getOrCreate('A', 0);
    const b = store.getOrCreate('B', 0);
    putRange(a, 0, 5);
    putRange(b, 0, 5);
    await store.flushAll();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let held = false;
    hooks.beforeRead = (p) => {
      if (held || !p.includes(`${path.sep}A${path.sep}`)) return;
      held = true;
      return gate;
    };
    const ra = a.readUnits(0, 5);
    await waitUntil(() => held, 5000, "A's read to start");
    let bDone = false;
    const rb = b.readUnits(0, 5).then((buf) => {
      bDone = true;
      return buf;
    });
    await settle();
    assert.equal(bDone, false, "B waits for the only slot, held by A's read");
    assert.equal(openFds(), 1);
    release();
    assert.deepEqual(decodeAll(await ra), expected(0, 5));
    assert.deepEqual(decodeAll(await rb), expected(0, 5));
    assert.equal(stats.highWater, 1);
    assert.equal(stats.onClosedFd, 0);
    await store.close();
    assert.equal(openFds(), 0);
  });

  test('abandon waits for the flush in flight, closes every descriptor and keeps only what was flushed', async () => {
    const { io, hooks, openFds } = countingIo();
    const store = await ConsumeQueueStore.open(io, root, OPTS);
    const a = store.getOrCreate('A', 0);
    const b = store.getOrCreate('B', 1);
    putRange(a, 0, 12);
    putRange(b, 0, 3);
    await store.flushAll();
    assert.ok(openFds() > 0);
    putRange(a, 12, 18);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let held = false;
    hooks.beforeFdatasync = () => {
      if (held) return;
      held = true;
      return gate;
    };
    const inFlight = a.flush();
    await waitUntil(() => held, 5000, 'the flush to reach its fdatasync');
    putRange(a, 18, 25); // pending, never flushed
    putRange(b, 3, 9);
    let abandoned = false;
    const done = store.abandon().then(() => {
      abandoned = true;
    });
    await settle();
    assert.equal(abandoned, false, 'abandon waits for the flush that is writing');
    release();
    await inFlight;
    await done;
    assert.equal(openFds(), 0, 'no descriptor left open');
    assert.equal(store.openDescriptors(), 0);
    assert.throws(
      () => a.put(25, 1, 1, 0),
      (e: unknown) => isTsmqError(e, 'STORE_CLOSED'),
    );
    await assert.rejects(a.flush(), (e: unknown) => isTsmqError(e, 'STORE_CLOSED'));
    await store.abandon(); // a second call is a no-op

    const again = await ConsumeQueueStore.open(nodeFileIo, root, OPTS);
    assert.equal(again.get('A', 0)?.maxOffset(), 18);
    assert.equal(again.get('B', 1)?.maxOffset(), 3);
    assert.deepEqual(decodeAll(await again.get('A', 0)!.readUnits(0, 100)), expected(0, 18));
    await again.close();
  });

  test('maxPhysicalEnd and truncateAllByPhysicalOffset skip destroyed queues', async () => {
    const store = await ConsumeQueueStore.open(nodeFileIo, root, OPTS);
    putRange(store.getOrCreate('A', 0), 0, 5);
    putRange(store.getOrCreate('A', 1), 0, 8);
    await store.flushAll();
    await store.get('A', 1)!.destroy();
    assert.equal(await store.maxPhysicalEnd(), unitFor(4).physicalOffset + unitFor(4).size);
    await store.truncateAllByPhysicalOffset(unitFor(2).physicalOffset);
    assert.equal(store.get('A', 0)!.maxOffset(), 2);
    await store.close();
  });

  test('getOrCreate refuses names that cannot be directories', async () => {
    const store = await ConsumeQueueStore.open(nodeFileIo, root, OPTS);
    for (const topic of ['', '.', '..', 'a/b']) {
      assert.throws(
        () => store.getOrCreate(topic, 0),
        (e: unknown) => isTsmqError(e, 'TOPIC_INVALID'),
      );
    }
    assert.throws(
      () => store.getOrCreate('T', 65536),
      (e: unknown) => isTsmqError(e, 'QUEUE_ID_INVALID'),
    );
    // Stray entries under consumequeue/ are ignored at open.
    fs.mkdirSync(path.join(root, 'consumequeue', 'T', 'not-a-queue'), { recursive: true });
    fs.writeFileSync(path.join(root, 'consumequeue', 'stray-file'), 'x');
    const again = await ConsumeQueueStore.open(nodeFileIo, root, OPTS);
    assert.deepEqual(again.all(), []);
    await store.close();
    await again.close();
  });
});
