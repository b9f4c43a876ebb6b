/**
 * Retention: delete the oldest commit-log segments, and the consume-queue and index files that only
 * point into them, when they are old enough or the disk is filling; refuse appends when it is full.
 *
 * A segment's age is the store time of the first message after it (the first record of the next
 * segment), read from the log itself, so it follows the store's clock, not file times. The newest
 * segment is never deleted, nor any segment not yet flushed and dispatched.
 *
 *   disk used ≥ warning (90 %)    → appends refused with DISK_FULL until usage falls again
 *   disk used ≥ forcibly (85 %)   → delete the oldest segments even if not expired
 *   disk used ≥ max used (75 %),
 *   or the hour is in deleteWhen,
 *   or a manual request           → delete segments older than fileReservedTimeHours
 *   otherwise                     → nothing
 *
 * Ratios are clamped as RocketMQ does: max used 10–95 %, forcibly 30–85 %, warning 35–90 %.
 */
import type { Clock } from '../common/clock.js';
import { decodeRecord } from '../message/index.js';
import type { CommitLog } from './commit-log.js';
import type { ConsumeQueueStore } from './consume-queue-store.js';
import type { IndexService } from './index-service.js';
import type { FileIo } from './io.js';

export interface RetentionOptions {
  fileReservedTimeHours: number;
  /** Hours of the day (local time) when expired files are deleted, e.g. "04" or "04;16". */
  deleteWhen: string;
  diskMaxUsedSpaceRatio: number;
  diskSpaceCleanForciblyRatio: number;
  diskSpaceWarningLevelRatio: number;
  /** Segments deleted per round at most. */
  deleteFilesBatchMax: number;
}

export const defaultRetentionOptions: RetentionOptions = {
  fileReservedTimeHours: 72,
  deleteWhen: '04',
  diskMaxUsedSpaceRatio: 75,
  diskSpaceCleanForciblyRatio: 85,
  diskSpaceWarningLevelRatio: 90,
  deleteFilesBatchMax: 10,
};

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

export interface RetentionRound {
  diskUsedRatio: number;
  diskFull: boolean;
  reason: 'none' | 'time' | 'disk' | 'forced' | 'manual';
  deletedSegments: number;
}

export class Retention {
  private diskFull_ = false;
  private manualRequests = 0;
  private lastUsedRatio = 0;

  constructor(
    private readonly io: FileIo,
    private readonly rootDir: string,
    private readonly log: CommitLog,
    private readonly cqs: ConsumeQueueStore,
    private readonly index: IndexService,
    private readonly opts: RetentionOptions,
    private readonly clock: Clock,
    /** Offset below which segments may go (flushed and dispatched). */
    private readonly safeOffset: () => number,
  ) {}

  diskFull(): boolean {
    return this.diskFull_;
  }

  diskUsedRatio(): number {
    return this.lastUsedRatio;
  }

  /** Asks the next rounds to delete expired segments whatever the hour (mqadmin deleteExpiredCommitLog). */
  requestDelete(): void {
    this.manualRequests = 20;
  }

  private running: Promise<RetentionRound> | undefined;

  /** Resolves when no round is running (close waits for it before closing files). */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  /** One round; concurrent calls share the round in progress. */
  step(): Promise<RetentionRound> {
    if (!this.running) {
      this.running = this.round().finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  private async round(): Promise<RetentionRound> {
    const usage = await this.io.diskUsage(this.rootDir);
    const used = usage.totalBytes > 0 ? (100 * (usage.totalBytes - usage.freeBytes)) / usage.totalBytes : 0;
    this.lastUsedRatio = used;
    const warning = clamp(this.opts.diskSpaceWarningLevelRatio, 35, 90);
    const forcibly = clamp(this.opts.diskSpaceCleanForciblyRatio, 30, 85);
    const maxUsed = clamp(this.opts.diskMaxUsedSpaceRatio, 10, 95);
    this.diskFull_ = used >= warning;

    const now = this.clock.now();
    const hours = this.opts.deleteWhen.split(';').map((h) => Number(h.trim()));
    let reason: RetentionRound['reason'] = 'none';
    if (used >= forcibly) reason = 'forced';
    else if (used >= maxUsed) reason = 'disk';
    else if (this.manualRequests > 0) reason = 'manual';
    else if (hours.includes(new Date(now).getHours())) reason = 'time';
    if (this.manualRequests > 0) this.manualRequests--;
    if (reason === 'none')
      return { diskUsedRatio: used, diskFull: this.diskFull_, reason, deletedSegments: 0 };

    const reservedMs = this.opts.fileReservedTimeHours * 3600_000;
    const safe = this.safeOffset();
    const deleted = await this.log.deleteOldest(async (seg) => {
      const next = seg.base + seg.capacity;
      if (next > safe) return false;
      if (reason === 'forced') return true;
      const nextFirstStored = await this.firstStoreTimestamp(next);
      return nextFirstStored !== undefined && nextFirstStored + reservedMs <= now;
    }, this.opts.deleteFilesBatchMax);
    if (deleted > 0) {
      const min = this.log.minOffset();
      await this.cqs.correctAllMinOffsets(min);
      await this.index.deleteFilesBelow(min);
    }
    return { diskUsedRatio: used, diskFull: this.diskFull_, reason, deletedSegments: deleted };
  }

  private async firstStoreTimestamp(segmentBase: number): Promise<number | undefined> {
    try {
      const head = await this.log.read(segmentBase, 4096);
      const r = decodeRecord(head, 0, { checkCrc: false, maxRecordBytes: 256 * 1024 * 1024 });
      if (r.kind === 'record') return r.record.storeTimestamp;
      if (r.kind === 'need-more') {
        const whole = await this.log.read(segmentBase, r.needed);
        const again = decodeRecord(whole, 0, { checkCrc: false, maxRecordBytes: 256 * 1024 * 1024 });
        if (again.kind === 'record') return again.record.storeTimestamp;
      }
    } catch {
      // unreadable: treat as not expired
    }
    return undefined;
  }
}
