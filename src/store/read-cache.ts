/**
 * The read-ahead cache of the backlog: commit-log blocks read from disk for queue reads, kept
 * for the other queues that read the same stretch of the log.
 *
 * Consumers of a topic's queues move through the log together, and a queue's messages are
 * interleaved with the other queues' there: a pull of 32 messages of one queue spans the bytes of
 * every queue's messages in between. Reading exactly that span for each queue reads every byte
 * once per queue (eight times for eight queues); reading the records one by one costs a system
 * call each. This cache reads aligned blocks instead:
 *
 *   segment base                                                        segment end
 *   |<-- blockBytes -->|<-- blockBytes -->|<-- blockBytes -->| ... |<- short ->|
 *                      ^ one read of the whole block (and 64 KiB past it); every queue's records
 *                        inside it are copied out of the one buffer
 *
 * A block is read once while the queues' readers are within `maxBlocks` blocks of each other, and
 * evicted least recently used first. The first use of a block has the next two read in the
 * background (sequential read-ahead), so readers moving through the log rarely wait for a read. Blocks only ever hold written bytes (clamped to the written
 * offset when read), and written bytes of the log never change while the store runs, so a cached
 * block is never stale; a block read short (near the written offset) is read again when a later
 * record lies past its end. Concurrent misses of one block share one read.
 *
 * Block buffers are recycled (an evicted block's buffer takes the next block's bytes), so reading
 * a backlog does not allocate — and so does not keep the garbage collector busy — per block. For
 * that, no view of a block outlives a synchronous section: `copyOut` copies bytes out, and the
 * `view` of `with` is only valid inside its callback.
 *
 * The bytes are as on disk: callers verify every record they serve from here (the CRCs guard
 * against the disk), exactly as for a direct read. A block also reads 64 KiB past its end, so a
 * record starting in it and straddling into the next is served from it; one reaching further, or
 * larger than a block, is not served here (`has` stays false after `load`): the caller reads it
 * directly.
 */
import type { CommitLog } from './commit-log.js';
import { CQ_UNIT_BYTES } from './consume-queue.js';
import { type FileIo, readFully } from './io.js';

/** Bytes a block reads past its aligned end, for records that straddle into the next block. */
const BLOCK_OVERLAP_BYTES = 64 * 1024;

/** Blocks read ahead of the first use of a block. */
const READ_AHEAD_BLOCKS = 2;
/** Fewer blocks than this and read-ahead would evict what readers still use. */
const READ_AHEAD_MIN_BLOCKS = 4 * READ_AHEAD_BLOCKS;

interface Block {
  readonly start: number;
  /** Exclusive; where the bytes read end (short near the written offset or a segment's end). */
  end: number;
  buf: Buffer;
  loading: Promise<void> | undefined;
  lastUse: number;
  /** The next block was asked for (read-ahead) when this one was first used. */
  readAhead: boolean;
}

export class ReadAheadCache {
  private readonly blocks = new Map<number, Block>();
  /** Buffers of evicted blocks, for the next reads. */
  private readonly spare: Buffer[] = [];
  private useClock = 0;
  /** Blocks read from disk (a metric, and what tests look at). */
  reads = 0;

  constructor(
    private readonly log: CommitLog,
    private readonly io: FileIo,
    readonly blockBytes: number,
    readonly maxBlocks: number,
  ) {}

  /** Where the aligned block holding `offset` starts, or undefined if no segment holds it. */
  private blockStart(offset: number): number | undefined {
    const seg = this.log.segmentFor(offset);
    if (!seg) return undefined;
    return seg.base + Math.floor((offset - seg.base) / this.blockBytes) * this.blockBytes;
  }

  private loaded(offset: number, length: number): Block | undefined {
    if (this.maxBlocks <= 0) return undefined;
    const start = this.blockStart(offset);
    if (start === undefined) return undefined;
    const b = this.blocks.get(start);
    if (!b || b.loading || offset + length > b.end) return undefined;
    b.lastUse = ++this.useClock;
    if (!b.readAhead && this.maxBlocks >= READ_AHEAD_MIN_BLOCKS) {
      // Readers are moving through this stretch of the log: have the next block read meanwhile,
      // so that they do not all wait for it when they get there.
      b.readAhead = true;
      const seg = this.log.segmentFor(start);
      for (let k = 1; k <= READ_AHEAD_BLOCKS; k++) {
        const ahead = start + k * this.blockBytes;
        if (this.log.segmentFor(ahead) !== seg) break;
        if (!this.blocks.has(ahead)) void this.load(ahead, 1);
      }
    }
    return b;
  }

  /** Whether one loaded block holds all of [offset, offset + length). */
  has(offset: number, length: number): boolean {
    return this.loaded(offset, length) !== undefined;
  }

  /**
   * Calls `fn` with a view of [offset, offset + length) and returns what it returns, or undefined
   * if no loaded block holds the range. The view is valid only during the call (the block's
   * buffer is recycled later).
   */
  with<T>(offset: number, length: number, fn: (view: Buffer) => T): T | undefined {
    const b = this.loaded(offset, length);
    if (!b) return undefined;
    return fn(b.buf.subarray(offset - b.start, offset + length - b.start));
  }

  /** Copies [offset, offset + length) into `target` at `at`; false if no loaded block holds it. */
  copyOut(offset: number, length: number, target: Buffer, at: number): boolean {
    const b = this.loaded(offset, length);
    if (!b) return false;
    b.buf.copy(target, at, offset - b.start, offset + length - b.start);
    return true;
  }

  /**
   * Reads the block holding `offset` unless it is loaded (or being loaded) and reaches
   * `offset + length`. Afterwards `has` answers for the range if the block holds it. A failed
   * read is not reported here: the caller's direct read reports it.
   */
  async load(offset: number, length: number): Promise<void> {
    if (this.maxBlocks <= 0 || length > this.blockBytes) return;
    const start = this.blockStart(offset);
    if (start === undefined) return;
    let b = this.blocks.get(start);
    if (b?.loading) await b.loading;
    b = this.blocks.get(start);
    if (b && !b.loading && offset + length <= b.end) return;
    const seg = this.log.segmentFor(offset)!;
    // A block reads a little past its end, so that records straddling into the next block are
    // served from it too (not by a read of their own).
    const end = Math.min(
      start + this.blockBytes + BLOCK_OVERLAP_BYTES,
      seg.base + seg.capacity,
      this.log.writtenOffset(),
    );
    if (offset + length > end) return; // past the block or not written: not ours to serve
    if (b) this.drop(b);
    const buf = this.spare.pop() ?? Buffer.allocUnsafe(this.blockBytes + BLOCK_OVERLAP_BYTES);
    const block: Block = { start, end, buf, loading: undefined, lastUse: ++this.useClock, readAhead: false };
    block.loading = (async () => {
      try {
        await seg.ready;
        const n = await readFully(this.io, seg.fd, buf, 0, end - start, start - seg.base);
        block.end = start + n;
        block.loading = undefined;
      } catch {
        if (this.blocks.get(start) === block) this.blocks.delete(start);
        block.loading = undefined;
        this.spare.push(buf);
      }
    })();
    this.blocks.set(start, block);
    this.evict();
    this.reads++;
    await block.loading;
  }

  private drop(b: Block): void {
    this.blocks.delete(b.start);
    if (this.spare.length < this.maxBlocks) this.spare.push(b.buf);
  }

  private evict(): void {
    while (this.blocks.size > this.maxBlocks) {
      let oldest: Block | undefined;
      for (const b of this.blocks.values()) {
        if (b.loading === undefined && (oldest === undefined || b.lastUse < oldest.lastUse)) oldest = b;
      }
      if (!oldest) return;
      this.drop(oldest);
    }
  }

  /** Bytes held now, spare buffers included. */
  get bytes(): number {
    let n = 0;
    for (const b of this.blocks.values()) n += b.buf.length;
    for (const b of this.spare) n += b.length;
    return n;
  }

  clear(): void {
    this.blocks.clear();
    this.spare.length = 0;
  }
}

/**
 * Consume-queue units read ahead for queue reads. A pull asks for a few dozen units; once they are
 * no longer in the consume queue's memory window each ask is a small read from its file, a system
 * call per pull. This keeps the units after those asked (up to `aheadUnits`, read in the same
 * call) for the queue's next pull.
 *
 * Units below a queue's dispatched maximum never change while the store runs (the dispatcher puts
 * each unit once, at its queue offset; re-dispatching writes the same bytes) — except when a
 * topic is deleted and its queues start again at offset 0: `forgetTopic` drops those. Runs holding
 * a hole (a zero unit) are not kept, so a unit filled later is never missed.
 */
export class UnitReadAhead {
  /** Per queue: units [from, from + units.length / 20), oldest-used queue first. */
  private readonly byQueue = new Map<string, { topic: string; from: number; units: Buffer }>();

  constructor(
    readonly aheadUnits: number,
    readonly maxQueues: number,
  ) {}

  /** Units [from, from + count) of the queue, or fewer from `from` on, if held; else undefined. */
  take(key: string, from: number, count: number): Buffer | undefined {
    const e = this.byQueue.get(key);
    if (!e) return undefined;
    const held = e.units.length / CQ_UNIT_BYTES;
    if (from < e.from || from >= e.from + held) {
      this.byQueue.delete(key);
      return undefined;
    }
    const at = from - e.from;
    const n = Math.min(count, held - at);
    return e.units.subarray(at * CQ_UNIT_BYTES, (at + n) * CQ_UNIT_BYTES);
  }

  /** Changes with every `forgetTopic`: units read before it must not be kept (see `keep`). */
  epoch = 0;

  /**
   * Keeps units read from `from` for the queue's next reads: not when they hold a hole, nor when
   * a topic was forgotten since the read began (`epochAtRead`: `epoch` before the read).
   */
  keep(key: string, topic: string, from: number, units: Buffer, epochAtRead: number): void {
    if (epochAtRead !== this.epoch) return;
    for (let p = 8; p < units.length; p += CQ_UNIT_BYTES) {
      if (units[p] === 0 && units[p + 1] === 0 && units[p + 2] === 0 && units[p + 3] === 0) return;
    }
    this.byQueue.delete(key);
    if (this.byQueue.size >= this.maxQueues) this.byQueue.delete(this.byQueue.keys().next().value!);
    this.byQueue.set(key, { topic, from, units });
  }

  forgetTopic(topic: string): void {
    this.epoch++;
    for (const [k, e] of this.byQueue) if (e.topic === topic) this.byQueue.delete(k);
  }
}
