import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ManualClock } from '../../src/common/clock.js';
import { isTsmqError } from '../../src/common/errors.js';
import { javaStringHashCode } from '../../src/common/java-hash.js';
import {
  compareIndexFileNames,
  decodeIndexHeader,
  encodeIndexHeader,
  formatIndexFileName,
  INDEX_ENTRY_BYTES,
  INDEX_HEADER_BYTES,
  indexKeyHash,
  nextIndexFileName,
  parseIndexFileName,
  timestampStamp,
} from '../../src/store/index-file.js';
import { type IndexOptions, IndexService } from '../../src/store/index-service.js';
import { type FileIo, nodeFileIo } from '../../src/store/io.js';
import { mulberry32 as rng } from '../../test-support/prng.js';
import { waitUntil } from '../../test-support/store-fixtures.js';

const T0 = 1_700_000_000_000; // a whole second
const TINY: IndexOptions = { slotCount: 16, maxEntries: 50 };

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmq-index-'));
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

function indexFiles(): string[] {
  return fs
    .readdirSync(path.join(root, 'index'))
    .filter((n) => parseIndexFileName(n) !== undefined)
    .sort();
}

/**
 * A FileIo that can fail fdatasync or header writes on demand, hold fdatasyncs, counts calls,
 * and can "crash": close every descriptor it handed out, as the kernel does when a process dies.
 */
class FaultyIo implements FileIo {
  failFdatasync = false;
  failHeaderWrite = false;
  fdatasyncs = 0;
  /** While set, every fdatasync waits for it; `heldFdatasyncs` counts those that did. */
  holdFdatasync: Promise<void> | undefined;
  heldFdatasyncs = 0;
  readonly openFds = new Set<number>();
  private readonly base = nodeFileIo;

  async open(p: string, flags: 'r' | 'r+' | 'w+' | 'wx+'): Promise<number> {
    const fd = await this.base.open(p, flags);
    this.openFds.add(fd);
    return fd;
  }
  async close(fd: number): Promise<void> {
    this.openFds.delete(fd);
    await this.base.close(fd);
  }
  write(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    if (this.failHeaderWrite && position === 0 && length === INDEX_HEADER_BYTES) {
      return Promise.reject(new Error('injected header write failure'));
    }
    return this.base.write(fd, buf, offset, length, position);
  }
  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return this.base.read(fd, buf, offset, length, position);
  }
  async fdatasync(fd: number): Promise<void> {
    this.fdatasyncs++;
    if (this.failFdatasync) throw new Error('injected EIO');
    if (this.holdFdatasync !== undefined) {
      this.heldFdatasyncs++;
      await this.holdFdatasync;
    }
    return this.base.fdatasync(fd);
  }
  fsync = (fd: number) => this.base.fsync(fd);
  ftruncate = (fd: number, length: number) => this.base.ftruncate(fd, length);
  fstatSize = (fd: number) => this.base.fstatSize(fd);
  size = (p: string) => this.base.size(p);
  mtimeMs = (p: string) => this.base.mtimeMs(p);
  exists = (p: string) => this.base.exists(p);
  mkdirp = (p: string) => this.base.mkdirp(p);
  readdir = (p: string) => this.base.readdir(p);
  unlink = (p: string) => this.base.unlink(p);
  rmrf = (p: string) => this.base.rmrf(p);
  rename = (a: string, b: string) => this.base.rename(a, b);
  fsyncDir = (p: string) => this.base.fsyncDir(p);
  readFile = (p: string) => this.base.readFile(p);
  diskUsage = (p: string) => this.base.diskUsage(p);

  /** Simulates a process crash: descriptors closed, nothing flushed. */
  async crash(): Promise<void> {
    for (const fd of [...this.openFds]) await this.close(fd);
  }
}

/** What the index must answer, computed the simple way. */
class Model {
  readonly entries: { hash: number; offset: number; ts: number }[] = [];
  put(key: string, offset: number, ts: number): void {
    this.entries.push({ hash: indexKeyHash(key), offset, ts });
  }
  /** Timestamps in these tests are whole seconds, so the index's second rounding is exact. */
  query(key: string, beginMs: number, endMs: number, maxNum: number, below = Infinity): number[] {
    const h = indexKeyHash(key);
    const out: number[] = [];
    for (let i = this.entries.length - 1; i >= 0 && out.length < maxNum; i--) {
      const e = this.entries[i]!;
      if (e.hash !== h || e.ts > endMs || e.ts + 999 < beginMs || e.offset >= below) continue;
      if (!out.includes(e.offset)) out.push(e.offset);
    }
    return out;
  }
}

/** Puts `n` messages with 1-3 keys each from a pool of `keys`, one second apart. */
function fill(
  svc: IndexService,
  model: Model,
  n: number,
  keys: number,
  seed: number,
  start = { offset: 0, ts: T0 },
): { offset: number; ts: number } {
  const r = rng(seed);
  let { offset, ts } = start;
  for (let i = 0; i < n; i++) {
    const k = 1 + Math.floor(r() * 3);
    for (let j = 0; j < k; j++) {
      const key = `TopicA#key-${Math.floor(r() * keys)}`;
      svc.put(key, offset, ts);
      model.put(key, offset, ts);
    }
    offset += 100 + Math.floor(r() * 400);
    ts += 1000;
  }
  return { offset, ts };
}

async function checkAll(svc: IndexService, model: Model, keys: number, below = Infinity): Promise<void> {
  for (let k = 0; k < keys; k++) {
    const key = `TopicA#key-${k}`;
    const got = await svc.query(key, 0, Number.MAX_SAFE_INTEGER, 1_000_000);
    assert.deepEqual(got, model.query(key, 0, Number.MAX_SAFE_INTEGER, 1_000_000, below), key);
  }
}

describe('index key hash and file names', () => {
  test('keyHash is |String.hashCode|, with -2^31 mapped to 0', () => {
    assert.equal(indexKeyHash('TagA'), 2598919);
    assert.equal(javaStringHashCode('polygenelubricants'), -2147483648);
    assert.equal(indexKeyHash('polygenelubricants'), 0);
    const neg = 'hello world!'; // hashes negative
    assert.ok(javaStringHashCode(neg) < 0);
    assert.equal(indexKeyHash(neg), -javaStringHashCode(neg));
  });

  test('header encodes big-endian at the documented offsets', () => {
    const h = {
      beginTimestamp: T0,
      endTimestamp: T0 + 5000,
      beginPhyOffset: 2 ** 40 + 7,
      endPhyOffset: 2 ** 40 + 999,
      slotCount: 16,
      indexCount: 3,
    };
    const buf = encodeIndexHeader(h);
    assert.equal(buf.length, 40);
    assert.equal(buf.readBigInt64BE(0), BigInt(T0));
    assert.equal(buf.readBigInt64BE(8), BigInt(T0 + 5000));
    assert.equal(buf.readBigInt64BE(16), BigInt(2 ** 40 + 7));
    assert.equal(buf.readBigInt64BE(24), BigInt(2 ** 40 + 999));
    assert.equal(buf.readInt32BE(32), 16);
    assert.equal(buf.readInt32BE(36), 3);
    assert.deepEqual(decodeIndexHeader(buf), h);
  });

  test('names are yyyyMMddHHmmssSSS in UTC, with a sequence when time does not move on', () => {
    assert.equal(timestampStamp(Date.UTC(2024, 0, 2, 3, 4, 5, 6)), '20240102030405006');
    const a = nextIndexFileName(T0, undefined);
    const b = nextIndexFileName(T0, a);
    const c = nextIndexFileName(T0 - 5000, b); // clock stepped back
    const d = nextIndexFileName(T0 + 1, c);
    assert.deepEqual([a.seq, b.seq, c.seq, d.seq], [0, 1, 2, 0]);
    const names = [a, b, c, d].map(formatIndexFileName);
    assert.equal(new Set(names).size, 4);
    assert.deepEqual([...names].sort(), names);
    assert.deepEqual(
      names.map((n) => parseIndexFileName(n)),
      [a, b, c, d],
    );
    assert.ok(compareIndexFileNames(c, b) > 0 && compareIndexFileNames(d, c) > 0);
    assert.equal(parseIndexFileName('20240102030405006.tmp'), undefined);
  });
});

describe('IndexService', () => {
  test('the file on disk has the RocketMQ layout', async () => {
    const svc = await IndexService.open(nodeFileIo, root, TINY, new ManualClock(T0));
    const k1 = 'T#k1';
    svc.put(k1, 1000, T0 + 2500);
    svc.put(k1, 1200, T0 + 4000);
    await svc.close();
    const [name] = indexFiles();
    assert.equal(name, timestampStamp(T0));
    const bytes = fs.readFileSync(path.join(root, 'index', name!));
    const base = INDEX_HEADER_BYTES + 16 * 4;
    assert.equal(bytes.length, base + 3 * INDEX_ENTRY_BYTES);
    assert.deepEqual(decodeIndexHeader(bytes), {
      beginTimestamp: T0 + 2500,
      endTimestamp: T0 + 4000,
      beginPhyOffset: 1000,
      endPhyOffset: 1200,
      slotCount: 16,
      indexCount: 3,
    });
    const h = indexKeyHash(k1);
    assert.equal(bytes.readInt32BE(INDEX_HEADER_BYTES + (h % 16) * 4), 2); // newest entry of the chain
    const e1 = base + 1 * INDEX_ENTRY_BYTES;
    assert.equal(bytes.readInt32BE(e1), h);
    assert.equal(bytes.readBigInt64BE(e1 + 4), 1000n);
    assert.equal(bytes.readInt32BE(e1 + 12), 0);
    assert.equal(bytes.readInt32BE(e1 + 16), 0);
    const e2 = base + 2 * INDEX_ENTRY_BYTES;
    assert.equal(bytes.readBigInt64BE(e2 + 4), 1200n);
    assert.equal(bytes.readInt32BE(e2 + 12), 1); // (4000 - 2500) / 1000, floored
    assert.equal(bytes.readInt32BE(e2 + 16), 1);
  });

  test('put and query round trip with many keys and collisions on 16 slots', async () => {
    const svc = await IndexService.open(nodeFileIo, root, { slotCount: 16, maxEntries: 10_000 });
    const model = new Model();
    fill(svc, model, 2000, 300, 1);
    await checkAll(svc, model, 300);
    // The answer is by hash; "Aa" and "BB" share Java's hash code, so both offsets come back.
    svc.put('T#Aa', 9_000_001, T0);
    svc.put('T#BB', 9_000_002, T0);
    assert.deepEqual(await svc.query('T#Aa', 0, T0 + 1, 10), [9_000_002, 9_000_001]);
    await svc.close();
  });

  test('an unknown key finds nothing', async () => {
    const svc = await IndexService.open(nodeFileIo, root, TINY);
    assert.deepEqual(await svc.query('T#nothing', 0, Number.MAX_SAFE_INTEGER, 32), []);
    svc.put('T#a', 1, T0);
    assert.deepEqual(await svc.query('T#nothing', 0, Number.MAX_SAFE_INTEGER, 32), []);
    await svc.close();
  });

  test('time range filtering, to the second', async () => {
    const svc = await IndexService.open(nodeFileIo, root, { slotCount: 16, maxEntries: 1000 });
    for (let i = 0; i < 10; i++) svc.put('T#k', i * 100, T0 + i * 1000);
    svc.put('T#k', 5000, T0 + 10_500); // stored mid-second
    svc.put('T#other', 6000, T0 + 13_000);
    assert.deepEqual(await svc.query('T#k', T0 + 3000, T0 + 5000, 100), [500, 400, 300]);
    assert.deepEqual(await svc.query('T#k', T0 + 2001, T0 + 2999, 100), [200]);
    assert.deepEqual(await svc.query('T#k', T0 + 20_000, T0 + 30_000, 100), []);
    assert.deepEqual(await svc.query('T#k', 0, T0 - 1, 100), []);
    assert.deepEqual(await svc.query('T#k', T0 + 5000, T0 + 4000, 100), []);
    // Whole seconds on disk: the mid-second entry reads back as T0+10000 and is a candidate
    // for any range touching [T0+10000, T0+10999]; the caller checks the exact time.
    assert.deepEqual(await svc.query('T#k', T0 + 10_700, T0 + 10_800, 100), [5000]);
    assert.deepEqual(await svc.query('T#k', T0 + 11_000, T0 + 12_000, 100), []);
    await svc.close();
  });

  test('maxNum limits, newest first', async () => {
    const svc = await IndexService.open(nodeFileIo, root, TINY);
    for (let i = 0; i < 30; i++) svc.put('T#k', i * 10, T0 + i * 1000);
    assert.deepEqual(await svc.query('T#k', 0, Number.MAX_SAFE_INTEGER, 3), [290, 280, 270]);
    assert.deepEqual(await svc.query('T#k', 0, Number.MAX_SAFE_INTEGER, 0), []);
    const all = await svc.query('T#k', 0, Number.MAX_SAFE_INTEGER, 100);
    assert.equal(all.length, 30);
    assert.deepEqual(
      all,
      [...all].sort((a, b) => b - a),
    );
    await svc.close();
  });

  test('the same (key, offset) put twice is returned once', async () => {
    const svc = await IndexService.open(nodeFileIo, root, TINY);
    svc.put('T#k', 100, T0);
    svc.put('T#k', 200, T0 + 1000);
    // Re-dispatch after recovery indexes the same messages again.
    svc.put('T#k', 100, T0);
    svc.put('T#k', 200, T0 + 1000);
    svc.put('T#k', 300, T0 + 2000);
    assert.deepEqual(await svc.query('T#k', 0, Number.MAX_SAFE_INTEGER, 10), [300, 200, 100]);
    assert.deepEqual(await svc.query('T#k', 0, Number.MAX_SAFE_INTEGER, 2), [300, 200]);
    await svc.close();
  });

  test('rolls to new files when full and queries across them, newest file first', async () => {
    const clock = new ManualClock(T0);
    const svc = await IndexService.open(nodeFileIo, root, TINY, clock);
    const model = new Model();
    const r = rng(7);
    let offset = 0;
    let ts = T0;
    for (let i = 0; i < 500; i++) {
      const key = `TopicA#key-${Math.floor(r() * 40)}`;
      svc.put(key, offset, ts);
      model.put(key, offset, ts);
      offset += 64;
      ts += 1000;
      if (i % 37 === 0) clock.advance(1); // sometimes several files share a millisecond
    }
    await svc.flush();
    const files = indexFiles();
    assert.equal(files.length, Math.ceil(500 / 49)); // 49 entries per file of 50
    assert.equal(new Set(files).size, files.length);
    await checkAll(svc, model, 40);
    assert.equal(svc.maxPhysicalOffset(), 499 * 64);
    await svc.close();
  });

  test('reopen after flush finds everything; the newest file takes puts again', async () => {
    const clock = new ManualClock(T0);
    let svc = await IndexService.open(nodeFileIo, root, TINY, clock);
    const model = new Model();
    const next = fill(svc, model, 120, 30, 3);
    await svc.flush();
    await svc.close();
    const before = indexFiles();

    svc = await IndexService.open(nodeFileIo, root, TINY, clock);
    await checkAll(svc, model, 30);
    const max = model.entries.at(-1)!.offset;
    assert.equal(svc.maxPhysicalOffset(), max);
    svc.put('TopicA#key-0', next.offset, next.ts);
    model.put('TopicA#key-0', next.offset, next.ts);
    await svc.close();
    const after = indexFiles();
    // The last file was not full, so the put went into it rather than into a new file.
    assert.deepEqual(after, before);

    svc = await IndexService.open(nodeFileIo, root, TINY, clock);
    await checkAll(svc, model, 30);
    await svc.close();
  });

  test('a crash keeps what was flushed and loses only the rest', async () => {
    const io = new FaultyIo();
    const clock = new ManualClock(T0);
    let svc = await IndexService.open(io, root, { slotCount: 16, maxEntries: 1000 }, clock);
    const model = new Model();
    const next = fill(svc, model, 40, 20, 5);
    await svc.flush();
    const flushed = model.entries.length;
    const maxFlushed = model.entries.at(-1)!.offset;
    fill(svc, new Model(), 40, 20, 6, next); // never flushed
    await io.crash();

    svc = await IndexService.open(nodeFileIo, root, { slotCount: 16, maxEntries: 1000 }, clock);
    assert.equal(model.entries.length, flushed);
    await checkAll(svc, model, 20);
    assert.equal(svc.maxPhysicalOffset(), maxFlushed);
    await svc.close();
  });

  test('close of a partially flushed state persists the rest', async () => {
    const clock = new ManualClock(T0);
    let svc = await IndexService.open(nodeFileIo, root, TINY, clock);
    const model = new Model();
    let next = fill(svc, model, 30, 20, 8);
    await svc.flush();
    next = fill(svc, model, 30, 20, 9, next);
    await svc.close();
    svc = await IndexService.open(nodeFileIo, root, TINY, clock);
    await checkAll(svc, model, 20);
    assert.equal(svc.maxPhysicalOffset(), model.entries.at(-1)!.offset);
    await svc.close();
  });

  test('entries written but not counted by a header are ignored, then overwritten', async () => {
    const io = new FaultyIo();
    const opts = { slotCount: 16, maxEntries: 1000 };
    const clock = new ManualClock(T0);
    let svc = await IndexService.open(io, root, opts, clock);
    const model = new Model();
    let next = fill(svc, model, 20, 10, 10);
    await svc.flush();
    // The next flush writes entries and slots, then fails to write the header: the crash case.
    fill(svc, new Model(), 20, 10, 11, next);
    io.failHeaderWrite = true;
    await assert.rejects(svc.flush(), (e) => isTsmqError(e, 'STORE_IO_ERROR'));
    await io.crash();

    const io2 = new FaultyIo();
    svc = await IndexService.open(io2, root, opts, clock);
    await checkAll(svc, model, 10); // slots pointing past the header's count were rebuilt
    next = fill(svc, model, 20, 10, 12, next); // re-dispatch lands on the same positions
    await svc.close();
    svc = await IndexService.open(nodeFileIo, root, opts, clock);
    await checkAll(svc, model, 10);
    await svc.close();
    assert.equal(io2.openFds.size, 0);
  });

  test('a new file whose first flush never wrote its header is dropped on open', async () => {
    const io = new FaultyIo();
    const clock = new ManualClock(T0);
    let svc = await IndexService.open(io, root, TINY, clock);
    svc.put('T#k', 100, T0);
    io.failHeaderWrite = true;
    await assert.rejects(svc.flush());
    await io.crash();
    assert.equal(indexFiles().length, 1);
    svc = await IndexService.open(nodeFileIo, root, TINY, clock);
    assert.equal(indexFiles().length, 0);
    assert.equal(svc.maxPhysicalOffset(), -1);
    assert.deepEqual(await svc.query('T#k', 0, Number.MAX_SAFE_INTEGER, 10), []);
    svc.put('T#k', 100, T0);
    assert.deepEqual(await svc.query('T#k', 0, Number.MAX_SAFE_INTEGER, 10), [100]);
    await svc.close();
  });

  test('deleteFilesBelow removes old files but never the active or the newest one', async () => {
    const clock = new ManualClock(T0);
    const svc = await IndexService.open(nodeFileIo, root, TINY, clock);
    const model = new Model();
    for (let i = 0; i < 49 * 6 + 10; i++) {
      svc.put(`TopicA#key-${i % 10}`, i * 10, T0 + i * 1000);
      model.put(`TopicA#key-${i % 10}`, i * 10, T0 + i * 1000);
      clock.advance(1);
    }
    await svc.flush();
    assert.equal(indexFiles().length, 7);
    // Files hold offsets [0, 480], [490, 970], ...: below 1000 the first two go.
    await svc.deleteFilesBelow(1000);
    assert.equal(indexFiles().length, 5);
    for (let k = 0; k < 10; k++) {
      const got = await svc.query(`TopicA#key-${k}`, 0, Number.MAX_SAFE_INTEGER, 1000);
      const want = model.query(`TopicA#key-${k}`, 0, Number.MAX_SAFE_INTEGER, 1000).filter((o) => o >= 980);
      assert.deepEqual(got, want);
    }
    await svc.deleteFilesBelow(Number.MAX_SAFE_INTEGER);
    assert.equal(indexFiles().length, 1, 'the active file stays');
    assert.equal(svc.maxPhysicalOffset(), (49 * 6 + 9) * 10);

    // A full newest file (no active one) stays as well: its header carries maxPhysicalOffset.
    for (let i = 0; i < 39; i++) svc.put('TopicA#x', 10_000 + i, T0 + 400_000);
    await svc.flush();
    await svc.deleteFilesBelow(Number.MAX_SAFE_INTEGER);
    assert.equal(indexFiles().length, 1);
    assert.equal(svc.maxPhysicalOffset(), 10_038);
    await svc.close();
  });

  test('truncateAfter removes entries at and past the cut, durably; new entries there are found', async () => {
    const clock = new ManualClock(T0);
    let svc = await IndexService.open(nodeFileIo, root, TINY, clock);
    const model = new Model();
    let offset = 0;
    let ts = T0;
    for (let i = 0; i < 200; i++) {
      svc.put(`TopicA#key-${i % 13}`, offset, ts);
      model.put(`TopicA#key-${i % 13}`, offset, ts);
      offset += 10;
      ts += 1000;
      clock.advance(1);
    }
    await svc.flush();
    assert.equal(indexFiles().length, 5);
    const cut = 1205; // inside the third file (offsets 980..1460)
    await svc.truncateAfter(cut);
    await checkAll(svc, model, 13, cut);
    assert.equal(svc.maxPhysicalOffset(), 1200);
    assert.equal(indexFiles().length, 3);
    await svc.close();

    svc = await IndexService.open(nodeFileIo, root, TINY, clock);
    await checkAll(svc, model, 13, cut);
    // The commit log writes new messages from the cut on; they must be found, the old ones not.
    const fresh = new Model();
    for (const e of model.entries) if (e.offset < cut) fresh.entries.push(e);
    for (let i = 0; i < 60; i++) {
      const key = `TopicA#key-${i % 13}`;
      svc.put(key, cut + i * 7, T0 + 500_000 + i * 1000);
      fresh.put(key, cut + i * 7, T0 + 500_000 + i * 1000);
    }
    await checkAll(svc, fresh, 13);
    await svc.close();
    svc = await IndexService.open(nodeFileIo, root, TINY, clock);
    await checkAll(svc, fresh, 13);
    await svc.truncateAfter(0);
    assert.equal(indexFiles().length, 0);
    assert.equal(svc.maxPhysicalOffset(), -1);
    await svc.close();
  });

  test('truncateAfter removes re-dispatched duplicates past the cut too', async () => {
    const svc = await IndexService.open(nodeFileIo, root, { slotCount: 16, maxEntries: 1000 });
    for (let i = 0; i < 10; i++) svc.put('T#k', i * 10, T0 + i * 1000);
    for (let i = 5; i < 10; i++) svc.put('T#k', i * 10, T0 + i * 1000); // re-dispatch
    await svc.truncateAfter(75);
    assert.deepEqual(
      await svc.query('T#k', 0, Number.MAX_SAFE_INTEGER, 100),
      [70, 60, 50, 40, 30, 20, 10, 0],
    );
    svc.put('T#k', 75, T0 + 20_000);
    assert.deepEqual(await svc.query('T#k', T0 + 7000, Number.MAX_SAFE_INTEGER, 100), [75, 70]);
    await svc.close();
  });

  test('a failing fdatasync makes flush reject, and the index refuses further work', async () => {
    const io = new FaultyIo();
    const svc = await IndexService.open(io, root, TINY);
    svc.put('T#k', 1, T0);
    await svc.flush();
    const syncs = io.fdatasyncs;
    assert.ok(syncs >= 2);
    svc.put('T#k', 2, T0);
    io.failFdatasync = true;
    await assert.rejects(svc.flush(), (e) => isTsmqError(e, 'STORE_IO_ERROR'));
    io.failFdatasync = false;
    // No retry over possibly lost pages: the error sticks until the index is reopened.
    await assert.rejects(svc.flush(), (e) => isTsmqError(e, 'STORE_IO_ERROR'));
    assert.throws(
      () => svc.put('T#k', 3, T0),
      (e) => isTsmqError(e, 'STORE_IO_ERROR'),
    );
    await assert.rejects(svc.close(), (e) => isTsmqError(e, 'STORE_IO_ERROR'));
    assert.equal(io.openFds.size, 0);
  });

  test('a flush with nothing new does no I/O', async () => {
    const io = new FaultyIo();
    const svc = await IndexService.open(io, root, TINY);
    await svc.flush();
    assert.equal(io.fdatasyncs, 0);
    svc.put('T#k', 1, T0);
    await svc.flush();
    const syncs = io.fdatasyncs;
    await svc.flush();
    assert.equal(io.fdatasyncs, syncs);
    await svc.close();
  });

  test('concurrent flushes and puts stay consistent', async () => {
    const clock = new ManualClock(T0);
    let svc = await IndexService.open(nodeFileIo, root, TINY, clock);
    const model = new Model();
    let next = { offset: 0, ts: T0 };
    const flushes: Promise<void>[] = [];
    for (let round = 0; round < 20; round++) {
      next = fill(svc, model, 7, 25, 100 + round, next);
      flushes.push(svc.flush());
      clock.advance(1);
    }
    await Promise.all(flushes);
    await svc.close();
    svc = await IndexService.open(nodeFileIo, root, TINY, clock);
    await checkAll(svc, model, 25);
    await svc.close();
  });

  test('a corrupt chain on disk cannot make a query loop', async () => {
    const clock = new ManualClock(T0);
    let svc = await IndexService.open(nodeFileIo, root, TINY, clock);
    for (let i = 0; i < 49; i++) svc.put('T#k', i, T0 + i * 1000);
    clock.advance(1);
    svc.put('T#k', 100, T0 + 60_000); // second file, so the first is sealed and read from disk
    await svc.close();
    const first = path.join(root, 'index', indexFiles()[0]!);
    const bytes = fs.readFileSync(first);
    const base = INDEX_HEADER_BYTES + 16 * 4;
    bytes.writeInt32BE(30, base + 20 * INDEX_ENTRY_BYTES + 16); // entry 20 points forward to 30
    fs.writeFileSync(first, bytes);
    svc = await IndexService.open(nodeFileIo, root, TINY, clock);
    const got = await svc.query('T#k', 0, Number.MAX_SAFE_INTEGER, 1000);
    assert.ok(got.length <= 50 && got.length >= 30);
    await svc.close();
  });

  test('a temp file left by an interrupted truncation is removed on open', async () => {
    let svc = await IndexService.open(nodeFileIo, root, TINY);
    svc.put('T#k', 1, T0);
    await svc.close();
    const [name] = indexFiles();
    fs.writeFileSync(path.join(root, 'index', `${name}.tmp`), 'partial');
    svc = await IndexService.open(nodeFileIo, root, TINY);
    assert.deepEqual(fs.readdirSync(path.join(root, 'index')), [name]);
    assert.deepEqual(await svc.query('T#k', 0, Number.MAX_SAFE_INTEGER, 10), [1]);
    await svc.close();
  });

  test('abandon waits for the background flush of a full file, then closes every descriptor without flushing', async () => {
    const io = new FaultyIo();
    const clock = new ManualClock(T0);
    const opts = { slotCount: 16, maxEntries: 20 }; // 19 entries per file
    const svc = await IndexService.open(io, root, opts, clock);
    const put = (from: number, to: number) => {
      for (let i = from; i < to; i++) svc.put(`T#k${i}`, i * 100, T0 + i * 1000);
    };
    put(0, 10);
    await svc.flush();
    let release!: () => void;
    io.holdFdatasync = new Promise<void>((resolve) => {
      release = resolve;
    });
    put(10, 19); // the file is full: its flush starts in the background
    await waitUntil(() => io.heldFdatasyncs > 0, 5000, 'the background flush to reach its fdatasync');
    put(19, 24); // a new active file, never flushed
    let abandoned = false;
    const done = svc.abandon().then(() => {
      abandoned = true;
    });
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(abandoned, false, 'abandon waits for the flush under way');
    io.holdFdatasync = undefined;
    release();
    await done;
    assert.equal(io.openFds.size, 0, 'no descriptor left open');
    assert.throws(
      () => svc.put('T#k99', 9900, T0),
      (e) => isTsmqError(e, 'STORE_CLOSED'),
    );
    await assert.rejects(svc.query('T#k0', 0, Number.MAX_SAFE_INTEGER, 10), (e) =>
      isTsmqError(e, 'STORE_CLOSED'),
    );
    await svc.abandon(); // a second call is a no-op

    // Reopened: the full file is there, the entries of the newer file are not.
    const again = await IndexService.open(io, root, opts, clock);
    for (let i = 0; i < 24; i++) {
      const got = await again.query(`T#k${i}`, 0, Number.MAX_SAFE_INTEGER, 10);
      assert.deepEqual(got, i < 19 ? [i * 100] : [], `key ${i}`);
    }
    assert.equal(again.maxPhysicalOffset(), 1800);
    // The active file, flushed once, holds its descriptor: abandon closes it, and what was put
    // after that flush is gone.
    again.put('T#k50', 5000, T0 + 50_000);
    await again.flush();
    assert.ok(io.openFds.size > 0);
    again.put('T#k51', 5100, T0 + 51_000);
    await again.abandon();
    assert.equal(io.openFds.size, 0);
    const third = await IndexService.open(nodeFileIo, root, opts, clock);
    assert.deepEqual(await third.query('T#k50', 0, Number.MAX_SAFE_INTEGER, 10), [5000]);
    assert.deepEqual(await third.query('T#k51', 0, Number.MAX_SAFE_INTEGER, 10), []);
    await third.close();
  });

  test('methods after close fail with STORE_CLOSED', async () => {
    const svc = await IndexService.open(nodeFileIo, root, TINY);
    await svc.close();
    assert.throws(
      () => svc.put('T#k', 1, T0),
      (e) => isTsmqError(e, 'STORE_CLOSED'),
    );
    await assert.rejects(svc.query('T#k', 0, 1, 1), (e) => isTsmqError(e, 'STORE_CLOSED'));
    await assert.rejects(svc.flush(), (e) => isTsmqError(e, 'STORE_CLOSED'));
  });
});
