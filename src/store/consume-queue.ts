/**
 * ConsumeQueue: the per topic/queue logical index over the commit log (reference §1.3).
 *
 * It is derived data. The dispatcher reads the commit log and calls `put()`; the put path never
 * writes here, and the whole directory can be deleted and rebuilt from the log.
 *
 * Files: `<root>/consumequeue/<topic>/<queueId>/<name>`, where `<name>` is the 20-digit,
 * zero-padded BYTE offset of the file's first unit. Each file holds `unitsPerFile` units
 * (default 300,000, so 6,000,000 bytes per file):
 *
 *     00000000000000000000   units [0, unitsPerFile)
 *     00000000000006000000   units [unitsPerFile, 2*unitsPerFile)
 *     ...
 *
 * Files are not preallocated: a file grows by writes, so the size of the last file tells where
 * the queue ends. The logical offset of a unit is its byte position in the queue / 20.
 *
 * Unit, 20 bytes, big-endian:
 *
 *     0                        8              12                        20
 *     +------------------------+--------------+-------------------------+
 *     | commitLogOffset  int64 | size   int32 | tagsCode          int64 |
 *     +------------------------+--------------+-------------------------+
 *
 *   commitLogOffset  byte offset of the message record in the commit log
 *   size             length of that record in bytes; 0 marks a hole (see below)
 *   tagsCode         Java String.hashCode() of the TAGS property, sign-extended to 64 bits
 *                    (0 without tags); for schedule topics, the delivery timestamp in ms
 *
 * 64-bit fields are kept as JS numbers (hi * 2^32 + lo), exact up to 2^53.
 *
 * Holes: a unit with size 0 carries no message. Holes appear when the dispatcher rebuilds a queue
 * from a commit log whose oldest segments were deleted: the first message it sees may already
 * have queue offset 5,000, so units [0, 5,000) are holes. Bytes past the end of a file, and whole
 * files that do not exist inside the queue's range, read as holes too: a queue that jumps ahead
 * does not have to write the zeros. Readers skip units with size 0.
 *
 * What a crash leaves behind, and what `open()` and recovery do about it:
 *   - a partial unit at the tail of the last file (torn write)   -> dropped at open()
 *   - zero units at the tail (file size grew, data never reached
 *     the disk on some file systems)                              -> dropped at open()
 *   - units pointing past the recovered end of the commit log
 *     (the queue was flushed ahead of the log)                    -> the store calls
 *                                                                    truncateByPhysicalOffset()
 * Flush writes file after file, each written and fdatasync'ed before the next one is touched, so
 * a crash cannot leave a later file ahead of an earlier one.
 *
 * Max-offset hint, `<root>/consumequeue/<topic>/<queueId>/maxoffset`, 20 bytes, big-endian:
 *
 *     0          4          8                           16         20
 *     +----------+----------+---------------------------+----------+
 *     | magic    | version  | maxOffset           int64 | crc32    |
 *     | u32      | u32 = 1  |                           | u32      |
 *     +----------+----------+---------------------------+----------+
 *
 *   magic    0x43514d58 ("CQMX")
 *   crc32    CRC-32 (zlib) of bytes [0, 16)
 *
 * Why: dropping trailing zero units at open cannot tell zeros a crash left from holes that are
 * part of the queue. A queue rebuilt from a log whose head was deleted starts with holes
 * (say units [0, 50)); if recovery then cuts away every real unit, the file holds only those 50
 * holes and the next open would find maxOffset 0, handing offsets 0-49 (consumed already) to new
 * messages. So whenever the queue's durable end is left on holes (a truncation, or a flush that
 * ends on holes after one), the end is written here, and `open()` takes
 * max(hint, end found in the files). The hint never exceeds the durable end: it is written after
 * the units below it are fdatasync'ed, and a truncation lowers it before it cuts the files, so a
 * replay below it is always a true replay. It is written atomically (temp file, fsync, rename,
 * directory fsync): a crash leaves the old or the new hint, and a stale `maxoffset.tmp` is removed
 * at open. A hint whose magic, version or CRC is wrong fails the open (STORE_LAYOUT_INVALID).
 * A queue that never ends on holes never writes one.
 *
 * Descriptors: every queue of a ConsumeQueueStore draws from one `DescriptorBudget` (default 256
 * descriptors for all queues together). A descriptor stays open after use, idle, until the budget
 * is needed for another file; then the least recently used idle one is closed. A descriptor in
 * use by a read, write, flush or truncation is never closed under it: when all are in use, the
 * next open waits for one to be released. Each operation holds one descriptor at a time, so
 * waiting cannot deadlock. A queue opened on its own gets a small budget of its own.
 *
 * Not persisted: the minimum offset set by retention (`correctMinOffset`). After a restart the
 * minimum is the first real unit on disk until the store calls `correctMinOffset` again. The file
 * holding the last unit is never deleted by retention, so the maximum offset survives restarts
 * (the store rebuilds the next queue offset of each queue from it).
 */
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { assert, TsmqError } from '../common/errors.js';
import { type FileIo, readFully, writeFileAtomic, writeFully } from './io.js';

export const CQ_UNIT_BYTES = 20;

export interface ConsumeQueueOptions {
  /** Units per file; a file is `unitsPerFile * 20` bytes. Default 300,000. */
  unitsPerFile: number;
  /** Recent units kept in memory after they are flushed, so tail reads need no syscall. Default 4096. */
  tailCacheUnits: number;
  /**
   * Open descriptors allowed for all queues of a ConsumeQueueStore together (default 256); for a
   * queue opened on its own, for that queue (default 5).
   */
  maxOpenFiles?: number;
}

/** Default descriptor budget shared by all queues of a store. */
export const DEFAULT_MAX_OPEN_FILES = 256;
/** Default budget of a queue opened outside a store: the tail file and a few catch-up reads. */
export const STANDALONE_MAX_OPEN_FILES = 5;

export const DEFAULT_CONSUME_QUEUE_OPTIONS: Readonly<ConsumeQueueOptions> = Object.freeze({
  unitsPerFile: 300_000,
  tailCacheUnits: 4096,
  maxOpenFiles: DEFAULT_MAX_OPEN_FILES,
});

const TWO_32 = 0x1_0000_0000;
/** Smallest in-memory buffer, in units (1,280 bytes): idle queues stay small. */
const MIN_MEM_UNITS = 64;
/** Units per read while scanning files at open (80 KiB). */
const SCAN_CHUNK_UNITS = 4096;
const FILE_NAME = /^\d{20}$/;
/** The max-offset hint (see the top of the file). */
const HINT_NAME = 'maxoffset';
const HINT_MAGIC = 0x43514d58;
const HINT_VERSION = 1;
export const CQ_HINT_BYTES = 20;
const EMPTY = Buffer.alloc(0);

/** The directory of one queue's files. */
export function consumeQueueDir(rootDir: string, topic: string, queueId: number): string {
  return path.join(rootDir, 'consumequeue', topic, String(queueId));
}

function fileName(startByte: number): string {
  return String(startByte).padStart(20, '0');
}

function encodeUnit(buf: Buffer, pos: number, physicalOffset: number, size: number, tagsCode: number): void {
  // Byte stores instead of Buffer#write*: this runs once per message on the dispatch path.
  const physHi = Math.floor(physicalOffset / TWO_32);
  const physLo = physicalOffset - physHi * TWO_32;
  const tagHi = Math.floor(tagsCode / TWO_32);
  const tagLo = tagsCode - tagHi * TWO_32;
  put32(buf, pos, physHi);
  put32(buf, pos + 4, physLo);
  put32(buf, pos + 8, size);
  put32(buf, pos + 12, tagHi);
  put32(buf, pos + 16, tagLo);
}

function put32(b: Buffer, p: number, v: number): void {
  b[p] = v >>> 24;
  b[p + 1] = v >>> 16;
  b[p + 2] = v >>> 8;
  b[p + 3] = v;
}

/** Decodes the i-th unit of a `readUnits` buffer. */
export function unitAt(buf: Buffer, i: number): { physicalOffset: number; size: number; tagsCode: number } {
  const p = i * CQ_UNIT_BYTES;
  return {
    physicalOffset: buf.readUInt32BE(p) * TWO_32 + buf.readUInt32BE(p + 4),
    size: buf.readInt32BE(p + 8),
    tagsCode: buf.readInt32BE(p + 12) * TWO_32 + buf.readUInt32BE(p + 16),
  };
}

/** Search key of a unit: its commit-log offset, with holes ordered before every real unit. */
function keyAt(buf: Buffer, i: number): number {
  const p = i * CQ_UNIT_BYTES;
  if (buf.readInt32BE(p + 8) === 0) return -1;
  return buf.readUInt32BE(p) * TWO_32 + buf.readUInt32BE(p + 4);
}

/**
 * Readers (disk reads, flush) share; operations that shrink or delete files (truncate,
 * retention, close, destroy) are exclusive. A waiting exclusive holder blocks new readers, so
 * retention cannot starve behind a stream of reads.
 */
class RwLock {
  private readers = 0;
  private writer = false;
  private readonly waiting: Array<{ exclusive: boolean; grant: () => void }> = [];

  shared(): Promise<void> {
    if (!this.writer && this.waiting.length === 0) {
      this.readers++;
      return Promise.resolve();
    }
    return new Promise((grant) => this.waiting.push({ exclusive: false, grant }));
  }

  exclusive(): Promise<void> {
    if (!this.writer && this.readers === 0 && this.waiting.length === 0) {
      this.writer = true;
      return Promise.resolve();
    }
    return new Promise((grant) => this.waiting.push({ exclusive: true, grant }));
  }

  releaseShared(): void {
    this.readers--;
    this.drain();
  }

  releaseExclusive(): void {
    this.writer = false;
    this.drain();
  }

  private drain(): void {
    while (this.waiting.length > 0) {
      const next = this.waiting[0]!;
      if (this.writer || (next.exclusive && this.readers > 0)) return;
      this.waiting.shift();
      if (next.exclusive) this.writer = true;
      else this.readers++;
      next.grant();
      if (next.exclusive) return;
    }
  }
}

/** An idle descriptor the budget may close to make room for another. */
export interface IdleDescriptor {
  /**
   * Detaches the descriptor from its owner (synchronously, so nobody uses it afterwards) and
   * closes it. Resolves once it is closed; the budget then frees its slot.
   */
  evict(): Promise<void>;
}

/**
 * A limit on open descriptors, shared by every queue of a store. A slot is taken before a
 * descriptor is opened and freed after it is closed, so at no moment are more than `max` open.
 * Descriptors not in use are kept open (the next read or flush of the same file needs no
 * `open`) in least-recently-used order, and the least recent is closed when a slot is needed.
 * When every slot is in use, `take` waits for the first one to be released.
 */
export class DescriptorBudget {
  readonly max: number;
  /** Descriptors open, being opened or being closed. */
  private taken = 0;
  /** Open descriptors nobody uses, least recently used first (a Set keeps insertion order). */
  private readonly idle = new Set<IdleDescriptor>();
  private readonly waiters: Array<() => void> = [];
  /** Evictions under way, each of which will hand its slot to a waiter. */
  private evicting = 0;

  constructor(max: number) {
    assert(Number.isSafeInteger(max) && max >= 1, `descriptor budget must be an integer >= 1, got ${max}`);
    this.max = max;
  }

  /** Descriptors open, being opened or being closed (at most `max`). */
  held(): number {
    return this.taken;
  }

  /** Takes a slot for a descriptor about to be opened; pair with `release` once it is closed. */
  take(): Promise<void> {
    // Slots are handed from releaser to waiter directly, so a free slot means nobody waits.
    if (this.taken < this.max) {
      this.taken++;
      return Promise.resolve();
    }
    const granted = new Promise<void>((grant) => this.waiters.push(grant));
    this.evictForWaiters();
    return granted;
  }

  /** Frees the slot of a descriptor that has been closed (or failed to open). */
  release(): void {
    const next = this.waiters.shift();
    if (next !== undefined) next();
    else this.taken--;
  }

  /** The descriptor is no longer in use: it may be closed when its slot is needed. */
  markIdle(d: IdleDescriptor): void {
    this.idle.delete(d);
    this.idle.add(d);
    this.evictForWaiters();
  }

  /** The descriptor is in use, or being closed by its owner: the budget must not touch it. */
  markBusy(d: IdleDescriptor): void {
    this.idle.delete(d);
  }

  private evictForWaiters(): void {
    while (this.waiters.length > this.evicting && this.idle.size > 0) {
      const lru: IdleDescriptor = this.idle.values().next().value!;
      this.idle.delete(lru);
      this.evicting++;
      void lru
        .evict()
        .catch(() => undefined) // a failed close still frees the descriptor number (Linux, POSIX)
        .then(() => {
          this.evicting--;
          this.release();
        });
    }
  }
}

export function encodeMaxOffsetHint(maxOffset: number): Buffer {
  assert(Number.isSafeInteger(maxOffset) && maxOffset >= 0, `bad max offset ${maxOffset}`);
  const b = Buffer.alloc(CQ_HINT_BYTES);
  b.writeUInt32BE(HINT_MAGIC, 0);
  b.writeUInt32BE(HINT_VERSION, 4);
  const hi = Math.floor(maxOffset / TWO_32);
  b.writeUInt32BE(hi, 8);
  b.writeUInt32BE(maxOffset - hi * TWO_32, 12);
  b.writeUInt32BE(crc32(b.subarray(0, 16)) >>> 0, 16);
  return b;
}

export type MaxOffsetHintDecoded = { ok: true; maxOffset: number } | { ok: false; reason: string };

export function decodeMaxOffsetHint(b: Uint8Array): MaxOffsetHintDecoded {
  if (b.length !== CQ_HINT_BYTES) return { ok: false, reason: `${b.length} bytes, not ${CQ_HINT_BYTES}` };
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
  if (buf.readUInt32BE(0) !== HINT_MAGIC) return { ok: false, reason: 'bad magic' };
  if (buf.readUInt32BE(4) !== HINT_VERSION) return { ok: false, reason: `version ${buf.readUInt32BE(4)}` };
  if (buf.readUInt32BE(16) !== crc32(buf.subarray(0, 16)) >>> 0) return { ok: false, reason: 'bad CRC' };
  const maxOffset = buf.readUInt32BE(8) * TWO_32 + buf.readUInt32BE(12);
  if (!Number.isSafeInteger(maxOffset)) return { ok: false, reason: `max offset ${maxOffset} out of range` };
  return { ok: true, maxOffset };
}

/**
 * One file of the queue. Its descriptor is opened on first use, shared by concurrent users and
 * kept open while idle until the budget closes it (`evict`).
 */
interface CqFile extends IdleDescriptor {
  readonly index: number;
  readonly path: string;
  fd: number | undefined;
  opening: Promise<number> | undefined;
  /** The close of a detached descriptor, while it runs. */
  closing: Promise<void> | undefined;
  users: number;
  /** False until the directory entry of a newly created file has been fsync'ed. */
  entryDurable: boolean;
}

export class ConsumeQueue {
  readonly topic: string;
  readonly queueId: number;

  private readonly io: FileIo;
  private readonly rootDir: string;
  private readonly dir: string;
  private readonly unitsPerFile: number;
  private readonly tailCacheUnits: number;

  /** Files on disk by index (file index = first unit / unitsPerFile). Indices may have gaps (holes). */
  private readonly files = new Map<number, CqFile>();
  private firstIndex = -1;
  private lastIndex = -1;
  private dirReady = false;

  private minOff = 0;
  private maxOff = 0;
  /** Units below this offset are written and fdatasync'ed (or are holes nobody needs to write). */
  private flushedOff = 0;

  /**
   * Units [memStart, maxOff) live in `mem`, starting at unit index `head`: the pending units
   * [flushedOff, maxOff) plus up to `tailCacheUnits` flushed ones before them. While a flush is
   * writing from `mem`, the buffer is never compacted in place (a new one is allocated instead),
   * so the bytes under an in-flight write do not move.
   */
  private mem: Buffer = EMPTY;
  private head = 0;
  private memStart = 0;
  private flushing = false;
  /**
   * Set when truncation dropped units that may be on disk: files must be cut to this offset
   * before anything is written after it. Cleared once the disk has been cut; if cutting fails,
   * the next flush (or truncation) tries again.
   */
  private diskCut: number | undefined;

  /** The max-offset hint on disk (0 without one) and one still to be written (see the top of the file). */
  private hintOff = 0;
  private hintDue: number | undefined;

  private closed = false;
  private readonly lock = new RwLock();
  private flushTail: Promise<void> = Promise.resolve();
  private readonly budget: DescriptorBudget;

  private constructor(
    io: FileIo,
    rootDir: string,
    topic: string,
    queueId: number,
    opts: ConsumeQueueOptions,
    budget: DescriptorBudget | undefined,
  ) {
    assert(Number.isSafeInteger(opts.unitsPerFile) && opts.unitsPerFile > 0, 'unitsPerFile > 0');
    assert(Number.isSafeInteger(opts.tailCacheUnits) && opts.tailCacheUnits >= 0, 'tailCacheUnits >= 0');
    this.io = io;
    this.rootDir = rootDir;
    this.topic = topic;
    this.queueId = queueId;
    this.dir = consumeQueueDir(rootDir, topic, queueId);
    this.unitsPerFile = opts.unitsPerFile;
    this.tailCacheUnits = opts.tailCacheUnits;
    this.budget = budget ?? new DescriptorBudget(opts.maxOpenFiles ?? STANDALONE_MAX_OPEN_FILES);
  }

  /**
   * Loads the queue's files, dropping a torn tail. A queue without files starts empty at offset 0.
   * Its descriptors count against `budget` (a store passes the one all its queues share); without
   * one the queue gets its own of `opts.maxOpenFiles` (default 5).
   */
  static async open(
    io: FileIo,
    rootDir: string,
    topic: string,
    queueId: number,
    opts: ConsumeQueueOptions,
    budget?: DescriptorBudget,
  ): Promise<ConsumeQueue> {
    const q = new ConsumeQueue(io, rootDir, topic, queueId, opts, budget);
    await q.load();
    return q;
  }

  /**
   * A new, empty queue at offset 0, without touching the disk (the directory and first file are
   * created by the first flush). For the dispatcher's hot path; see `ConsumeQueueStore.getOrCreate`.
   */
  static createEmpty(
    io: FileIo,
    rootDir: string,
    topic: string,
    queueId: number,
    opts: ConsumeQueueOptions,
    budget?: DescriptorBudget,
  ): ConsumeQueue {
    return new ConsumeQueue(io, rootDir, topic, queueId, opts, budget);
  }

  /** Closed, abandoned or destroyed: no more reads, puts or flushes. */
  isClosed(): boolean {
    return this.closed;
  }

  /** First valid logical offset. */
  minOffset(): number {
    return this.minOff;
  }

  /** Next logical offset to be written. */
  maxOffset(): number {
    return this.maxOff;
  }

  /**
   * Records a unit, in memory only (`flush` writes it). Re-putting a unit at an offset below
   * `maxOffset()` is a no-op (the dispatcher replays after a restart); if that unit is still in
   * memory it must be identical. A `queueOffset` past `maxOffset()` leaves holes before it.
   */
  put(queueOffset: number, physicalOffset: number, size: number, tagsCode: number): void {
    if (this.closed) throw this.closedError();
    if (!(size > 0 && physicalOffset >= 0)) {
      assert(false, `bad consume queue unit: offset ${physicalOffset}, size ${size}`);
    }
    if (queueOffset === this.maxOff) {
      let i = this.head + (queueOffset - this.memStart);
      if ((i + 1) * CQ_UNIT_BYTES > this.mem.length) {
        this.makeRoom(1);
        i = this.head + (queueOffset - this.memStart);
      }
      encodeUnit(this.mem, i * CQ_UNIT_BYTES, physicalOffset, size, tagsCode);
      this.maxOff = queueOffset + 1;
      return;
    }
    this.putSlow(queueOffset, physicalOffset, size, tagsCode);
  }

  private putSlow(queueOffset: number, physicalOffset: number, size: number, tagsCode: number): void {
    assert(Number.isSafeInteger(queueOffset) && queueOffset >= 0, `bad queue offset ${queueOffset}`);
    if (queueOffset < this.maxOff) {
      if (queueOffset < this.memStart) return; // on disk only: a replay, assumed identical
      const u = unitAt(this.mem, this.head + (queueOffset - this.memStart));
      assert(
        u.physicalOffset === physicalOffset && u.size === size && u.tagsCode === tagsCode,
        `${this.topic}/${this.queueId}: unit ${queueOffset} is (${u.physicalOffset}, ${u.size}, ${u.tagsCode}), ` +
          `re-put as (${physicalOffset}, ${size}, ${tagsCode})`,
      );
      return;
    }
    // A gap. Without real units in [min, max) the queue's first real unit moves up with it.
    if (this.minOff === this.maxOff) this.minOff = queueOffset;
    if (this.flushedOff === this.maxOff) {
      // Nothing pending: jump. The holes need not be written (missing bytes read as holes), so
      // the in-memory window restarts at the new unit.
      this.memStart = queueOffset;
      this.flushedOff = queueOffset;
      this.head = 0;
    } else {
      // Pending units must stay contiguous in memory for flush: fill the gap with zero units.
      const gap = queueOffset - this.maxOff;
      this.makeRoom(gap + 1);
      const from = (this.head + (this.maxOff - this.memStart)) * CQ_UNIT_BYTES;
      this.mem.fill(0, from, from + gap * CQ_UNIT_BYTES);
    }
    this.maxOff = queueOffset;
    this.put(queueOffset, physicalOffset, size, tagsCode);
  }

  /** Makes room for `extra` more units after maxOff: drops flushed units past the tail cache, then compacts or grows. */
  private makeRoom(extra: number): void {
    this.trimTailCache();
    const live = this.maxOff - this.memStart;
    const need = live + extra;
    const cap = this.mem.length / CQ_UNIT_BYTES;
    if (this.head + need <= cap) return;
    if (need * 2 <= cap && !this.flushing) {
      this.mem.copyWithin(0, this.head * CQ_UNIT_BYTES, (this.head + live) * CQ_UNIT_BYTES);
    } else {
      let newCap = Math.max(MIN_MEM_UNITS, cap);
      while (newCap < need * 2) newCap *= 2;
      const next = Buffer.allocUnsafe(newCap * CQ_UNIT_BYTES);
      this.mem.copy(next, 0, this.head * CQ_UNIT_BYTES, (this.head + live) * CQ_UNIT_BYTES);
      this.mem = next;
    }
    this.head = 0;
  }

  /** Forgets flushed units beyond the newest `tailCacheUnits`; pending units are always kept. */
  private trimTailCache(): void {
    const keepFrom = Math.min(this.flushedOff, Math.max(this.memStart, this.maxOff - this.tailCacheUnits));
    if (keepFrom > this.memStart) {
      this.head += keepFrom - this.memStart;
      this.memStart = keepFrom;
    }
    if (this.memStart === this.maxOff && !this.flushing) this.head = 0;
  }

  /** After a burst of pending units, give the memory back. */
  private shrinkMemory(): void {
    const live = this.maxOff - this.memStart;
    const cap = this.mem.length / CQ_UNIT_BYTES;
    const target = Math.max(MIN_MEM_UNITS, live * 2);
    if (this.flushing || cap < target * 4) return;
    const next = Buffer.allocUnsafe(target * CQ_UNIT_BYTES);
    this.mem.copy(next, 0, this.head * CQ_UNIT_BYTES, (this.head + live) * CQ_UNIT_BYTES);
    this.mem = next;
    this.head = 0;
  }

  /**
   * Writes pending units (one positional write per touched file, then fdatasync, file by file)
   * and drops flushed units past the tail cache. Concurrent calls are serialized. On failure the
   * units stay pending and the next flush writes them again: after a failed fdatasync the page
   * cache may have dropped the dirty pages, so a retry must rewrite, not just sync again.
   */
  flush(): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    const run = this.flushTail.then(() => this.flushOnce());
    this.flushTail = run.catch(() => undefined);
    return run;
  }

  private async flushOnce(): Promise<void> {
    if (this.closed) return;
    if (this.flushedOff >= this.maxOff && this.diskCut === undefined && this.hintDue === undefined) return;
    // A truncation the disk has not seen yet deletes files: that needs the exclusive lock.
    const exclusive = this.diskCut !== undefined;
    await (exclusive ? this.lock.exclusive() : this.lock.shared());
    this.flushing = true;
    try {
      if (this.closed) return; // destroyed or abandoned while we waited
      if (this.diskCut !== undefined) await this.applyDiskCut();
      await this.writeHintIfDue();
      const end = this.maxOff;
      // Pending units are in memory. Ending on a hole (left by a truncation), the files alone
      // would not tell where the queue ends after a restart: the hint will.
      const endsOnHole = end > this.flushedOff && this.mem.readInt32BE(this.memIndex(end - 1) + 8) === 0;
      while (this.flushedOff < end) {
        const from = this.flushedOff;
        const index = Math.floor(from / this.unitsPerFile);
        const fileStart = index * this.unitsPerFile;
        const to = Math.min(end, fileStart + this.unitsPerFile);
        const file = await this.acquireForWrite(index);
        try {
          const fd = file.fd!;
          // Computed right before the write: `put` may have moved the window to a new buffer.
          const memPos = this.memIndex(from);
          const bytes = (to - from) * CQ_UNIT_BYTES;
          await writeFully(this.io, fd, this.mem, memPos, bytes, (from - fileStart) * CQ_UNIT_BYTES);
          await this.io.fdatasync(fd);
        } finally {
          this.release(file);
        }
        if (!file.entryDurable) {
          await this.io.fsyncDir(this.dir);
          file.entryDurable = true;
        }
        this.flushedOff = to;
      }
      if (endsOnHole) {
        this.hintDue = end;
        await this.writeHintIfDue();
      }
    } finally {
      this.flushing = false;
      if (exclusive) this.lock.releaseExclusive();
      else this.lock.releaseShared();
    }
    this.trimTailCache();
    this.shrinkMemory();
  }

  /** Byte position in `mem` of the unit at `offset` (which must be in memory). */
  private memIndex(offset: number): number {
    return (this.head + (offset - this.memStart)) * CQ_UNIT_BYTES;
  }

  /**
   * The file with this index, acquired (release it), created with its directory if it does not
   * exist yet.
   */
  private async acquireForWrite(index: number): Promise<CqFile> {
    const existing = this.files.get(index);
    if (existing !== undefined) {
      await this.acquire(existing);
      return existing;
    }
    if (!this.dirReady) await this.makeDir();
    const file = this.newFile(index);
    try {
      // Any file at this path is not ours (we believe it does not exist): start it afresh.
      await this.acquire(file, 'w+');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      await this.makeDir(); // the directory was deleted under us
      await this.acquire(file, 'w+');
    }
    file.entryDurable = false;
    this.files.set(index, file);
    this.updateBounds();
    return file;
  }

  private async makeDir(): Promise<void> {
    await this.io.mkdirp(this.dir);
    // Make the new directory entries durable, innermost first.
    const topicDir = path.dirname(this.dir);
    const cqRoot = path.dirname(topicDir);
    await this.io.fsyncDir(topicDir);
    await this.io.fsyncDir(cqRoot);
    await this.io.fsyncDir(this.rootDir);
    this.dirReady = true;
  }

  /** Persists `hintDue`, if set (a lock is held). On failure it stays due, and the next flush retries. */
  private async writeHintIfDue(): Promise<void> {
    const due = this.hintDue;
    if (due === undefined) return;
    if (!this.dirReady) await this.makeDir();
    await this.budget.take();
    try {
      await writeFileAtomic(this.io, path.join(this.dir, HINT_NAME), encodeMaxOffsetHint(due));
    } finally {
      this.budget.release();
    }
    this.hintOff = due;
    if (this.hintDue === due) this.hintDue = undefined;
  }

  private newFile(index: number): CqFile {
    const startByte = index * this.unitsPerFile * CQ_UNIT_BYTES;
    const file: CqFile = {
      index,
      path: path.join(this.dir, fileName(startByte)),
      fd: undefined,
      opening: undefined,
      closing: undefined,
      users: 0,
      entryDurable: true,
      evict: () => this.detach(file) ?? Promise.resolve(),
    };
    return file;
  }

  private updateBounds(): void {
    let first = -1;
    let last = -1;
    for (const i of this.files.keys()) {
      if (first < 0 || i < first) first = i;
      if (i > last) last = i;
    }
    this.firstIndex = first;
    this.lastIndex = last;
  }

  private sortedIndices(): number[] {
    return [...this.files.keys()].sort((a, b) => a - b);
  }

  /**
   * The file's descriptor, opened (within the budget) if it is not open. The file is in use, and
   * its descriptor safe from the budget, until the matching `release`.
   */
  private async acquire(file: CqFile, flags: 'r+' | 'w+' = 'r+'): Promise<number> {
    file.users++;
    try {
      if (file.fd !== undefined) {
        if (file.users === 1) this.budget.markBusy(file);
        return file.fd;
      }
      if (file.opening === undefined) file.opening = this.openFile(file, flags);
      return await file.opening;
    } catch (e) {
      this.release(file);
      throw e;
    }
  }

  private async openFile(file: CqFile, flags: 'r+' | 'w+'): Promise<number> {
    await this.budget.take();
    let fd: number;
    try {
      fd = await this.io.open(file.path, flags);
    } catch (e) {
      file.opening = undefined;
      this.budget.release();
      throw e;
    }
    file.fd = fd;
    file.opening = undefined;
    return fd;
  }

  /** Ends a use; the descriptor stays open, idle, until the budget needs its slot. */
  private release(file: CqFile): void {
    file.users--;
    if (file.users === 0 && file.fd !== undefined) this.budget.markIdle(file);
  }

  /**
   * Takes the descriptor away from the file (synchronously) and closes it; undefined if it has
   * none. The caller frees the budget slot once the returned promise settles.
   */
  private detach(file: CqFile): Promise<void> | undefined {
    const fd = file.fd;
    if (fd === undefined) return undefined;
    assert(file.users === 0, 'closing a descriptor in use');
    file.fd = undefined;
    this.budget.markBusy(file);
    const closing = this.io.close(fd).finally(() => {
      if (file.closing === closing) file.closing = undefined;
    });
    file.closing = closing;
    return closing;
  }

  /** Closes the file's descriptor, if open, and frees its slot. */
  private async closeFd(file: CqFile): Promise<void> {
    const closing = this.detach(file);
    if (closing === undefined) return;
    try {
      await closing;
    } finally {
      this.budget.release();
    }
  }

  /** Closes every descriptor (exclusive lock held); rejects with the first failure once all are closed. */
  private async closeAllFds(): Promise<void> {
    let failed = false;
    let failure: unknown;
    for (const f of this.files.values()) {
      assert(f.users === 0, 'no file users under the exclusive lock');
      try {
        await this.closeFd(f);
        // One the budget is closing right now is closed before we return.
        await f.closing?.catch(() => undefined);
      } catch (e) {
        if (!failed) {
          failed = true;
          failure = e;
        }
      }
    }
    if (failed) throw failure;
  }

  /** Removes a file from disk and from the map (exclusive lock held). */
  private async deleteFile(file: CqFile): Promise<void> {
    assert(file.users === 0, 'no file users under the exclusive lock');
    await this.closeFd(file);
    try {
      await this.io.unlink(file.path);
    } catch (e) {
      // A file we failed to delete stays listed, so the next attempt retries it.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    this.files.delete(file.index);
    this.updateBounds();
  }

  /**
   * Units [from, from + maxCount) clipped to maxOffset, as n * 20 bytes (n may be 0); nothing
   * when `from` is below minOffset (it may have moved: the caller re-checks).
   * Units still in memory are copied without a syscall; the rest costs one read per file.
   */
  async readUnits(from: number, maxCount: number): Promise<Buffer> {
    if (this.closed) throw this.closedError();
    // Below the minimum nothing is returned, never units from further on: the caller numbers the
    // units from `from`, and a silent shift would mislabel every one of them.
    if (from < this.minOff) return EMPTY;
    let start = from;
    let end = Math.min(from + maxCount, this.maxOff);
    if (end <= start) return EMPTY;
    if (start >= this.memStart) return this.copyFromMemory(start, end);
    await this.lock.shared();
    try {
      // The queue may have changed while we waited for the lock.
      if (this.closed) throw this.closedError();
      if (from < this.minOff) return EMPTY;
      start = from;
      end = Math.min(from + maxCount, this.maxOff);
      if (end <= start) return EMPTY;
      return await this.readStored(start, end);
    } finally {
      this.lock.releaseShared();
    }
  }

  /** Units [start, end), from memory and disk (a lock is held). */
  private async readStored(start: number, end: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe((end - start) * CQ_UNIT_BYTES);
    const diskEnd = Math.min(end, this.memStart);
    // Copy the memory part before awaiting: puts and flushes may move the window meanwhile.
    // The disk part stays put: it is below flushedOff, and files only shrink under the exclusive lock.
    if (diskEnd < end) {
      this.mem.copy(
        out,
        (diskEnd - start) * CQ_UNIT_BYTES,
        (this.head + (diskEnd - this.memStart)) * CQ_UNIT_BYTES,
        (this.head + (end - this.memStart)) * CQ_UNIT_BYTES,
      );
    }
    if (start < diskEnd) await this.readDisk(out, 0, start, diskEnd);
    return out;
  }

  private copyFromMemory(start: number, end: number): Buffer {
    const out = Buffer.allocUnsafe((end - start) * CQ_UNIT_BYTES);
    const from = (this.head + (start - this.memStart)) * CQ_UNIT_BYTES;
    this.mem.copy(out, 0, from, from + out.length);
    return out;
  }

  /**
   * Reads units [start, end) from the files into `out` at `outPos`. Missing bytes read as holes,
   * and so do units at or past a pending `diskCut`: they are stale. Lock held.
   */
  private async readDisk(out: Buffer, outPos: number, start: number, end: number): Promise<void> {
    const validEnd = this.diskCut ?? end;
    let pos = outPos;
    for (let o = start; o < end; ) {
      const index = Math.floor(o / this.unitsPerFile);
      const fileStart = index * this.unitsPerFile;
      const to = Math.min(end, fileStart + this.unitsPerFile);
      const bytes = (to - o) * CQ_UNIT_BYTES;
      const file = o < validEnd ? this.files.get(index) : undefined;
      const readBytes = (Math.min(to, validEnd) - o) * CQ_UNIT_BYTES;
      let got = 0;
      if (file !== undefined) {
        const fd = await this.acquire(file);
        try {
          got = await readFully(this.io, fd, out, pos, readBytes, (o - fileStart) * CQ_UNIT_BYTES);
        } finally {
          this.release(file);
        }
      }
      if (got < bytes) out.fill(0, pos + got, pos + bytes);
      pos += bytes;
      o = to;
    }
  }

  /**
   * The search key at `offset`: the commit-log offset of the nearest real unit at or before it
   * within [lo, offset], or -1 if there is none. Real units are in commit-log order, so these keys
   * never decrease, holes included. The common case, a real unit, costs one probe. Lock held.
   */
  private async keyOf(offset: number, lo: number): Promise<number> {
    let chunk = 1;
    for (let end = offset + 1; end > lo; ) {
      const start = Math.max(lo, end - chunk);
      const buf =
        start >= this.memStart
          ? this.mem.subarray((this.head + (start - this.memStart)) * CQ_UNIT_BYTES)
          : await this.readStored(start, end);
      for (let i = end - start - 1; i >= 0; i--) {
        const key = keyAt(buf, i);
        if (key >= 0) return key;
      }
      end = start;
      chunk = SCAN_CHUNK_UNITS;
    }
    return -1;
  }

  /** First offset in [lo, hi) whose key is >= `physical`, or hi (a lock is held). */
  private async searchPhysical(lo: number, hi: number, physical: number): Promise<number> {
    const floor = lo;
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if ((await this.keyOf(mid, floor)) >= physical) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** The first offset whose unit is in memory or on disk. */
  private storedStart(): number {
    if (this.firstIndex < 0) return this.memStart;
    return Math.min(this.firstIndex * this.unitsPerFile, this.memStart);
  }

  /**
   * Drops every unit whose commit-log offset is >= `physicalEnd`: recovery found the commit log
   * shorter than this queue. Must not run concurrently with `put` (recovery runs before dispatch).
   */
  async truncateByPhysicalOffset(physicalEnd: number): Promise<void> {
    if (this.closed) throw this.closedError();
    await this.lock.exclusive();
    try {
      if (this.closed) throw this.closedError();
      // Search from minOffset, which skips a leading run of holes; look below it only if even the
      // unit at minOffset goes (units below it are older, so normally they stay).
      let cut = await this.searchPhysical(this.minOff, this.maxOff, physicalEnd);
      const stored = this.storedStart();
      if (cut === this.minOff && stored < cut) cut = await this.searchPhysical(stored, cut, physicalEnd);
      if (cut < this.maxOff) {
        const durable = this.flushedOff;
        if (cut < this.memStart) {
          this.memStart = cut;
          this.head = 0;
        }
        this.maxOff = cut;
        this.flushedOff = Math.min(this.flushedOff, cut);
        this.minOff = Math.min(this.minOff, cut);
        this.diskCut = Math.min(this.diskCut ?? cut, cut);
        if (this.hintDue !== undefined && this.hintDue > cut) this.hintDue = undefined;
        // With nothing pending below the cut, the cut is the durable end. The hint must say so if
        // the files alone would not (the unit before it is a hole), and must never stay above it.
        if (cut <= durable && this.hintOff !== cut) {
          if (this.hintOff > cut || (await this.endsOnHole(cut))) this.hintDue = cut;
        }
      }
      // Memory is cut already; if cutting the files (or writing the hint) fails, the next flush
      // or truncation retries.
      await this.applyDiskCut();
    } finally {
      this.lock.releaseExclusive();
    }
  }

  /**
   * Cuts the files at `diskCut`: files after it go; the file holding it is cut short but kept,
   * even if empty, so its name still tells where the queue ends after a restart. Exclusive lock held.
   */
  private async applyDiskCut(): Promise<void> {
    // The hint first: written after the cut, a crash in between could leave it below the holes
    // that end the queue. Before, it is at most the durable end either way.
    await this.writeHintIfDue();
    const cut = this.diskCut;
    if (cut === undefined) return;
    const cutIndex = Math.floor(cut / this.unitsPerFile);
    let deleted = false;
    for (const index of this.sortedIndices().reverse()) {
      if (index <= cutIndex) break;
      await this.deleteFile(this.files.get(index)!);
      deleted = true;
    }
    if (deleted) await this.io.fsyncDir(this.dir);
    const file = this.files.get(cutIndex);
    if (file !== undefined) {
      const length = (cut - cutIndex * this.unitsPerFile) * CQ_UNIT_BYTES;
      const fd = await this.acquire(file);
      try {
        if ((await this.io.fstatSize(fd)) > length) {
          await this.io.ftruncate(fd, length);
          await this.io.fdatasync(fd);
        }
      } finally {
        this.release(file);
      }
    }
    this.diskCut = undefined;
  }

  /**
   * Whether the unit before `end` is a hole (a lock is held). A unit that cannot be read counts as
   * one: a needless hint costs a small write, a missing one can hand out offsets again.
   */
  private async endsOnHole(end: number): Promise<boolean> {
    if (end === 0) return false;
    try {
      return (await this.keyOf(end - 1, end - 1)) < 0;
    } catch {
      return true;
    }
  }

  /**
   * Retention: moves minOffset to the first unit whose commit-log offset is >= `minPhysical`
   * and deletes the files entirely below it. Keeps files that still have pending units and the
   * file holding the last unit. Returns the new minOffset.
   */
  async correctMinOffset(minPhysical: number): Promise<number> {
    if (this.closed) throw this.closedError();
    await this.lock.exclusive();
    try {
      if (this.closed) throw this.closedError();
      const found = await this.searchPhysical(this.minOff, this.maxOff, minPhysical);
      if (found > this.minOff) this.minOff = found;
      const limit = Math.min(this.minOff, this.flushedOff, this.maxOff - 1);
      let deleted = false;
      for (const index of this.sortedIndices()) {
        if ((index + 1) * this.unitsPerFile > limit) break;
        await this.deleteFile(this.files.get(index)!);
        deleted = true;
      }
      if (deleted) await this.io.fsyncDir(this.dir);
      return this.minOff;
    } finally {
      this.lock.releaseExclusive();
    }
  }

  /** commitLogOffset + size of the last unit (the largest, as units are in log order), or -1 when there is none. */
  async maxPhysicalEnd(): Promise<number> {
    if (this.closed) throw this.closedError();
    const last = this.maxOff - 1;
    if (last < 0) return -1;
    if (last >= this.memStart) return this.physicalEndAt(this.mem, this.head + (last - this.memStart));
    await this.lock.shared();
    try {
      if (this.closed) throw this.closedError();
      const at = this.maxOff - 1;
      if (at < this.storedStart()) return -1;
      const buf = Buffer.allocUnsafe(CQ_UNIT_BYTES);
      if (at >= this.memStart) this.mem.copy(buf, 0, (this.head + (at - this.memStart)) * CQ_UNIT_BYTES);
      else await this.readDisk(buf, 0, at, at + 1);
      return this.physicalEndAt(buf, 0);
    } finally {
      this.lock.releaseShared();
    }
  }

  private physicalEndAt(buf: Buffer, i: number): number {
    const u = unitAt(buf, i);
    return u.size === 0 ? -1 : u.physicalOffset + u.size;
  }

  /**
   * Binary search for the first offset in [minOffset, maxOffset) whose message was stored at or
   * after `ts`. A message `storeTimeOf` cannot read (deleted) counts as earlier, as do holes.
   * Returns maxOffset() if there is none. Locks per probe only, so it does not hold up retention
   * while `storeTimeOf` reads the commit log.
   */
  async offsetForTimestamp(
    ts: number,
    storeTimeOf: (physicalOffset: number, size: number) => Promise<number>,
  ): Promise<number> {
    let lo = this.minOff;
    let hi = this.maxOff;
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      const buf = await this.readUnits(mid, 1);
      let later: boolean;
      if (buf.length === 0) {
        later = mid >= this.maxOff; // truncated meanwhile: later; removed by retention: earlier
      } else {
        const u = unitAt(buf, 0);
        let t = Number.NEGATIVE_INFINITY;
        if (u.size > 0) {
          try {
            t = await storeTimeOf(u.physicalOffset, u.size);
          } catch {
            // The message is gone from the commit log: it is older than anything still there.
          }
        }
        later = t >= ts;
      }
      if (later) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Flushes, then closes the files. Rejects if the final flush failed (the files are closed anyway). */
  async close(): Promise<void> {
    if (this.closed) return;
    let failure: unknown;
    try {
      await this.flush();
    } catch (e) {
      failure = e;
    }
    await this.lock.exclusive();
    try {
      this.closed = true;
      await this.closeAllFds();
    } finally {
      this.lock.releaseExclusive();
    }
    if (failure !== undefined) throw failure;
  }

  /**
   * Stops as a crash would: waits for a flush already writing, then closes every descriptor
   * without writing what is pending (or a pending cut of the files). Flushes requested but not
   * started are dropped. The queue cannot be used afterwards.
   */
  async abandon(): Promise<void> {
    if (this.closed) return;
    this.closed = true; // refuses puts, reads and flushes from now on
    await this.flushTail;
    await this.lock.exclusive(); // reads in flight finish first
    try {
      await this.closeAllFds();
    } finally {
      this.lock.releaseExclusive();
    }
  }

  /** Deletes the queue's files and directory. The queue cannot be used afterwards. */
  async destroy(): Promise<void> {
    await this.lock.exclusive();
    try {
      this.closed = true;
      await this.closeAllFds();
      this.files.clear();
      this.updateBounds();
      this.mem = EMPTY;
      this.head = 0;
      this.memStart = this.maxOff;
      await this.io.rmrf(this.dir);
    } finally {
      this.lock.releaseExclusive();
    }
  }

  private closedError(): TsmqError {
    return new TsmqError('STORE_CLOSED', `consume queue ${this.topic}/${this.queueId} is closed`);
  }

  private layoutError(message: string): TsmqError {
    return new TsmqError('STORE_LAYOUT_INVALID', `consume queue ${this.dir}: ${message}`);
  }

  // ---- loading ----

  private async load(): Promise<void> {
    const fileBytes = this.unitsPerFile * CQ_UNIT_BYTES;
    const entries = await this.io.readdir(this.dir);
    if (entries.length === 0) return;
    this.dirReady = true;
    if (entries.includes(`${HINT_NAME}.tmp`)) {
      // A hint write cut short; the hint itself is whole (old or new).
      await this.io.unlink(path.join(this.dir, `${HINT_NAME}.tmp`)).catch(() => undefined);
    }
    if (entries.includes(HINT_NAME)) this.hintOff = await this.readHint();
    const names = entries.filter((n) => FILE_NAME.test(n));
    const sizes = new Map<number, number>();
    for (const name of names) {
      const startByte = Number(name);
      if (!Number.isSafeInteger(startByte) || startByte % fileBytes !== 0) {
        throw this.layoutError(
          `file ${name} is not at a multiple of ${fileBytes} bytes (unitsPerFile changed?)`,
        );
      }
      const file = this.newFile(startByte / fileBytes);
      const size = (await this.io.size(file.path)) ?? 0;
      if (size > fileBytes) throw this.layoutError(`file ${name} is ${size} bytes, more than ${fileBytes}`);
      this.files.set(file.index, file);
      sizes.set(file.index, size);
    }
    this.updateBounds();
    for (const [index, size] of sizes) {
      if (index !== this.lastIndex && size % CQ_UNIT_BYTES !== 0) {
        throw this.layoutError(
          `file ${fileName(index * fileBytes)} ends in a partial unit but is not the last`,
        );
      }
    }

    try {
      // Trailing holes the files cannot vouch for are dropped; the hint vouches for those below it.
      const tail = names.length > 0 ? await this.loadTail(sizes) : 0;
      this.maxOff = Math.max(tail, this.hintOff);
      this.minOff = await this.scanFirstReal(this.maxOff);
      this.flushedOff = this.maxOff;
      this.memStart = this.maxOff;
    } finally {
      // Idle queues hold no descriptors; the last file is reopened by the first flush.
      await this.closeAllFds();
    }
  }

  private async readHint(): Promise<number> {
    await this.budget.take();
    let bytes: Buffer;
    try {
      bytes = await this.io.readFile(path.join(this.dir, HINT_NAME));
    } finally {
      this.budget.release();
    }
    const hint = decodeMaxOffsetHint(bytes);
    if (!hint.ok) throw this.layoutError(`${HINT_NAME}: ${hint.reason}`);
    return hint.maxOffset;
  }

  /** Drops a partial unit and trailing holes at the tail; returns maxOffset. */
  private async loadTail(sizes: Map<number, number>): Promise<number> {
    let deleted = false;
    for (const index of this.sortedIndices().reverse()) {
      const file = this.files.get(index)!;
      const size = sizes.get(index)!;
      const units = Math.floor(size / CQ_UNIT_BYTES);
      const lastReal = await this.findLastReal(file, units);
      const isFirst = index === this.firstIndex;
      if (lastReal >= 0 || isFirst) {
        const keepUnits = lastReal + 1;
        if (keepUnits * CQ_UNIT_BYTES < size) await this.truncateFile(file, keepUnits * CQ_UNIT_BYTES);
        if (deleted) await this.io.fsyncDir(this.dir);
        return index * this.unitsPerFile + keepUnits;
      }
      await this.deleteFile(file);
      deleted = true;
    }
    assert(false, 'loadTail always returns at the first file');
  }

  /** Index within the file of its last unit with size != 0, or -1. Reads backwards in chunks. */
  private async findLastReal(file: CqFile, units: number): Promise<number> {
    if (units === 0) return -1;
    const fd = await this.acquire(file);
    try {
      const buf = Buffer.allocUnsafe(Math.min(units, SCAN_CHUNK_UNITS) * CQ_UNIT_BYTES);
      // The common case, a real last unit, costs one 20-byte read.
      let chunk = 1;
      for (let end = units; end > 0; ) {
        const start = Math.max(0, end - chunk);
        const bytes = (end - start) * CQ_UNIT_BYTES;
        const got = await readFully(this.io, fd, buf, 0, bytes, start * CQ_UNIT_BYTES);
        if (got < bytes) buf.fill(0, got, bytes);
        for (let i = end - start - 1; i >= 0; i--) {
          if (buf.readInt32BE(i * CQ_UNIT_BYTES + 8) !== 0) return start + i;
        }
        end = start;
        chunk = SCAN_CHUNK_UNITS;
      }
      return -1;
    } finally {
      this.release(file);
    }
  }

  private async truncateFile(file: CqFile, length: number): Promise<void> {
    const fd = await this.acquire(file);
    try {
      await this.io.ftruncate(fd, length);
      await this.io.fdatasync(fd);
    } finally {
      this.release(file);
    }
  }

  /** Offset of the first real unit below `max` (scanning forward over holes), or `max`. */
  private async scanFirstReal(max: number): Promise<number> {
    const buf = Buffer.allocUnsafe(SCAN_CHUNK_UNITS * CQ_UNIT_BYTES);
    for (const index of this.sortedIndices()) {
      const file = this.files.get(index)!;
      const fileStart = index * this.unitsPerFile;
      const fileEnd = Math.min(max, fileStart + this.unitsPerFile);
      let chunk = 1;
      for (let o = fileStart; o < fileEnd; ) {
        const to = Math.min(fileEnd, o + chunk);
        const bytes = (to - o) * CQ_UNIT_BYTES;
        const fd = await this.acquire(file);
        let got: number;
        try {
          got = await readFully(this.io, fd, buf, 0, bytes, (o - fileStart) * CQ_UNIT_BYTES);
        } finally {
          this.release(file);
        }
        const gotUnits = Math.floor(got / CQ_UNIT_BYTES);
        for (let i = 0; i < gotUnits; i++) {
          if (buf.readInt32BE(i * CQ_UNIT_BYTES + 8) !== 0) return o + i;
        }
        if (got < bytes) break; // the rest of this file is holes
        o = to;
        chunk = SCAN_CHUNK_UNITS;
      }
    }
    return max;
  }
}
