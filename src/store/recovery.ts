/**
 * Crash recovery of the commit log: find where the valid log ends.
 *
 * Truth table (abort marker present = the last run did not shut down cleanly):
 *
 *   abort  checkpoint        scan from                     end of log
 *   -----  ----------------  ----------------------------  -----------------------------------
 *   no     valid, CLEAN      nothing to scan               checkpoint.flushedOffset
 *   no     valid, not CLEAN  checkpoint.flushedOffset      first invalid record (or zeros)
 *   yes    valid             checkpoint.flushedOffset      first invalid record (or zeros)
 *   any    missing or torn   min offset of the log         first invalid record (or zeros)
 *
 * (A checkpoint below the oldest segment, after old segments were deleted by hand, counts from
 * the oldest segment; one past the newest segment's end means files are missing: an error.)
 *
 * "Invalid" is any record whose size, magic, physical-offset field, lengths or body CRC do not
 * check out, or a blank record that does not end its segment exactly. Everything from there on is
 * cut away (see CommitLog.truncateTo), and the consume queues and index are repaired to match by
 * the caller. Bytes below checkpoint.flushedOffset were fdatasync'ed before the checkpoint was
 * written, so they are not re-validated.
 */
import { TsmqError } from '../common/errors.js';
import { decodeRecord, hasRecordCrc } from '../message/index.js';
import type { CheckpointState } from './checkpoint.js';
import type { CommitLog } from './commit-log.js';

export interface ScanResult {
  /** Offset just past the last valid record (or blank). */
  end: number;
  /** Records validated by the scan. */
  records: number;
  /** Why the scan stopped, for the log line. */
  stoppedBecause: string;
}

const SCAN_CHUNK_BYTES = 4 * 1024 * 1024;

/** Validates records from `from` forward and returns where the valid log ends. */
export async function scanCommitLog(
  log: CommitLog,
  from: number,
  maxRecordBytes: number,
  requireRecordCrc: boolean,
): Promise<ScanResult> {
  let off = from;
  let records = 0;
  // The next chunk is read while this one is validated; a record cut by the chunk boundary is
  // carried over and joined with the next chunk.
  let prefetch: { at: number; data: Promise<Buffer> } | undefined;
  let carry: Buffer | undefined;
  for (;;) {
    const seg = log.segmentFor(off);
    if (!seg) return { end: off, records, stoppedBecause: 'end of the last segment' };
    const segEnd = seg.base + seg.capacity;
    const readAt = off + (carry?.length ?? 0);
    let chunk: Buffer;
    if (prefetch && prefetch.at === readAt) chunk = await prefetch.data;
    else
      chunk =
        readAt < segEnd
          ? await log.readFromDisk(readAt, Math.min(SCAN_CHUNK_BYTES, segEnd - readAt))
          : Buffer.alloc(0);
    prefetch = undefined;
    if (chunk.length === 0 && readAt < segEnd) {
      return { end: off, records, stoppedBecause: `segment file ends early at ${readAt}` };
    }
    let buf = carry ? Buffer.concat([carry, chunk]) : chunk;
    carry = undefined;
    const bufEnd = off + buf.length;
    if (bufEnd < segEnd) {
      const data = log.readFromDisk(bufEnd, Math.min(SCAN_CHUNK_BYTES, segEnd - bufEnd));
      data.catch(() => undefined);
      prefetch = { at: bufEnd, data };
    }
    let pos = 0;
    let nextSegment = false;
    while (pos < buf.length) {
      const r = decodeRecord(buf, pos, {
        checkCrc: true,
        expectedPhysicalOffset: off,
        maxRecordBytes,
        requireRecordCrc,
        validateOnly: true,
      });
      if (r.kind === 'valid') {
        pos += r.size;
        off += r.size;
        records++;
      } else if (r.kind === 'blank') {
        if (off + r.size !== segEnd) {
          return { end: off, records, stoppedBecause: `blank record at ${off} does not end its segment` };
        }
        off = segEnd;
        nextSegment = true;
        break;
      } else if (r.kind === 'end') {
        return { end: off, records, stoppedBecause: 'zeros after the last record' };
      } else if (r.kind === 'need-more') {
        if (off + r.needed > segEnd) {
          return { end: off, records, stoppedBecause: `record at ${off} runs past its segment` };
        }
        if (pos === 0 && bufEnd >= segEnd) {
          return { end: off, records, stoppedBecause: `record at ${off} is cut short` };
        }
        if (pos === 0 && r.needed > SCAN_CHUNK_BYTES) {
          // A record larger than a chunk: read exactly it.
          buf = await log.readFromDisk(off, r.needed);
          if (buf.length < r.needed)
            return { end: off, records, stoppedBecause: `record at ${off} is cut short` };
          prefetch = undefined;
          continue;
        }
        carry = buf.subarray(pos);
        break;
      } else {
        const why = r.kind === 'corrupt' ? r.reason : `unexpected ${r.kind}`;
        return { end: off, records, stoppedBecause: `invalid record at ${off}: ${why}` };
      }
    }
    if (!nextSegment && !carry && off >= segEnd) nextSegment = true;
    if (nextSegment) {
      carry = undefined;
      prefetch = undefined;
      if (!log.segmentFor(off)) return { end: off, records, stoppedBecause: 'end of the last segment' };
    }
  }
}

/**
 * Whether this log's records carry the record CRC: all of them do or none do, so the first
 * record tells. An empty log takes the configured choice.
 */
export async function detectRecordCrc(log: CommitLog, configured: boolean): Promise<boolean> {
  const first = log.segmentFor(log.minOffset());
  if (!first) return configured;
  let buf = await log.readFromDisk(first.base, 4096);
  let r = decodeRecord(buf, 0, { checkCrc: false });
  if (r.kind === 'need-more' && r.needed <= first.capacity) {
    buf = await log.readFromDisk(first.base, r.needed);
    r = decodeRecord(buf, 0, { checkCrc: false });
  }
  if (r.kind !== 'record') return configured;
  return hasRecordCrc(buf, 0, r.record.totalSize);
}

export interface RecoveryDecision {
  crashed: boolean;
  scanFrom: number | undefined;
  trustedEnd: number | undefined;
}

/** The truth table above, as code. */
export function decideRecovery(
  abortMarker: boolean,
  cp: CheckpointState | undefined,
  log: CommitLog,
): RecoveryDecision {
  const min = log.minOffset();
  const segs = log.segmentList();
  const last = segs.at(-1);
  const maxEnd = last ? last.base + last.capacity : min;
  if (cp && cp.flushedOffset > maxEnd && segs.length > 0) {
    throw new TsmqError(
      'STORE_LAYOUT_INVALID',
      `checkpoint says the log was flushed to ${cp.flushedOffset} but the segments end at ${maxEnd}: commit-log files are missing`,
    );
  }
  // Old segments removed by hand (an operator freeing disk) leave the checkpoint below the log:
  // the scan then starts at the oldest segment left.
  const from = cp ? Math.max(cp.flushedOffset, min) : min;
  if (!abortMarker && cp?.clean && cp.flushedOffset >= min) {
    return { crashed: false, scanFrom: undefined, trustedEnd: cp.flushedOffset };
  }
  return { crashed: abortMarker, scanFrom: from, trustedEnd: undefined };
}
