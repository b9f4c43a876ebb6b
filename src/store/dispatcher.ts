/**
 * The dispatcher (RocketMQ's "reput" service): the only writer of consume queues and the index.
 * It reads the commit log from `dispatchedOffset` up to a limit — the written offset under ASYNC
 * flush, the flushed offset under SYNC flush, so consumers never see bytes a crash could take
 * back — decodes each record and:
 *   - puts a 20-byte unit into the record's consume queue (unless it is a prepared or rolled-back
 *     transaction half, which consumers must not see); its tagsCode is the tag hash, or for the
 *     schedule and timer topics the delivery time (see DELIVER_TIME_TOPICS);
 *   - indexes `topic#UNIQ_KEY` and `topic#<each KEYS value>` (rolled-back halves excepted);
 *   - tells listeners (long polling, later) that a message arrived.
 *
 * A record written from the tail cache usually has a dispatch hint (record.ts): what decoding it
 * gives, worked out by the CRC thread before the write, so the record's bytes are not read again
 * on this thread (CommitLog.takeDispatchHint). Records without one are decoded here.
 *
 * Consume-queue puts are idempotent (the unit goes to position QUEUEOFFSET × 20), so recovery can
 * re-dispatch from an older checkpoint without duplicating anything. `step()` does one bounded
 * round and is what tests drive; in production `wake()` runs rounds until caught up.
 */
import { javaStringHashCode } from '../common/java-hash.js';
import {
  type DecodeOptions,
  type DecodeResult,
  type DispatchInfo,
  dispatchProperties,
  getProperty,
  locateRecord,
  MAGIC_V1,
  MAGIC_V2,
  MessageProperty,
  newDispatchInfo,
  newRecordLayout,
  readDispatchInfo,
  SysFlag,
  transactionType,
} from '../message/index.js';
import type { CommitLog } from './commit-log.js';
import type { ConsumeQueueStore } from './consume-queue-store.js';
import { indexKeyHashOf } from './index-file.js';
import type { IndexService } from './index-service.js';

/** What listeners learn about each dispatched message. */
/** Stands for "a valid record" where `locateRecord` answers undefined. */
const VALID: DecodeResult = { kind: 'valid', size: 0 };

/**
 * The size of the record at `pos` if it is a record this process wrote, whole in `buf`, at commit-log
 * offset `offset`; else 0. For bytes of the commit log's tail cache: written by `writeRecord` from
 * records `prepareRecord` validated, and never touched by a disk, so framing (size, magic, position)
 * is all that needs checking; anything odd goes to the full check (`locateRecord`).
 */
function ownRecordSize(buf: Buffer, pos: number, offset: number): number {
  if (pos + 36 > buf.length) return 0;
  const size = (buf[pos]! << 24) | (buf[pos + 1]! << 16) | (buf[pos + 2]! << 8) | buf[pos + 3]!;
  const magic = (buf[pos + 4]! << 24) | (buf[pos + 5]! << 16) | (buf[pos + 6]! << 8) | buf[pos + 7]!;
  if ((magic !== MAGIC_V1 && magic !== MAGIC_V2) || size < 36 || pos + size > buf.length) return 0;
  const hi = (buf[pos + 28]! << 24) | (buf[pos + 29]! << 16) | (buf[pos + 30]! << 8) | buf[pos + 31]!;
  const lo = ((buf[pos + 32]! << 24) | (buf[pos + 33]! << 16) | (buf[pos + 34]! << 8) | buf[pos + 35]!) >>> 0;
  return hi * 4294967296 + lo === offset ? size : 0;
}

export interface DispatchedMessage {
  topic: string;
  queueId: number;
  queueOffset: number;
  physicalOffset: number;
  size: number;
  tagsCode: number;
  storeTimestamp: number;
  properties: string;
}

export interface DispatcherOptions {
  /** Bytes read from the commit log per round. */
  readChunkBytes: number;
  messageIndexEnable: boolean;
  /** Largest record accepted (see MessageStore). */
  maxRecordBytes: number;
}

/** Tag code of a message: Java hashCode of its TAGS property, 0 when it has none. */
export function tagsCodeOf(properties: string): number {
  const tags = getProperty(properties, MessageProperty.TAGS);
  return tags ? javaStringHashCode(tags) : 0;
}

/**
 * Topics whose consume-queue tagsCode is a delivery time, not a tag hash: the broker's schedule
 * topic (delay levels) and timer topic. RocketMQ keeps the deliver-at time of SCHEDULE_TOPIC_XXXX
 * messages there, so a delivery loop sees when the head of a queue is due without reading the
 * log. The broker puts the time (ms since the epoch) in the TIMER_OUT_MS property when it moves a
 * message to one of these topics; a record without a valid one gets its store time (due at once).
 * The rule depends on the record alone, so a replay after a crash writes the same unit.
 */
const DELIVER_TIME_TOPICS: ReadonlySet<string> = new Set(['SCHEDULE_TOPIC_XXXX', 'rmq_sys_wheel_timer']);

function deliverTimeOf(rec: DispatchInfo): number {
  const v = getProperty(dispatchProperties(rec), MessageProperty.TIMER_OUT_MS);
  const n = v !== undefined && /^\d{1,16}$/.test(v) ? Number(v) : Number.NaN;
  return Number.isSafeInteger(n) ? n : rec.storeTimestamp;
}

export class Dispatcher {
  private offset: number;
  private running = false;
  private stopped = false;
  private readonly listeners: Array<(m: DispatchedMessage) => void> = [];
  private idleWaiters: Array<() => void> = [];
  /** A corrupt record stops dispatch (it is never skipped silently); recovery deals with it. */
  private blocked: string | undefined;
  /** Last store timestamp dispatched, for the checkpoint. */
  lastStoreTimestamp = 0;

  constructor(
    private readonly log: CommitLog,
    private readonly cqs: ConsumeQueueStore,
    private readonly index: IndexService,
    private readonly limit: () => number,
    private readonly opts: DispatcherOptions,
    from: number,
  ) {
    this.offset = from;
  }

  dispatchedOffset(): number {
    return this.offset;
  }

  blockedReason(): string | undefined {
    return this.blocked;
  }

  onMessage(listener: (m: DispatchedMessage) => void): void {
    this.listeners.push(listener);
  }

  /** Runs rounds until caught up with the limit; safe to call often. */
  wake(): void {
    if (this.running || this.stopped || this.holds > 0) return;
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      while (!this.stopped && (await this.step())) {
        // keep going while there is more
      }
      this.lastError = undefined;
    } catch (e) {
      // A read failed (an I/O error, or a segment deleted under us): try again shortly.
      this.lastError = e;
      this.running = false;
      if (!this.stopped) setTimeout(() => this.wake(), 100).unref();
      this.releaseIdle();
      return;
    } finally {
      this.running = false;
    }
    if (!this.stopped && this.offset < this.limit() && !this.blocked) this.wake();
    else if (this.offset >= this.limit() || this.blocked) this.releaseIdle();
  }

  /** The last read error of the dispatch loop, cleared by the next successful round. */
  lastError: unknown;

  /** Resolves when everything below the current limit is dispatched. */
  async drain(): Promise<void> {
    while (this.offset < this.limit() && !this.blocked && !this.stopped) {
      if (this.running || this.holds > 0) {
        await new Promise<void>((r) => this.idleWaiters.push(r));
      } else {
        await this.step();
      }
    }
  }

  private releaseIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const r of w) r();
  }

  stop(): void {
    this.stopped = true;
    this.releaseIdle();
  }

  /** One round: dispatches what one read returns. Returns true if more may be waiting. */
  /**
   * Pauses dispatch (after the round in progress) until the returned release is called: for
   * changes that must not interleave with it, such as deleting a topic's queues.
   */
  async hold(): Promise<() => void> {
    this.holds++;
    while (this.running) await new Promise<void>((r) => this.idleWaiters.push(r));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
      if (this.holds === 0) {
        this.wake();
        if (!this.running) this.releaseIdle();
      }
    };
  }

  private holds = 0;

  async step(): Promise<boolean> {
    const limit = this.limit();
    if (this.offset >= limit || this.blocked || this.holds > 0) return false;
    if (this.offset < this.log.minOffset()) {
      // Retention removed what we had not reached (only possible when far behind); skip ahead.
      this.offset = this.log.minOffset();
    }
    const seg = this.log.segmentFor(this.offset);
    if (!seg) return false;
    const want = Math.min(limit, seg.base + seg.capacity) - this.offset;
    // A cached view is used at once and dropped: this round is synchronous from here on (but for
    // the rare oversized record, which is read anew), so the view cannot outlive its arena's use.
    const chunk = Math.min(want, this.opts.readChunkBytes);
    let buf = this.log.sequentialView(this.offset, chunk);
    // Bytes from the tail cache were written by this process: framing checks suffice.
    let own = buf !== undefined;
    buf ??= await this.log.readSequential(this.offset, chunk);
    let pos = 0;
    const check = this.check;
    check.maxRecordBytes = this.opts.maxRecordBytes;
    while (pos < buf.length) {
      // The CRC thread read this record before it was written and left what dispatch needs (a
      // hint): the record's bytes need not be read again here.
      const hinted = own ? this.log.takeDispatchHint(this.offset, buf, pos, this.info) : 0;
      if (hinted > 0) {
        if (!this.dispatchInfo(this.info)) return false;
        pos += hinted;
        this.offset += hinted;
        continue;
      }
      // Framing only (the CRCs guard reads, not dispatch); no result object for a valid record.
      let size = own ? ownRecordSize(buf, pos, this.offset) : 0;
      let r = VALID;
      if (size === 0) {
        check.expectedPhysicalOffset = this.offset;
        r = locateRecord(buf, pos, check, this.layout) ?? VALID;
        size = this.layout.totalSize;
      }
      if (r === VALID) {
        readDispatchInfo(buf, pos, size, this.info);
        if (!this.dispatchInfo(this.info)) return false;
        pos += size;
        this.offset += size;
      } else if (r.kind === 'blank') {
        // The rest of this segment is padding: go to the next segment.
        this.offset = this.log.nextSegmentStart(this.offset);
        break;
      } else if (r.kind === 'need-more') {
        if (pos > 0) break; // read again from the record's start next round
        // A record larger than the chunk: read exactly it.
        buf = await this.log.read(this.offset, r.needed);
        own = false;
        if (buf.length < r.needed) break;
      } else {
        // Zeros ('end') below the limit are as wrong as a bad record: written data is never zero.
        const reason =
          r.kind === 'end' ? 'zero bytes where a record should be' : r.kind === 'corrupt' ? r.reason : r.kind;
        this.blocked = `corrupt record at commit-log offset ${this.offset}: ${reason}`;
        return false;
      }
    }
    return this.offset < this.limit();
  }

  /**
   * Deleted topics: records of `topic` below the offset are skipped, so that replaying the log
   * (recovery, rebuild) never brings a deleted topic's old messages back into a new queue.
   */
  readonly tombstones = new Map<string, number>();
  /**
   * Topics whose queues are being deleted, with their tombstone offset: records at or past it
   * are not dispatched until the deletion ends (`endDeletion`), so they go to fresh queues.
   */
  private readonly deleting = new Map<string, number>();

  beginDeletion(topic: string, offset: number): void {
    this.tombstones.set(topic, offset);
    this.deleting.set(topic, offset);
  }

  endDeletion(topic: string): void {
    this.deleting.delete(topic);
    this.wake();
  }

  private readonly info = newDispatchInfo();
  private readonly layout = newRecordLayout();
  private readonly check = {
    checkCrc: false,
    expectedPhysicalOffset: 0,
    maxRecordBytes: 0,
  } satisfies DecodeOptions;

  /** Dispatches one record; false if dispatch must stop before it (see `blocked`). */
  private dispatchInfo(info: DispatchInfo): boolean {
    const pending = this.deleting.get(info.topic);
    if (pending !== undefined && info.physicalOffset >= pending) {
      // A message of the topic's next life: it waits until the old queues are gone.
      return false;
    }
    try {
      this.dispatchOne(info);
    } catch (e) {
      // Not an I/O problem: retrying cannot help. Stop and say why.
      this.blocked = `dispatching the record at commit-log offset ${this.offset} failed: ${(e as Error).message}`;
      return false;
    }
    return true;
  }

  private dispatchOne(rec: DispatchInfo): void {
    if (this.tombstones.size > 0) {
      const t = this.tombstones.get(rec.topic);
      if (t !== undefined && rec.physicalOffset < t) return;
    }
    const tranType = transactionType(rec.sysFlag);
    const tagsCode = DELIVER_TIME_TOPICS.has(rec.topic) ? deliverTimeOf(rec) : rec.tagsHash;
    if (tranType === SysFlag.TRANSACTION_NOT_TYPE || tranType === SysFlag.TRANSACTION_COMMIT_TYPE) {
      this.cqs
        .getOrCreate(rec.topic, rec.queueId)
        .put(rec.queueOffset, rec.physicalOffset, rec.size, tagsCode);
    }
    if (this.opts.messageIndexEnable && tranType !== SysFlag.TRANSACTION_ROLLBACK_TYPE) {
      // topic#UNIQ_KEY, hashed from the record's bytes (no key string is built).
      if (rec.uniqKeyEnd > rec.uniqKeyAt) {
        this.index.putHashed(indexKeyHashOf(rec.uniqIndexKeyHash), rec.physicalOffset, rec.storeTimestamp);
      }
      const keys = rec.keysEnd > rec.keysAt ? rec.keys : undefined;
      if (keys) {
        for (const k of keys.split(' ')) {
          if (k.length > 0) this.index.put(`${rec.topic}#${k}`, rec.physicalOffset, rec.storeTimestamp);
        }
      }
    }
    this.lastStoreTimestamp = rec.storeTimestamp;
    if (
      this.listeners.length > 0 &&
      (tranType === SysFlag.TRANSACTION_NOT_TYPE || tranType === SysFlag.TRANSACTION_COMMIT_TYPE)
    ) {
      const m: DispatchedMessage = {
        topic: rec.topic,
        queueId: rec.queueId,
        queueOffset: rec.queueOffset,
        physicalOffset: rec.physicalOffset,
        size: rec.size,
        tagsCode,
        storeTimestamp: rec.storeTimestamp,
        properties: dispatchProperties(rec),
      };
      for (const l of this.listeners) l(m);
    }
  }

  /** Recovery and rebuild: restart dispatch from `offset`. */
  resetTo(offset: number): void {
    this.offset = offset;
    this.blocked = undefined;
  }
}
