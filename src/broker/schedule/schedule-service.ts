/**
 * Delivery of delay-level messages (RocketMQ's ScheduleMessageService). Level L's messages wait
 * in queue L − 1 of SCHEDULE_TOPIC_XXXX in the order they were sent, and all of a level wait
 * equally long, so each queue becomes due from its head: a level's loop reads units from its
 * offset, and while the head's deliver-at time (the unit's tagsCode, see put-message.ts) has
 * come, reads the message, stores it at its real topic and queue (`restoreRealMessage`, through
 * `MessagePutService.putNow`) and moves the level's offset past it (delay-offsets.ts). Puts of one
 * round are issued in queue order in one turn of the event loop, so they are stored in that
 * order: a level delivers in the order it was sent.
 *
 * Failures: a message that cannot be read back (its segment deleted by retention, a corrupt
 * record) or that the store refuses for what it is (too large for today's limit) is logged and
 * skipped — it would block its level for ever. A refusal for the store's state (busy, disk full,
 * closing) stops the level at that message and retries a second later; messages of the same
 * round after it that were stored are delivered again then (at least once).
 *
 * Clock: a head due further ahead than its level's delay means the clock went back since it
 * was stored; it is delivered now, as RocketMQ's correctDeliverTimestamp does.
 *
 * `step(nowMs)` runs one round over all levels and says when the next head is due; `start()`
 * runs rounds whenever one is due, when `kick()` says a message arrived, and at least every
 * second. Tests may drive `step` directly.
 */
import type { Clock } from '../../common/clock.js';
import { isTsmqError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { AppendMessage, DecodedRecord } from '../../message/index.js';
import { type MessageStore, unitAt } from '../../store/index.js';
import { RoundLoop } from '../round-loop.js';
import type { DelayOffsetsFile, DelayOffsetTable } from './delay-offsets.js';
import { type MessagePutService, restoreRealMessage, SCHEDULE_TOPIC } from './put-message.js';

/** Messages one level delivers per round at most (a bound on memory and on one round's time). */
export const SCHEDULE_BATCH_MAX = 128;
/** Longest wait between rounds when nothing is due (new messages kick the loop sooner). */
const IDLE_POLL_MS = 1000;
/** Wait after the store refused a delivery for its state (busy, disk full). */
const RETRY_AFTER_MS = 1000;

/** Store refusals that pass with time; any other refusal of a delivery is for the message itself. */
const TRANSIENT = new Set(['STORE_BUSY', 'DISK_FULL', 'STORE_CLOSED', 'STORE_IO_ERROR']);

export interface ScheduleServiceOptions {
  store: MessageStore;
  putter: MessagePutService;
  /** Delay of each level, level 1 first, ms. */
  delayLevelsMs: readonly number[];
  offsets: DelayOffsetTable;
  clock: Clock;
  logger: Logger;
  /** Called with the number of messages each round stored at their real queues (statistics). */
  onDelivered?: (n: number) => void;
}

export interface LevelProgress {
  level: number;
  /** Next queue offset to deliver. */
  deliverOffset: number;
  /** End of the level's queue (dispatched). */
  maxOffset: number;
}

export class ScheduleMessageService {
  private readonly rounds: RoundLoop;
  /** Messages skipped because they could not be read or stored (logged one by one). */
  skipped = 0;
  /** Messages stored at their real queues since start. */
  delivered = 0;

  constructor(private readonly opts: ScheduleServiceOptions) {
    this.rounds = new RoundLoop({
      round: (now) => this.step(now),
      clock: opts.clock,
      logger: opts.logger,
      what: 'delay-level delivery',
      idlePollMs: IDLE_POLL_MS,
      retryAfterMs: RETRY_AFTER_MS,
    });
  }

  /** Levels with a queue to look at: the configured ones and any older queue beyond them. */
  private levels(): number[] {
    const n = this.opts.delayLevelsMs.length;
    const levels = new Set<number>();
    for (let l = 1; l <= n; l++) levels.add(l);
    for (const cq of this.opts.store.consumeQueues.queuesOf(SCHEDULE_TOPIC)) levels.add(cq.queueId + 1);
    return [...levels].sort((a, b) => a - b);
  }

  /** Delivery progress of every level that has a queue. */
  progress(): LevelProgress[] {
    const out: LevelProgress[] = [];
    for (const level of this.levels()) {
      const cq = this.opts.store.consumeQueues.get(SCHEDULE_TOPIC, level - 1);
      if (!cq) continue;
      out.push({
        level,
        deliverOffset: Math.max(this.opts.offsets.get(level) ?? 0, cq.minOffset()),
        maxOffset: cq.maxOffset(),
      });
    }
    return out;
  }

  /** Progress in delayOffset.json's shape, current: every level with a queue or a stored offset. */
  offsetTable(): DelayOffsetsFile {
    const table = new Map<number, number>(
      Object.entries(this.opts.offsets.snapshot().offsetTable).map(([k, v]) => [Number(k), v]),
    );
    for (const p of this.progress()) table.set(p.level, p.deliverOffset);
    const offsetTable: Record<string, number> = {};
    for (const [level, off] of [...table].sort((a, b) => a[0] - b[0])) offsetTable[String(level)] = off;
    return { offsetTable };
  }

  /**
   * One round: delivers what is due at `nowMs` on every level (up to SCHEDULE_BATCH_MAX each).
   * Returns the earliest time something else is due (≤ nowMs: more is due already), or undefined
   * when no level holds a message.
   */
  async step(nowMs: number): Promise<number | undefined> {
    const nexts = await Promise.all(this.levels().map((l) => this.stepLevel(l, nowMs)));
    let next: number | undefined;
    for (const n of nexts) if (n !== undefined && (next === undefined || n < next)) next = n;
    return next;
  }

  private async stepLevel(level: number, nowMs: number): Promise<number | undefined> {
    const { store, offsets, logger } = this.opts;
    const cq = store.consumeQueues.get(SCHEDULE_TOPIC, level - 1);
    if (!cq) return undefined;
    const min = cq.minOffset();
    const max = cq.maxOffset();
    let offset = offsets.get(level) ?? 0;
    if (offset < min) {
      if (offset > 0) {
        logger.error(
          { level, offset, minOffset: min },
          `delay level ${level}: messages ${offset}..${min - 1} were deleted by retention before they were delivered`,
        );
      }
      offset = min;
      offsets.set(level, offset);
    }
    if (offset >= max) return undefined;
    const units = await cq.readUnits(offset, Math.min(SCHEDULE_BATCH_MAX, max - offset));
    const delayMs = this.opts.delayLevelsMs[level - 1];
    const due: Array<{ queueOffset: number; phys: number }> = [];
    let next: number | undefined;
    const n = units.length / 20;
    let i = 0;
    for (; i < n; i++) {
      const u = unitAt(units, i);
      if (u.size === 0) continue; // a hole: nothing to deliver
      let at = u.tagsCode;
      if (delayMs !== undefined && at > nowMs + delayMs) at = nowMs; // the clock went back
      if (at > nowMs) {
        next = at;
        break;
      }
      due.push({ queueOffset: offset + i, phys: u.physicalOffset });
    }
    const end = offset + i; // units before `end` are due (or holes)
    if (end === offset) return next;

    const read = await Promise.all(
      due.map((d) =>
        store.getMessageByPhysicalOffset(d.phys).then(
          (rec): DecodedRecord | Error => rec,
          (e: unknown): Error => (e instanceof Error ? e : new Error(String(e))),
        ),
      ),
    );
    const msgs: Array<{ queueOffset: number; msg: AppendMessage }> = [];
    for (const [k, r] of read.entries()) {
      const d = due[k]!;
      const msg = r instanceof Error ? r.message : restoreRealMessage(r);
      if (typeof msg === 'string') {
        this.skipped++;
        logger.error(
          { level, queueOffset: d.queueOffset, physicalOffset: d.phys, reason: msg },
          `delay level ${level}: message ${d.queueOffset} cannot be delivered and is skipped: ${msg}`,
        );
        continue;
      }
      msgs.push({ queueOffset: d.queueOffset, msg });
    }
    // Issued in one turn, so stored in queue order.
    const puts = msgs.map((m) => this.opts.putter.putNow(m.msg));
    const settled = await Promise.allSettled(puts);
    let stored = 0;
    let stopAt = end;
    for (const [k, s] of settled.entries()) {
      if (s.status === 'fulfilled') {
        stored++;
        continue;
      }
      const m = msgs[k]!;
      if (isTsmqError(s.reason) && TRANSIENT.has(s.reason.codeName)) {
        stopAt = Math.min(stopAt, m.queueOffset);
        continue;
      }
      this.skipped++;
      logger.error(
        { level, queueOffset: m.queueOffset, err: s.reason },
        `delay level ${level}: message ${m.queueOffset} was refused by the store and is skipped: ${(s.reason as Error).message}`,
      );
    }
    this.delivered += stored;
    if (stored > 0) this.opts.onDelivered?.(stored);
    offsets.set(level, stopAt);
    if (stopAt < end) return nowMs + RETRY_AFTER_MS;
    if (next !== undefined) return next;
    return end < max ? nowMs : undefined;
  }

  /** Runs rounds in the background until `close()`. */
  start(): void {
    this.rounds.start();
  }

  /** Something arrived in the schedule topic: look again now. */
  kick(): void {
    this.rounds.kick();
  }

  /** Stops the loop after the round in progress and writes the progress. */
  async close(): Promise<void> {
    await this.rounds.stop();
    await this.opts.offsets.close();
  }
}
