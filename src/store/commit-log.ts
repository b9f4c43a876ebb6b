/**
 * The commit log: one append-only log for every topic, cut into segment files.
 *
 *   <root>/commitlog/00000000000000000000   segment 0: bytes [0, S)
 *   <root>/commitlog/00000000001073741824   segment 1: bytes [S, 2S)     (S = segmentBytes, 1 GiB)
 *
 * Each segment is named by the 20-digit zero-padded physical offset of its first byte. The
 * active segment grows by appends (its file ends where the written log ends); a full segment is
 * extended to its full size, so a file's size tells where the next segment starts.
 * Records (see record.ts) never straddle a segment: when one does not fit with 8 bytes to spare,
 * the rest of the segment is filled by a blank record and the log rolls to the next segment.
 *
 * Three positions, always flushed ≤ written ≤ appended:
 *   appended  next offset to assign: bytes reserved and encoded in memory, maybe not yet written;
 *   written   every byte below it was handed to the kernel (survives a process crash);
 *   flushed   every byte below it was fdatasync'ed (survives a power loss).
 *
 * Single writer, batched: `append` is synchronous — it assigns the offset and encodes the record
 * into the open batch with no await in between, so offsets are dense and in call order. The
 * appends of one event-loop turn land in one batch, written with one positional write; a turn
 * with more than 1 MiB of appends is cut into 1 MiB batches, each sent on as soon as it is full,
 * so that checksumming and writing overlap the appends still coming. Up to four batches are on
 * their way at once, and `written` advances over them strictly in log order. SYNC flush is a
 * group commit: after a write, one fdatasync covers every append waiting at that moment. A failed write or fdatasync puts the log in a failed state
 * (fail-stop): its waiters and every later append get STORE_IO_ERROR, since after a failed fsync
 * the kernel's page cache can no longer be trusted to match the disk; a restart recovers.
 *
 * Checksums are filled in last. The store prepares records with `deferCrcs`: `append` encodes them
 * with BODYCRC 0 and the record CRC's digits unfilled, and notes where each one is in the batch.
 * When a sealed batch's turn to be written comes, the CRC thread (crc-thread.ts; arenas are then
 * SharedArrayBuffers) fills them in — or the main thread: under SYNC flush, for a batch of a few
 * records, until the thread is online, or with `crcThread` off — and only then is it written. Until it is written no reader can see a
 * byte of it, so no record is ever read without its CRCs. A CRC thread that fails or exits fails
 * the batch like a failed write.
 *
 * Written batches stay in a bounded in-memory tail cache, so consumers and the dispatcher that keep
 * up with producers read without a syscall — the role the page cache of mmap'ed files plays in
 * RocketMQ.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { assert, TsmqError } from '../common/errors.js';
import {
  applyDispatchHint,
  BLANK_RECORD_MIN_BYTES,
  DISPATCH_HINT_FIELDS,
  type DispatchInfo,
  fillRecordCrcsOf,
  type PreparedRecord,
  writeBlankRecord,
  writeRecord,
} from '../message/index.js';
import type { CrcAnswer, CrcJob } from './crc-thread.js';
import { type FileIo, readFully, writeFully } from './io.js';

export type FlushMode = 'ASYNC' | 'SYNC';

export interface CommitLogOptions {
  segmentBytes: number;
  flushMode: FlushMode;
  /** ASYNC: how often the flusher fdatasyncs what was written. */
  flushIntervalMs: number;
  /** Upper bound on the bytes one write call carries. */
  maxBatchBytes: number;
  /** Written bytes kept in memory for reads. */
  tailCacheBytes: number;
  /** Appends are refused (STORE_BUSY) while more than this many bytes wait to be written. */
  maxUnwrittenBytes: number;
  /**
   * Fill in the CRCs of records prepared with `deferCrcs` on a worker thread (crc-thread.ts)
   * rather than on the main thread, just before their batch is written. ASYNC flush only.
   */
  crcThread: boolean;
}

export const defaultCommitLogOptions: CommitLogOptions = {
  segmentBytes: 1024 * 1024 * 1024,
  flushMode: 'ASYNC',
  flushIntervalMs: 500,
  maxBatchBytes: 4 * 1024 * 1024,
  tailCacheBytes: 24 * 1024 * 1024,
  maxUnwrittenBytes: 64 * 1024 * 1024,
  crcThread: true,
};

export function segmentFileName(baseOffset: number): string {
  return String(baseOffset).padStart(20, '0');
}

interface Segment {
  readonly base: number;
  readonly capacity: number;
  readonly path: string;
  fd: number;
  /** Resolves when the file is open (and, for a new segment, created at full size). */
  ready: Promise<void>;
}

/**
 * Whoever waits for an append: told once its bytes are written (or flushed), or that they never
 * will be. The store's put result is its own waiter, so an append in flight costs one object.
 */
export interface AppendWaiter {
  /** Where the record ends in the log (set by `append`). */
  end: number;
  /** Needs the bytes to be flushed, not only written (set by `append`). */
  durable: boolean;
  appendDone(): void;
  appendFailed(e: unknown): void;
}

type Waiter = AppendWaiter;

interface Batch {
  segment: Segment;
  start: number;
  /** Bytes [begin, end) of `arena` hold this batch. */
  arena: Buffer;
  begin: number;
  end: number;
  waiters: Waiter[];
  /** Records whose CRCs are still to be filled in: `2 * position in arena + recordCrc`. */
  crcJobs: Int32Array | undefined;
  crcJobCount: number;
  /** The CRC thread's dispatch hints for the records of `crcJobs` (record.ts), in order. */
  hints: DispatchHints | undefined;
}

/** What the CRC thread answers for a batch: its records' dispatch hints (record.ts). */
interface DispatchHints {
  hints: Float64Array;
  topics: string[];
}

/** Dispatch hints of a written batch, until the dispatcher passes it (see `takeDispatchHint`). */
interface HintedBatch {
  /** Log offsets [start, end) of the batch, whose first byte is at `begin` in its arena. */
  start: number;
  end: number;
  begin: number;
  hints: Float64Array;
  topics: string[];
  count: number;
  /** The next hint to look at: the dispatcher goes through a batch in order. */
  next: number;
}

/**
 * Written batches whose hints are kept for the dispatcher, at most: it is rarely more than one
 * behind, and a dispatcher held back (a topic being deleted) reads the records instead. Hints take
 * 136 bytes a record, so small messages are bounded by bytes as well.
 */
const HINTED_BATCHES_MAX = 16;
const HINTED_BYTES_MAX = 8 * 1024 * 1024;

/**
 * The CRC thread (crc-thread.ts) as the commit log sees it: jobs in flight, by id. Started by
 * the first batch large enough for it, which (like any batch until the thread is online) is
 * checksummed on the main thread meanwhile; referenced (keeps the process alive) only while a job
 * is in flight.
 */
class CrcThread {
  private readonly worker: Worker;
  private readonly pending = new Map<
    number,
    { resolve: (hints: DispatchHints | undefined) => void; reject: (e: unknown) => void }
  >();
  private nextId = 1;
  /** Why the thread can take no more jobs (it failed or exited). */
  private dead: Error | undefined;
  /** The thread is running (starting one takes tens of milliseconds). */
  online = false;

  constructor() {
    // The thread allocates little besides the job messages: a small young generation keeps its
    // share of the broker's memory small (the default would let it grow to tens of MiB).
    this.worker = new Worker(new URL('./crc-thread.js', import.meta.url), {
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 32 },
    });
    this.worker.unref();
    this.worker.on('online', () => {
      this.online = true;
    });
    this.worker.on('message', (a: CrcAnswer) => {
      const p = this.pending.get(a.id);
      if (!p) return;
      this.pending.delete(a.id);
      if (this.pending.size === 0) this.worker.unref();
      if (a.error === undefined)
        p.resolve(a.hints && a.topics ? { hints: a.hints, topics: a.topics } : undefined);
      else p.reject(new Error(`the CRC thread failed: ${a.error}`));
    });
    this.worker.on('error', (e) => this.die(new Error(`the CRC thread failed: ${e.message}`)));
    this.worker.on('exit', (code) => this.die(new Error(`the CRC thread exited (code ${code})`)));
  }

  private die(e: Error): void {
    this.dead ??= e;
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) p.reject(this.dead);
  }

  /**
   * Fills in the CRCs of records `jobs[0, n)` of `arena` and resolves with their dispatch hints;
   * rejects if the thread cannot.
   */
  run(arena: Buffer, jobs: Int32Array, n: number): Promise<DispatchHints | undefined> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise<DispatchHints | undefined>((resolve, reject) => {
      const id = this.nextId++;
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      const job: CrcJob = { id, mem: arena.buffer as SharedArrayBuffer, jobs, n };
      this.worker.postMessage(job, [jobs.buffer as ArrayBuffer]);
    });
  }

  /** For tests: the worker, to make it fail. */
  get thread(): Worker {
    return this.worker;
  }

  async stop(): Promise<void> {
    this.dead ??= new Error('the CRC thread was stopped');
    await this.worker.terminate();
  }
}

/** Room for this many records' CRC jobs in a new batch (it grows as needed). */
const CRC_JOBS_INITIAL = 1024;
/**
 * Batches of fewer records are checksummed on the main thread: a light load gains nothing from
 * the thread but the latency of a round trip to it (SYNC appends wait for their batch's write).
 */
const CRC_THREAD_MIN_RECORDS = 32;

const ARENA_BYTES = 4 * 1024 * 1024;

/** A stretch of written log in the tail cache: a view of one arena. */
interface CacheEntry {
  start: number;
  buf: Buffer;
  /** A reader was given a view of it (see `lend`). */
  lent: boolean;
}
/**
 * Arenas kept for reuse once their bytes have left the tail cache, if no reader was ever given a
 * view of them: a fresh arena costs a page fault (and the kernel zeroing a page) every 4 KiB.
 */
const SPARE_ARENAS_MAX = 2;
/**
 * Batches on their way at once: being checksummed by the CRC thread or written (each write in
 * its own libuv thread). Up to four let one batch's checksums overlap other batches' writes.
 */
const MAX_WRITES_IN_FLIGHT = 4;
/**
 * An open batch this large is sealed and sent on its way (CRC thread, then write) at once, while
 * the appends of the same event-loop turn go on into the next batch, rather than at the end of
 * the turn: the stages then overlap instead of taking turns.
 */
const EARLY_WRITE_BYTES = 1024 * 1024;

interface InflightWrite {
  batch: Batch;
  settled: boolean;
  failed: boolean;
  error: unknown;
}

export class CommitLog {
  readonly dir: string;
  private readonly segments: Segment[] = [];
  private appended = 0;
  private written = 0;
  private flushed = 0;
  private minOffset_ = 0;

  private arena: Buffer = Buffer.alloc(0);
  private arenaPos = 0;
  /** Arenas no batch, cache entry or reader refers to any more, ready to take new records. */
  private readonly spareArenas: Buffer[] = [];
  /** Arenas (their memory) of which a reader was given a view: never reused. */
  private readonly lentArenas = new WeakSet<ArrayBufferLike>();
  /** Arenas taken from `spareArenas` instead of allocated (a metric). */
  arenasReused = 0;
  /** Records the dispatcher took from the CRC thread's hints rather than by reading them (a metric). */
  dispatchHintsUsed = 0;
  private open: Batch | undefined;
  private readonly sealed: Batch[] = [];
  private readonly inflight: InflightWrite[] = [];
  private writeScheduled = false;
  private flushing = false;
  private readonly flushWaiters: Waiter[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private failure: TsmqError | undefined;
  private closed = false;
  /** Started by the first batch of CRC_THREAD_MIN_RECORDS or more, if `opts.crcThread`. */
  private crcThread_: CrcThread | undefined;
  /** The CRC thread could not be started. */
  private noCrcThread = false;
  /** Arenas are SharedArrayBuffers, which the CRC thread can see. */
  private readonly sharedArenas: boolean;

  /** Contiguous written chunks, oldest first, for reads without a syscall. */
  private readonly cache: CacheEntry[] = [];
  /** Written batches with dispatch hints, oldest first, and the bytes their hints take. */
  private readonly hinted: HintedBatch[] = [];
  private hintedBytes = 0;
  private cacheBytes = 0;

  /** Called after each completed write with the new written offset. */
  onWritten: (written: number) => void = () => {};
  /** Called after each completed flush with the new flushed offset. */
  onFlushed: (flushed: number) => void = () => {};

  constructor(
    private readonly io: FileIo,
    rootDir: string,
    readonly opts: CommitLogOptions,
  ) {
    this.dir = path.join(rootDir, 'commitlog');
    // Under SYNC flush an append waits for its batch's write and fdatasync, and the round trip to
    // the thread would add to every group commit's cycle (256 appenders: ~12 % fewer appends per
    // second in alternating runs); the main thread is not the limit there. ASYNC only, then.
    this.sharedArenas = opts.crcThread && opts.flushMode === 'ASYNC';
  }

  /**
   * Loads the segment list. Positions are not known yet: recovery scans and then calls `setEnd`.
   * A trailing zero-length segment (a crash while creating it) is removed.
   */
  async load(): Promise<void> {
    await this.io.mkdirp(this.dir);
    const names = (await this.io.readdir(this.dir)).filter((n) => /^\d{20}$/.test(n)).sort();
    const found: Array<{ name: string; base: number; size: number }> = [];
    for (const name of names) {
      const size = (await this.io.size(path.join(this.dir, name))) ?? 0;
      found.push({ name, base: Number(name), size });
    }
    // A last segment with no bytes was created just before a crash: nothing to keep.
    while (found.length > 0 && found.at(-1)!.size === 0) {
      await this.io.unlink(path.join(this.dir, found.pop()!.name));
    }
    for (let i = 0; i < found.length; i++) {
      const { name, base, size } = found[i]!;
      const p = path.join(this.dir, name);
      const next = found[i + 1];
      // A full segment spans to the next one's start; the last one is as large as configured
      // (or larger, if it was created under a larger segmentBytes).
      const capacity = next ? next.base - base : Math.max(size, this.opts.segmentBytes);
      if (capacity <= 0 || size > capacity) {
        throw new TsmqError(
          'STORE_LAYOUT_INVALID',
          `commit-log segments overlap or are out of order: ${name} (${size} bytes) is followed by ${next?.name}`,
        );
      }
      const seg: Segment = { base, capacity, path: p, fd: -1, ready: Promise.resolve() };
      seg.ready = this.io.open(p, 'r+').then(async (fd) => {
        seg.fd = fd;
        // A crash between the blank record of a full segment and its extension to full size.
        if (next && size < capacity) await this.io.ftruncate(fd, capacity);
      });
      this.segments.push(seg);
    }
    await Promise.all(this.segments.map((s) => s.ready));
    this.minOffset_ = this.segments[0]?.base ?? 0;
  }

  /** After recovery: the log ends at `end` (everything below is valid and on disk). */
  setEnd(end: number): void {
    this.appended = end;
    this.written = end;
    this.flushed = end;
    if (this.segments.length === 0) this.minOffset_ = end;
  }

  startFlusher(): void {
    if (this.opts.flushMode === 'ASYNC' && !this.flushTimer) {
      this.flushTimer = setInterval(() => {
        if (this.written > this.flushed) this.kickFlush();
      }, this.opts.flushIntervalMs);
      this.flushTimer.unref();
    }
  }

  appendedOffset(): number {
    return this.appended;
  }
  writtenOffset(): number {
    return this.written;
  }
  flushedOffset(): number {
    return this.flushed;
  }
  minOffset(): number {
    return this.minOffset_;
  }
  segmentList(): ReadonlyArray<{ base: number; capacity: number; path: string }> {
    return this.segments;
  }
  failed(): TsmqError | undefined {
    return this.failure;
  }

  /** Throws if appends are refused right now (closed or failed). */
  checkWritable(): void {
    if (this.closed) throw new TsmqError('STORE_CLOSED', 'the store is closed');
    if (this.failure) throw this.failure;
    const backlog = this.appended - this.written;
    if (backlog > this.opts.maxUnwrittenBytes) {
      throw new TsmqError(
        'STORE_BUSY',
        `${Math.round(backlog / 1048576)} MiB are waiting to be written (limit ${Math.round(this.opts.maxUnwrittenBytes / 1048576)} MiB): the disk is not keeping up, retry later`,
      );
    }
  }

  /**
   * Reserves the next offset for `rec`, encodes it and returns its physical offset. Synchronous:
   * no other append can interleave, and the caller assigns queue offsets in the same turn.
   * `waiter.appendDone()` is called once the record is written (ASYNC flush, or `durable` false)
   * or flushed (SYNC flush); `appendFailed` if the write or flush fails.
   */
  append(
    rec: PreparedRecord,
    queueOffset: number,
    storeTimestamp: number,
    storeHost: Buffer,
    durable: boolean,
    waiter: AppendWaiter,
  ): number {
    this.checkWritable();
    const size = rec.size;
    let seg = this.segments.at(-1);
    if (!seg || this.appended + size + BLANK_RECORD_MIN_BYTES > seg.base + seg.capacity) {
      if (seg && this.appended < seg.base + seg.capacity) {
        // Fill the rest of the segment with a blank record and roll.
        const blank = seg.base + seg.capacity - this.appended;
        const b = this.reserve(seg, blank);
        writeBlankRecord(b.arena, b.end, blank);
        b.end += blank;
        this.arenaPos += blank;
        this.appended += blank;
      }
      seg = this.newSegment(seg ? seg.base + seg.capacity : this.appended);
      assert(size + BLANK_RECORD_MIN_BYTES <= seg.capacity, `record of ${size} bytes cannot fit a segment`);
    }
    const batch = this.reserve(seg, size);
    const physicalOffset = this.appended;
    writeRecord(
      batch.arena,
      batch.end,
      rec,
      queueOffset,
      physicalOffset,
      storeTimestamp,
      storeHost,
      this.sharedArenas,
    );
    if (rec.crcsDeferred) {
      let jobs = batch.crcJobs;
      if (jobs === undefined) {
        jobs = new Int32Array(CRC_JOBS_INITIAL);
        batch.crcJobs = jobs;
      } else if (batch.crcJobCount === jobs.length) {
        const grown = new Int32Array(jobs.length * 2);
        grown.set(jobs);
        jobs = grown;
        batch.crcJobs = jobs;
      }
      jobs[batch.crcJobCount++] = batch.end * 2 + (rec.recordCrc ? 1 : 0);
    }
    batch.end += size;
    this.arenaPos += size;
    this.appended += size;
    waiter.end = this.appended;
    waiter.durable = durable && this.opts.flushMode === 'SYNC';
    batch.waiters.push(waiter);
    if (batch.end - batch.begin >= EARLY_WRITE_BYTES && this.inflight.length < MAX_WRITES_IN_FLIGHT) {
      // A long run of appends in one turn: this batch goes now, the next ones join a new batch.
      this.seal();
      this.pumpWrites();
    }
    this.scheduleWrite();
    return physicalOffset;
  }

  /** The open batch for `seg` with room for `size` more bytes, sealing the current one if needed. */
  private reserve(seg: Segment, size: number): Batch {
    let b = this.open;
    if (
      b &&
      (b.segment !== seg || b.end - b.begin + size > this.opts.maxBatchBytes || b.end + size > b.arena.length)
    ) {
      this.seal();
      b = undefined;
    }
    if (!b) {
      if (this.arenaPos + size > this.arena.length) {
        const spare = size <= ARENA_BYTES ? this.spareArenas.pop() : undefined;
        if (spare) this.arenasReused++;
        this.arena = spare ?? this.newArena(Math.max(ARENA_BYTES, size));
        this.arenaPos = 0;
      }
      b = {
        segment: seg,
        start: this.appended,
        arena: this.arena,
        begin: this.arenaPos,
        end: this.arenaPos,
        waiters: [],
        crcJobs: undefined,
        crcJobCount: 0,
        hints: undefined,
      };
      this.open = b;
    }
    return b;
  }

  private newArena(bytes: number): Buffer {
    return this.sharedArenas ? Buffer.from(new SharedArrayBuffer(bytes)) : Buffer.allocUnsafe(bytes);
  }

  private seal(): void {
    if (this.open && this.open.end > this.open.begin) this.sealed.push(this.open);
    this.open = undefined;
  }

  private newSegment(base: number): Segment {
    const p = path.join(this.dir, segmentFileName(base));
    const seg: Segment = {
      base,
      capacity: this.opts.segmentBytes,
      path: p,
      fd: -1,
      ready: Promise.resolve(),
    };
    // Not preallocated: a file grows by appends, which ext4 takes several times faster than
    // writes into a sparse preallocated file. It is extended to its full size when it fills.
    seg.ready = (async () => {
      const fd = await this.io.open(p, 'w+');
      seg.fd = fd;
      await this.io.fsyncDir(this.dir);
    })();
    // A failure surfaces through the write that awaits `ready`.
    seg.ready.catch(() => undefined);
    this.segments.push(seg);
    return seg;
  }

  private scheduleWrite(): void {
    if (this.writeScheduled || this.inflight.length >= MAX_WRITES_IN_FLIGHT) return;
    this.writeScheduled = true;
    // setImmediate lets every append of this event-loop turn join the batch.
    setImmediate(() => {
      this.writeScheduled = false;
      this.pumpWrites();
    });
  }

  /**
   * Starts writes, up to MAX_WRITES_IN_FLIGHT at a time (positional writes to disjoint ranges, so
   * the kernel may complete them in any order); `completeWrites` takes their results in log order.
   */
  private pumpWrites(): void {
    while (this.inflight.length < MAX_WRITES_IN_FLIGHT) {
      if (this.sealed.length === 0) this.seal();
      const batch = this.sealed.shift();
      if (!batch) return;
      if (this.failure) {
        for (const w of batch.waiters) w.appendFailed(this.failure);
        continue;
      }
      const entry: InflightWrite = { batch, settled: false, failed: false, error: undefined };
      this.inflight.push(entry);
      this.writeBatch(batch).then(
        () => {
          entry.settled = true;
          this.completeWrites();
        },
        (e: unknown) => {
          entry.settled = true;
          entry.failed = true;
          entry.error = e;
          this.completeWrites();
        },
      );
    }
  }

  /**
   * Fills in the CRCs the batch's records left for later, on the CRC thread (or here, without
   * one). Nothing else touches the batch's bytes meanwhile: it is sealed, and not yet written.
   */
  private fillCrcs(batch: Batch): Promise<DispatchHints | undefined> | undefined {
    const jobs = batch.crcJobs;
    const n = batch.crcJobCount;
    if (jobs === undefined || n === 0) return undefined;
    batch.crcJobs = undefined;
    if (this.sharedArenas && !this.closed && n >= CRC_THREAD_MIN_RECORDS && !this.noCrcThread) {
      if (this.crcThread_ === undefined) {
        try {
          this.crcThread_ = new CrcThread();
        } catch {
          // No worker threads here (a restricted runtime): the CRCs are computed on this thread.
          this.noCrcThread = true;
        }
      }
      // Until the thread runs, batches do not wait for it to start.
      if (this.crcThread_?.online) return this.crcThread_.run(batch.arena, jobs, n);
    }
    fillRecordCrcsOf(batch.arena, jobs, n);
    return undefined;
  }

  /** The CRC thread, once it runs (for tests). */
  crcThread(): Worker | undefined {
    return this.crcThread_?.online ? this.crcThread_.thread : undefined;
  }

  private async writeBatch(batch: Batch): Promise<void> {
    const seg = batch.segment;
    const crcs = this.fillCrcs(batch);
    if (crcs !== undefined) batch.hints = await crcs;
    await seg.ready;
    const len = batch.end - batch.begin;
    await writeFully(this.io, seg.fd, batch.arena, batch.begin, len, batch.start - seg.base);
    if (batch.start + len === seg.base + seg.capacity) {
      // The segment ends with its blank record: give the file its full size, so the next
      // segment's name follows from this one's size.
      await this.io.ftruncate(seg.fd, seg.capacity);
    }
  }

  /** Takes finished writes in log order: `written` only ever covers a gap-free prefix. */
  private completeWrites(): void {
    while (this.inflight.length > 0 && this.inflight[0]!.settled) {
      const { batch, failed, error } = this.inflight.shift()!;
      if (failed) this.fail('write', error);
      if (this.failure) {
        for (const w of batch.waiters) w.appendFailed(this.failure);
        continue;
      }
      const chunk = batch.arena.subarray(batch.begin, batch.end);
      this.written = batch.start + chunk.length;
      this.addToCache(batch.start, chunk);
      if (batch.hints !== undefined) {
        const q = this.hinted;
        while (q.length > 0 && (q.length >= HINTED_BATCHES_MAX || this.hintedBytes > HINTED_BYTES_MAX)) {
          this.hintedBytes -= q.shift()!.hints.byteLength;
        }
        this.hintedBytes += batch.hints.hints.byteLength;
        q.push({
          start: batch.start,
          end: this.written,
          begin: batch.begin,
          hints: batch.hints.hints,
          topics: batch.hints.topics,
          count: batch.hints.hints.length / DISPATCH_HINT_FIELDS,
          next: 0,
        });
      }
      let needFlush = false;
      for (const w of batch.waiters) {
        if (w.durable) {
          this.flushWaiters.push(w);
          needFlush = true;
        } else {
          w.appendDone();
        }
      }
      this.onWritten(this.written);
      // Under SYNC flush every write is followed by a flush, also for appends that do not wait
      // for it (WAIT=false): consumers only see flushed bytes.
      if (needFlush || this.flushWaiters.length > 0 || this.opts.flushMode === 'SYNC') this.kickFlush();
    }
    // What arrived meanwhile goes out at once: it is the next batch.
    this.pumpWrites();
  }

  private kickFlush(): void {
    if (this.failure) {
      // Nothing will flush any more: whoever still waits learns it now.
      for (const w of this.flushWaiters.splice(0)) w.appendFailed(this.failure);
      return;
    }
    if (this.flushing) return;
    this.flushing = true;
    void this.flushLoop();
  }

  /** One fdatasync covers every waiter whose bytes were written before it started. */
  private async flushLoop(): Promise<void> {
    try {
      while (this.written > this.flushed && !this.failure) {
        const target = this.written;
        try {
          // A snapshot: retention may remove segments from the list while we await.
          for (const seg of this.segments.slice()) {
            if (seg.base + seg.capacity <= this.flushed || seg.base >= target) continue;
            await seg.ready;
            await this.io.fdatasync(seg.fd);
          }
        } catch (e) {
          this.fail('fdatasync', e);
          break;
        }
        this.flushed = target;
        let n = 0;
        while (n < this.flushWaiters.length && this.flushWaiters[n]!.end <= target) n++;
        const done = this.flushWaiters.splice(0, n);
        for (const w of done) w.appendDone();
        this.onFlushed(this.flushed);
      }
    } finally {
      this.flushing = false;
    }
    if (this.failure) {
      for (const w of this.flushWaiters.splice(0)) w.appendFailed(this.failure);
    } else if (this.flushWaiters.length > 0 && this.written > this.flushed) {
      this.kickFlush();
    }
  }

  private fail(what: string, cause: unknown): void {
    if (this.failure) return;
    const msg = cause instanceof Error ? cause.message : String(cause);
    this.failure = new TsmqError(
      'STORE_IO_ERROR',
      `commit-log ${what} failed (${msg}); the store refuses appends until it is restarted`,
      { cause },
    );
    for (const w of this.flushWaiters.splice(0)) w.appendFailed(this.failure);
  }

  /** Waits until everything appended so far is written and flushed. */
  async flushAll(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.appended === this.flushed) return;
    const target = this.appended;
    await new Promise<void>((resolve, reject) => {
      this.flushWaiters.push({ end: target, durable: true, appendDone: resolve, appendFailed: reject });
      // The waiter sits in flushWaiters directly; make sure writes and a flush happen.
      this.scheduleWrite();
      if (this.written >= target) this.kickFlush();
    });
  }

  private addToCache(start: number, buf: Buffer): void {
    if (this.opts.tailCacheBytes <= 0) return;
    const last = this.cache.at(-1);
    if (
      last &&
      last.start + last.buf.length === start &&
      last.buf.buffer === buf.buffer &&
      last.buf.byteOffset + last.buf.length === buf.byteOffset
    ) {
      // Same arena, adjacent: widen the view instead of adding an entry.
      last.buf = Buffer.from(buf.buffer, last.buf.byteOffset, last.buf.length + buf.length);
    } else {
      this.cache.push({ start, buf, lent: false });
    }
    this.cacheBytes += buf.length;
    while (this.cacheBytes > this.opts.tailCacheBytes && this.cache.length > 1) {
      const old = this.cache.shift()!;
      this.cacheBytes -= old.buf.length;
      if (old.lent) this.lentArenas.add(old.buf.buffer);
      this.retireArena(old.buf.buffer);
    }
  }

  /**
   * An arena whose last bytes just left the tail cache may take new records if nothing else can
   * see it. Arenas are filled in log order and batches complete in log order, so once a later
   * arena's bytes are cached every batch of this one has been written: no batch, pending write or
   * cache entry refers to it. What remains are readers, and an arena any reader got a view of
   * (`lend`) is left to the garbage collector.
   */
  private retireArena(mem: ArrayBufferLike): void {
    if (mem === this.arena.buffer || this.cache[0]?.buf.buffer === mem) return;
    if (mem.byteLength !== ARENA_BYTES || this.lentArenas.has(mem)) return;
    if (this.spareArenas.length < SPARE_ARENAS_MAX) this.spareArenas.push(Buffer.from(mem));
  }

  /**
   * A view of a cache entry handed to a reader, who may keep it: that entry's arena is never
   * reused. Marked on the entry (cheap, once per record read) and carried over to the arena when
   * the entry leaves the cache.
   */
  private lend(e: CacheEntry, view: Buffer): Buffer {
    e.lent = true;
    return view;
  }

  /** The cache entry holding `offset`, if any. Newest entries are the likeliest: search from the back. */
  private entryAt(offset: number): CacheEntry | undefined {
    const c = this.cache;
    if (c.length === 0 || offset < c[0]!.start) return undefined;
    for (let i = c.length - 1; i >= 0; i--) {
      const e = c[i]!;
      if (offset >= e.start) return offset < e.start + e.buf.length ? e : undefined;
    }
    return undefined;
  }

  /**
   * Reads `[offset, offset + length)` of written data, which must lie inside one segment.
   * Served from the tail cache when possible (a zero-copy view), else from the segment file.
   * Returns fewer bytes only if the range passes the written offset.
   */
  async read(offset: number, length: number): Promise<Buffer> {
    const end = Math.min(offset + length, this.written);
    if (end <= offset) return Buffer.alloc(0);
    const fromCache = this.readCached(offset, end);
    if (fromCache) return fromCache;
    return this.readFromDisk(offset, end - offset);
  }

  /** A zero-copy view of [offset, offset + length) if the tail cache holds all of it. */
  cachedView(offset: number, length: number): Buffer | undefined {
    const e = this.entryAt(offset);
    if (!e) return undefined;
    const from = offset - e.start;
    return from + length <= e.buf.length ? this.lend(e, e.buf.subarray(from, from + length)) : undefined;
  }

  /**
   * Like `read`, for sequential readers (the dispatcher): when the start is in the tail cache it
   * returns a zero-copy view that ends with its cache chunk, so possibly fewer bytes than asked.
   * Chunks hold whole records, so a view never cuts one.
   */
  async readSequential(offset: number, length: number): Promise<Buffer> {
    const end = Math.min(offset + length, this.written);
    if (end <= offset) return Buffer.alloc(0);
    const e = this.entryAt(offset);
    if (e)
      return this.lend(e, e.buf.subarray(offset - e.start, Math.min(end, e.start + e.buf.length) - e.start));
    return this.readFromDisk(offset, end - offset);
  }

  /**
   * `readSequential`'s cached case, synchronous and for a reader that uses the view at once and
   * does not keep it (the dispatcher): the view is valid only until control returns to the event
   * loop, after which its arena may take new records. Undefined if the start is not cached.
   */
  sequentialView(offset: number, length: number): Buffer | undefined {
    const end = Math.min(offset + length, this.written);
    if (end <= offset) return undefined;
    const e = this.entryAt(offset);
    return e?.buf.subarray(offset - e.start, Math.min(end, e.start + e.buf.length) - e.start);
  }

  /**
   * The dispatcher, at log offset `offset`, which is at `pos` of `buf` (a view of the tail cache):
   * if the CRC thread left a hint for the record there, fills in `out` from it and returns the
   * record's size, without reading the record; else returns 0 (then read it). Hints of batches
   * below `offset` are dropped: the dispatcher only moves forward, but for recovery.
   */
  takeDispatchHint(offset: number, buf: Buffer, pos: number, out: DispatchInfo): number {
    const q = this.hinted;
    while (q.length > 0 && q[0]!.end <= offset) this.hintedBytes -= q.shift()!.hints.byteLength;
    const b = q[0];
    if (b === undefined || offset < b.start) return 0;
    const at = b.begin + (offset - b.start);
    const hints = b.hints;
    let i = b.next;
    while (i < b.count && hints[i * DISPATCH_HINT_FIELDS]! < at) i++;
    b.next = i;
    if (i >= b.count || hints[i * DISPATCH_HINT_FIELDS] !== at) return 0;
    const size = hints[i * DISPATCH_HINT_FIELDS + 1]!;
    if (pos + size > buf.length) return 0;
    applyDispatchHint(hints, i, b.topics, buf, pos, out);
    b.next = i + 1;
    this.dispatchHintsUsed++;
    return size;
  }

  /** Reads from the segment file, ignoring the written offset (recovery scans with it). */
  async readFromDisk(offset: number, length: number): Promise<Buffer> {
    const seg = this.segmentFor(offset);
    if (!seg) {
      throw new TsmqError(
        'OFFSET_OUT_OF_RANGE',
        `commit-log offset ${offset} is not stored (min ${this.minOffset_})`,
      );
    }
    const segEnd = Math.min(offset + length, seg.base + seg.capacity);
    const buf = Buffer.allocUnsafe(segEnd - offset);
    await seg.ready;
    const n = await readFully(this.io, seg.fd, buf, 0, buf.length, offset - seg.base);
    return n === buf.length ? buf : buf.subarray(0, n);
  }

  private readCached(offset: number, end: number): Buffer | undefined {
    const c = this.cache;
    if (c.length === 0 || offset < c[0]!.start) return undefined;
    // Newest entries are the likeliest; search from the back.
    for (let i = c.length - 1; i >= 0; i--) {
      const e = c[i]!;
      if (offset >= e.start) {
        if (end <= e.start + e.buf.length)
          return this.lend(e, e.buf.subarray(offset - e.start, end - e.start));
        // Spans entries: gather.
        const parts: Buffer[] = [];
        let pos = offset;
        for (let j = i; j < c.length && pos < end; j++) {
          const f = c[j]!;
          if (f.start !== pos && j !== i) return undefined;
          const from = pos - f.start;
          const to = Math.min(f.buf.length, end - f.start);
          parts.push(f.buf.subarray(from, to));
          pos = f.start + to;
        }
        return pos === end ? Buffer.concat(parts) : undefined;
      }
    }
    return undefined;
  }

  segmentFor(offset: number): Segment | undefined {
    const segs = this.segments;
    let lo = 0;
    let hi = segs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = segs[mid]!;
      if (offset < s.base) hi = mid - 1;
      else if (offset >= s.base + s.capacity) lo = mid + 1;
      else return s;
    }
    return undefined;
  }

  /** The start of the segment after the one holding `offset` (where a reader goes after a blank). */
  nextSegmentStart(offset: number): number {
    const s = this.segmentFor(offset);
    return s ? s.base + s.capacity : offset;
  }

  /**
   * Recovery: cut the log at `end`. Later segments are deleted and the tail of the segment holding
   * `end` is zeroed (truncate then re-extend), so no stale bytes can ever look like a record.
   */
  async truncateTo(end: number): Promise<void> {
    assert(this.appended === this.written, 'truncate only while idle');
    while (this.segments.length > 0 && this.segments.at(-1)!.base > end) {
      const s = this.segments.pop()!;
      await s.ready;
      await this.io.close(s.fd);
      await this.io.unlink(s.path);
    }
    const last = this.segments.at(-1);
    if (last && end < last.base + last.capacity) {
      // Cut the file at the end: nothing stale remains past the last valid record.
      await this.io.ftruncate(last.fd, end - last.base);
      await this.io.fdatasync(last.fd);
    }
    await this.io.fsyncDir(this.dir);
    this.cache.length = 0;
    this.cacheBytes = 0;
    this.hinted.length = 0;
    this.hintedBytes = 0;
    this.setEnd(end);
  }

  /**
   * Retention: deletes the oldest segments that `shouldDelete` approves, never the last one.
   * Returns the number deleted.
   */
  async deleteOldest(
    shouldDelete: (seg: { base: number; capacity: number; path: string }) => Promise<boolean>,
    max: number,
  ): Promise<number> {
    let n = 0;
    while (n < max && this.segments.length > 1 && !this.closed) {
      const s = this.segments[0]!;
      if (!(await shouldDelete(s))) break;
      this.segments.shift();
      this.minOffset_ = this.segments[0]!.base;
      await s.ready;
      await this.io.close(s.fd);
      await this.io.unlink(s.path);
      n++;
    }
    if (n > 0) await this.io.fsyncDir(this.dir);
    return n;
  }

  /** Closes the files without flushing (see MessageStore.abandon). */
  async abandon(): Promise<void> {
    this.closed = true;
    if (this.flushTimer) clearInterval(this.flushTimer);
    await this.crcThread_?.stop();
    for (const s of this.segments.slice()) {
      await s.ready.catch(() => undefined);
      if (s.fd >= 0) await this.io.close(s.fd).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.failure) {
      try {
        await this.flushAll();
      } catch {
        // The failure is recorded; close anyway.
      }
    }
    this.closed = true;
    if (this.flushTimer) clearInterval(this.flushTimer);
    await this.crcThread_?.stop();
    for (const s of this.segments.slice()) {
      try {
        await s.ready;
        if (s.fd >= 0) await this.io.close(s.fd);
      } catch {
        // Nothing more to do for a segment that never opened.
      }
    }
  }
}
