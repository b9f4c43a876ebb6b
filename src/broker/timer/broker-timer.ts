/**
 * The timer service on a broker's store: its source is queue 0 of rmq_sys_wheel_timer (each
 * consume-queue unit's tagsCode is the delivery time, see put-message.ts), its sink reads a due
 * message from the commit log and stores it at its real topic and queue through the broker's
 * put entry. Files in <storeRoot>/timer/ (timer-store.ts).
 */
import path from 'node:path';
import type { Clock } from '../../common/clock.js';
import { isTsmqError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { DecodedRecord } from '../../message/index.js';
import { type MessageStore, unitAt } from '../../store/index.js';
import { type MessagePutService, restoreRealMessage, TIMER_TOPIC } from '../schedule/put-message.js';
import {
  type DeliverOutcome,
  type TimerEntry,
  TimerMessageService,
  type TimerSink,
  type TimerSource,
  type TimerSourceUnit,
} from './timer-service.js';
import { TimerStore } from './timer-store.js';

/** Most records a wheel has (128 MiB of sparse file); delays beyond it are rolled. */
export const WHEEL_SLOTS_MAX = 4 * 1024 * 1024;

/** Records of a new wheel: one per slot up to the longest delay, and a few more. */
export function wheelSlotsFor(precisionMs: number, timerMaxDelaySec: number): number {
  return Math.min(WHEEL_SLOTS_MAX, Math.max(16, Math.ceil((timerMaxDelaySec * 1000) / precisionMs) + 4));
}

/** Store refusals that pass with time. */
const TRANSIENT = new Set(['STORE_BUSY', 'DISK_FULL', 'STORE_CLOSED', 'STORE_IO_ERROR']);

export class StoreTimerSource implements TimerSource {
  constructor(private readonly store: MessageStore) {}

  minOffset(): number {
    return this.store.minOffsetInQueue(TIMER_TOPIC, 0);
  }

  maxOffset(): number {
    return this.store.dispatchedMaxOffsetInQueue(TIMER_TOPIC, 0);
  }

  async read(from: number, max: number): Promise<{ units: TimerSourceUnit[]; next: number }> {
    const cq = this.store.consumeQueues.get(TIMER_TOPIC, 0);
    const n = Math.min(max, this.maxOffset() - from);
    if (!cq || n <= 0) return { units: [], next: from };
    const buf = await cq.readUnits(from, n);
    const units: TimerSourceUnit[] = [];
    const count = buf.length / 20;
    for (let i = 0; i < count; i++) {
      const u = unitAt(buf, i);
      if (u.size === 0) continue;
      units.push({ queueOffset: from + i, phys: u.physicalOffset, size: u.size, deliverAtMs: u.tagsCode });
    }
    return { units, next: from + count };
  }
}

export class StoreTimerSink implements TimerSink {
  constructor(
    private readonly store: MessageStore,
    private readonly putter: MessagePutService,
    private readonly logger: Logger,
    private readonly onDelivered?: (n: number) => void,
  ) {}

  async deliver(entries: readonly TimerEntry[]): Promise<DeliverOutcome[]> {
    const outcomes: DeliverOutcome[] = entries.map(() => 'skipped');
    const records = await Promise.all(
      entries.map((e) =>
        this.store.getMessageByPhysicalOffset(e.phys).then(
          (r): DecodedRecord | Error => r,
          (err: unknown): Error => (err instanceof Error ? err : new Error(String(err))),
        ),
      ),
    );
    const puts: Array<{ i: number; put: Promise<unknown> }> = [];
    for (const [i, rec] of records.entries()) {
      const e = entries[i]!;
      let msg = rec instanceof Error ? rec.message : restoreRealMessage(rec);
      if (!(rec instanceof Error) && rec.topic !== TIMER_TOPIC) {
        msg = `the timer points at a message of topic ${rec.topic}, not ${TIMER_TOPIC}`;
      }
      if (typeof msg === 'string') {
        this.logger.error(
          { physicalOffset: e.phys, deliverAtMs: e.deliverAtMs, reason: msg },
          `timer message at commit-log offset ${e.phys} cannot be delivered and is skipped: ${msg}`,
        );
        continue;
      }
      // Issued in this order in one turn: stored in delivery-time order.
      puts.push({ i, put: this.putter.putNow(msg) });
    }
    const settled = await Promise.allSettled(puts.map((p) => p.put));
    let stored = 0;
    for (const [k, s] of settled.entries()) {
      const i = puts[k]!.i;
      if (s.status === 'fulfilled') {
        outcomes[i] = 'delivered';
        stored++;
      } else if (isTsmqError(s.reason) && TRANSIENT.has(s.reason.codeName)) {
        outcomes[i] = 'retry';
      } else {
        this.logger.error(
          { physicalOffset: entries[i]!.phys, err: s.reason },
          `timer message at commit-log offset ${entries[i]!.phys} was refused by the store and is skipped`,
        );
      }
    }
    if (stored > 0) this.onDelivered?.(stored);
    return outcomes;
  }
}

export interface BrokerTimerOptions {
  store: MessageStore;
  putter: MessagePutService;
  storePathRootDir: string;
  precisionMs: number;
  timerMaxDelaySec: number;
  checkpointIntervalMs: number;
  clock: Clock;
  logger: Logger;
  onDelivered?: (n: number) => void;
}

/** Opens (recovers) the timer store and starts its service. */
export async function startBrokerTimer(o: BrokerTimerOptions): Promise<TimerMessageService> {
  const store = await TimerStore.open({
    dir: timerDir(o.storePathRootDir),
    precisionMs: o.precisionMs,
    slotCount: wheelSlotsFor(o.precisionMs, o.timerMaxDelaySec),
    logger: o.logger,
    nowMs: o.clock.now(),
  });
  const r = store.recovery;
  o.logger.info(
    { recovery: r, precisionMs: store.precisionMs, slotCount: store.slotCount, pending: store.pending },
    r.fresh
      ? `timer store created (${store.slotCount} slots of ${store.precisionMs} ms)`
      : `timer store opened in ${r.durationMs} ms: ${store.pending} timers pending`,
  );
  const service = new TimerMessageService({
    store,
    source: new StoreTimerSource(o.store),
    sink: new StoreTimerSink(o.store, o.putter, o.logger, o.onDelivered),
    clock: o.clock,
    logger: o.logger,
    checkpointIntervalMs: o.checkpointIntervalMs,
  });
  service.start();
  return service;
}

export function timerDir(storePathRootDir: string): string {
  return path.join(storePathRootDir, 'timer');
}
