/**
 * One message-index file: a hash table on disk from key hash to commit-log physical offsets, in
 * RocketMQ's IndexFile layout so that files are byte-compatible with RocketMQ's.
 *
 * ```
 *  offset 0                                                                     all big-endian
 *  +----------------+----------------+----------------+----------------+--------+----------+
 *  | beginTimestamp | endTimestamp   | beginPhyOffset | endPhyOffset   | slot   | index    |
 *  | i64 ms         | i64 ms         | i64            | i64            | Count  | Count    |
 *  | @0             | @8             | @16            | @24            | i32 @32| i32 @36  |
 *  +----------------+----------------+----------------+----------------+--------+----------+
 *  @40: slot table, slotCount x 4 bytes
 *  +-----------+-----------+-----------+-----+
 *  | slot 0    | slot 1    | slot 2    | ... |   i32: number of the newest entry in the chain
 *  +-----------+-----------+-----------+-----+        of keys with hash % slotCount == slot;
 *                                                     0 = empty
 *  @40 + slotCount*4: entries, entry n at (40 + slotCount*4 + n*20), n in [1, maxEntries)
 *  +--------------------------------------------------------------------+
 *  | entry 0: reserved, never written (reads as zeros)                  |
 *  +-----------+---------------------+-----------------+----------------+
 *  | keyHash   | phyOffset           | timeDiffSeconds | prevIndex      |   20 bytes
 *  | i32 @0    | i64 @4              | i32 @12         | i32 @16        |
 *  +-----------+---------------------+-----------------+----------------+
 *  | ...                                                                |
 * ```
 *
 * - keyHash = |javaStringHashCode(key)|, with -2^31 mapped to 0 (see `indexKeyHash`).
 * - timeDiffSeconds = floor((storeTimestamp - beginTimestamp) / 1000), clamped to [0, 2^31-1].
 * - prevIndex = the entry that was at the head of the slot's chain before this one (0 = end).
 * - indexCount = 1 + number of entries, so that 0 in a slot or prevIndex means "none". The file is
 *   full when indexCount reaches maxEntries: it holds maxEntries - 1 entries, as RocketMQ's does.
 * - beginTimestamp is the store time of the first entry and the base of every timeDiffSeconds.
 *   endTimestamp is the newest store time, beginPhyOffset / endPhyOffset the lowest / highest
 *   offset indexed here. In normal operation (offsets growing, clock not stepping back) these are
 *   the first and the last entry's values, exactly as in RocketMQ.
 * - There is no magic, version or CRC: the layout is RocketMQ's, kept so on purpose.
 * - Unlike RocketMQ, files are not preallocated: a file ends after its last written entry, and the
 *   parts of the slot table never written are holes that read as zeros.
 *
 * Write order and what a crash leaves behind. A flush writes the new entries and the dirty slot
 * pages, fdatasyncs, and only then writes the header and fdatasyncs again. So the header on disk
 * never counts an entry that is not on disk. A crash can leave:
 * - entries (and slots pointing at them) past the header's indexCount: they are ignored, and
 *   overwritten by the next puts, since entry n always lives at the same position;
 * - a slot table that is behind or ahead of the entries: on open, the newest file, which becomes
 *   the active one, has its slot table and chains rebuilt from its entries. Sealed files are
 *   queried with every slot and prevIndex checked to lie below indexCount and to go strictly
 *   backwards, so a torn chain cannot loop or point past the entries;
 * - a new file whose first flush never wrote its header (a zero header): it is deleted on open.
 * Everything lost this way was not counted in the header, so it lies above `endPhyOffset`: the
 * dispatcher re-indexes it after recovery. Re-dispatch can also index a message a second time (same
 * key, same offset); queries de-duplicate physical offsets. Lookups return offsets whose key hash
 * matches, and the caller reads the message and checks the real key, so a stale or colliding entry
 * costs a read, never a wrong answer.
 *
 * In memory (the active file): the slot table is one Buffer holding the on-disk bytes, allocated up
 * front; entries live in chunks of 16 Ki entries allocated as they fill. Both hold the exact disk
 * image, so a flush writes slices of them. Dirty slot pages are tracked per 4 KiB page of the
 * file. A sealed file that has been flushed is dropped from memory and read with positional reads.
 */
import { assert, TsmqError } from '../common/errors.js';
import { javaStringHashCode } from '../common/java-hash.js';
import { type FileIo, readFully, writeFully } from './io.js';

export const INDEX_HEADER_BYTES = 40;
export const INDEX_SLOT_BYTES = 4;
export const INDEX_ENTRY_BYTES = 20;

/** Largest slot table accepted, from config or from a header: 2^28 slots = 1 GiB. */
export const INDEX_SLOT_COUNT_MAX = 1 << 28;

const PAGE_BYTES = 4096;
const PAGE_SHIFT = 12;
const CHUNK_SHIFT = 14;
const CHUNK_ENTRIES = 1 << CHUNK_SHIFT;
const CHUNK_MASK = CHUNK_ENTRIES - 1;
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const TWO_POW_32 = 4294967296;
/** Store time is kept in whole seconds: an entry's true time lies in [t, t + 999] ms. */
const SECOND_SLACK_MS = 999;

/**
 * The hash an index key is filed under. Java's Math.abs(-2^31) is still -2^31; RocketMQ maps that
 * one value to 0 and so do we, so a key lands in the same slot as in RocketMQ's files.
 */
export function indexKeyHash(key: string): number {
  return indexKeyHashOf(javaStringHashCode(key));
}

/** `indexKeyHash` of a key whose Java hashCode is `javaHash`. */
export function indexKeyHashOf(javaHash: number): number {
  return javaHash === INT32_MIN ? 0 : Math.abs(javaHash);
}

// ---- header codec ----------------------------------------------------------------------------

export interface IndexHeader {
  beginTimestamp: number;
  endTimestamp: number;
  beginPhyOffset: number;
  endPhyOffset: number;
  slotCount: number;
  indexCount: number;
}

function setI64(view: DataView, pos: number, value: number): void {
  const hi = Math.floor(value / TWO_POW_32);
  view.setInt32(pos, hi);
  view.setUint32(pos + 4, value - hi * TWO_POW_32);
}

function getI64(view: DataView, pos: number): number {
  return view.getInt32(pos) * TWO_POW_32 + view.getUint32(pos + 4);
}

export function encodeIndexHeader(h: IndexHeader): Buffer {
  const buf = Buffer.alloc(INDEX_HEADER_BYTES);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  setI64(view, 0, h.beginTimestamp);
  setI64(view, 8, h.endTimestamp);
  setI64(view, 16, h.beginPhyOffset);
  setI64(view, 24, h.endPhyOffset);
  view.setInt32(32, h.slotCount);
  view.setInt32(36, h.indexCount);
  return buf;
}

export function decodeIndexHeader(buf: Uint8Array): IndexHeader {
  assert(buf.byteLength >= INDEX_HEADER_BYTES, 'index header needs 40 bytes');
  const view = new DataView(buf.buffer, buf.byteOffset, INDEX_HEADER_BYTES);
  return {
    beginTimestamp: getI64(view, 0),
    endTimestamp: getI64(view, 8),
    beginPhyOffset: getI64(view, 16),
    endPhyOffset: getI64(view, 24),
    slotCount: view.getInt32(32),
    indexCount: view.getInt32(36),
  };
}

// ---- file names ------------------------------------------------------------------------------

/**
 * File names are the creation time as `yyyyMMddHHmmssSSS` (UTC). A file created in the same
 * millisecond as the newest one, or while the clock stands behind it, is named after the newest
 * one's time with a sequence suffix `_0001`, `_0002`, ... so names are unique and always grow.
 * Order is by (time, sequence); while sequences stay below 10,000 plain string order agrees.
 */
export interface IndexFileName {
  readonly stamp: string;
  readonly seq: number;
}

const NAME_RE = /^(\d{17})(?:_(\d{4,}))?$/;

export function parseIndexFileName(name: string): IndexFileName | undefined {
  const m = NAME_RE.exec(name);
  if (m === null) return undefined;
  return { stamp: m[1]!, seq: m[2] === undefined ? 0 : Number(m[2]) };
}

export function formatIndexFileName(n: IndexFileName): string {
  return n.seq === 0 ? n.stamp : `${n.stamp}_${String(n.seq).padStart(4, '0')}`;
}

export function compareIndexFileNames(a: IndexFileName, b: IndexFileName): number {
  if (a.stamp !== b.stamp) return a.stamp < b.stamp ? -1 : 1;
  return a.seq - b.seq;
}

export function timestampStamp(ms: number): string {
  const d = new Date(ms);
  const p = (v: number, w: number) => String(v).padStart(w, '0');
  return (
    p(d.getUTCFullYear(), 4) +
    p(d.getUTCMonth() + 1, 2) +
    p(d.getUTCDate(), 2) +
    p(d.getUTCHours(), 2) +
    p(d.getUTCMinutes(), 2) +
    p(d.getUTCSeconds(), 2) +
    p(d.getUTCMilliseconds(), 3)
  );
}

/** The name for a file created at `nowMs`, strictly after `newest` if given. */
export function nextIndexFileName(nowMs: number, newest: IndexFileName | undefined): IndexFileName {
  const stamp = timestampStamp(nowMs);
  if (newest === undefined || stamp > newest.stamp) return { stamp, seq: 0 };
  return { stamp: newest.stamp, seq: newest.seq + 1 };
}

// ---- the file --------------------------------------------------------------------------------

function ioFailure(what: string, path: string, cause: unknown): TsmqError {
  return new TsmqError('STORE_IO_ERROR', `index file ${path}: ${what} failed`, { cause });
}

function layoutInvalid(path: string, why: string): TsmqError {
  return new TsmqError('STORE_LAYOUT_INVALID', `index file ${path}: ${why}`);
}

function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** One file's part of a query: its hits, newest first and de-duplicated, at most maxNum. */
export interface QueryState {
  readonly keyHash: number;
  readonly beginMs: number;
  readonly endMs: number;
  readonly maxNum: number;
  readonly out: number[];
  readonly seen: Set<number>;
}

/**
 * One index file, either held in memory (the active file, and a sealed one until its last flush)
 * or on disk only (sealed and flushed). The service serializes flush, rewrite and close; `put`
 * and in-memory queries are synchronous and may run between the awaits of a flush.
 */
export class IndexFile {
  readonly name: IndexFileName;
  readonly path: string;
  readonly slotCount: number;
  /** The file is full when indexCount reaches this. */
  readonly maxEntries: number;

  beginTimestamp = 0;
  endTimestamp = 0;
  beginPhyOffset = 0;
  endPhyOffset = 0;
  indexCount = 1;
  /** No more puts go here; once flushed, the memory image is dropped. */
  sealed = false;

  private readonly entriesBase: number;
  private readonly slotBytes: number;
  // The memory image; all undefined once the file lives on disk only.
  private slots: Buffer | undefined;
  private slotView: DataView | undefined;
  private dirtyPages: Uint8Array | undefined;
  private anyDirtyPage = false;
  private headerDirty = false;
  private chunkBufs: Buffer[] = [];
  private chunkViews: DataView[] = [];
  /** Entries [1, durableCount) are on disk and counted by the header on disk. */
  private durableCount = 1;
  /** The file exists on disk (its first flush completed, or it was loaded). */
  private onDisk: boolean;
  private fd: number | undefined;

  private constructor(
    name: IndexFileName,
    dir: string,
    slotCount: number,
    maxEntries: number,
    onDisk: boolean,
  ) {
    this.name = name;
    this.path = `${dir}/${formatIndexFileName(name)}`;
    this.slotCount = slotCount;
    this.maxEntries = maxEntries;
    this.slotBytes = slotCount * INDEX_SLOT_BYTES;
    this.entriesBase = INDEX_HEADER_BYTES + this.slotBytes;
    this.onDisk = onDisk;
  }

  /** A new, empty file in memory; it reaches the disk at its first flush. */
  static create(dir: string, name: IndexFileName, slotCount: number, maxEntries: number): IndexFile {
    const f = new IndexFile(name, dir, slotCount, maxEntries, false);
    f.allocateImage();
    return f;
  }

  /** Reads the header of a file that stays on disk; checks that it is sound. */
  static async openSealed(io: FileIo, dir: string, name: IndexFileName): Promise<IndexFile> {
    const path = `${dir}/${formatIndexFileName(name)}`;
    const { header, size } = await readHeader(io, path);
    if (header.slotCount <= 0 || header.slotCount > INDEX_SLOT_COUNT_MAX) {
      throw layoutInvalid(path, `bad slot count ${header.slotCount}`);
    }
    const f = new IndexFile(name, dir, header.slotCount, Math.max(2, header.indexCount), true);
    if (header.indexCount < 1) throw layoutInvalid(path, `bad index count ${header.indexCount}`);
    if (header.indexCount > 1 && size < f.entriesBase + header.indexCount * INDEX_ENTRY_BYTES) {
      throw layoutInvalid(path, `${size} bytes cannot hold ${header.indexCount - 1} entries`);
    }
    f.setHeader(header);
    f.sealed = true;
    f.durableCount = header.indexCount;
    return f;
  }

  /**
   * Loads a file whole into memory to make it the active one (or to rewrite it). The slot table
   * and chains are rebuilt from the entries the header counts; where they differ from the disk,
   * the pages and entries are marked dirty and the next flush repairs them.
   */
  static async loadImage(
    io: FileIo,
    dir: string,
    name: IndexFileName,
    maxEntries: number,
  ): Promise<IndexFile> {
    const path = `${dir}/${formatIndexFileName(name)}`;
    const { header, size } = await readHeader(io, path);
    if (header.slotCount <= 0 || header.slotCount > INDEX_SLOT_COUNT_MAX) {
      throw layoutInvalid(path, `bad slot count ${header.slotCount}`);
    }
    if (header.indexCount < 1) throw layoutInvalid(path, `bad index count ${header.indexCount}`);
    const probe = new IndexFile(name, dir, header.slotCount, maxEntries, true);
    const onDiskEntries = Math.max(0, Math.floor((size - probe.entriesBase) / INDEX_ENTRY_BYTES));
    const count = Math.max(1, Math.min(header.indexCount, onDiskEntries));
    const f = new IndexFile(name, dir, header.slotCount, Math.max(maxEntries, count), true);
    f.allocateImage();
    f.setHeader(header);
    f.indexCount = count;
    f.headerDirty = count !== header.indexCount;
    let fd: number;
    try {
      fd = await io.open(path, 'r');
    } catch (e) {
      throw ioFailure('open', path, e);
    }
    try {
      await readFully(io, fd, f.slots!, 0, f.slotBytes, INDEX_HEADER_BYTES);
      for (let n = 0; n < count; n += CHUNK_ENTRIES) {
        f.chunkView(n); // allocates the chunk
        const upto = Math.min(count, n + CHUNK_ENTRIES);
        const buf = f.chunkBufs[n >>> CHUNK_SHIFT]!;
        await readFully(
          io,
          fd,
          buf,
          0,
          (upto - n) * INDEX_ENTRY_BYTES,
          f.entriesBase + n * INDEX_ENTRY_BYTES,
        );
      }
    } catch (e) {
      throw ioFailure('read', path, e);
    } finally {
      await io.close(fd);
    }
    f.durableCount = count;
    f.rebuildChains();
    return f;
  }

  get hasImage(): boolean {
    return this.slots !== undefined;
  }

  get entryCount(): number {
    return this.indexCount - 1;
  }

  isFull(): boolean {
    return this.indexCount >= this.maxEntries;
  }

  /** Time range overlap with [beginMs, endMs] (inclusive); empty files overlap nothing. */
  overlaps(beginMs: number, endMs: number): boolean {
    return this.indexCount > 1 && this.beginTimestamp <= endMs && this.endTimestamp >= beginMs;
  }

  /** Appends one entry. Precondition: in memory, not sealed, not full. The hot path of indexing. */
  put(keyHash: number, physicalOffset: number, storeTimestamp: number): void {
    const n = this.indexCount;
    if (n === 1) {
      this.beginTimestamp = storeTimestamp;
      this.endTimestamp = storeTimestamp;
      this.beginPhyOffset = physicalOffset;
      this.endPhyOffset = physicalOffset;
    } else {
      if (storeTimestamp > this.endTimestamp) this.endTimestamp = storeTimestamp;
      if (physicalOffset > this.endPhyOffset) this.endPhyOffset = physicalOffset;
      else if (physicalOffset < this.beginPhyOffset) this.beginPhyOffset = physicalOffset;
    }
    let diff = Math.floor((storeTimestamp - this.beginTimestamp) / 1000);
    if (diff < 0) diff = 0;
    else if (diff > INT32_MAX) diff = INT32_MAX;

    const slotPos = (keyHash % this.slotCount) * INDEX_SLOT_BYTES;
    const slotView = this.slotView!;
    const prev = slotView.getInt32(slotPos);
    const view = this.chunkView(n);
    const p = (n & CHUNK_MASK) * INDEX_ENTRY_BYTES;
    view.setInt32(p, keyHash);
    view.setInt32(p + 4, Math.floor(physicalOffset / TWO_POW_32));
    view.setUint32(p + 8, physicalOffset >>> 0);
    view.setInt32(p + 12, diff);
    view.setInt32(p + 16, prev);
    slotView.setInt32(slotPos, n);
    this.dirtyPages![(INDEX_HEADER_BYTES + slotPos) >>> PAGE_SHIFT] = 1;
    this.anyDirtyPage = true;
    this.indexCount = n + 1;
  }

  /** Adds to `q.out` the offsets of matching entries, newest first; stops at q.maxNum. */
  async query(io: FileIo, q: QueryState): Promise<void> {
    if (this.slotView !== undefined) this.queryImage(q);
    else await this.queryDisk(io, q);
  }

  private queryImage(q: QueryState): void {
    const count = this.indexCount;
    let n = this.slotView!.getInt32((q.keyHash % this.slotCount) * INDEX_SLOT_BYTES);
    while (n > 0 && n < count) {
      const view = this.chunkViews[n >>> CHUNK_SHIFT]!;
      const p = (n & CHUNK_MASK) * INDEX_ENTRY_BYTES;
      const verdict = this.judge(q, view.getInt32(p), view.getInt32(p + 12));
      if (verdict === STOP) return;
      if (verdict === MATCH && this.collect(q, view.getInt32(p + 4) * TWO_POW_32 + view.getUint32(p + 8))) {
        return;
      }
      const prev = view.getInt32(p + 16);
      if (prev >= n) return;
      n = prev;
    }
  }

  private async queryDisk(io: FileIo, q: QueryState): Promise<void> {
    let fd: number;
    try {
      fd = await io.open(this.path, 'r');
    } catch (e) {
      // Deleted by retention or replaced by a truncation while this query ran: nothing to add.
      if (isNotFound(e)) return;
      throw ioFailure('open', this.path, e);
    }
    try {
      const count = this.indexCount;
      const buf = Buffer.alloc(INDEX_ENTRY_BYTES);
      const view = new DataView(buf.buffer, buf.byteOffset, INDEX_ENTRY_BYTES);
      const slotPos = INDEX_HEADER_BYTES + (q.keyHash % this.slotCount) * INDEX_SLOT_BYTES;
      if ((await readFully(io, fd, buf, 0, INDEX_SLOT_BYTES, slotPos)) < INDEX_SLOT_BYTES) return;
      let n = view.getInt32(0);
      while (n > 0 && n < count) {
        const got = await readFully(
          io,
          fd,
          buf,
          0,
          INDEX_ENTRY_BYTES,
          this.entriesBase + n * INDEX_ENTRY_BYTES,
        );
        if (got < INDEX_ENTRY_BYTES) return;
        const verdict = this.judge(q, view.getInt32(0), view.getInt32(12));
        if (verdict === STOP) return;
        if (verdict === MATCH && this.collect(q, getI64(view, 4))) return;
        const prev = view.getInt32(16);
        if (prev >= n) return;
        n = prev;
      }
    } catch (e) {
      throw ioFailure('read', this.path, e);
    } finally {
      await io.close(fd);
    }
  }

  /**
   * Whether an entry is a hit. Time is whole seconds, so an entry stored at true time T reads
   * back as t <= T <= t + 999: it is a candidate when [t, t + 999] overlaps [beginMs, endMs]
   * (the caller, which reads the message, can apply the exact bound). Chains run newest to
   * oldest, so an entry older than the range ends the walk, as in RocketMQ; this can miss
   * entries only if the clock stepped back while the file was written.
   */
  private judge(q: QueryState, keyHash: number, diffSeconds: number): Verdict {
    const t = this.beginTimestamp + diffSeconds * 1000;
    if (t + SECOND_SLACK_MS < q.beginMs) return STOP;
    if (keyHash !== q.keyHash || t > q.endMs) return SKIP;
    return MATCH;
  }

  /** Records a hit; true when the query has all it asked for. */
  private collect(q: QueryState, offset: number): boolean {
    if (!q.seen.has(offset)) {
      q.seen.add(offset);
      q.out.push(offset);
    }
    return q.out.length >= q.maxNum;
  }

  /**
   * Writes what changed since the last flush: new entries and dirty slot pages, fdatasync, then
   * the header, fdatasync (see the top of the file for why in this order). A sealed file whose
   * image is all on disk afterwards drops its memory and its descriptor.
   */
  async flush(io: FileIo, dir: string): Promise<void> {
    if (this.slots === undefined) return;
    const count = this.indexCount;
    const fromEntry = this.durableCount;
    if (count === fromEntry && !this.anyDirtyPage && !this.headerDirty) {
      await this.releaseIfDone(io);
      return;
    }
    // Snapshot synchronously: puts may run at every await below. Entries below `count` never
    // change again; slot pages are copied so the header and slots written belong to one moment.
    const runs = this.takeDirtySlotRuns();
    this.headerDirty = false;
    const header = encodeIndexHeader(this.header(count));
    const created = !this.onDisk;
    let step = 'open';
    try {
      if (this.fd === undefined) this.fd = await io.open(this.path, created ? 'wx+' : 'r+');
      const fd = this.fd;
      step = 'write';
      await this.writeEntries(io, fd, fromEntry, count);
      for (const run of runs) await writeFully(io, fd, run.data, 0, run.data.length, run.position);
      step = 'fdatasync';
      await io.fdatasync(fd);
      step = 'write';
      await writeFully(io, fd, header, 0, INDEX_HEADER_BYTES, 0);
      step = 'fdatasync';
      await io.fdatasync(fd);
      if (created) {
        step = 'fsync of the directory';
        await io.fsyncDir(dir);
        this.onDisk = true;
      }
    } catch (e) {
      throw ioFailure(step, this.path, e);
    }
    this.durableCount = count;
    await this.releaseIfDone(io);
  }

  /** Closes the descriptor kept for flushing, if any. */
  async closeFd(io: FileIo): Promise<void> {
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) await io.close(fd);
  }

  /** Drops the memory image. Only for files that are sealed and fully on disk. */
  dropImage(): void {
    assert(this.onDisk && this.durableCount === this.indexCount, 'dropping an index image not on disk');
    this.slots = undefined;
    this.slotView = undefined;
    this.dirtyPages = undefined;
    this.chunkBufs = [];
    this.chunkViews = [];
  }

  /**
   * Keeps only the entries with physical offset < physicalEnd (in their order), rebuilds the
   * chains and returns the number dropped. Needs the image in memory; the caller persists it
   * with `writeWhole`.
   */
  dropEntriesFrom(physicalEnd: number): number {
    assert(this.slots !== undefined, 'truncating an index file not in memory');
    const count = this.indexCount;
    let kept = 1;
    for (let n = 1; n < count; n++) {
      const src = this.chunkViews[n >>> CHUNK_SHIFT]!;
      const sp = (n & CHUNK_MASK) * INDEX_ENTRY_BYTES;
      const off = src.getInt32(sp + 4) * TWO_POW_32 + src.getUint32(sp + 8);
      if (off >= physicalEnd) continue;
      if (kept !== n) {
        const dst = this.chunkViews[kept >>> CHUNK_SHIFT]!;
        const dp = (kept & CHUNK_MASK) * INDEX_ENTRY_BYTES;
        for (let i = 0; i < INDEX_ENTRY_BYTES; i += 4) dst.setInt32(dp + i, src.getInt32(sp + i));
      }
      kept++;
    }
    const dropped = count - kept;
    if (dropped === 0) return 0;
    this.indexCount = kept;
    if (kept === 1) {
      this.beginPhyOffset = 0;
      this.endPhyOffset = 0;
    }
    // beginTimestamp stays: it is the base of every kept timeDiff. endTimestamp stays too; the
    // range it gives may now be wider than the entries, which costs a look, never a miss.
    // rebuildChains recomputes the offset range.
    this.rebuildChains();
    return dropped;
  }

  /**
   * Replaces the file on disk with the memory image, atomically: a temp file, fdatasync, rename
   * over, fsync of the directory. Used by truncation, which must not leave a half-rewritten file.
   */
  async writeWhole(io: FileIo, dir: string): Promise<void> {
    assert(this.slots !== undefined, 'rewriting an index file not in memory');
    await this.closeFd(io);
    const tmp = `${this.path}.tmp`;
    const count = this.indexCount;
    const fd = await io.open(tmp, 'w+');
    try {
      await writeFully(io, fd, encodeIndexHeader(this.header(count)), 0, INDEX_HEADER_BYTES, 0);
      await writeFully(io, fd, this.slots, 0, this.slotBytes, INDEX_HEADER_BYTES);
      await this.writeEntries(io, fd, 1, count);
      await io.fdatasync(fd);
    } finally {
      await io.close(fd);
    }
    await io.rename(tmp, this.path);
    await io.fsyncDir(dir);
    this.onDisk = true;
    this.durableCount = count;
    this.headerDirty = false;
    this.anyDirtyPage = false;
    this.dirtyPages!.fill(0);
  }

  // ---- internals ----

  private header(count: number): IndexHeader {
    return {
      beginTimestamp: this.beginTimestamp,
      endTimestamp: this.endTimestamp,
      beginPhyOffset: this.beginPhyOffset,
      endPhyOffset: this.endPhyOffset,
      slotCount: this.slotCount,
      indexCount: count,
    };
  }

  private setHeader(h: IndexHeader): void {
    this.beginTimestamp = h.beginTimestamp;
    this.endTimestamp = h.endTimestamp;
    this.beginPhyOffset = h.beginPhyOffset;
    this.endPhyOffset = h.endPhyOffset;
    this.indexCount = h.indexCount;
  }

  private allocateImage(): void {
    this.slots = Buffer.alloc(this.slotBytes);
    this.slotView = new DataView(this.slots.buffer, this.slots.byteOffset, this.slotBytes);
    this.dirtyPages = new Uint8Array(Math.ceil(this.entriesBase / PAGE_BYTES));
  }

  /** The chunk holding entry n, allocated on first use. */
  private chunkView(n: number): DataView {
    const c = n >>> CHUNK_SHIFT;
    let view = this.chunkViews[c];
    if (view === undefined) {
      const entries = Math.min(CHUNK_ENTRIES, this.maxEntries - c * CHUNK_ENTRIES);
      const buf = Buffer.alloc(entries * INDEX_ENTRY_BYTES);
      view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      this.chunkBufs[c] = buf;
      this.chunkViews[c] = view;
    }
    return view;
  }

  /**
   * Recomputes the slot table, every prevIndex and the offset range from the entries in
   * [1, indexCount), starting from an all-zero slot table. Pages and entries that change are
   * marked dirty.
   */
  private rebuildChains(): void {
    const old = Buffer.from(this.slots!);
    const slotView = this.slotView!;
    this.slots!.fill(0);
    const count = this.indexCount;
    let firstChanged = count;
    let minOff = Number.POSITIVE_INFINITY;
    let maxOff = -1;
    for (let n = 1; n < count; n++) {
      const view = this.chunkViews[n >>> CHUNK_SHIFT]!;
      const p = (n & CHUNK_MASK) * INDEX_ENTRY_BYTES;
      const keyHash = view.getInt32(p);
      if (keyHash < 0) throw layoutInvalid(this.path, `entry ${n} has a negative key hash`);
      const off = view.getInt32(p + 4) * TWO_POW_32 + view.getUint32(p + 8);
      if (off < minOff) minOff = off;
      if (off > maxOff) maxOff = off;
      const slotPos = (keyHash % this.slotCount) * INDEX_SLOT_BYTES;
      const prev = slotView.getInt32(slotPos);
      if (view.getInt32(p + 16) !== prev) {
        view.setInt32(p + 16, prev);
        if (n < firstChanged) firstChanged = n;
      }
      slotView.setInt32(slotPos, n);
    }
    if (count > 1) {
      if (this.beginPhyOffset !== minOff || this.endPhyOffset !== maxOff) this.headerDirty = true;
      this.beginPhyOffset = minOff;
      this.endPhyOffset = maxOff;
    }
    if (firstChanged < this.durableCount) this.durableCount = firstChanged;
    const pages = this.dirtyPages!;
    for (let page = 0; page < pages.length; page++) {
      const start = Math.max(INDEX_HEADER_BYTES, page << PAGE_SHIFT) - INDEX_HEADER_BYTES;
      const end = Math.min(this.entriesBase, (page + 1) << PAGE_SHIFT) - INDEX_HEADER_BYTES;
      if (old.compare(this.slots!, start, end, start, end) !== 0) {
        pages[page] = 1;
        this.anyDirtyPage = true;
      }
    }
  }

  /** Copies out the dirty slot pages as runs of contiguous pages and clears the marks. */
  private takeDirtySlotRuns(): { position: number; data: Buffer }[] {
    const runs: { position: number; data: Buffer }[] = [];
    if (!this.anyDirtyPage) return runs;
    const pages = this.dirtyPages!;
    const slots = this.slots!;
    for (let page = 0; page < pages.length; page++) {
      if (pages[page] === 0) continue;
      let last = page;
      while (last + 1 < pages.length && pages[last + 1] === 1) last++;
      const start = Math.max(INDEX_HEADER_BYTES, page << PAGE_SHIFT);
      const end = Math.min(this.entriesBase, (last + 1) << PAGE_SHIFT);
      const data = Buffer.allocUnsafe(end - start);
      slots.copy(data, 0, start - INDEX_HEADER_BYTES, end - INDEX_HEADER_BYTES);
      runs.push({ position: start, data });
      pages.fill(0, page, last + 1);
      page = last;
    }
    this.anyDirtyPage = false;
    return runs;
  }

  /** Writes entries [from, to) from the chunks, one write per chunk touched. */
  private async writeEntries(io: FileIo, fd: number, from: number, to: number): Promise<void> {
    let n = from;
    while (n < to) {
      const c = n >>> CHUNK_SHIFT;
      const upto = Math.min(to, (c + 1) * CHUNK_ENTRIES);
      const buf = this.chunkBufs[c]!;
      const at = (n & CHUNK_MASK) * INDEX_ENTRY_BYTES;
      const len = (upto - n) * INDEX_ENTRY_BYTES;
      await writeFully(io, fd, buf, at, len, this.entriesBase + n * INDEX_ENTRY_BYTES);
      n = upto;
    }
  }

  private async releaseIfDone(io: FileIo): Promise<void> {
    if (
      this.sealed &&
      this.onDisk &&
      this.durableCount === this.indexCount &&
      !this.anyDirtyPage &&
      !this.headerDirty
    ) {
      this.dropImage();
      await this.closeFd(io);
    }
  }
}

const MATCH = 0;
const SKIP = 1;
const STOP = 2;
type Verdict = typeof MATCH | typeof SKIP | typeof STOP;

async function readHeader(io: FileIo, path: string): Promise<{ header: IndexHeader; size: number }> {
  let fd: number;
  try {
    fd = await io.open(path, 'r');
  } catch (e) {
    throw ioFailure('open', path, e);
  }
  try {
    const size = await io.fstatSize(fd);
    if (size < INDEX_HEADER_BYTES) throw layoutInvalid(path, `only ${size} bytes, shorter than a header`);
    const buf = Buffer.alloc(INDEX_HEADER_BYTES);
    await readFully(io, fd, buf, 0, INDEX_HEADER_BYTES, 0);
    return { header: decodeIndexHeader(buf), size };
  } finally {
    await io.close(fd);
  }
}

/**
 * Whether a file on disk is the leftover of a first flush cut short by a crash: shorter than a
 * header, or a header never written (all zeros, slot count 0). Such a file counts no entries.
 */
export async function isUnfinishedIndexFile(io: FileIo, path: string): Promise<boolean> {
  const size = await io.size(path);
  if (size === undefined) return false;
  if (size < INDEX_HEADER_BYTES) return true;
  const fd = await io.open(path, 'r');
  try {
    const buf = Buffer.alloc(INDEX_HEADER_BYTES);
    await readFully(io, fd, buf, 0, INDEX_HEADER_BYTES, 0);
    return decodeIndexHeader(buf).slotCount === 0;
  } finally {
    await io.close(fd);
  }
}
