/**
 * The message index: finds commit-log physical offsets by key within a store-time range. Keys
 * come from the dispatcher already qualified (`topic#key`, `topic#UNIQ_KEY`); the index knows
 * nothing of topics and files a key only by its hash, so a lookup returns candidates and the
 * caller checks the real key against the message.
 *
 * Files live in `<root>/index`, oldest first by name (see index-file.ts for the format). At most
 * one file takes puts, the active one, and it is held in memory; `put` is synchronous and never
 * touches the disk. When the active file fills it is sealed and a flush is started in the
 * background; until that flush has written it out, the sealed file stays in memory too (normally
 * for one flush, so at most two images are in memory at once). Sealed, flushed files are read
 * from disk a slot and an entry at a time.
 *
 * Failures: like the commit log, once a write or fdatasync of the index has failed, the index
 * refuses every later flush and put with STORE_IO_ERROR until it is reopened. A failed fsync may
 * have dropped the dirty pages it was meant to persist, and retrying could report success over
 * lost data, so there is no retry.
 *
 * Truncation (`truncateAfter`) rebuilds rather than filters at query time: after the commit log
 * is cut at physicalEnd, new messages reuse offsets from physicalEnd on, so "skip offsets >=
 * physicalEnd" would also hide them. Instead every file holding an offset >= physicalEnd is
 * rewritten without those entries (atomically, temp file and rename) or deleted if nothing is
 * left. It runs once, at recovery, so its cost (loading the files concerned) does not matter.
 */
import { type Clock, systemClock } from '../common/clock.js';
import { assert, TsmqError } from '../common/errors.js';
import {
  compareIndexFileNames,
  formatIndexFileName,
  INDEX_SLOT_COUNT_MAX,
  IndexFile,
  type IndexFileName,
  indexKeyHash,
  isUnfinishedIndexFile,
  nextIndexFileName,
  parseIndexFileName,
  type QueryState,
} from './index-file.js';
import type { FileIo } from './io.js';

export interface IndexOptions {
  /** Hash slots per file (RocketMQ: 5,000,000). Memory: 4 bytes each, allocated up front. */
  slotCount: number;
  /** Entries per file, plus the reserved entry 0 (RocketMQ: 20,000,000). 20 bytes each. */
  maxEntries: number;
}

/** Defaults sized for a Node process: 2 MB of slots and up to 40 MB of entries per file. */
export const DEFAULT_INDEX_OPTIONS: IndexOptions = { slotCount: 500_000, maxEntries: 2_000_000 };

/** Files whose chains a query walks at the same time (libuv has 4 I/O threads by default). */
const QUERY_FILES_IN_PARALLEL = 4;

export class IndexService {
  private readonly io: FileIo;
  private readonly dir: string;
  private readonly opts: IndexOptions;
  private readonly clock: Clock;
  /** All files, oldest first. The active file, if any, is the last. */
  private files: IndexFile[];
  private active: IndexFile | undefined;
  private lastName: IndexFileName | undefined;
  private maxPhysical = -1;
  /** Tail of the queue that serializes flush, deleteFilesBelow, truncateAfter and close. */
  private tail: Promise<void> = Promise.resolve();
  private ioError: TsmqError | undefined;
  private closed = false;
  /** Queries under way; each may hold a descriptor of a sealed file until it ends. */
  private readonly queries = new Set<Promise<unknown>>();

  private constructor(io: FileIo, dir: string, opts: IndexOptions, clock: Clock, files: IndexFile[]) {
    this.io = io;
    this.dir = dir;
    this.opts = opts;
    this.clock = clock;
    this.files = files;
    this.afterFilesChanged();
  }

  /**
   * Opens the index in `<rootDir>/index`, creating the directory if needed. Every file but the
   * newest is opened sealed (header only). The newest is loaded into memory as the active file
   * unless it is full; a newest file whose first flush never completed is deleted.
   */
  static async open(
    io: FileIo,
    rootDir: string,
    opts: IndexOptions,
    clock: Clock = systemClock,
  ): Promise<IndexService> {
    assert(
      Number.isInteger(opts.slotCount) && opts.slotCount >= 1 && opts.slotCount <= INDEX_SLOT_COUNT_MAX,
      `index slotCount must be an integer in [1, ${INDEX_SLOT_COUNT_MAX}], got ${opts.slotCount}`,
    );
    assert(
      Number.isInteger(opts.maxEntries) && opts.maxEntries >= 2 && opts.maxEntries <= 0x7fffffff,
      `index maxEntries must be an integer in [2, 2^31-1], got ${opts.maxEntries}`,
    );
    const dir = `${rootDir}/index`;
    await io.mkdirp(dir);
    const entries = await io.readdir(dir);
    // A truncation cut short leaves its temp file; the file it was to replace is still whole.
    for (const e of entries) {
      if (e.endsWith('.tmp') && parseIndexFileName(e.slice(0, -4)) !== undefined)
        await io.unlink(`${dir}/${e}`);
    }
    const names = entries
      .map(parseIndexFileName)
      .filter((n): n is IndexFileName => n !== undefined)
      .sort(compareIndexFileNames);

    const last = names.at(-1);
    if (last !== undefined && (await isUnfinishedIndexFile(io, fileOf(dir, last)))) {
      await io.unlink(fileOf(dir, last));
      await io.fsyncDir(dir);
      names.pop();
    }
    const files: IndexFile[] = [];
    for (const name of names) files.push(await IndexFile.openSealed(io, dir, name));
    const svc = new IndexService(io, dir, { ...opts }, clock, files);
    svc.lastName = last;
    await svc.activateNewestIfRoom();
    return svc;
  }

  /**
   * Indexes one key. Synchronous and in memory; called by the dispatcher for every key of every
   * message in commit-log order. Starts a new file when there is none with room.
   */
  put(key: string, physicalOffset: number, storeTimestamp: number): void {
    this.putHashed(indexKeyHash(key), physicalOffset, storeTimestamp);
  }

  /** `put` for a key whose `indexKeyHash` the caller computed (from the record's bytes). */
  putHashed(keyHash: number, physicalOffset: number, storeTimestamp: number): void {
    if (this.closed) throw new TsmqError('STORE_CLOSED', 'the index is closed');
    if (this.ioError !== undefined) throw this.ioError;
    let f = this.active;
    if (f === undefined) f = this.startFile();
    f.put(keyHash, physicalOffset, storeTimestamp);
    if (physicalOffset > this.maxPhysical) this.maxPhysical = physicalOffset;
    if (f.isFull()) {
      f.sealed = true;
      this.active = undefined;
      // Write the full file out now so its memory is released soon; a failure is kept and
      // reported by the next flush() or put().
      this.flush().catch(() => {});
    }
  }

  /**
   * Physical offsets of entries whose key hash matches `key`, stored within [beginMs, endMs]
   * (to the second; see IndexFile.judge), newest first, de-duplicated, at most maxNum. Files are
   * searched newest first, skipping those whose time range does not overlap.
   */
  query(key: string, beginMs: number, endMs: number, maxNum: number): Promise<number[]> {
    if (this.closed) return Promise.reject(new TsmqError('STORE_CLOSED', 'the index is closed'));
    const run = this.queryFiles(key, beginMs, endMs, maxNum);
    this.queries.add(run);
    const done = () => {
      this.queries.delete(run);
    };
    run.then(done, done);
    return run;
  }

  private async queryFiles(key: string, beginMs: number, endMs: number, maxNum: number): Promise<number[]> {
    const out: number[] = [];
    if (maxNum <= 0 || beginMs > endMs) return out;
    const keyHash = indexKeyHash(key);
    const files = this.files.filter((f) => f.overlaps(beginMs, endMs)).reverse();
    const seen = new Set<number>();
    // A chain walk on disk is a series of dependent reads; walks of different files are not, so
    // a few run at once. Results are merged in file order, newest first, so the answer is the
    // same as a one-by-one search; at most a window's worth of work is wasted when maxNum is
    // reached early.
    for (let i = 0; i < files.length && out.length < maxNum; i += QUERY_FILES_IN_PARALLEL) {
      const window = files.slice(i, i + QUERY_FILES_IN_PARALLEL);
      const parts = await Promise.all(
        window.map(async (f) => {
          const q: QueryState = { keyHash, beginMs, endMs, maxNum, out: [], seen: new Set() };
          await f.query(this.io, q);
          return q.out;
        }),
      );
      for (const part of parts) {
        for (const offset of part) {
          if (seen.has(offset)) continue;
          seen.add(offset);
          out.push(offset);
          if (out.length >= maxNum) return out;
        }
      }
    }
    return out;
  }

  /** Persists every file still in memory (sealed ones first), with fdatasync. Serialized. */
  flush(): Promise<void> {
    if (this.closed) return Promise.reject(new TsmqError('STORE_CLOSED', 'the index is closed'));
    return this.serialize(() => this.flushLocked());
  }

  /** Highest physical offset indexed so far, -1 if none. */
  maxPhysicalOffset(): number {
    return this.maxPhysical;
  }

  /**
   * Retention: deletes the files whose every entry lies below minPhysical (endPhyOffset <
   * minPhysical). Never the active file, a file not yet flushed, or the newest file, whose header
   * carries maxPhysicalOffset() across restarts.
   */
  deleteFilesBelow(minPhysical: number): Promise<void> {
    if (this.closed) return Promise.reject(new TsmqError('STORE_CLOSED', 'the index is closed'));
    return this.serialize(async () => {
      const newest = this.files.at(-1);
      const doomed = this.files.filter(
        (f) =>
          f !== newest &&
          f !== this.active &&
          !f.hasImage &&
          (f.entryCount === 0 || f.endPhyOffset < minPhysical),
      );
      if (doomed.length === 0) return;
      for (const f of doomed) {
        // Out of the list first so new queries skip it; a query already reading it holds its
        // descriptor (still valid after unlink) or finds it gone and moves on.
        this.files = this.files.filter((g) => g !== f);
        await this.io.unlink(f.path);
      }
      await this.io.fsyncDir(this.dir);
      this.afterFilesChanged();
    });
  }

  /**
   * Recovery: the commit log was cut at physicalEnd, so entries at offsets >= physicalEnd point
   * at messages that no longer exist (and at the same offsets new messages will be written).
   * Removes them for good: flushes, then rewrites each file that holds such entries without them
   * (deleting it if none remain), and reloads the newest file as the active one if it has room.
   */
  truncateAfter(physicalEnd: number): Promise<void> {
    if (this.closed) return Promise.reject(new TsmqError('STORE_CLOSED', 'the index is closed'));
    return this.serialize(async () => {
      await this.flushLocked();
      const touched = this.files.filter((f) => f.entryCount > 0 && f.endPhyOffset >= physicalEnd);
      if (touched.length === 0) return;
      const active = this.active;
      if (active !== undefined && touched.includes(active)) {
        // No puts into a file being rewritten (recovery runs before dispatch starts anyway).
        this.active = undefined;
        active.sealed = true;
      }
      for (const f of touched) {
        if (f.beginPhyOffset >= physicalEnd) {
          await f.closeFd(this.io);
          this.files = this.files.filter((g) => g !== f);
          await this.io.unlink(f.path);
          continue;
        }
        const image = f.hasImage
          ? f
          : await IndexFile.loadImage(this.io, this.dir, f.name, this.opts.maxEntries);
        image.dropEntriesFrom(physicalEnd);
        await image.writeWhole(this.io, this.dir);
        const reopened = await IndexFile.openSealed(this.io, this.dir, f.name);
        this.files = this.files.map((g) => (g === f ? reopened : g));
      }
      await this.io.fsyncDir(this.dir);
      if (this.active === undefined) await this.activateNewestIfRoom();
      this.afterFilesChanged();
    });
  }

  /** Flushes and closes. Later calls of any method fail with STORE_CLOSED. */
  close(): Promise<void> {
    if (this.closed) return this.tail;
    this.closed = true;
    return this.serialize(async () => {
      try {
        await this.flushLocked();
      } finally {
        await this.closeFds();
      }
    });
  }

  /**
   * Stops as a crash would: waits for the flushes already requested (a full file's background
   * flush among them) and for queries under way, then closes every descriptor without flushing
   * what is pending. Later calls of any method fail with STORE_CLOSED.
   */
  abandon(): Promise<void> {
    if (this.closed) return this.tail;
    this.closed = true;
    return this.serialize(() => this.closeFds());
  }

  // ---- internals ----

  /** Closes every file's descriptor once the queries under way are done (serialized). */
  private async closeFds(): Promise<void> {
    await Promise.allSettled([...this.queries]);
    let failed = false;
    let failure: unknown;
    for (const f of this.files) {
      try {
        await f.closeFd(this.io);
      } catch (e) {
        if (!failed) {
          failed = true;
          failure = e;
        }
      }
    }
    if (failed) throw failure;
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async flushLocked(): Promise<void> {
    if (this.ioError !== undefined) throw this.ioError;
    for (const f of this.files.slice()) {
      if (!f.hasImage) continue;
      try {
        await f.flush(this.io, this.dir);
      } catch (e) {
        this.ioError =
          e instanceof TsmqError
            ? e
            : new TsmqError('STORE_IO_ERROR', `index flush of ${f.path} failed`, { cause: e });
        throw this.ioError;
      }
    }
  }

  private startFile(): IndexFile {
    const name = nextIndexFileName(this.clock.now(), this.lastName);
    this.lastName = name;
    const f = IndexFile.create(this.dir, name, this.opts.slotCount, this.opts.maxEntries);
    this.files.push(f);
    this.active = f;
    return f;
  }

  /** Makes the newest file the active one, loaded into memory, if it is on disk and not full. */
  private async activateNewestIfRoom(): Promise<void> {
    const newest = this.files.at(-1);
    if (newest === undefined || newest.hasImage || newest.indexCount >= this.opts.maxEntries) return;
    const loaded = await IndexFile.loadImage(this.io, this.dir, newest.name, this.opts.maxEntries);
    if (loaded.isFull()) return;
    this.files[this.files.length - 1] = loaded;
    this.active = loaded;
  }

  private afterFilesChanged(): void {
    let max = -1;
    for (const f of this.files) if (f.entryCount > 0 && f.endPhyOffset > max) max = f.endPhyOffset;
    this.maxPhysical = max;
    const newest = this.files.at(-1);
    if (
      newest !== undefined &&
      (this.lastName === undefined || compareIndexFileNames(newest.name, this.lastName) > 0)
    ) {
      this.lastName = newest.name;
    }
  }
}

function fileOf(dir: string, name: IndexFileName): string {
  return `${dir}/${formatIndexFileName(name)}`;
}
