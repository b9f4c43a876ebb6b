/**
 * The timer log: 40-byte units (timer-codec.ts), appended, in segment files of a fixed size named
 * by the 20-digit byte offset of their first unit, like the commit log. Appends go to a tail
 * buffer in memory; `flush(end)` writes the buffer up to `end` and fsyncs the segments it
 * touched. Reads are served from the tail buffer, from a small cache of whole blocks, or from the
 * file. Memory: the tail buffer (flushed at every checkpoint, or sooner once it holds
 * TAIL_FLUSH_BYTES) and BLOCK_CACHE_MAX blocks of 4,000 bytes.
 *
 * Each segment's highest slot is tracked, so that a segment holding only delivered slots can be
 * deleted (`deleteSegments`); the checkpoint carries those figures across restarts.
 */
import path from 'node:path';
import type { FileIo } from '../../store/index.js';
import { type SegmentInfo, TIMER_UNIT_BYTES } from './timer-codec.js';

/**
 * Units read from disk at once and cached (4,000 bytes): a chain's units are often neighbours
 * (timers sent together for the same time), but may be spread over the whole log, so a block is
 * small enough for a read per unit to stay cheap.
 */
const BLOCK_BYTES = TIMER_UNIT_BYTES * 100;
/** Blocks cached at most (2 MB). */
const BLOCK_CACHE_MAX = 512;
/** The tail buffer asks to be flushed once it holds this much (the store checks `wantsFlush`). */
export const TAIL_FLUSH_BYTES = 1024 * 1024;

export function segmentName(base: number): string {
  return String(base).padStart(20, '0');
}

export async function readFully(io: FileIo, fd: number, buf: Buffer, position: number): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const n = await io.read(fd, buf, done, buf.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

export async function writeFully(io: FileIo, fd: number, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    done += await io.write(fd, buf, done, buf.length - done, position + done);
  }
}

interface Segment {
  base: number;
  maxSlot: number;
  fd: number | undefined;
}

export class TimerLog {
  private readonly segments = new Map<number, Segment>();
  private tail = Buffer.alloc(64 * 1024);
  private tailStart: number;
  private tailLen = 0;
  /** Cached blocks by their log position. */
  private readonly blocks = new Map<number, Buffer>();
  private flushing: Promise<void> | undefined;

  private constructor(
    private readonly io: FileIo,
    private readonly dir: string,
    readonly segmentBytes: number,
    durableEnd: number,
  ) {
    this.tailStart = durableEnd;
  }

  /**
   * Opens the log in `dir` at `end` (the checkpoint's logEnd): segment files at or past it are
   * deleted and the one holding it is cut there, as they hold units no checkpoint covers.
   * `known` gives each segment's highest slot, as the checkpoint recorded it.
   */
  static async open(
    io: FileIo,
    dir: string,
    segmentBytes: number,
    end: number,
    known: readonly SegmentInfo[],
  ): Promise<TimerLog> {
    if (segmentBytes % TIMER_UNIT_BYTES !== 0 || segmentBytes < TIMER_UNIT_BYTES) {
      throw new Error(`timer log segments must hold whole units: ${segmentBytes} bytes`);
    }
    await io.mkdirp(dir);
    const log = new TimerLog(io, dir, segmentBytes, end);
    const maxSlots = new Map(known.map((s) => [s.base, s.maxSlot]));
    for (const name of (await io.readdir(dir)).sort()) {
      if (!/^\d{20}$/.test(name)) continue;
      const base = Number(name);
      const file = path.join(dir, name);
      if (base >= end) {
        await io.unlink(file);
        continue;
      }
      if (base + segmentBytes > end) {
        const fd = await io.open(file, 'r+');
        await io.ftruncate(fd, end - base);
        await io.fsync(fd);
        await io.close(fd);
      }
      // A segment the checkpoint does not describe is never deleted (its slots are unknown).
      log.segments.set(base, { base, maxSlot: maxSlots.get(base) ?? Number.MAX_SAFE_INTEGER, fd: undefined });
    }
    await io.fsyncDir(dir);
    return log;
  }

  /** Where the next unit goes. */
  end(): number {
    return this.tailStart + this.tailLen;
  }

  /** Units appended but not yet written are this many bytes. */
  tailBytes(): number {
    return this.tailLen;
  }

  wantsFlush(): boolean {
    return this.tailLen >= TAIL_FLUSH_BYTES;
  }

  /** Reserves room for one unit at the end and returns its position and the buffer to fill. */
  appendSlot(slot: number): { pos: number; buf: Buffer; at: number } {
    if (this.tailLen + TIMER_UNIT_BYTES > this.tail.length) {
      const bigger = Buffer.alloc(this.tail.length * 2);
      this.tail.copy(bigger, 0, 0, this.tailLen);
      this.tail = bigger;
    }
    const pos = this.end();
    const base = pos - (pos % this.segmentBytes);
    let seg = this.segments.get(base);
    if (!seg) {
      seg = { base, maxSlot: -1, fd: undefined };
      this.segments.set(base, seg);
    }
    if (slot > seg.maxSlot) seg.maxSlot = slot;
    const at = this.tailLen;
    this.tailLen += TIMER_UNIT_BYTES;
    return { pos, buf: this.tail, at };
  }

  /** Reads `len` bytes at `pos` (inside one segment, below `end()`). */
  async read(pos: number, len: number): Promise<Buffer> {
    if (pos >= this.tailStart) {
      const from = pos - this.tailStart;
      return Buffer.from(this.tail.subarray(from, from + len));
    }
    // Blocks are aligned within their segment, so none spans two files.
    const seg = this.segments.get(pos - (pos % this.segmentBytes));
    if (!seg) throw new Error(`timer log position ${pos} is in no segment`);
    const blockStart = seg.base + Math.floor((pos - seg.base) / BLOCK_BYTES) * BLOCK_BYTES;
    const within = pos - blockStart;
    let block = this.blocks.get(blockStart);
    if (block) {
      this.blocks.delete(blockStart);
      this.blocks.set(blockStart, block);
    } else {
      const segEnd = Math.min(seg.base + this.segmentBytes, this.tailStart);
      const want = Math.min(BLOCK_BYTES, segEnd - blockStart);
      const buf = Buffer.alloc(want);
      const n = await readFully(this.io, await this.fdOf(seg), buf, blockStart - seg.base);
      block = buf.subarray(0, n);
      // Only a whole block is cached: a short one may grow as more units are written.
      if (n === BLOCK_BYTES) {
        this.blocks.set(blockStart, block);
        if (this.blocks.size > BLOCK_CACHE_MAX) this.blocks.delete(this.blocks.keys().next().value!);
      }
    }
    return Buffer.from(block.subarray(within, within + len));
  }

  /** Reads `[pos, pos + len)` (inside one segment, below `end()`) straight from the file or the tail, uncached. */
  async readRaw(pos: number, len: number): Promise<Buffer> {
    if (pos >= this.tailStart) return this.read(pos, len);
    const seg = this.segments.get(pos - (pos % this.segmentBytes));
    if (!seg) throw new Error(`timer log position ${pos} is in no segment`);
    const buf = Buffer.alloc(Math.min(len, this.tailStart - pos));
    const n = await readFully(this.io, await this.fdOf(seg), buf, pos - seg.base);
    return buf.subarray(0, n);
  }

  private async fdOf(seg: Segment): Promise<number> {
    if (seg.fd === undefined) {
      const file = path.join(this.dir, segmentName(seg.base));
      const fd = await this.io.open(file, (await this.io.exists(file)) ? 'r+' : 'w+');
      if (seg.fd === undefined) seg.fd = fd;
      else await this.io.close(fd);
    }
    return seg.fd;
  }

  /** Writes the tail up to `upTo` and fsyncs what it wrote; one flush at a time. */
  async flush(upTo: number): Promise<void> {
    while (this.flushing) await this.flushing;
    if (upTo <= this.tailStart) return;
    this.flushing = this.flushInner(upTo).finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async flushInner(upTo: number): Promise<void> {
    const n = Math.min(upTo, this.end()) - this.tailStart;
    let done = 0;
    const touched: Segment[] = [];
    let created = false;
    while (done < n) {
      const pos = this.tailStart + done;
      const base = pos - (pos % this.segmentBytes);
      const seg = this.segments.get(base)!;
      const len = Math.min(n - done, base + this.segmentBytes - pos);
      if (seg.fd === undefined) created = true;
      const fd = await this.fdOf(seg);
      await writeFully(this.io, fd, this.tail.subarray(done, done + len), pos - base);
      touched.push(seg);
      done += len;
    }
    for (const seg of touched) await this.io.fdatasync(seg.fd!);
    if (created) await this.io.fsyncDir(this.dir);
    // Appends made while writing stay in the tail.
    this.tail.copy(this.tail, 0, n, this.tailLen);
    this.tailStart += n;
    this.tailLen -= n;
  }

  /** Each segment's base and highest slot, oldest first. */
  segmentInfos(): SegmentInfo[] {
    return [...this.segments.values()]
      .sort((a, b) => a.base - b.base)
      .map((s) => ({ base: s.base, maxSlot: s.maxSlot }));
  }

  segmentCount(): number {
    return this.segments.size;
  }

  cachedBlocks(): number {
    return this.blocks.size;
  }

  /**
   * Deletes whole segments below `durableEnd` whose units are all in slots below `doneSlot`: they
   * hold nothing any slot still to be delivered links to.
   */
  async deleteSegments(doneSlot: number, durableEnd: number): Promise<number> {
    let n = 0;
    for (const seg of [...this.segments.values()].sort((a, b) => a.base - b.base)) {
      if (seg.base + this.segmentBytes > durableEnd || seg.maxSlot >= doneSlot) continue;
      this.segments.delete(seg.base);
      for (const at of [...this.blocks.keys()]) {
        if (at >= seg.base && at < seg.base + this.segmentBytes) this.blocks.delete(at);
      }
      if (seg.fd !== undefined) await this.io.close(seg.fd);
      await this.io.unlink(path.join(this.dir, segmentName(seg.base))).catch(() => undefined);
      n++;
    }
    if (n > 0) await this.io.fsyncDir(this.dir);
    return n;
  }

  /** Closes the files (nothing is flushed: see the store's close). */
  async close(): Promise<void> {
    while (this.flushing) await this.flushing.catch(() => undefined);
    for (const seg of this.segments.values()) {
      if (seg.fd !== undefined) await this.io.close(seg.fd).catch(() => undefined);
      seg.fd = undefined;
    }
  }
}
