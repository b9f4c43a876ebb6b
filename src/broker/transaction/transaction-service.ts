/**
 * Ends transactions and checks the unresolved ones (RocketMQ's TransactionalMessageService and its
 * check service), over the records of ./half-message.ts.
 *
 * end(commit | rollback) — END_TRANSACTION, from the producer or its answer to a check:
 *   1. the half at commitLogOffset must be a half of that producer group at that queue offset
 *   2. one end per transaction at a time (serialised by transaction id); a transaction already
 *      resolved (an op seen, or a committed copy of it found by its id in the real topic's index)
 *      is not ended again — so a late or repeated answer never commits twice
 *   3. commit: the message is stored at its real queue (through the put entry: a DELAY still
 *      applies), then the op; rollback: the op only. A crash between the two leaves the half
 *      unresolved; the check that follows finds the committed copy by its id and only writes the op.
 *
 * check round — every transactionCheckInterval, over the halves from the progress offset on:
 *
 *   half (in queue order)                                     action
 *   --------------------------------------------------------- ----------------------------------
 *   resolved (its offset or its transaction id has an op)     skip
 *   a later copy of the same transaction exists               skip (the copy stands for it)
 *   younger than transactionTimeOut (or its immunity time)    stop the round here
 *   committed copy found in the real topic (crash window)     write the op, skip
 *   checked transactionCheckMax times, or no producer of     copy to TRANS_CHECK_MAX_TIME_TOPIC,
 *     its group live for 72 h                                 write the op, skip
 *   no live producer of its group                             re-put as is (not counted as a
 *                                                             check): a producer may start later
 *   otherwise                                                 re-put with TRANSACTION_CHECK_TIMES+1
 *                                                             and send CHECK_TRANSACTION_STATE for
 *                                                             the copy to one live producer of the
 *                                                             group
 *
 * The progress offsets (next half, first op still needed) are committed as consumer offsets of
 * CID_SYS_RMQ_TRANS and written with consumerOffset.json; after a restart the ops from the op
 * progress on are read again, so a resolved transaction is not checked again and an unresolved one
 * is not lost (at worst a half is looked at twice, which its op or its later copy then settles).
 */
import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/log.js';
import type { HostAddress } from '../../common/types.js';
import {
  CHECK_MAX_TOPIC,
  checkMaxOf,
  committedOf,
  createOffsetMsgId,
  type DecodedRecord,
  decodeOp,
  decodeRecord,
  encodeHost,
  HALF_TOPIC,
  type HalfInfo,
  halfInfo,
  OP_TOPIC,
  opOf,
  prepareRecord,
  rePutOf,
  SysFlag,
  TRANSACTION_GROUP,
  transactionType,
  writeRecord,
} from '../../message/index.js';
import { createRequest, RequestCode } from '../../protocol/index.js';
import type { RemotingChannel } from '../../remoting/index.js';
import type { MessageStore } from '../../store/index.js';
import type { ConsumerOffsetManager } from '../consumer-offsets.js';
import type { MessagePutService } from '../schedule/put-message.js';

export interface TransactionConfig {
  transactionTimeOut: number;
  transactionCheckMax: number;
  transactionCheckInterval: number;
}

export interface TransactionDeps {
  store: MessageStore;
  put: MessagePutService;
  offsets: ConsumerOffsetManager;
  /** Live channels of a producer group (from heartbeats). */
  producers: (group: string) => RemotingChannel[];
  storeHost: () => HostAddress;
  clock: Clock;
  logger: Logger;
  config: TransactionConfig;
}

export type EndKind = 'COMMIT' | 'ROLLBACK';

export type EndResult =
  | { ok: true; outcome: 'committed' | 'rolled back' | 'already resolved' }
  | { ok: false; reason: string };

/**
 * A half whose group has had no live producer to check it with for this long is given up (moved
 * to TRANS_CHECK_MAX_TIME_TOPIC); RocketMQ's checks likewise ignore halves older than the
 * retention time (72 h).
 */
const ORPHAN_MAX_MS = 72 * 3600 * 1000;

/** Halves read per check round at most (the rest wait for the next round). */
const ROUND_MAX_HALVES = 20_000;

interface OpEntry {
  opOffset: number;
  halfOffsets: number[];
  transactionId: string | undefined;
}

export class TransactionService {
  private halfNext = 0;
  private opRead = 0;
  private ops: OpEntry[] = [];
  private readonly resolvedOffsets = new Set<number>();
  private readonly resolvedTx = new Set<string>();
  private readonly ending = new Map<string, Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  private closed = false;
  /** Checks sent since start (runtime info and tests). */
  checksSent = 0;

  constructor(private readonly d: TransactionDeps) {}

  /** Loads the progress and the ops still needed, then checks every transactionCheckInterval. */
  async start(): Promise<void> {
    this.halfNext = this.d.offsets.query(TRANSACTION_GROUP, HALF_TOPIC, 0) ?? 0;
    this.opRead = this.d.offsets.query(TRANSACTION_GROUP, OP_TOPIC, 0) ?? 0;
    await this.readOps();
    this.timer = setInterval(() => void this.check(), this.d.config.transactionCheckInterval);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.round?.catch(() => undefined);
    await Promise.allSettled([...this.ending.values()]);
  }

  /** Ends the transaction of the half at `commitLogOffset` (see the file header). */
  end(
    kind: EndKind,
    h: { commitLogOffset: number; tranStateTableOffset: number; producerGroup: string },
  ): Promise<EndResult> {
    return this.serial(`@${h.commitLogOffset}`, async () => {
      let rec: DecodedRecord;
      try {
        rec = await this.d.store.getMessageByPhysicalOffset(h.commitLogOffset);
      } catch (e) {
        return {
          ok: false,
          reason: `no half message at commit-log offset ${h.commitLogOffset}: ${(e as Error).message}`,
        };
      }
      const info = halfInfo(rec);
      if (typeof info === 'string') return { ok: false, reason: info };
      if (rec.queueOffset !== h.tranStateTableOffset) {
        return {
          ok: false,
          reason: `the half message at ${h.commitLogOffset} has queue offset ${rec.queueOffset}, not ${h.tranStateTableOffset}`,
        };
      }
      if (info.producerGroup !== undefined && info.producerGroup !== h.producerGroup) {
        return {
          ok: false,
          reason: `the half message belongs to producer group ${info.producerGroup}, not ${h.producerGroup}`,
        };
      }
      return this.serial(info.transactionId, () => this.resolve(kind, rec, info));
    });
  }

  private async resolve(kind: EndKind, rec: DecodedRecord, info: HalfInfo): Promise<EndResult> {
    if (this.isResolved(rec.queueOffset, info.transactionId))
      return { ok: true, outcome: 'already resolved' };
    if (await this.committedCopy(rec, info)) {
      await this.writeOp(rec.queueOffset, info.transactionId);
      return { ok: true, outcome: 'already resolved' };
    }
    if (kind === 'COMMIT') await this.d.put.put(committedOf(rec, info));
    await this.writeOp(rec.queueOffset, info.transactionId);
    this.d.logger.debug(
      { transactionId: info.transactionId, topic: info.realTopic },
      kind === 'COMMIT' ? 'transaction committed' : 'transaction rolled back',
    );
    return { ok: true, outcome: kind === 'COMMIT' ? 'committed' : 'rolled back' };
  }

  private isResolved(halfOffset: number, transactionId: string): boolean {
    return this.resolvedOffsets.has(halfOffset) || this.resolvedTx.has(transactionId);
  }

  /** Whether a committed message of this transaction is in its real topic (its id in the index). */
  private async committedCopy(rec: DecodedRecord, info: HalfInfo): Promise<boolean> {
    const found = await this.d.store
      .queryMessages(info.realTopic, info.transactionId, 8, rec.bornTimestamp - 60_000)
      .catch(() => []);
    return found.some(
      (r) => transactionType(r.sysFlag) === SysFlag.TRANSACTION_COMMIT_TYPE && r.topic === info.realTopic,
    );
  }

  private async writeOp(halfOffset: number, transactionId: string): Promise<void> {
    const r = await this.d.put.putNow(opOf(halfOffset, transactionId));
    this.noteOp({ opOffset: r.queueOffset, halfOffsets: [halfOffset], transactionId });
  }

  private noteOp(op: OpEntry): void {
    this.ops.push(op);
    for (const o of op.halfOffsets) if (o >= this.halfNext) this.resolvedOffsets.add(o);
    if (op.transactionId) this.resolvedTx.add(op.transactionId);
    if (op.opOffset >= this.opRead) this.opRead = op.opOffset + 1;
  }

  private async readOps(): Promise<void> {
    for (;;) {
      const r = await this.d.store.getMessages(OP_TOPIC, 0, this.opRead, { maxCount: 256 });
      if (r.records.length === 0) {
        if (r.nextBeginOffset > this.opRead) this.opRead = r.nextBeginOffset;
        return;
      }
      r.records.forEach((buf, i) => {
        const d = decodeRecord(buf, 0);
        const opOffset = r.queueOffsets[i]!;
        if (d.kind === 'record') {
          const op = decodeOp(d.record);
          if (op) this.noteOp({ opOffset, ...op });
        }
        this.opRead = Math.max(this.opRead, opOffset + 1);
      });
    }
  }

  /** Runs one check round now (they also run every transactionCheckInterval). */
  check(): Promise<void> {
    this.round ??= this.checkRound()
      .catch((e: Error) => this.d.logger.warn({ err: e.message }, 'transaction check round failed'))
      .finally(() => {
        this.round = undefined;
      });
    return this.round;
  }

  private async checkRound(): Promise<void> {
    if (this.closed) return;
    await this.readOps();
    const halves = await this.readHalves();
    const latest = new Map<string, number>();
    for (const { rec, info } of halves)
      if (typeof info !== 'string') latest.set(info.transactionId, rec.queueOffset);
    const now = this.d.clock.now();
    for (const { rec, info } of halves) {
      if (this.closed) return;
      const offset = rec.queueOffset;
      if (typeof info === 'string') {
        this.d.logger.warn({ offset }, `skipping a malformed half message: ${info}`);
      } else if (this.isResolved(offset, info.transactionId) || latest.get(info.transactionId)! > offset) {
        // resolved, or a later copy stands for it
      } else if (now - rec.bornTimestamp < (info.immunityMs ?? this.d.config.transactionTimeOut)) {
        break;
      } else {
        await this.serial(info.transactionId, () => this.checkOne(rec, info));
      }
      this.halfNext = offset + 1;
    }
    this.prune(latest);
  }

  private async checkOne(rec: DecodedRecord, info: HalfInfo): Promise<void> {
    if (this.isResolved(rec.queueOffset, info.transactionId)) return;
    if (await this.committedCopy(rec, info)) {
      await this.writeOp(rec.queueOffset, info.transactionId);
      return;
    }
    if (info.checkTimes >= this.d.config.transactionCheckMax) {
      await this.giveUp(rec, info, `unresolved after ${info.checkTimes} checks`);
      return;
    }
    const channels = info.producerGroup ? this.d.producers(info.producerGroup) : [];
    const channel = channels[Math.floor(Math.random() * channels.length)];
    if (!channel) {
      // Nobody to ask: not counted as a check (a producer of the group may start later), unless
      // the half is older than ORPHAN_MAX_MS.
      if (this.d.clock.now() - rec.bornTimestamp > ORPHAN_MAX_MS) {
        await this.giveUp(rec, info, 'whose group had no live producer for 72 h');
        return;
      }
      await this.d.put.putNow(rePutOf(rec, info.checkTimes));
      this.d.logger.debug(
        { transactionId: info.transactionId, producerGroup: info.producerGroup },
        'no live producer of the group to check a transaction with; it waits for the next round',
      );
      return;
    }
    const copy = await this.d.put.putNow(rePutOf(rec, info.checkTimes + 1));
    const storeHost = this.d.storeHost();
    const offsetMsgId = createOffsetMsgId(storeHost, copy.physicalOffset);
    channel.invokeOneway(
      createRequest(
        RequestCode.CHECK_TRANSACTION_STATE,
        {
          tranStateTableOffset: String(copy.queueOffset),
          commitLogOffset: String(copy.physicalOffset),
          msgId: offsetMsgId,
          transactionId: info.transactionId,
          offsetMsgId,
        },
        this.checkBody(rec, info, copy, storeHost),
      ),
    );
    this.checksSent++;
  }

  private async giveUp(rec: DecodedRecord, info: HalfInfo, why: string): Promise<void> {
    await this.d.put.putNow(checkMaxOf(rec));
    await this.writeOp(rec.queueOffset, info.transactionId);
    this.d.logger.warn(
      {
        transactionId: info.transactionId,
        topic: info.realTopic,
        producerGroup: info.producerGroup,
        checks: info.checkTimes,
      },
      `a transaction ${why} was moved to ${CHECK_MAX_TOPIC}`,
    );
  }

  /** The message a check carries: the half as its producer sent it (real topic and queue). */
  private checkBody(
    rec: DecodedRecord,
    info: HalfInfo,
    copy: { queueOffset: number; physicalOffset: number },
    storeHost: HostAddress,
  ): Buffer {
    const msg = { ...rePutOf(rec, info.checkTimes + 1), topic: info.realTopic, queueId: info.realQueueId };
    const hostBytes = encodeHost(storeHost);
    const prepared = prepareRecord(msg, Number.MAX_SAFE_INTEGER, hostBytes.length === 20);
    const out = Buffer.allocUnsafe(prepared.size);
    writeRecord(out, 0, prepared, copy.queueOffset, copy.physicalOffset, rec.storeTimestamp, hostBytes);
    return out;
  }

  private async readHalves(): Promise<Array<{ rec: DecodedRecord; info: HalfInfo | string }>> {
    const out: Array<{ rec: DecodedRecord; info: HalfInfo | string }> = [];
    let offset = this.halfNext;
    while (out.length < ROUND_MAX_HALVES) {
      const r = await this.d.store.getMessages(HALF_TOPIC, 0, offset, { maxCount: 256 });
      if (r.status === 'OFFSET_TOO_SMALL') {
        // Retention removed halves nobody resolved in time: carry on from the oldest kept.
        this.halfNext = offset = r.nextBeginOffset;
        continue;
      }
      if (r.records.length === 0) break;
      for (const buf of r.records) {
        const d = decodeRecord(buf, 0);
        if (d.kind === 'record') out.push({ rec: d.record, info: halfInfo(d.record) });
      }
      offset = r.nextBeginOffset;
    }
    return out;
  }

  /** Forgets ops no half at or past the progress needs; commits both progress offsets. */
  private prune(latest: Map<string, number>): void {
    this.ops = this.ops.filter(
      (op) =>
        op.halfOffsets.some((o) => o >= this.halfNext) ||
        (op.transactionId !== undefined && (latest.get(op.transactionId) ?? -1) >= this.halfNext),
    );
    this.resolvedOffsets.clear();
    this.resolvedTx.clear();
    for (const op of this.ops) {
      for (const o of op.halfOffsets) if (o >= this.halfNext) this.resolvedOffsets.add(o);
      if (op.transactionId) this.resolvedTx.add(op.transactionId);
    }
    this.d.offsets.commit(TRANSACTION_GROUP, HALF_TOPIC, 0, this.halfNext);
    const firstNeeded = this.ops.reduce((m, op) => Math.min(m, op.opOffset), this.opRead);
    this.d.offsets.commit(TRANSACTION_GROUP, OP_TOPIC, 0, firstNeeded);
  }

  /** Runs `fn` after every earlier call with the same key has finished. */
  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.ending.get(key) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    this.ending.set(key, next);
    void next
      .catch(() => undefined)
      .finally(() => {
        if (this.ending.get(key) === next) this.ending.delete(key);
      });
    return next;
  }

  /** Halves not yet resolved, as of the last ops read (for `tsmq`'s listing; read-only). */
  progress(): { halfNext: number; opRead: number; resolvedInWindow: number } {
    return { halfNext: this.halfNext, opRead: this.opRead, resolvedInWindow: this.resolvedOffsets.size };
  }
}
