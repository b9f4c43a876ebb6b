/**
 * The timer store: where a million pending timers wait on disk, in bounded memory. Formats in
 * timer-codec.ts; the files live in <storeRoot>/timer/:
 *
 *   log/…          timer log: one 40-byte unit per timer (deliverAt, slot, commit-log offset and
 *                  size of the message, previous unit of the same slot)
 *   wheel          one 32-byte record per wheel index: the absolute slot it holds now, the newest
 *                  and oldest unit of that slot's chain, their count
 *   checkpoint-0/1 progress and the wheel records changed since the previous checkpoint
 *
 * `link(slot, …)` appends a unit whose prevPos is the slot's current newest unit and makes it the
 * newest: a slot's timers are a chain through the log, walked newest first from the wheel's
 * record. Memory holds the log's tail buffer, some log blocks, some wheel pages and the wheel
 * records changed since the last checkpoint (at most `dirtyMax`; the service waits for a
 * checkpoint when there are more) — nothing grows with the number of pending timers.
 *
 * Checkpoint (every timerFlushIntervalMs, and when dirty records or the log's tail pile up):
 *
 *   1. snapshot, in one synchronous step: the log's end, the changed wheel records, the progress
 *      (enqueueOffset, doneSlot, pending) and the segments' highest slots;
 *   2. write the log up to that end and fdatasync it;
 *   3. write the checkpoint into the older of checkpoint-0 / checkpoint-1 and fsync it;
 *   4. write the changed records into the wheel and fdatasync it;
 *   5. delete log segments whose units are all in delivered slots.
 *
 * Recovery takes the valid checkpoint with the higher seq, writes its records into the wheel
 * again (repairing a crash during step 4; a crash before step 3 completed leaves the previous
 * checkpoint current, and the wheel untouched since that one's step 4), cuts the log at its
 * logEnd (units past it are not in the wheel) and resumes from its progress: the service re-reads
 * rmq_sys_wheel_timer from enqueueOffset and delivers every slot from doneSlot on again. Nothing
 * linked before the checkpoint is lost; what was linked or delivered after it is done again (at
 * least once: a crash costs at most one interval of duplicates).
 *
 *   found at open                                   what happens
 *   ----------------------------------------------- --------------------------------------------
 *   nothing                                         a new wheel; fresh (the service starts at
 *                                                   the timer topic's first message)
 *   a valid checkpoint and wheel                    recovery as above
 *   a valid checkpoint, wheel missing or damaged    the wheel is rebuilt from the log's units
 *   no valid checkpoint, but other files            everything is moved aside (timer.broken-<ms>)
 *                                                   and the store starts fresh: every message of
 *                                                   the timer topic is enqueued again (at least
 *                                                   once), with an error in the log
 *   a checkpoint of other geometry than configured  kept as it is (a warning) while timers are
 *                                                   pending; rebuilt with the new geometry when
 *                                                   none is
 */
import path from 'node:path';
import { TsmqError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { type FileIo, nodeFileIo } from '../../store/index.js';
import {
  decodeCheckpoint,
  decodeUnit,
  encodeCheckpoint,
  encodeUnit,
  type SlotRecord,
  TIMER_UNIT_BYTES,
  type TimerCheckpoint,
  type TimerUnit,
} from './timer-codec.js';
import { readFully, segmentName, TimerLog, writeFully } from './timer-log.js';
import { TimerWheel } from './timer-wheel.js';

export interface TimerStoreOptions {
  /** <storeRoot>/timer */
  dir: string;
  /** Slot width for a new wheel, ms. */
  precisionMs: number;
  /** Records of a new wheel. */
  slotCount: number;
  /** Bytes of a log segment (a multiple of 40). Default 40 MiB (1,048,576 units). */
  segmentBytes?: number;
  /** Wheel pages (4 KiB) cached at most. Default 512. */
  pageCacheMax?: number;
  /** Changed wheel records kept before a checkpoint is due. Default 65,536. */
  dirtyMax?: number;
  io?: FileIo;
  logger: Logger;
  /** Now, for the first doneSlot of a fresh store. */
  nowMs: number;
}

export const DEFAULT_TIMER_SEGMENT_BYTES = TIMER_UNIT_BYTES * 1024 * 1024;

export interface TimerRecovery {
  /** No checkpoint was used: the service starts at the timer topic's first message. */
  fresh: boolean;
  /** Why the store started fresh or rebuilt something, if it did. */
  note?: string;
  checkpointSeq?: number;
  slotWritesReapplied: number;
  wheelRebuilt: boolean;
  durationMs: number;
}

/** A unit and where it is. */
export interface StoredUnit extends TimerUnit {
  pos: number;
}

export interface TimerStoreMemory {
  wheelPagesCached: number;
  wheelDirtyRecords: number;
  logBlocksCached: number;
  logTailBytes: number;
}

const CHECKPOINT_FILES = ['checkpoint-0', 'checkpoint-1'] as const;
/** Below this room for links, a checkpoint is due before the next batch. */
const LINK_ROOM_MIN = 256;

export class TimerStore {
  /** Queue offset of rmq_sys_wheel_timer's next message to link; undefined until the service sets it on a fresh store. */
  enqueueOffset: number | undefined;
  /** Every slot below it has been delivered. */
  doneSlot: number;
  /** Units in slots ≥ doneSlot. */
  pending: number;
  /** Timers of slot doneSlot due before this were delivered (0: none known); from the checkpoint. */
  doneBeforeMs: number;
  /**
   * Called in the checkpoint's snapshot for the current doneBeforeMs of doneSlot (the service
   * knows which of its timers are delivered); 0 when not set.
   */
  doneBeforeHook: (() => number) | undefined;
  recovery!: TimerRecovery;
  private seq: number;
  private checkpointing: Promise<void> | undefined;
  private checkpointAgain = false;
  private closed = false;
  private readonly dirtyMax: number;
  /** Checkpoints that failed (the next one retries). */
  checkpointFailures = 0;
  /** The last checkpoint written (its slot writes are not looked at). */
  private lastWritten: TimerCheckpoint | undefined;

  private constructor(
    private readonly opts: TimerStoreOptions,
    private readonly io: FileIo,
    private readonly wheel: TimerWheel,
    private readonly log: TimerLog,
    state: {
      enqueueOffset: number | undefined;
      doneSlot: number;
      pending: number;
      seq: number;
      doneBeforeMs?: number;
    },
  ) {
    this.enqueueOffset = state.enqueueOffset;
    this.doneSlot = state.doneSlot;
    this.pending = state.pending;
    this.doneBeforeMs = state.doneBeforeMs ?? 0;
    this.seq = state.seq;
    this.dirtyMax = opts.dirtyMax ?? 65_536;
  }

  get precisionMs(): number {
    return this.wheel.header.precisionMs;
  }

  get slotCount(): number {
    return this.wheel.slotCount;
  }

  slotOf(deliverAtMs: number): number {
    return Math.floor(deliverAtMs / this.precisionMs);
  }

  slotStartMs(slot: number): number {
    return slot * this.precisionMs;
  }

  static async open(opts: TimerStoreOptions): Promise<TimerStore> {
    const started = Date.now();
    const io = opts.io ?? nodeFileIo;
    const { dir, logger } = opts;
    const segmentBytes = opts.segmentBytes ?? DEFAULT_TIMER_SEGMENT_BYTES;
    const pageCacheMax = opts.pageCacheMax ?? 512;
    await io.mkdirp(dir);
    const wheelPath = path.join(dir, 'wheel');
    const logDir = path.join(dir, 'log');

    const cp = await readNewestCheckpoint(io, dir);
    const fresh = async (note: string | undefined, enqueueOffset: number | undefined) => {
      const wheel = await TimerWheel.create(
        io,
        wheelPath,
        { slotCount: opts.slotCount, precisionMs: opts.precisionMs, createdMs: opts.nowMs },
        pageCacheMax,
      );
      const log = await TimerLog.open(io, logDir, segmentBytes, 0, []);
      const s = new TimerStore(opts, io, wheel, log, {
        enqueueOffset,
        doneSlot: Math.floor(opts.nowMs / opts.precisionMs),
        pending: 0,
        seq: cp.found?.seq ?? 0,
      });
      s.recovery = {
        fresh: enqueueOffset === undefined,
        ...(note !== undefined && { note }),
        slotWritesReapplied: 0,
        wheelRebuilt: false,
        durationMs: Date.now() - started,
      };
      // The new layout is durable before anything is linked into it.
      await s.checkpoint();
      return s;
    };

    if (!cp.found) {
      const names = await io.readdir(dir);
      if (
        names.length === 0 ||
        (names.length === 1 && names[0] === 'log' && (await io.readdir(logDir)).length === 0)
      ) {
        return fresh(undefined, undefined);
      }
      const aside = `${dir}.broken-${Date.now()}`;
      await io.rename(dir, aside);
      await io.mkdirp(dir);
      const note = `no valid timer checkpoint (${cp.why.join('; ')}): the old files were moved to ${aside} and every message still in the timer topic is enqueued again`;
      logger.error({ dir, aside }, note);
      return fresh(note, undefined);
    }

    const c = cp.found;
    if (c.pending === 0 && (c.precisionMs !== opts.precisionMs || c.slotCount !== opts.slotCount)) {
      // Nothing waits: take the configured geometry.
      await io.rmrf(dir);
      await io.mkdirp(dir);
      return fresh(
        `the timer wheel was rebuilt for timerPrecisionMs=${opts.precisionMs} (${opts.slotCount} slots); it had ${c.precisionMs} ms (${c.slotCount} slots) and no pending timer`,
        c.enqueueOffset,
      );
    }
    let note: string | undefined;
    if (c.precisionMs !== opts.precisionMs || c.slotCount !== opts.slotCount) {
      note = `the timer wheel keeps its ${c.precisionMs} ms slots (${c.slotCount}) while timers are pending; timerPrecisionMs=${opts.precisionMs} takes effect once none is`;
      logger.warn({ stored: c.precisionMs, configured: opts.precisionMs }, note);
    }
    let wheel: TimerWheel | undefined;
    let wheelRebuilt = false;
    try {
      wheel = await TimerWheel.open(io, wheelPath, pageCacheMax);
      if (wheel.header.precisionMs !== c.precisionMs || wheel.header.slotCount !== c.slotCount) {
        await wheel.close();
        wheel = undefined;
        note = 'the wheel file does not match the checkpoint; rebuilt from the log';
      }
    } catch (e) {
      note = `the wheel file could not be used (${(e as Error).message}); rebuilt from the log`;
      wheel = undefined;
    }
    const log = await TimerLog.open(io, logDir, segmentBytes, c.logEnd, c.segments);
    if (!wheel) {
      logger.warn({ dir }, note);
      wheel = await TimerWheel.create(
        io,
        wheelPath,
        { slotCount: c.slotCount, precisionMs: c.precisionMs, createdMs: opts.nowMs },
        pageCacheMax,
      );
      await rebuildWheel(wheel, log, c.doneSlot, c.logEnd, segmentBytes);
      wheelRebuilt = true;
    } else {
      // Finishes (or repeats) step 4 of the checkpoint that was current when the process stopped.
      await wheel.apply(new Map(c.slotWrites.map((w) => [w.index, w.record])));
    }
    const s = new TimerStore(opts, io, wheel, log, {
      enqueueOffset: c.enqueueOffset,
      doneSlot: c.doneSlot,
      pending: c.pending,
      seq: c.seq,
      doneBeforeMs: c.doneBeforeMs,
    });
    s.recovery = {
      fresh: false,
      ...(note !== undefined && { note }),
      checkpointSeq: c.seq,
      slotWritesReapplied: c.slotWrites.length,
      wheelRebuilt,
      durationMs: Date.now() - started,
    };
    if (wheelRebuilt) await s.checkpoint();
    return s;
  }

  /** Where the next unit goes in the log. */
  logEnd(): number {
    return this.log.end();
  }

  // ------------------------------------------------------------------------ wheel records

  /** The wheel page holding the slot's record (records are loaded a page at a time). */
  pageOf(slot: number): number {
    return this.wheel.pageOf(this.wheel.indexOf(slot));
  }

  get pageCacheMax(): number {
    return this.wheel.pageCacheMax;
  }

  /**
   * A batch of links is in progress whose units are not all linked yet: the checkpoint's
   * snapshot waits for `endBatch` (its enqueueOffset must not pass an unlinked unit).
   */
  beginBatch(): void {
    this.batches++;
  }

  endBatch(): void {
    this.batches--;
    if (this.batches === 0) {
      const w = this.batchWaiters;
      this.batchWaiters = [];
      for (const r of w) r();
    }
  }

  private batches = 0;
  private batchWaiters: Array<() => void> = [];

  /** Whether `record` and `link` can run for the slot without reading the wheel file. */
  isLoaded(slot: number): boolean {
    return this.wheel.isLoaded(this.wheel.indexOf(slot));
  }

  load(slot: number): Promise<void> {
    return this.wheel.load(this.wheel.indexOf(slot));
  }

  /** The chain of `slot` (loaded), undefined when it has no unit. */
  record(slot: number): SlotRecord | undefined {
    const r = this.wheel.get(this.wheel.indexOf(slot));
    return r && r.slot === slot && r.count > 0 ? r : undefined;
  }

  /**
   * Appends a unit to the chain of `slot` (whose wheel page must be loaded: `isLoaded`). The
   * caller keeps every linked slot within [doneSlot, doneSlot + slotCount): an index is reused
   * only for a slot one lap later, and the older one must be delivered by then.
   */
  link(slot: number, deliverAtMs: number, phys: number, size: number): number {
    if (this.closed) throw new TsmqError('STORE_CLOSED', 'the timer store is closed');
    if (slot < this.doneSlot || slot >= this.doneSlot + this.slotCount) {
      throw new Error(
        `assertion failed: slot ${slot} outside [${this.doneSlot}, ${this.doneSlot + this.slotCount})`,
      );
    }
    const index = this.wheel.indexOf(slot);
    const prev = this.record(slot);
    const { pos, buf, at } = this.log.appendSlot(slot);
    encodeUnit(buf, at, { deliverAtMs, slot, phys, prevPos: prev ? prev.lastPos : -1, size });
    this.wheel.set(index, {
      slot,
      firstPos: prev ? prev.firstPos : pos,
      lastPos: pos,
      count: (prev?.count ?? 0) + 1,
    });
    this.pending++;
    return pos;
  }

  /** The unit at `pos`; CORRUPT_RECORD when it fails its CRC. */
  async readUnit(pos: number): Promise<StoredUnit> {
    const buf = await this.log.read(pos, TIMER_UNIT_BYTES);
    const u = decodeUnit(buf, 0);
    if (!u) throw new TsmqError('CORRUPT_RECORD', `timer log unit at ${pos} fails its CRC`);
    return { ...u, pos };
  }

  /**
   * Up to `max` units of `slot`'s chain, newest first, starting at `fromPos` (the record's
   * lastPos for the first call); `next` is where to go on (-1: the chain is done).
   */
  async readChain(
    slot: number,
    fromPos: number,
    max: number,
  ): Promise<{ units: StoredUnit[]; next: number }> {
    const units: StoredUnit[] = [];
    let pos = fromPos;
    while (pos >= 0 && units.length < max) {
      const u = await this.readUnit(pos);
      if (u.slot !== slot) {
        throw new TsmqError(
          'CORRUPT_RECORD',
          `timer log unit at ${pos} is in slot ${u.slot}, not in ${slot}'s chain`,
        );
      }
      units.push(u);
      pos = u.prevPos;
    }
    return { units, next: pos };
  }

  // ------------------------------------------------------------------------- checkpoints

  /** Too much waits for a checkpoint: the caller should await one before linking more. */
  needsCheckpoint(): boolean {
    return this.linkRoom() < LINK_ROOM_MIN || this.log.wantsFlush();
  }

  /** Links that may be made before the changed wheel records reach `dirtyMax`. */
  linkRoom(): number {
    return Math.max(0, this.dirtyMax - this.wheel.dirtyCount());
  }

  /** Makes everything linked so far and the current progress durable (see the file header). */
  checkpoint(): Promise<void> {
    if (this.checkpointing) {
      this.checkpointAgain = true;
      return this.checkpointing;
    }
    this.checkpointing = (async () => {
      try {
        do {
          this.checkpointAgain = false;
          await this.checkpointOnce();
        } while (this.checkpointAgain && !this.closed);
      } finally {
        this.checkpointing = undefined;
      }
    })();
    return this.checkpointing;
  }

  private async checkpointOnce(): Promise<void> {
    while (this.batches > 0) await new Promise<void>((r) => this.batchWaiters.push(r));
    // 1. One synchronous snapshot.
    const logEnd = this.log.end();
    const writes = this.wheel.takeDirty();
    const doneSlot = this.doneSlot;
    const c: TimerCheckpoint = {
      seq: this.seq + 1,
      logEnd,
      enqueueOffset: this.enqueueOffset ?? 0,
      doneSlot,
      pending: this.pending,
      precisionMs: this.precisionMs,
      slotCount: this.slotCount,
      doneBeforeMs: this.doneBeforeHook?.() ?? 0,
      segments: this.log.segmentInfos(),
      slotWrites: [...writes].map(([index, record]) => ({ index, record })),
    };
    const last = this.lastWritten;
    if (
      last &&
      writes.size === 0 &&
      last.logEnd === c.logEnd &&
      last.enqueueOffset === c.enqueueOffset &&
      last.doneSlot === c.doneSlot &&
      last.pending === c.pending &&
      last.doneBeforeMs === c.doneBeforeMs
    ) {
      return; // nothing new: an idle broker does not fsync every interval
    }
    try {
      await this.log.flush(logEnd); // 2.
      const file = path.join(this.opts.dir, CHECKPOINT_FILES[c.seq % 2]!);
      const created = !(await this.io.exists(file));
      const fd = await this.io.open(file, 'w+'); // 3.
      try {
        await writeFully(this.io, fd, encodeCheckpoint(c), 0);
        await this.io.fsync(fd);
      } finally {
        await this.io.close(fd);
      }
      if (created) await this.io.fsyncDir(this.opts.dir);
      this.seq = c.seq;
      this.lastWritten = c;
      await this.wheel.apply(writes); // 4.
    } catch (e) {
      this.wheel.giveBack(writes);
      this.checkpointFailures++;
      this.opts.logger.error({ err: e, dir: this.opts.dir }, 'timer checkpoint failed; the next one retries');
      throw e;
    }
    await this.log.deleteSegments(doneSlot, logEnd).catch((e: unknown) => {
      this.opts.logger.warn({ err: e }, 'deleting delivered timer log segments failed; retried later');
    }); // 5.
  }

  memory(): TimerStoreMemory {
    return {
      wheelPagesCached: this.wheel.cachedPages(),
      wheelDirtyRecords: this.wheel.dirtyCount(),
      logBlocksCached: this.log.cachedBlocks(),
      logTailBytes: this.log.tailBytes(),
    };
  }

  /** Log segments on disk. */
  segmentCount(): number {
    return this.log.segmentCount();
  }

  /** Wheel records found damaged since open (they read as empty). */
  corruptRecords(): number {
    return this.wheel.corruptRecords;
  }

  /** A final checkpoint, then the files close. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.checkpoint();
    } finally {
      this.closed = true;
      await this.log.close();
      await this.wheel.close();
    }
  }

  /** Closes the files without a checkpoint, as a crash would leave them (tests). */
  async abandon(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.checkpointing?.catch(() => undefined);
    await this.log.close();
    await this.wheel.close();
  }
}

async function readNewestCheckpoint(
  io: FileIo,
  dir: string,
): Promise<{ found: TimerCheckpoint | undefined; why: string[] }> {
  let found: TimerCheckpoint | undefined;
  const why: string[] = [];
  for (const name of CHECKPOINT_FILES) {
    const file = path.join(dir, name);
    if (!(await io.exists(file))) {
      why.push(`${name} missing`);
      continue;
    }
    const c = decodeCheckpoint(await io.readFile(file));
    if (typeof c === 'string') {
      why.push(`${name}: ${c}`);
      continue;
    }
    if (!found || c.seq > found.seq) found = c;
  }
  return { found, why };
}

/**
 * Builds the wheel's records from the log: units are in link order, so the last unit of a slot
 * in the log is its chain's newest, and each unit's prevPos already points at the one before.
 * Only slots from `doneSlot` on matter. Reads the log once, a segment at a time.
 */
async function rebuildWheel(
  wheel: TimerWheel,
  log: TimerLog,
  doneSlot: number,
  logEnd: number,
  segmentBytes: number,
): Promise<void> {
  const chunkUnits = 4096;
  for (const seg of log.segmentInfos()) {
    if (seg.maxSlot < doneSlot) continue;
    const end = Math.min(seg.base + segmentBytes, logEnd);
    for (let pos = seg.base; pos < end; pos += chunkUnits * TIMER_UNIT_BYTES) {
      const len = Math.min(chunkUnits * TIMER_UNIT_BYTES, end - pos);
      const buf = await log.readRaw(pos, len).catch(() => Buffer.alloc(0));
      for (let at = 0; at + TIMER_UNIT_BYTES <= buf.length; at += TIMER_UNIT_BYTES) {
        const u = decodeUnit(buf, at);
        if (!u || u.slot < doneSlot) continue;
        const index = wheel.indexOf(u.slot);
        await wheel.load(index);
        const prev = wheel.get(index);
        const same = prev !== undefined && prev.slot === u.slot;
        wheel.set(index, {
          slot: u.slot,
          firstPos: same ? prev.firstPos : pos + at,
          lastPos: pos + at,
          count: (same ? prev.count : 0) + 1,
        });
      }
      if (wheel.dirtyCount() >= 65_536) await wheel.apply(wheel.takeDirty());
    }
  }
  await wheel.apply(wheel.takeDirty());
}

/** For tests and tools: the raw bytes of a log segment. */
export async function readLogSegment(io: FileIo, dir: string, base: number, bytes: number): Promise<Buffer> {
  const fd = await io.open(path.join(dir, 'log', segmentName(base)), 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const n = await readFully(io, fd, buf, 0);
    return buf.subarray(0, n);
  } finally {
    await io.close(fd);
  }
}
