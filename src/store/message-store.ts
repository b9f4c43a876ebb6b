/**
 * The message store: the commit log, the consume queues and index derived from it, recovery,
 * flushing, checkpoints and retention, behind one object.
 *
 *   <root>/lock            pid of the process that owns the store
 *   <root>/abort           present while the store is open; left behind by a crash
 *   <root>/checkpoint      see checkpoint.ts
 *   <root>/commitlog/      see commit-log.ts and record.ts
 *   <root>/consumequeue/   see consume-queue.ts
 *   <root>/index/          see index-file.ts
 *   <root>/config/         metadata JSON files of the broker (json-store.ts)
 *
 * Put path: validate and pre-encode (record.ts) → assign the queue offset and the physical offset
 * in one synchronous step → batched write → (SYNC) group-commit fdatasync → resolve.
 * Read path: consume queue → commit-log bytes (tail cache or file) → validated raw records.
 */
import path from 'node:path';
import { type Clock, systemClock } from '../common/clock.js';
import { TsmqError } from '../common/errors.js';
import type { HostAddress } from '../common/types.js';
import {
  type AppendMessage,
  createOffsetMsgId,
  type DecodedRecord,
  decodeOffsetMsgId,
  decodeRecord,
  encodeHost,
  getProperty,
  MessageProperty,
  maxRecordBytesFor,
  prepareRecord,
  SysFlag,
  transactionType,
} from '../message/index.js';
import { Checkpoint } from './checkpoint.js';
import { type AppendWaiter, CommitLog, type FlushMode } from './commit-log.js';
import { unitAt } from './consume-queue.js';
import { ConsumeQueueStore } from './consume-queue-store.js';
import { type DispatchedMessage, Dispatcher } from './dispatcher.js';
import { IndexService } from './index-service.js';
import { type FileIo, nodeFileIo, readFully, writeFully } from './io.js';
import { JsonFile } from './json-store.js';
import { ReadAheadCache, UnitReadAhead } from './read-cache.js';
import { decideRecovery, detectRecordCrc, scanCommitLog } from './recovery.js';
import { defaultRetentionOptions, Retention, type RetentionOptions } from './retention.js';

export interface MessageStoreOptions {
  rootDir: string;
  /** Commit-log segment size (RocketMQ mappedFileSizeCommitLog). */
  segmentBytes: number;
  flushMode: FlushMode;
  flushIntervalMs: number;
  /** Largest accepted message body (RocketMQ maxMessageSize). */
  maxMessageBytes: number;
  tailCacheBytes: number;
  /** Appends are refused with STORE_BUSY while more than this many bytes wait to be written. */
  maxUnwrittenBytes: number;
  cqUnitsPerFile: number;
  cqTailCacheUnits: number;
  /** Open consume-queue files at most, shared by all queues (least recently used ones close). */
  cqMaxOpenFiles: number;
  messageIndexEnable: boolean;
  indexSlotCount: number;
  indexMaxEntries: number;
  /** How often consume queues and index are flushed and the checkpoint written. */
  checkpointIntervalMs: number;
  retention: RetentionOptions;
  cleanIntervalMs: number;
  /** This broker's address, stored in every record and in offsetMsgIds. */
  storeHost: HostAddress;
  /** Verify the CRC of every record served by reads. */
  checkCrcOnRead: boolean;
  /**
   * Commit-log blocks read from disk for queue reads, kept for the other queues reading the same
   * stretch of the log (read-cache.ts); 0 reads each pull's records directly.
   */
  readCacheBytes: number;
  /**
   * End every record with RocketMQ's `__CRC32#` property, a CRC of the whole record, so that
   * damage anywhere in it (not only the body) is detected by recovery and reads.
   */
  appendRecordCrc: boolean;
  /**
   * Checksum appended records (BODYCRC and the record CRC) on a worker thread, just before their
   * batch is written (commit-log.ts, crc-thread.ts), rather than on the main thread in put().
   * Under ASYNC flush only (under SYNC the round trip would lengthen every group commit).
   */
  crcThread: boolean;
  io: FileIo;
  clock: Clock;
}

export const defaultStoreOptions: Omit<MessageStoreOptions, 'rootDir'> = {
  segmentBytes: 1024 * 1024 * 1024,
  flushMode: 'ASYNC',
  flushIntervalMs: 500,
  maxMessageBytes: 4 * 1024 * 1024,
  tailCacheBytes: 24 * 1024 * 1024,
  maxUnwrittenBytes: 64 * 1024 * 1024,
  cqUnitsPerFile: 300_000,
  cqTailCacheUnits: 4096,
  cqMaxOpenFiles: 256,
  messageIndexEnable: true,
  indexSlotCount: 500_000,
  indexMaxEntries: 2_000_000,
  checkpointIntervalMs: 1000,
  retention: defaultRetentionOptions,
  cleanIntervalMs: 10_000,
  storeHost: { address: '127.0.0.1', port: 10911 },
  checkCrcOnRead: true,
  readCacheBytes: 16 * 1024 * 1024,
  appendRecordCrc: true,
  crcThread: true,
  io: nodeFileIo,
  clock: systemClock,
};

export interface PutResult {
  physicalOffset: number;
  queueOffset: number;
  size: number;
  storeTimestamp: number;
  /** offsetMsgId: store host + physical offset, 32 hex chars for IPv4. */
  offsetMsgId: string;
}

/** RocketMQ's GetMessageStatus values. */
export type GetMessageStatus =
  | 'FOUND'
  | 'NO_MATCHED_MESSAGE'
  | 'NO_MESSAGE_IN_QUEUE'
  | 'NO_MATCHED_LOGIC_QUEUE'
  | 'OFFSET_TOO_SMALL'
  | 'OFFSET_OVERFLOW_ONE'
  | 'OFFSET_OVERFLOW_BADLY'
  | 'OFFSET_FOUND_NULL';

export interface GetMessageResult {
  status: GetMessageStatus;
  /** Where the next read should start. */
  nextBeginOffset: number;
  minOffset: number;
  maxOffset: number;
  /** Raw commit-log records, byte-identical to the log (views; no re-encoding). */
  records: Buffer[];
  /** Queue offsets of `records`, in order. */
  queueOffsets: number[];
  totalBytes: number;
}

export interface GetMessageOptions {
  maxCount: number;
  /** Stop before a message would take the total past this. */
  maxBytes?: number;
  /** Tag-code filter on consume-queue units; a false return skips the message. */
  tagsCodeFilter?: (tagsCode: number) => boolean;
  /** Units examined at most in one call when a filter skips messages. */
  maxScanUnits?: number;
}

export interface StorePositions {
  minOffset: number;
  appendedOffset: number;
  writtenOffset: number;
  flushedOffset: number;
  dispatchedOffset: number;
}

export interface RecoveryReport {
  crashed: boolean;
  scannedFrom: number | undefined;
  end: number;
  recordsValidated: number;
  stoppedBecause: string;
  truncatedBytes: number;
  rebuiltConsumeQueues: boolean;
  rebuiltIndex: boolean;
  redispatchedBytes: number;
  durationMs: number;
}

/**
 * The largest record accepted when reading the log back: what this configuration writes, and
 * never less than 32 MiB (twice the remoting frame limit), so that records written under an
 * earlier, larger maxMessageBytes are not taken for corruption.
 */
function recordBytesLimit(maxMessageBytes: number): number {
  return Math.max(maxRecordBytesFor(maxMessageBytes), 32 * 1024 * 1024);
}

/** Largest single commit-log read serving one getMessages call. */
const READ_SPAN_MAX = 1024 * 1024;
/** A read may span this many times the bytes of the records it serves (plus 64 KiB). */
const READ_SPAN_SLACK = 8;
/** Block of the read-ahead cache: ~500 records of 1 KiB per read, a few queues' pulls each. */
const READ_CACHE_BLOCK_BYTES = 512 * 1024;
/** Consume-queue units read per call for a queue read (20 bytes each), the rest kept for the next. */
const UNIT_READ_AHEAD = 512;

/**
 * A PutResult whose offsetMsgId is built only when asked for. It is also the append's waiter in
 * the commit log, which settles the put's promise with it: one object per append in flight.
 */
class StoredMessage implements PutResult, AppendWaiter {
  physicalOffset = 0;
  end = 0;
  durable = false;
  private msgId: string | undefined;
  #resolve: (r: PutResult) => void = noop;
  #reject: (e: unknown) => void = noop;
  constructor(
    private readonly storeHost: HostAddress,
    readonly queueOffset: number,
    readonly size: number,
    readonly storeTimestamp: number,
  ) {}
  /** The put's promise is settled through these. */
  settle(resolve: (r: PutResult) => void, reject: (e: unknown) => void): void {
    this.#resolve = resolve;
    this.#reject = reject;
  }
  get offsetMsgId(): string {
    this.msgId ??= createOffsetMsgId(this.storeHost, this.physicalOffset);
    return this.msgId;
  }
  appendDone(): void {
    this.#resolve(this);
  }
  appendFailed(e: unknown): void {
    this.#reject(e);
  }
}

const noop = () => {};
let capturedResolve: ((r: PutResult) => void) | undefined;
let capturedReject: ((e: unknown) => void) | undefined;
/** A promise executor shared by every put: it hands the resolving functions over synchronously. */
function captureResolvers(resolve: (r: PutResult) => void, reject: (e: unknown) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

interface TombstoneFile {
  version: 1;
  topics: Record<string, number>;
}

const queueKey = (topic: string, queueId: number) => `${topic}\u0000${queueId}`;

export class MessageStore {
  /**
   * The next queue offset of every queue, by topic and then queue id: no key string is built per
   * append (queue ids are small integers).
   */
  private readonly queueOffsets = new Map<string, number[]>();
  /** Backlog blocks shared by queue reads (read-cache.ts). */
  readonly readCache: ReadAheadCache;
  /** Consume-queue units read ahead for each queue's next read (read-cache.ts). */
  private readonly unitAhead = new UnitReadAhead(UNIT_READ_AHEAD, 1024);
  private readonly storeHostBytes: Buffer;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private cleanTimer: NodeJS.Timeout | undefined;
  private checkpointRunning: Promise<void> | undefined;
  /** The last checkpoint write failure, cleared by the next success. */
  lastCheckpointError: unknown;
  /** Checkpoint writes that failed since the store opened (a metric; the next round retries). */
  checkpointFailures = 0;
  private onCheckpoint: (flushed: number, dispatched: number) => void = () => {};
  private tombstoneFile!: JsonFile<TombstoneFile>;
  private closed = false;
  recovery!: RecoveryReport;

  private constructor(
    readonly opts: MessageStoreOptions,
    readonly commitLog: CommitLog,
    readonly consumeQueues: ConsumeQueueStore,
    readonly index: IndexService,
    private readonly checkpoint: Checkpoint,
    readonly dispatcher: Dispatcher,
    readonly retention: Retention,
  ) {
    this.storeHostBytes = encodeHost(opts.storeHost);
    this.readCache = new ReadAheadCache(
      commitLog,
      opts.io,
      READ_CACHE_BLOCK_BYTES,
      Math.floor(opts.readCacheBytes / READ_CACHE_BLOCK_BYTES),
    );
  }

  static async open(options: Partial<MessageStoreOptions> & { rootDir: string }): Promise<MessageStore> {
    const opts: MessageStoreOptions = { ...defaultStoreOptions, ...options };
    const { io, rootDir } = opts;
    const started = Date.now();
    await io.mkdirp(rootDir);
    const lockPath = path.join(rootDir, 'lock');
    await acquireLock(io, lockPath);
    try {
      return await MessageStore.openLocked(opts, started);
    } catch (e) {
      await io.unlink(lockPath).catch(() => undefined);
      locksHeldHere.delete(lockPath);
      throw e;
    }
  }

  private static async openLocked(opts: MessageStoreOptions, started: number): Promise<MessageStore> {
    const { io, rootDir } = opts;
    const abortPath = path.join(rootDir, 'abort');
    const abortMarker = await io.exists(abortPath);

    const checkpoint = await Checkpoint.open(io, path.join(rootDir, 'checkpoint'));
    const log = new CommitLog(io, rootDir, {
      segmentBytes: opts.segmentBytes,
      flushMode: opts.flushMode,
      flushIntervalMs: opts.flushIntervalMs,
      maxBatchBytes: 4 * 1024 * 1024,
      tailCacheBytes: opts.tailCacheBytes,
      maxUnwrittenBytes: opts.maxUnwrittenBytes,
      crcThread: opts.crcThread,
    });
    await log.load();

    // 0. Whether records carry the record CRC is a property of the log, not of this run.
    const recordCrc = await detectRecordCrc(log, opts.appendRecordCrc);
    opts.appendRecordCrc = recordCrc;

    // 1. Where does the valid log end?
    const decision = decideRecovery(abortMarker, checkpoint.loaded, log);
    let end: number;
    let scan = { records: 0, stoppedBecause: 'clean shutdown' };
    // Records written under an earlier, larger maxMessageBytes stay valid: the bound on a record
    // read back is never below what any configuration could have written (frames are ≤ 16 MiB).
    const maxRecordBytes = recordBytesLimit(opts.maxMessageBytes);
    if (decision.trustedEnd !== undefined) {
      end = decision.trustedEnd;
    } else {
      const r = await scanCommitLog(log, decision.scanFrom ?? log.minOffset(), maxRecordBytes, recordCrc);
      end = r.end;
      scan = r;
    }
    const lastSeg = log.segmentList().at(-1);
    const truncatedBytes =
      decision.crashed && lastSeg ? Math.max(0, lastSeg.base + lastSeg.capacity - end) : 0;
    if (decision.trustedEnd === undefined) await log.truncateTo(end);
    else log.setEnd(end);

    // 2. Consume queues and index: drop what points past the end, rebuild what is missing.
    const cqDirExisted = (await io.readdir(path.join(rootDir, 'consumequeue'))).length > 0;
    const indexDirExisted = (await io.readdir(path.join(rootDir, 'index'))).length > 0;
    const cqs = await ConsumeQueueStore.open(io, rootDir, {
      unitsPerFile: opts.cqUnitsPerFile,
      tailCacheUnits: opts.cqTailCacheUnits,
      maxOpenFiles: opts.cqMaxOpenFiles,
    });
    const index = await IndexService.open(
      io,
      rootDir,
      { slotCount: opts.indexSlotCount, maxEntries: opts.indexMaxEntries },
      opts.clock,
    );
    await cqs.truncateAllByPhysicalOffset(end);
    await index.truncateAfter(end);
    const logHasData = end > log.minOffset();
    const rebuildCq = logHasData && !cqDirExisted;
    const rebuildIndex = logHasData && opts.messageIndexEnable && !indexDirExisted;
    let dispatchFrom = checkpoint.loaded ? checkpoint.loaded.dispatchedOffset : log.minOffset();
    if (rebuildCq || rebuildIndex) dispatchFrom = log.minOffset();
    dispatchFrom = Math.min(Math.max(dispatchFrom, log.minOffset()), end);

    const limit = opts.flushMode === 'SYNC' ? () => log.flushedOffset() : () => log.writtenOffset();
    const dispatcher = new Dispatcher(
      log,
      cqs,
      index,
      limit,
      { readChunkBytes: 4 * 1024 * 1024, messageIndexEnable: opts.messageIndexEnable, maxRecordBytes },
      dispatchFrom,
    );
    // Segments may go only below what the last checkpoint on disk says is flushed and dispatched:
    // recovery after a crash starts from there and needs those bytes.
    let checkpointed = { flushed: 0, dispatched: 0 };
    const retention = new Retention(io, rootDir, log, cqs, index, opts.retention, opts.clock, () =>
      Math.min(checkpointed.flushed, checkpointed.dispatched),
    );
    const store = new MessageStore(opts, log, cqs, index, checkpoint, dispatcher, retention);
    await io.mkdirp(path.join(rootDir, 'config'));
    store.tombstoneFile = new JsonFile<TombstoneFile>(path.join(rootDir, 'config', 'deletedTopics.json'), io);
    const stones = await store.tombstoneFile.read({ version: 1, topics: {} });
    for (const [topic, offset] of Object.entries(stones.topics)) {
      if (offset > log.minOffset()) dispatcher.tombstones.set(topic, offset);
    }
    store.onCheckpoint = (flushed, dispatched) => {
      checkpointed = { flushed, dispatched };
    };

    // 3. Re-dispatch from the checkpoint (idempotent) and rebuild the queue-offset table.
    await dispatcher.drain();
    const blocked = dispatcher.blockedReason();
    if (blocked) throw new TsmqError('CORRUPT_RECORD', `recovery could not re-dispatch the log: ${blocked}`);
    await cqs.correctAllMinOffsets(log.minOffset());
    for (const cq of cqs.all()) store.setNextQueueOffset(cq.topic, cq.queueId, cq.maxOffset());
    await cqs.flushAll();
    await index.flush();

    // 4. From now on a crash must be detectable, and the checkpoint says where we are.
    await writeAbortMarker(io, abortPath, rootDir);
    await store.writeCheckpoint(false);
    store.recovery = {
      crashed: decision.crashed,
      scannedFrom: decision.scanFrom,
      end,
      recordsValidated: scan.records,
      stoppedBecause: scan.stoppedBecause,
      truncatedBytes,
      rebuiltConsumeQueues: rebuildCq,
      rebuiltIndex: rebuildIndex,
      redispatchedBytes: end - dispatchFrom,
      durationMs: Date.now() - started,
    };
    store.start();
    return store;
  }

  private start(): void {
    this.commitLog.onWritten = () => this.dispatcher.wake();
    this.commitLog.onFlushed = () => this.dispatcher.wake();
    this.commitLog.startFlusher();
    this.checkpointTimer = setInterval(
      () =>
        void this.runCheckpoint().then(
          () => {
            this.lastCheckpointError = undefined;
          },
          (e: unknown) => {
            // The next round retries; recovery just scans further back meanwhile.
            this.lastCheckpointError = e;
            this.checkpointFailures++;
          },
        ),
      this.opts.checkpointIntervalMs,
    );
    this.checkpointTimer.unref();
    this.cleanTimer = setInterval(
      () => void this.retention.step().catch(() => undefined),
      this.opts.cleanIntervalMs,
    );
    this.cleanTimer.unref();
    void this.retention.step().catch(() => undefined);
  }

  /** Flushes consume queues and index, then records positions in the checkpoint. */
  runCheckpoint(): Promise<void> {
    if (!this.checkpointRunning) {
      this.checkpointRunning = this.writeCheckpoint(false).finally(() => {
        this.checkpointRunning = undefined;
      });
    }
    return this.checkpointRunning;
  }

  private async writeCheckpoint(clean: boolean): Promise<void> {
    const dispatched = this.dispatcher.dispatchedOffset();
    const logicsTs = this.dispatcher.lastStoreTimestamp;
    const flushed = this.commitLog.flushedOffset();
    await this.consumeQueues.flushAll();
    await this.index.flush();
    const dispatchedOffset = Math.min(dispatched, flushed);
    await this.checkpoint.write({
      flushedOffset: flushed,
      dispatchedOffset,
      physicStoreTimestamp: logicsTs,
      logicsStoreTimestamp: logicsTs,
      clean,
    });
    this.onCheckpoint(flushed, dispatchedOffset);
  }

  // ---------------------------------------------------------------- put path

  /**
   * Appends one message. Resolves when it is written (ASYNC) or durable (SYNC; unless its WAIT
   * property is "false"). Validation failures reject before anything is written.
   */
  put(msg: AppendMessage): Promise<PutResult> {
    try {
      return this.putSync(msg);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Appends several messages contiguously (one batch); all or none are accepted. */
  putBatch(msgs: AppendMessage[]): Promise<PutResult[]> {
    try {
      // One store timestamp for the whole batch, as RocketMQ gives one.
      const now = this.opts.clock.now();
      const prepared = msgs.map((m) => this.prepare(m, now));
      this.checkWritable();
      return Promise.all(prepared.map((p) => this.appendPrepared(p, now)));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private putSync(msg: AppendMessage): Promise<PutResult> {
    // One clock read: the store timestamp, and the born timestamp of a message without one.
    const now = this.opts.clock.now();
    const prepared = this.prepare(msg, now);
    this.checkWritable();
    return this.appendPrepared(prepared, now);
  }

  private prepare(msg: AppendMessage, now: number) {
    return prepareRecord(
      msg,
      this.opts.maxMessageBytes,
      this.storeHostBytes.length === 20,
      this.opts.appendRecordCrc,
      // The commit log fills the CRCs in just before the record is written (see crc-thread.ts).
      true,
      now,
    );
  }

  private checkWritable(): void {
    if (this.closed) throw new TsmqError('STORE_CLOSED', 'the store is closed');
    if (this.retention.diskFull()) {
      throw new TsmqError(
        'DISK_FULL',
        `disk use is ${this.retention.diskUsedRatio().toFixed(1)} %, above the ${this.opts.retention.diskSpaceWarningLevelRatio} % watermark: appends are refused until retention frees space`,
      );
    }
    this.commitLog.checkWritable();
  }

  private appendPrepared(p: ReturnType<typeof prepareRecord>, storeTimestamp: number): Promise<PutResult> {
    const msg = p.msg;
    const tranType = transactionType(p.sysFlag);
    // Prepared and rolled-back halves never enter a consume queue, so they take no queue offset.
    const counted = tranType === SysFlag.TRANSACTION_NOT_TYPE || tranType === SysFlag.TRANSACTION_COMMIT_TYPE;
    let offsets: number[] | undefined;
    let queueOffset = 0;
    if (counted) {
      offsets = this.queueOffsets.get(msg.topic);
      if (offsets === undefined) {
        offsets = [];
        this.queueOffsets.set(msg.topic, offsets);
      }
      queueOffset = offsets[msg.queueId] ?? 0;
    }
    // WAIT=false (waitStoreMsgOK off) only matters when a flush is awaited.
    const wait =
      this.opts.flushMode === 'ASYNC' || !msg.properties
        ? true
        : getProperty(msg.properties, MessageProperty.WAIT) !== 'false';
    const result = new StoredMessage(this.opts.storeHost, queueOffset, p.size, storeTimestamp);
    // The promise's resolving functions go straight into the result (no executor closure per put).
    const promise = new Promise<PutResult>(captureResolvers);
    result.settle(capturedResolve!, capturedReject!);
    const phys = this.commitLog.append(p, queueOffset, storeTimestamp, this.storeHostBytes, wait, result);
    if (offsets !== undefined) offsets[msg.queueId] = queueOffset + 1;
    result.physicalOffset = phys;
    return promise;
  }

  // ---------------------------------------------------------------- read path

  maxOffsetInQueue(topic: string, queueId: number): number {
    return this.queueOffsets.get(topic)?.[queueId] ?? 0;
  }

  private setNextQueueOffset(topic: string, queueId: number, next: number): void {
    let offsets = this.queueOffsets.get(topic);
    if (offsets === undefined) {
      offsets = [];
      this.queueOffsets.set(topic, offsets);
    }
    offsets[queueId] = next;
  }

  /** The highest offset consumers can read now (dispatched), which can trail maxOffsetInQueue. */
  dispatchedMaxOffsetInQueue(topic: string, queueId: number): number {
    return this.consumeQueues.get(topic, queueId)?.maxOffset() ?? 0;
  }

  minOffsetInQueue(topic: string, queueId: number): number {
    return this.consumeQueues.get(topic, queueId)?.minOffset() ?? 0;
  }

  /**
   * Messages of one queue from logical `offset`: raw records in queue order, each validated
   * (size, magic, physical offset, body CRC). A corrupt record is reported (CORRUPT_RECORD) if it
   * is the first one asked for, and otherwise ends the batch before it: never served.
   */
  async getMessages(
    topic: string,
    queueId: number,
    offset: number,
    o: GetMessageOptions,
  ): Promise<GetMessageResult> {
    const cq = this.consumeQueues.get(topic, queueId);
    const empty = (status: GetMessageStatus, next: number, min = 0, max = 0): GetMessageResult => ({
      status,
      nextBeginOffset: next,
      minOffset: min,
      maxOffset: max,
      records: [],
      queueOffsets: [],
      totalBytes: 0,
    });
    if (!cq) return empty('NO_MATCHED_LOGIC_QUEUE', 0);
    const min = cq.minOffset();
    const max = cq.maxOffset();
    if (max === 0 || max === min) return empty('NO_MESSAGE_IN_QUEUE', offset === 0 ? 0 : min, min, max);
    if (offset < min) return empty('OFFSET_TOO_SMALL', min, min, max);
    if (offset === max) return empty('OFFSET_OVERFLOW_ONE', offset, min, max);
    if (offset > max) return empty('OFFSET_OVERFLOW_BADLY', max, min, max);

    const key = queueKey(topic, queueId);
    const maxBytes = o.maxBytes ?? Number.MAX_SAFE_INTEGER;
    const maxScan = o.maxScanUnits ?? Math.max(o.maxCount, 16_000);
    const picked: Array<{ q: number; phys: number; size: number }> = [];
    let next = offset;
    let bytes = 0;
    let scanned = 0;
    scan: while (picked.length < o.maxCount && next < max && scanned < maxScan) {
      const want = o.tagsCodeFilter
        ? Math.min(max - next, 1024)
        : Math.min(o.maxCount - picked.length, max - next);
      let units = this.unitAhead.take(key, next, want);
      if (!units) {
        const epoch = this.unitAhead.epoch;
        units = await cq.readUnits(next, Math.max(want, UNIT_READ_AHEAD));
        if (units.length > want * 20) {
          this.unitAhead.keep(key, topic, next, units, epoch);
          units = units.subarray(0, want * 20);
        }
      }
      const n = units.length / 20;
      if (n === 0) break;
      for (let i = 0; i < n; i++) {
        const u = unitAt(units, i);
        scanned++;
        if (u.size === 0 || u.physicalOffset < this.commitLog.minOffset()) {
          next++;
          continue;
        }
        if (o.tagsCodeFilter && !o.tagsCodeFilter(u.tagsCode)) {
          next++;
          if (scanned >= maxScan) break scan;
          continue;
        }
        if (picked.length > 0 && bytes + u.size > maxBytes) break scan;
        picked.push({ q: next, phys: u.physicalOffset, size: u.size });
        bytes += u.size;
        next++;
        if (picked.length >= o.maxCount) break scan;
      }
    }
    if (picked.length === 0)
      return empty(next > offset ? 'NO_MATCHED_MESSAGE' : 'OFFSET_FOUND_NULL', next, min, max);

    const records: Buffer[] = [];
    const queueOffsets: number[] = [];
    let total = 0;
    /** Records from read-ahead blocks are copied here, back to back (the blocks are recycled). */
    let copied: Buffer | undefined;
    let copiedBytes = 0;
    // Records still in the tail cache are zero-copy views of bytes this process wrote: only their
    // framing is checked (the CRCs guard against the disk, not against our own memory). The rest
    // comes from disk: from the read-ahead cache's blocks, which every queue reading that stretch
    // of the log shares (copied out into one buffer), or (a record straddling further than a
    // block's overlap, or the cache off) by one read per run of nearby records — a queue's
    // messages are interleaved with other queues' in the log, and one larger read beats many
    // small ones while the span stays within READ_SPAN_SLACK times the bytes wanted (and
    // READ_SPAN_MAX bytes). Every record from disk has its CRCs verified.
    const check = (buf: Buffer, pos: number, k: number, fromCache: boolean): string | undefined => {
      const r = decodeRecord(buf, pos, {
        checkCrc: !fromCache && this.opts.checkCrcOnRead,
        expectedPhysicalOffset: picked[k]!.phys,
        maxRecordBytes: picked[k]!.size,
        requireRecordCrc: this.opts.appendRecordCrc,
        validateOnly: true,
      });
      if (r.kind === 'valid' && r.size === picked[k]!.size) return undefined;
      return r.kind === 'corrupt' ? r.reason : `unexpected ${r.kind}`;
    };
    let i = 0;
    outer: while (i < picked.length) {
      let j = i + 1;
      let start = picked[i]!.phys;
      const size = picked[i]!.size;
      let buf = this.commitLog.cachedView(start, size);
      const fromCache = buf !== undefined;
      let why: string | undefined;
      if (!buf) {
        // The backlog: a block other queues' readers share (see read-cache.ts), else a direct read.
        if (!this.readCache.has(start, size)) await this.readCache.load(start, size);
        // Checked and copied in one synchronous step: the block's buffer is recycled later.
        const fromBlock = this.readCache.with(start, size, (view) => {
          why = check(view, 0, i, false);
          if (why !== undefined) return true;
          copied ??= Buffer.allocUnsafe(bytes);
          view.copy(copied, copiedBytes);
          records.push(copied.subarray(copiedBytes, copiedBytes + size));
          copiedBytes += size;
          return true;
        });
        if (fromBlock) {
          if (why === undefined) {
            queueOffsets.push(picked[i]!.q);
            total += size;
            i = j;
            continue;
          }
          if (records.length === 0) {
            throw new TsmqError(
              'CORRUPT_RECORD',
              `message ${topic}/${queueId}@${picked[i]!.q} at commit-log offset ${start} failed validation: ${why}`,
            );
          }
          next = picked[i]!.q;
          break;
        }
      }
      if (!buf) {
        // With the cache on, only a record it cannot hold comes here (one straddling further
        // than a block's overlap, or larger than a block): read just that record.
        let wanted = picked[i]!.size;
        while (j < picked.length && this.readCache.maxBlocks === 0) {
          const next = picked[j]!;
          const span = next.phys + next.size - start;
          if (next.phys < picked[j - 1]!.phys + picked[j - 1]!.size) break;
          if (span > READ_SPAN_MAX || span > READ_SPAN_SLACK * (wanted + next.size) + 64 * 1024) break;
          if (this.commitLog.segmentFor(next.phys) !== this.commitLog.segmentFor(start)) break;
          wanted += next.size;
          j++;
        }
        buf = await this.commitLog.read(start, picked[j - 1]!.phys + picked[j - 1]!.size - start);
      } else {
        start = picked[i]!.phys;
      }
      for (let k = i; k < j; k++) {
        const p = picked[k]!;
        const pos = p.phys - start;
        why = check(buf, pos, k, fromCache);
        if (why !== undefined) {
          if (records.length === 0) {
            throw new TsmqError(
              'CORRUPT_RECORD',
              `message ${topic}/${queueId}@${p.q} at commit-log offset ${p.phys} failed validation: ${why}`,
            );
          }
          next = p.q;
          break outer;
        }
        records.push(buf.subarray(pos, pos + p.size));
        queueOffsets.push(p.q);
        total += p.size;
      }
      i = j;
    }
    return {
      status: 'FOUND',
      nextBeginOffset: next,
      minOffset: min,
      maxOffset: max,
      records,
      queueOffsets,
      totalBytes: total,
    };
  }

  /** The record at a commit-log offset, validated. */
  async getMessageByPhysicalOffset(physicalOffset: number): Promise<DecodedRecord> {
    if (physicalOffset < this.commitLog.minOffset() || physicalOffset >= this.commitLog.writtenOffset()) {
      throw new TsmqError(
        'OFFSET_OUT_OF_RANGE',
        `commit-log offset ${physicalOffset} is outside [${this.commitLog.minOffset()}, ${this.commitLog.writtenOffset()})`,
      );
    }
    let buf = await this.commitLog.read(physicalOffset, 4096);
    const decodeOpts = {
      checkCrc: this.opts.checkCrcOnRead,
      expectedPhysicalOffset: physicalOffset,
      requireRecordCrc: this.opts.appendRecordCrc,
      maxRecordBytes: recordBytesLimit(this.opts.maxMessageBytes),
    };
    let r = decodeRecord(buf, 0, decodeOpts);
    if (r.kind === 'need-more') {
      buf = await this.commitLog.read(physicalOffset, r.needed);
      r = decodeRecord(buf, 0, decodeOpts);
    }
    if (r.kind !== 'record') {
      const why = r.kind === 'corrupt' ? r.reason : `no record (${r.kind})`;
      throw new TsmqError(
        'CORRUPT_RECORD',
        `no valid message at commit-log offset ${physicalOffset}: ${why}`,
      );
    }
    return r.record;
  }

  /** VIEW_MESSAGE_BY_ID: the message an offsetMsgId points at (this store's host only). */
  async getMessageByOffsetMsgId(offsetMsgId: string): Promise<DecodedRecord> {
    const { physicalOffset } = decodeOffsetMsgId(offsetMsgId);
    return this.getMessageByPhysicalOffset(physicalOffset);
  }

  /**
   * Messages of `topic` whose KEYS contain `key` or whose UNIQ_KEY is `key`, stored within
   * [beginMs, endMs], newest first, at most maxNum.
   */
  async queryMessages(
    topic: string,
    key: string,
    maxNum: number,
    beginMs = 0,
    endMs = Number.MAX_SAFE_INTEGER,
  ): Promise<DecodedRecord[]> {
    const offsets = await this.index.query(`${topic}#${key}`, beginMs, endMs, maxNum * 2);
    const out: DecodedRecord[] = [];
    for (const off of offsets) {
      if (off < this.commitLog.minOffset() || off >= this.commitLog.writtenOffset()) continue;
      let rec: DecodedRecord;
      try {
        rec = await this.getMessageByPhysicalOffset(off);
      } catch {
        continue;
      }
      if (rec.topic !== topic) continue;
      const uniq = getProperty(rec.properties, MessageProperty.UNIQ_KEY);
      const keys = getProperty(rec.properties, MessageProperty.KEYS)?.split(' ') ?? [];
      if (uniq !== key && !keys.includes(key)) continue;
      if (rec.storeTimestamp < beginMs || rec.storeTimestamp > endMs) continue;
      out.push(rec);
      if (out.length >= maxNum) break;
    }
    return out;
  }

  /** First queue offset whose message was stored at or after `timestampMs` (SEARCH_OFFSET_BY_TIMESTAMP). */
  async offsetForTimestamp(topic: string, queueId: number, timestampMs: number): Promise<number> {
    const cq = this.consumeQueues.get(topic, queueId);
    if (!cq) return 0;
    return cq.offsetForTimestamp(timestampMs, (phys, size) => this.storeTimestampAt(phys, size));
  }

  /** Store time of the message at a queue offset, or undefined if there is none. */
  async storeTimestampOf(topic: string, queueId: number, queueOffset: number): Promise<number | undefined> {
    const cq = this.consumeQueues.get(topic, queueId);
    if (!cq) return undefined;
    const units = await cq.readUnits(queueOffset, 1);
    if (units.length < 20) return undefined;
    const u = unitAt(units, 0);
    return this.storeTimestampAt(u.physicalOffset, u.size);
  }

  /** GET_EARLIEST_MSG_STORETIME. */
  earliestMessageTime(topic: string, queueId: number): Promise<number | undefined> {
    return this.storeTimestampOf(topic, queueId, this.minOffsetInQueue(topic, queueId));
  }

  private async storeTimestampAt(phys: number, _size: number): Promise<number> {
    // STORETIMESTAMP sits after the born host, whose length depends on SYSFLAG bit 0x10.
    const head = await this.commitLog.read(phys, 80);
    if (head.length < 80) throw new TsmqError('OFFSET_OUT_OF_RANGE', `no message at ${phys}`);
    const sysFlag = head.readInt32BE(36);
    const at = 48 + ((sysFlag & SysFlag.BORNHOST_V6) !== 0 ? 20 : 8);
    return head.readInt32BE(at) * 0x1_0000_0000 + head.readUInt32BE(at + 4);
  }

  onMessageDispatched(listener: (m: DispatchedMessage) => void): void {
    this.dispatcher.onMessage(listener);
  }

  positions(): StorePositions {
    return {
      minOffset: this.commitLog.minOffset(),
      appendedOffset: this.commitLog.appendedOffset(),
      writtenOffset: this.commitLog.writtenOffset(),
      flushedOffset: this.commitLog.flushedOffset(),
      dispatchedOffset: this.dispatcher.dispatchedOffset(),
    };
  }

  /** Resolves when every message appended so far is visible to readers. */
  async waitDispatched(): Promise<void> {
    if (this.opts.flushMode === 'SYNC' || this.commitLog.writtenOffset() < this.commitLog.appendedOffset()) {
      await this.commitLog.flushAll();
    }
    await this.dispatcher.drain();
  }

  topics(): string[] {
    return this.consumeQueues.topics();
  }

  /**
   * Deletes a topic's consume queues (its messages stay in the log until retention). A tombstone
   * (`config/deletedTopics.json`: topic → commit-log offset) is written first, so that neither the
   * running dispatcher nor a later replay of the log brings the old messages back into a new
   * queue of the same name. Tombstones below the log's start are dropped at open.
   */
  async deleteTopic(topic: string): Promise<void> {
    // The deletion takes effect now: messages appended before this call belong to the old
    // topic (skipped by dispatch from here on), later ones to its next life, whose queue offsets
    // start again at 0 and whose dispatch waits until the old queues are gone.
    this.dispatcher.beginDeletion(topic, this.commitLog.appendedOffset());
    this.unitAhead.forgetTopic(topic);
    this.queueOffsets.delete(topic);
    const release = await this.dispatcher.hold();
    try {
      const tombstones = this.dispatcher.tombstones;
      await this.tombstoneFile.write({ version: 1, topics: Object.fromEntries(tombstones) });
      await this.consumeQueues.deleteTopic(topic);
    } finally {
      this.unitAhead.forgetTopic(topic);
      this.dispatcher.endDeletion(topic);
      release();
    }
  }

  /**
   * Stops without a clean shutdown, as a crash would: timers stop and files close, but nothing
   * more is flushed or checkpointed and the abort marker stays, so the next open runs crash
   * recovery. For tests, and for fatal errors where a clean close is not possible.
   */
  async abandon(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    if (this.cleanTimer) clearInterval(this.cleanTimer);
    this.dispatcher.stop();
    await this.checkpointRunning?.catch(() => undefined);
    await this.retention.idle();
    await this.commitLog.abandon();
    await this.consumeQueues.abandon().catch(() => undefined);
    await this.index.abandon().catch(() => undefined);
    await this.checkpoint.close().catch(() => undefined);
    const lockPath = path.join(this.opts.rootDir, 'lock');
    await this.opts.io.unlink(lockPath).catch(() => undefined);
    locksHeldHere.delete(lockPath);
  }

  /** Clean shutdown: flush everything, write a CLEAN checkpoint, remove the abort marker. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    if (this.cleanTimer) clearInterval(this.cleanTimer);
    await this.checkpointRunning?.catch(() => undefined);
    await this.retention.idle();
    // Everything appended is flushed and dispatched before the files close.
    await this.commitLog.flushAll().catch(() => undefined);
    const failed = this.commitLog.failed();
    if (!failed) await this.dispatcher.drain().catch(() => undefined);
    this.dispatcher.stop();
    // Only a checkpoint that made it to disk (after consume queues and index were flushed) makes
    // this a clean shutdown; otherwise the abort marker stays and the next open recovers.
    let clean = !failed && !this.dispatcher.blockedReason();
    let error: unknown;
    if (clean) {
      try {
        await this.writeCheckpoint(this.dispatcher.dispatchedOffset() === this.commitLog.flushedOffset());
      } catch (e) {
        clean = false;
        error = e;
      }
    }
    // Every file is closed and the lock released, whatever fails on the way.
    for (const step of [
      () => this.commitLog.close(),
      () => this.consumeQueues.close(),
      () => this.index.close(),
      () => this.checkpoint.close(),
    ]) {
      try {
        await step();
      } catch (e) {
        error ??= e;
      }
    }
    const io = this.opts.io;
    if (clean) await io.unlink(path.join(this.opts.rootDir, 'abort')).catch(() => undefined);
    const lockPath = path.join(this.opts.rootDir, 'lock');
    await io.unlink(lockPath).catch(() => undefined);
    locksHeldHere.delete(lockPath);
    if (error !== undefined) throw error;
  }
}

async function writeAbortMarker(io: FileIo, abortPath: string, rootDir: string): Promise<void> {
  const fd = await io.open(abortPath, 'w+');
  await io.close(fd);
  await io.fsyncDir(rootDir);
}

/**
 * One process per store directory. The lock file holds the owner's pid; a lock left by a process
 * that no longer runs is taken over.
 */
const locksHeldHere = new Set<string>();

async function acquireLock(io: FileIo, lockPath: string): Promise<void> {
  if (locksHeldHere.has(lockPath)) {
    throw new TsmqError('STORE_LOCKED', `the store is already open in this process (lock file ${lockPath})`);
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = await io.open(lockPath, 'wx+');
      const pid = Buffer.from(String(process.pid));
      await writeFully(io, fd, pid, 0, pid.length, 0);
      await io.close(fd);
      locksHeldHere.add(lockPath);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const fd = await io.open(lockPath, 'r');
      const buf = Buffer.alloc(32);
      const n = await readFully(io, fd, buf, 0, 32, 0);
      await io.close(fd);
      const owner = Number(buf.subarray(0, n).toString());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new TsmqError(
          'STORE_LOCKED',
          `the store is in use by process ${owner} (lock file ${lockPath})`,
        );
      }
      await io.unlink(lockPath);
    }
  }
  throw new TsmqError('STORE_LOCKED', `could not take the store lock ${lockPath}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
