/**
 * The timer wheel file: a header block, then `slotCount` slot records of 32 bytes
 * (timer-codec.ts); absolute slot s lives at index s mod slotCount. The file is created at its
 * full length as a sparse file, so untouched records read as zeros (empty).
 *
 * In memory: a cache of pages (128 records, 4 KiB each) read from the file, least recently used
 * dropped first, and the records changed since the last checkpoint ("dirty"). Changes never go
 * to the file directly: a checkpoint takes the dirty records (`takeDirty`), writes them into the
 * checkpoint file first and only then into the wheel (`apply`), so that a crash in the middle of
 * writing the wheel is repaired by re-applying the checkpoint (see timer-store.ts).
 *
 * Cached pages always hold the newest records: `set` writes into a cached page, and a page read
 * from the file gets the dirty and still-being-applied records laid over it.
 */
import { TsmqError } from '../../common/errors.js';
import type { FileIo } from '../../store/index.js';
import {
  decodeSlot,
  decodeWheelHeader,
  encodeSlot,
  encodeWheelHeader,
  SLOT_BYTES,
  type SlotRecord,
  WHEEL_HEADER_BYTES,
  type WheelHeader,
} from './timer-codec.js';
import { readFully, writeFully } from './timer-log.js';

const PAGE_SLOTS = 128;
const PAGE_BYTES = PAGE_SLOTS * SLOT_BYTES;
/** Neighbouring pages applied in one read and one write at most (1 MiB). */
const APPLY_RUN_PAGES = 256;

export class TimerWheel {
  private readonly pages = new Map<number, Buffer>();
  private readonly loading = new Map<number, Promise<void>>();
  private dirty = new Map<number, SlotRecord>();
  private applying = new Map<number, SlotRecord>();
  /** Records found corrupt (CRC) since open; they read as empty. */
  corruptRecords = 0;

  private constructor(
    private readonly io: FileIo,
    private readonly fd: number,
    readonly header: WheelHeader,
    readonly pageCacheMax: number,
  ) {}

  get slotCount(): number {
    return this.header.slotCount;
  }

  /** Creates a new, empty wheel file at `file` (replacing any). */
  static async create(
    io: FileIo,
    file: string,
    header: WheelHeader,
    pageCacheMax: number,
  ): Promise<TimerWheel> {
    const fd = await io.open(file, 'w+');
    await writeFully(io, fd, encodeWheelHeader(header), 0);
    await io.ftruncate(fd, WHEEL_HEADER_BYTES + header.slotCount * SLOT_BYTES);
    await io.fsync(fd);
    return new TimerWheel(io, fd, header, pageCacheMax);
  }

  /** Opens an existing wheel; STORE_LAYOUT_INVALID when its header is not valid. */
  static async open(io: FileIo, file: string, pageCacheMax: number): Promise<TimerWheel> {
    const fd = await io.open(file, 'r+');
    try {
      const head = Buffer.alloc(WHEEL_HEADER_BYTES);
      const n = await readFully(io, fd, head, 0);
      const header = decodeWheelHeader(head.subarray(0, n));
      if (typeof header === 'string') throw new TsmqError('STORE_LAYOUT_INVALID', `${file}: ${header}`);
      const size = await io.fstatSize(fd);
      if (size < WHEEL_HEADER_BYTES + header.slotCount * SLOT_BYTES) {
        await io.ftruncate(fd, WHEEL_HEADER_BYTES + header.slotCount * SLOT_BYTES);
      }
      return new TimerWheel(io, fd, header, pageCacheMax);
    } catch (e) {
      await io.close(fd);
      throw e;
    }
  }

  indexOf(slot: number): number {
    return slot % this.header.slotCount;
  }

  pageOf(index: number): number {
    return Math.floor(index / PAGE_SLOTS);
  }

  /** Whether `get` can answer for the slot's index without reading the file. */
  isLoaded(index: number): boolean {
    return (
      this.dirty.has(index) || this.applying.has(index) || this.pages.has(Math.floor(index / PAGE_SLOTS))
    );
  }

  /** Reads the page holding `index` into the cache. */
  load(index: number): Promise<void> {
    const page = Math.floor(index / PAGE_SLOTS);
    if (this.pages.has(page)) return Promise.resolve();
    let p = this.loading.get(page);
    if (!p) {
      p = this.readPage(page).finally(() => this.loading.delete(page));
      this.loading.set(page, p);
    }
    return p;
  }

  private async readPage(page: number): Promise<void> {
    const buf = Buffer.alloc(PAGE_BYTES);
    const first = page * PAGE_SLOTS;
    const count = Math.min(PAGE_SLOTS, this.header.slotCount - first);
    await readFully(
      this.io,
      this.fd,
      buf.subarray(0, count * SLOT_BYTES),
      WHEEL_HEADER_BYTES + first * SLOT_BYTES,
    );
    if (this.applying.size > 0 || this.dirty.size > 0) {
      for (let index = first; index < first + count; index++) {
        const rec = this.dirty.get(index) ?? this.applying.get(index);
        if (rec) encodeSlot(buf, (index - first) * SLOT_BYTES, rec);
      }
    }
    this.pages.set(page, buf);
    while (this.pages.size > this.pageCacheMax) this.pages.delete(this.pages.keys().next().value!);
  }

  /** The record at `index` (which must be loaded), undefined when empty. */
  get(index: number): SlotRecord | undefined {
    const d = this.dirty.get(index) ?? this.applying.get(index);
    if (d) return d;
    const page = Math.floor(index / PAGE_SLOTS);
    const buf = this.pages.get(page);
    if (!buf) throw new Error(`timer wheel index ${index} read before its page was loaded`);
    // Recently used pages stay.
    this.pages.delete(page);
    this.pages.set(page, buf);
    const rec = decodeSlot(buf, (index - page * PAGE_SLOTS) * SLOT_BYTES);
    if (rec === 'corrupt') {
      this.corruptRecords++;
      return undefined;
    }
    return rec;
  }

  set(index: number, rec: SlotRecord): void {
    this.dirty.set(index, rec);
    const page = Math.floor(index / PAGE_SLOTS);
    const buf = this.pages.get(page);
    if (buf) encodeSlot(buf, (index - page * PAGE_SLOTS) * SLOT_BYTES, rec);
  }

  dirtyCount(): number {
    return this.dirty.size;
  }

  cachedPages(): number {
    return this.pages.size;
  }

  /** Takes the records changed since the last call, for a checkpoint (then `apply` them). */
  takeDirty(): Map<number, SlotRecord> {
    const taken = this.dirty;
    this.dirty = new Map();
    for (const [k, v] of taken) this.applying.set(k, v);
    return taken;
  }

  /** A checkpoint failed: its records count as changed again (unless changed since). */
  giveBack(taken: Map<number, SlotRecord>): void {
    for (const [k, v] of taken) {
      if (!this.dirty.has(k)) this.dirty.set(k, v);
      this.applying.delete(k);
    }
  }

  /**
   * Writes records into the file and fsyncs. Records are applied a page at a time over what the
   * file holds (read, overlay, write), runs of neighbouring pages in one read and one write (at
   * most 1 MiB), so a checkpoint of many scattered records costs a few large I/Os, not one per
   * record. Cached pages are not written as they are: they may hold records changed after the
   * checkpoint, which must not reach the wheel before their own checkpoint.
   */
  async apply(records: Map<number, SlotRecord>): Promise<void> {
    if (records.size > 0) {
      const sorted = [...records].sort((a, b) => a[0] - b[0]);
      const pages = [...new Set(sorted.map(([i]) => this.pageOf(i)))];
      let k = 0;
      const slotsEnd = WHEEL_HEADER_BYTES + this.header.slotCount * SLOT_BYTES;
      let i = 0;
      while (i < pages.length) {
        let j = i + 1;
        while (j < pages.length && pages[j] === pages[j - 1]! + 1 && j - i < APPLY_RUN_PAGES) j++;
        const from = WHEEL_HEADER_BYTES + pages[i]! * PAGE_BYTES;
        const to = Math.min(slotsEnd, WHEEL_HEADER_BYTES + (pages[j - 1]! + 1) * PAGE_BYTES);
        const buf = Buffer.alloc(to - from);
        await readFully(this.io, this.fd, buf, from);
        const first = pages[i]! * PAGE_SLOTS;
        const last = (pages[j - 1]! + 1) * PAGE_SLOTS;
        for (; k < sorted.length && sorted[k]![0] < last; k++) {
          encodeSlot(buf, (sorted[k]![0] - first) * SLOT_BYTES, sorted[k]![1]);
        }
        await writeFully(this.io, this.fd, buf, from);
        i = j;
      }
    }
    await this.io.fdatasync(this.fd);
    for (const [k, v] of records) if (this.applying.get(k) === v) this.applying.delete(k);
  }

  async close(): Promise<void> {
    await this.io.close(this.fd).catch(() => undefined);
  }
}
