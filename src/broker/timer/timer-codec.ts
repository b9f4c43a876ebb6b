/**
 * The timer store's on-disk formats: pure functions over bytes. Every integer is big-endian; an
 * "i64" is a signed 64-bit integer kept as a JS number (exact to 2^53), "u32" unsigned 32 bits.
 * CRCs are CRC-32 (zlib's). The files, under <storeRoot>/timer/:
 *
 *   log/<20-digit byte offset>   the timer log: units, appended; segments of a fixed size
 *   wheel                        the wheel: a header block, then one slot record per wheel index
 *   checkpoint-0, checkpoint-1   checkpoints, written in turn (see timer-store.ts)
 *
 * A timer (a message waiting in rmq_sys_wheel_timer) belongs to the slot `deliverAt div
 * precisionMs` (an absolute slot number), or a later one when it arrived late or lies beyond the
 * wheel (see timer-service.ts). Each slot's units form a chain, newest first, through prevPos.
 *
 * Unit (40 bytes), one per timer, in the log:
 *
 *     0          8          16         24         32     36     40
 *     +----------+----------+----------+----------+------+------+
 *     | deliverAt| slot     | phys     | prevPos  | size | crc  |
 *     | i64 ms   | i64      | i64      | i64      | u32  | u32  |
 *     +----------+----------+----------+----------+------+------+
 *
 *   deliverAt  when the message is due, ms since the epoch
 *   slot       the absolute slot whose chain the unit is in
 *   phys       commit-log offset of the message (in rmq_sys_wheel_timer)
 *   prevPos    log position of the previous unit of the same slot; -1 for the chain's first
 *   size       bytes of the message record in the commit log
 *   crc        CRC-32 of bytes [0, 36)
 *
 * A unit's position is its byte offset in the log (segments are named by the offset of their
 * first byte and hold a whole number of units). An all-zero unit fails its CRC.
 *
 * Slot record (32 bytes), at 4096 + 32 × (slot mod slotCount) in the wheel file:
 *
 *     0          8          16         24     28     32
 *     +----------+----------+----------+------+------+
 *     | slot     | firstPos | lastPos  | count| crc  |
 *     | i64      | i64      | i64      | u32  | u32  |
 *     +----------+----------+----------+------+------+
 *
 *   slot       the absolute slot the record describes (an index is reused once per lap)
 *   firstPos   log position of the chain's oldest unit; lastPos its newest (the walk starts here)
 *   count      units in the chain
 *   crc        CRC-32 of bytes [0, 28)
 *
 * All zeros is an empty record (a sparse file reads so); a record whose slot is not the one
 * looked for is empty for that slot.
 *
 * Wheel header (the first 4096 bytes of the wheel file; the rest of the block is zero):
 *
 *     0        8     12         16           20         24         32     36
 *     +--------+-----+----------+------------+----------+----------+------+
 *     | magic  | ver | slotCount| precisionMs| slotBytes| createdMs| crc  |
 *     | 8      | u32 | u32      | u32        | u32 = 32 | i64      | u32  |
 *     +--------+-----+----------+------------+----------+----------+------+
 *
 *   magic "TSMQWHL1" (ASCII), version 1, crc over [0, 32).
 *
 * Checkpoint (variable length; checkpoint-0 and checkpoint-1 take turns):
 *
 *     0      8    12    16    24      32         40       48         56      60      64          72   76   80
 *     +------+----+-----+-----+-------+----------+--------+----------+-------+-------+-----------+----+----+
 *     |magic |ver |total| seq |logEnd |enqueueOff|doneSlot|  pending |precis.|slotCnt|doneBefore |  m |  n |
 *     | 8    |u32 | u32 | i64 | i64   |   i64    |  i64   |   i64    |  u32  |  u32  |   i64     |u32 |u32 |
 *     +------+----+-----+-----+-------+----------+--------+----------+-------+-------+-----------+----+----+
 *     | m × segment (16): base i64, maxSlot i64                                                          |
 *     | n × slot write (36): wheel index u32, slot record (32 bytes, as above)                           |
 *     | crc u32: CRC-32 of every byte before it                                                          |
 *     +--------------------------------------------------------------------------------------------------+
 *
 *   magic "TSMQTCP1", version 1, total = the file's length in bytes
 *   seq          increases by one per checkpoint; the valid file with the higher seq is current
 *   logEnd       the log's length: every unit below it is on disk (fsynced before this file)
 *   enqueueOff   every message of rmq_sys_wheel_timer queue 0 below this queue offset has its unit
 *                below logEnd
 *   doneSlot     every slot below it has been delivered
 *   pending      units in slots ≥ doneSlot
 *   precis.      precisionMs of the wheel; slotCnt its slotCount
 *   doneBefore   the timers of slot doneSlot due before this time (ms) were delivered already (0:
 *                none known), so a restart need not deliver them again
 *   segments     the log's segments with the highest slot of their units (a segment whose highest
 *                slot is below doneSlot holds nothing pending and is deleted)
 *   slot writes  wheel records changed since the previous checkpoint, re-applied at recovery
 *
 * What a crash leaves behind: a checkpoint cut short or torn fails its length or CRC, and the
 * other file (one checkpoint older) is used; see timer-store.ts for why that is always enough.
 */
import { crc32 } from 'node:zlib';

export const TIMER_UNIT_BYTES = 40;
export const SLOT_BYTES = 32;
export const WHEEL_HEADER_BYTES = 4096;
export const WHEEL_MAGIC = 'TSMQWHL1';
export const CHECKPOINT_MAGIC = 'TSMQTCP1';
export const FORMAT_VERSION = 1;
export const CHECKPOINT_FIXED_BYTES = 80;
const SEGMENT_ENTRY_BYTES = 16;
const SLOT_WRITE_BYTES = 4 + SLOT_BYTES;

const TWO_32 = 2 ** 32;

function put64(b: Buffer, p: number, v: number): void {
  const hi = Math.floor(v / TWO_32);
  b.writeInt32BE(hi, p);
  b.writeUInt32BE(v - hi * TWO_32, p + 4);
}

function get64(b: Buffer, p: number): number {
  return b.readInt32BE(p) * TWO_32 + b.readUInt32BE(p + 4);
}

function crcOf(b: Buffer, from: number, to: number): number {
  return crc32(b.subarray(from, to)) >>> 0;
}

// ------------------------------------------------------------------------------------- units

export interface TimerUnit {
  deliverAtMs: number;
  slot: number;
  phys: number;
  prevPos: number;
  size: number;
}

export function encodeUnit(b: Buffer, p: number, u: TimerUnit): void {
  put64(b, p, u.deliverAtMs);
  put64(b, p + 8, u.slot);
  put64(b, p + 16, u.phys);
  put64(b, p + 24, u.prevPos);
  b.writeUInt32BE(u.size, p + 32);
  b.writeUInt32BE(crcOf(b, p, p + 36), p + 36);
}

/** The unit at `p`, or undefined when its CRC does not match (torn, zeros, damage). */
export function decodeUnit(b: Buffer, p: number): TimerUnit | undefined {
  if (b.length < p + TIMER_UNIT_BYTES) return undefined;
  if (b.readUInt32BE(p + 36) !== crcOf(b, p, p + 36)) return undefined;
  return {
    deliverAtMs: get64(b, p),
    slot: get64(b, p + 8),
    phys: get64(b, p + 16),
    prevPos: get64(b, p + 24),
    size: b.readUInt32BE(p + 32),
  };
}

// ------------------------------------------------------------------------------------- slots

export interface SlotRecord {
  slot: number;
  firstPos: number;
  lastPos: number;
  count: number;
}

export function encodeSlot(b: Buffer, p: number, s: SlotRecord): void {
  put64(b, p, s.slot);
  put64(b, p + 8, s.firstPos);
  put64(b, p + 16, s.lastPos);
  b.writeUInt32BE(s.count, p + 24);
  b.writeUInt32BE(crcOf(b, p, p + 28), p + 28);
}

/** The record at `p`: undefined for an empty (all-zero) one, 'corrupt' when its CRC fails. */
export function decodeSlot(b: Buffer, p: number): SlotRecord | undefined | 'corrupt' {
  let zero = true;
  for (let i = p; i < p + SLOT_BYTES; i++) {
    if (b[i] !== 0) {
      zero = false;
      break;
    }
  }
  if (zero) return undefined;
  if (b.readUInt32BE(p + 28) !== crcOf(b, p, p + 28)) return 'corrupt';
  return {
    slot: get64(b, p),
    firstPos: get64(b, p + 8),
    lastPos: get64(b, p + 16),
    count: b.readUInt32BE(p + 24),
  };
}

// ------------------------------------------------------------------------------- wheel header

export interface WheelHeader {
  slotCount: number;
  precisionMs: number;
  createdMs: number;
}

export function encodeWheelHeader(h: WheelHeader): Buffer {
  const b = Buffer.alloc(WHEEL_HEADER_BYTES);
  b.write(WHEEL_MAGIC, 0, 'latin1');
  b.writeUInt32BE(FORMAT_VERSION, 8);
  b.writeUInt32BE(h.slotCount, 12);
  b.writeUInt32BE(h.precisionMs, 16);
  b.writeUInt32BE(SLOT_BYTES, 20);
  put64(b, 24, h.createdMs);
  b.writeUInt32BE(crcOf(b, 0, 32), 32);
  return b;
}

/** The header, or a sentence saying why the bytes are not one. */
export function decodeWheelHeader(b: Buffer): WheelHeader | string {
  if (b.length < 36) return `the wheel header is ${b.length} bytes long`;
  if (b.toString('latin1', 0, 8) !== WHEEL_MAGIC) return 'the wheel file does not start with its magic';
  if (b.readUInt32BE(32) !== crcOf(b, 0, 32)) return 'the wheel header fails its CRC';
  const version = b.readUInt32BE(8);
  if (version !== FORMAT_VERSION)
    return `the wheel is format version ${version}; this tsmq reads ${FORMAT_VERSION}`;
  if (b.readUInt32BE(20) !== SLOT_BYTES) return `the wheel's slot records are ${b.readUInt32BE(20)} bytes`;
  return { slotCount: b.readUInt32BE(12), precisionMs: b.readUInt32BE(16), createdMs: get64(b, 24) };
}

// -------------------------------------------------------------------------------- checkpoint

export interface SegmentInfo {
  base: number;
  /** Highest slot of a unit in the segment; -1 when it holds none. */
  maxSlot: number;
}

export interface SlotWrite {
  index: number;
  record: SlotRecord;
}

export interface TimerCheckpoint {
  seq: number;
  logEnd: number;
  enqueueOffset: number;
  doneSlot: number;
  pending: number;
  precisionMs: number;
  slotCount: number;
  doneBeforeMs: number;
  segments: SegmentInfo[];
  slotWrites: SlotWrite[];
}

export function checkpointBytes(segments: number, slotWrites: number): number {
  return CHECKPOINT_FIXED_BYTES + segments * SEGMENT_ENTRY_BYTES + slotWrites * SLOT_WRITE_BYTES + 4;
}

export function encodeCheckpoint(c: TimerCheckpoint): Buffer {
  const total = checkpointBytes(c.segments.length, c.slotWrites.length);
  const b = Buffer.alloc(total);
  b.write(CHECKPOINT_MAGIC, 0, 'latin1');
  b.writeUInt32BE(FORMAT_VERSION, 8);
  b.writeUInt32BE(total, 12);
  put64(b, 16, c.seq);
  put64(b, 24, c.logEnd);
  put64(b, 32, c.enqueueOffset);
  put64(b, 40, c.doneSlot);
  put64(b, 48, c.pending);
  b.writeUInt32BE(c.precisionMs, 56);
  b.writeUInt32BE(c.slotCount, 60);
  put64(b, 64, c.doneBeforeMs);
  b.writeUInt32BE(c.segments.length, 72);
  b.writeUInt32BE(c.slotWrites.length, 76);
  let p = CHECKPOINT_FIXED_BYTES;
  for (const s of c.segments) {
    put64(b, p, s.base);
    put64(b, p + 8, s.maxSlot);
    p += SEGMENT_ENTRY_BYTES;
  }
  for (const w of c.slotWrites) {
    b.writeUInt32BE(w.index, p);
    encodeSlot(b, p + 4, w.record);
    p += SLOT_WRITE_BYTES;
  }
  b.writeUInt32BE(crcOf(b, 0, p), p);
  return b;
}

/** The checkpoint, or a sentence saying why the bytes are not a whole, valid one. */
export function decodeCheckpoint(b: Buffer): TimerCheckpoint | string {
  if (b.length < CHECKPOINT_FIXED_BYTES + 4) return `${b.length} bytes: shorter than a checkpoint`;
  if (b.toString('latin1', 0, 8) !== CHECKPOINT_MAGIC) return 'no checkpoint magic';
  const version = b.readUInt32BE(8);
  if (version !== FORMAT_VERSION) return `format version ${version}; this tsmq reads ${FORMAT_VERSION}`;
  const total = b.readUInt32BE(12);
  const m = b.readUInt32BE(72);
  const n = b.readUInt32BE(76);
  if (total !== b.length || total !== checkpointBytes(m, n)) {
    return `length fields say ${total} bytes (${m} segments, ${n} slot writes) but the file has ${b.length}`;
  }
  if (b.readUInt32BE(total - 4) !== crcOf(b, 0, total - 4)) return 'CRC mismatch (torn or damaged)';
  const segments: SegmentInfo[] = [];
  let p = CHECKPOINT_FIXED_BYTES;
  for (let i = 0; i < m; i++) {
    segments.push({ base: get64(b, p), maxSlot: get64(b, p + 8) });
    p += SEGMENT_ENTRY_BYTES;
  }
  const slotWrites: SlotWrite[] = [];
  for (let i = 0; i < n; i++) {
    const record = decodeSlot(b, p + 4);
    if (record === 'corrupt' || record === undefined) return `slot write ${i} is not a valid record`;
    slotWrites.push({ index: b.readUInt32BE(p), record });
    p += SLOT_WRITE_BYTES;
  }
  return {
    seq: get64(b, 16),
    logEnd: get64(b, 24),
    enqueueOffset: get64(b, 32),
    doneSlot: get64(b, 40),
    pending: get64(b, 48),
    precisionMs: b.readUInt32BE(56),
    slotCount: b.readUInt32BE(60),
    doneBeforeMs: get64(b, 64),
    segments,
    slotWrites,
  };
}
