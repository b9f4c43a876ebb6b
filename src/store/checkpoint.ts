/**
 * The store checkpoint: how far the commit log is known durable and how far the consume queues
 * and the index were built and flushed. Recovery starts its scan here, so it bounds restart time.
 *
 * File `<root>/checkpoint`, 128 bytes: two 64-byte slots written alternately, so a torn write of
 * one slot always leaves the other intact. Recovery takes the valid slot with the higher sequence.
 *
 *   slot (64 bytes, big-endian)
 *   +--------+---------+----------+----------------+----------------+-----------------+
 *   | magic  | version | flags    | sequence       | flushedOffset  | dispatchedOffset|
 *   | u32    | u16     | u16      | i64            | i64            | i64             |
 *   | 0      | 4       | 6        | 8              | 16             | 24              |
 *   +--------+---------+----------+----------------+----------------+-----------------+
 *   | physicStoreTimestamp i64 @32 | logicsStoreTimestamp i64 @40 | reserved 8 @48    |
 *   +------------------------------+------------------------------+-------------------+
 *   | reserved u32 @56 | crc32 u32 @60 (CRC32 of bytes 0..59)                          |
 *   +------------------+-----------------------------------------------------------------+
 *
 * magic = 0x54534350 ("TSCP"), version = 1. flags bit 0 = CLEAN: written by a clean shutdown,
 * and then flushedOffset is the exact end of the log. flushedOffset: every commit-log byte below it
 * was fdatasync'ed. dispatchedOffset: every record below it is in the consume queues and the index,
 * and those were flushed. A crash leaves at worst one torn slot, whose CRC fails.
 */
import { crc32 } from 'node:zlib';
import { TsmqError } from '../common/errors.js';
import { type FileIo, readFully, writeFully } from './io.js';

export const CHECKPOINT_MAGIC = 0x54534350;
export const CHECKPOINT_VERSION = 1;
const SLOT_BYTES = 64;
const FLAG_CLEAN = 1;

export interface CheckpointState {
  flushedOffset: number;
  dispatchedOffset: number;
  physicStoreTimestamp: number;
  logicsStoreTimestamp: number;
  clean: boolean;
}

function writeI64(b: Buffer, pos: number, v: number): void {
  b.writeInt32BE(Math.floor(v / 0x1_0000_0000), pos);
  b.writeUInt32BE(v >>> 0, pos + 4);
}
function readI64(b: Buffer, pos: number): number {
  return b.readInt32BE(pos) * 0x1_0000_0000 + b.readUInt32BE(pos + 4);
}

export function encodeCheckpointSlot(s: CheckpointState, sequence: number): Buffer {
  const b = Buffer.alloc(SLOT_BYTES);
  b.writeUInt32BE(CHECKPOINT_MAGIC, 0);
  b.writeUInt16BE(CHECKPOINT_VERSION, 4);
  b.writeUInt16BE(s.clean ? FLAG_CLEAN : 0, 6);
  writeI64(b, 8, sequence);
  writeI64(b, 16, s.flushedOffset);
  writeI64(b, 24, s.dispatchedOffset);
  writeI64(b, 32, s.physicStoreTimestamp);
  writeI64(b, 40, s.logicsStoreTimestamp);
  b.writeUInt32BE(crc32(b.subarray(0, 60)) >>> 0, 60);
  return b;
}

/** Decodes one slot: the state and its sequence, or undefined if the slot is empty or torn. */
export function decodeCheckpointSlot(b: Buffer): { state: CheckpointState; sequence: number } | undefined {
  if (b.length < SLOT_BYTES) return undefined;
  if (b.readUInt32BE(0) !== CHECKPOINT_MAGIC) return undefined;
  if (b.readUInt32BE(60) !== crc32(b.subarray(0, 60)) >>> 0) return undefined;
  const version = b.readUInt16BE(4);
  if (version > CHECKPOINT_VERSION) {
    throw new TsmqError('STORE_VERSION_UNSUPPORTED', `checkpoint version ${version} is newer than this tsmq`);
  }
  return {
    sequence: readI64(b, 8),
    state: {
      clean: (b.readUInt16BE(6) & FLAG_CLEAN) !== 0,
      flushedOffset: readI64(b, 16),
      dispatchedOffset: readI64(b, 24),
      physicStoreTimestamp: readI64(b, 32),
      logicsStoreTimestamp: readI64(b, 40),
    },
  };
}

export class Checkpoint {
  private sequence = 0;
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly io: FileIo,
    private readonly fd: number,
    readonly loaded: CheckpointState | undefined,
  ) {}

  /** Opens (or creates) the checkpoint file and reads the newest valid slot. */
  static async open(io: FileIo, path: string): Promise<Checkpoint> {
    const existed = await io.exists(path);
    const fd = await io.open(path, existed ? 'r+' : 'w+');
    const buf = Buffer.alloc(SLOT_BYTES * 2);
    const n = existed ? await readFully(io, fd, buf, 0, buf.length, 0) : 0;
    let best: { state: CheckpointState; sequence: number } | undefined;
    for (let slot = 0; slot < 2; slot++) {
      if (n < (slot + 1) * SLOT_BYTES) break;
      const d = decodeCheckpointSlot(buf.subarray(slot * SLOT_BYTES, (slot + 1) * SLOT_BYTES));
      if (d && (!best || d.sequence > best.sequence)) best = d;
    }
    const cp = new Checkpoint(io, fd, best?.state);
    cp.sequence = best?.sequence ?? 0;
    return cp;
  }

  /** Durably records `s` in the slot not holding the newest state. Calls are serialized. */
  write(s: CheckpointState): Promise<void> {
    const run = async () => {
      // The sequence advances only after a successful write, so a failed write is retried into
      // the same slot and the slot holding the newest durable state is never the one overwritten.
      const next = this.sequence + 1;
      const b = encodeCheckpointSlot(s, next);
      await writeFully(this.io, this.fd, b, 0, b.length, (next % 2) * SLOT_BYTES);
      await this.io.fdatasync(this.fd);
      this.sequence = next;
    };
    const p = this.writing.then(run, run);
    this.writing = p.catch(() => undefined);
    return p;
  }

  async close(): Promise<void> {
    await this.writing;
    await this.io.close(this.fd);
  }
}
