/**
 * Orderly consumption for the push consumer (RocketMQ's ConsumeMessageOrderlyService): each queue's
 * messages go to the handler one call at a time, in queue-offset order; different queues run in
 * parallel. In CLUSTERING a queue is consumed only while this member holds its lock on the queue's
 * master (LOCK_BATCH_MQ, ./queue-lock.ts), and its offsets are committed with the lock's version,
 * so a member that lost its lease cannot move the group's offset (the broker answers NO_PERMISSION).
 * BROADCASTING needs no locks: every member reads every queue; calls are still sequential per queue.
 *
 * A queue's lifecycle here:
 *
 *   assigned ─▶ acquire(): LOCK_BATCH_MQ every LOCK_RETRY_MS until granted (the old owner may hold
 *        │      the lock until its lease ends) ─▶ the consumer reads the start offset and pulls
 *        ▼
 *   held ──── renewed every lockRenewIntervalMs; a renewal not granted, or granted with another
 *        │    version, or an offset commit refused with NO_PERMISSION ─▶ lost: the consumer drops
 *        │    the queue's cache and starts over at "assigned"
 *        │    held() is false once the last grant is older than 1.5 × lockRenewIntervalMs (a frozen
 *        │    process wakes up and must not consume on an expired lease): pulls and calls wait
 *        ▼
 *   released (rebalance or shutdown): the call in flight finishes and its offset is committed,
 *        then UNLOCK_BATCH_MQ
 *
 * A call that throws or returns 'SUSPEND_CURRENT_QUEUE_A_MOMENT' is repeated with the same
 * messages after suspendCurrentQueueTimeMillis; nothing after them is delivered meanwhile. Once a
 * message's reconsumeTimes passes maxReconsumeTimes (16 unless the consumer sets it), each further
 * failure asks the consumer's ConsumeFailurePolicy (./consume-failure.ts): the messages it returns
 * are retried, the others are skipped past (committed). The default policy, deadLetter, sends them
 * to %DLQ%<group> with the queue lock's version and returns those it could not send, so a poison
 * message ends in the DLQ instead of blocking its queue, and none is skipped unsent.
 */
import type { Logger } from '../../common/log.js';
import { type MessageExt, type MessageQueue, mqKey } from '../message.js';
import type { ConsumeFailurePolicy } from './consume-failure.js';
import type { OffsetStore } from './offset-store.js';
import { delay, type ProcessQueue } from './process-queue.js';
import { type ConsumerApi, describeQueue } from './pull-api.js';
import { lockQueues, unlockQueues } from './queue-lock.js';
import type { ConsumeContext } from './types.js';

/** What an orderly handler reports: done, or suspend this queue and give me these again. */
export type OrderlyConsumeResult = 'SUCCESS' | 'SUSPEND_CURRENT_QUEUE_A_MOMENT';

/**
 * An orderly handler. Resolving with nothing or 'SUCCESS' acknowledges the call's messages;
 * 'SUSPEND_CURRENT_QUEUE_A_MOMENT' or a rejection repeats them after the suspend time.
 */
export type OrderlyMessageHandler = (
  msgs: MessageExt[],
  ctx: ConsumeContext,
  // biome-ignore lint/suspicious/noConfusingVoidType: so that `async (msgs) => { ... }` fits.
) => Promise<OrderlyConsumeResult | void>;

/** Pause between attempts to take a queue's lock, and between checks of a lapsed one, ms. */
export const LOCK_RETRY_MS = 300;

export interface OrderlyOptions {
  /** Whether queues are locked (CLUSTERING) or not (BROADCASTING). */
  locking: boolean;
  handler: OrderlyMessageHandler;
  batchMaxSize: number;
  suspendMs: number;
  /** -1: unlimited. */
  maxReconsumeTimes: number;
  renewIntervalMs: number;
  api: ConsumerApi;
  group: string;
  store: OffsetStore;
  failurePolicy: ConsumeFailurePolicy;
  logger: Logger;
  counters: { consumed: number; failed: number };
  /** The lease of `pq` is lost: the consumer drops it and starts it over. */
  lost: (pq: ProcessQueue) => void;
  /** The queues the consumer holds now. */
  queues: () => ProcessQueue[];
}

interface QueueState {
  readonly pq: ProcessQueue;
  version: number | undefined;
  lockedAtMs: number;
  /** Messages delivered to this queue and not yet acknowledged, in offset order. */
  pending: MessageExt[];
  running: boolean;
  stopping: boolean;
  lost: boolean;
  /** Aborts a suspend wait (release, loss, shutdown). */
  readonly wake: AbortController;
}

export class OrderlyService {
  private readonly states = new Map<ProcessQueue, QueueState>();
  /** The latest worker of each queue (by mqKey): a new one starts only after the previous ends. */
  private readonly workers = new Map<string, Promise<void>>();
  private renewTimer: NodeJS.Timeout | undefined;
  private readonly localMaxLiveMs: number;

  constructor(private readonly o: OrderlyOptions) {
    this.localMaxLiveMs = Math.floor(o.renewIntervalMs * 1.5);
  }

  start(): void {
    if (!this.o.locking) return;
    this.renewTimer = setInterval(() => void this.renew(), this.o.renewIntervalMs);
    this.renewTimer.unref();
  }

  private state(pq: ProcessQueue): QueueState {
    let st = this.states.get(pq);
    if (!st) {
      st = {
        pq,
        version: undefined,
        lockedAtMs: 0,
        pending: [],
        running: false,
        stopping: false,
        lost: false,
        wake: new AbortController(),
      };
      this.states.set(pq, st);
    }
    return st;
  }

  /** Whether `pq` may be pulled and consumed now. */
  held(pq: ProcessQueue): boolean {
    if (!this.o.locking) return true;
    const st = this.states.get(pq);
    return (
      st !== undefined &&
      !st.lost &&
      st.version !== undefined &&
      Date.now() - st.lockedAtMs <= this.localMaxLiveMs
    );
  }

  /** The lock version to commit `mq`'s offset with; undefined when no live queue holds it. */
  versionOf(mq: MessageQueue): number | undefined {
    const key = mqKey(mq);
    for (const st of this.states.values()) {
      if (!st.lost && mqKey(st.pq.mq) === key && st.version !== undefined) return st.version;
    }
    return undefined;
  }

  /** An offset commit of `mq` was refused as stale: its lease is gone. */
  refused(mq: MessageQueue): void {
    const key = mqKey(mq);
    for (const st of [...this.states.values()]) {
      if (mqKey(st.pq.mq) === key) this.markLost(st, 'an offset commit was refused (stale lock version)');
    }
  }

  /**
   * Takes `pq`'s lock, retrying until granted; false when the queue stopped first. Resolves only
   * after the previous worker of the same queue (a lost or reset predecessor) has ended.
   */
  async acquire(pq: ProcessQueue): Promise<boolean> {
    const st = this.state(pq);
    await this.workers.get(mqKey(pq.mq))?.catch(() => undefined);
    if (!this.o.locking) return !pq.pullStopped;
    while (!pq.pullStopped) {
      const grants = await lockQueues(this.o.api, this.o.group, [pq.mq]);
      const version = grants.get(mqKey(pq.mq));
      if (version !== undefined && !pq.pullStopped) {
        st.version = version;
        st.lockedAtMs = Date.now();
        return true;
      }
      await pq.sleep(LOCK_RETRY_MS);
    }
    return false;
  }

  /** A reset moved `old`'s queue to a fresh cache under the same lock. */
  transfer(old: ProcessQueue, fresh: ProcessQueue): void {
    const prev = this.states.get(old);
    const st = this.state(fresh);
    if (prev) {
      st.version = prev.version;
      st.lockedAtMs = prev.lockedAtMs;
      prev.lost = true;
      prev.wake.abort();
      this.states.delete(old);
    }
  }

  /** Messages newly cached for `pq`, in offset order. */
  submit(pq: ProcessQueue, msgs: MessageExt[]): void {
    const st = this.state(pq);
    for (const m of msgs) st.pending.push(m);
    this.kick(st);
  }

  private kick(st: QueueState): void {
    if (st.running || st.stopping || st.lost) return;
    st.running = true;
    const key = mqKey(st.pq.mq);
    const prev = this.workers.get(key) ?? Promise.resolve();
    const p: Promise<void> = prev
      .then(() => this.work(st))
      .catch((e: Error) => this.o.logger.error({ err: e.message }, 'orderly worker failed'))
      .finally(() => {
        st.running = false;
        if (this.workers.get(key) === p) this.workers.delete(key);
        if (st.pending.length > 0) this.kick(st);
      });
    this.workers.set(key, p);
  }

  private async work(st: QueueState): Promise<void> {
    const { pq } = st;
    const ctx: ConsumeContext = { queue: pq.mq };
    while (!st.stopping && !st.lost && !pq.dropped && st.pending.length > 0) {
      if (!this.held(pq)) {
        await delay(LOCK_RETRY_MS, st.wake.signal);
        continue;
      }
      const msgs = st.pending.slice(0, this.o.batchMaxSize);
      let ok = false;
      try {
        const r = await this.o.handler(msgs, ctx);
        ok = r === undefined || r === 'SUCCESS';
      } catch (e) {
        this.o.logger.warn(
          { queue: describeQueue(pq.mq), offset: msgs[0]?.queueOffset, err: (e as Error).message },
          'the orderly handler threw; suspending the queue',
        );
      }
      // A lost lease: another member consumes from the committed offset; nothing here counts.
      if (st.lost || pq.dropped) return;
      pq.lastConsumeMs = Date.now();
      let done: MessageExt[] = msgs;
      if (ok) {
        this.o.counters.consumed += msgs.length;
      } else {
        this.o.counters.failed += msgs.length;
        for (const m of msgs) m.reconsumeTimes++;
        done = [];
        // Only the messages past the maximum go to the policy; the others of the call are retried.
        const over = msgs.filter((m) => m.reconsumeTimes > this.o.maxReconsumeTimes);
        if (this.o.maxReconsumeTimes >= 0 && over.length > 0) {
          let again: MessageExt[];
          try {
            again = await this.o.failurePolicy.onFailure(over, ctx);
          } catch (e) {
            this.o.logger.warn({ err: (e as Error).message }, 'the failure policy threw; retrying');
            again = over;
          }
          const keep = new Set(again);
          done = over.filter((m) => !keep.has(m));
          if (done.length > 0) {
            this.o.logger.warn(
              { queue: describeQueue(pq.mq), offsets: done.map((m) => m.queueOffset) },
              'past maxReconsumeTimes: the failure policy took these messages; the queue moves on',
            );
          }
        }
        if (done.length === 0) {
          await delay(this.o.suspendMs, st.wake.signal);
          continue;
        }
      }
      const doneSet = new Set(done);
      st.pending = st.pending.filter((m) => !doneSet.has(m));
      const offset = pq.remove(done);
      if (offset !== undefined) this.o.store.update(pq.mq, offset, true);
    }
  }

  private markLost(st: QueueState, why: string): void {
    if (st.lost || st.stopping) return;
    st.lost = true;
    st.wake.abort();
    this.o.logger.warn(
      { queue: describeQueue(st.pq.mq), why },
      'queue lock lost; re-locking before consuming',
    );
    this.states.delete(st.pq);
    this.o.lost(st.pq);
  }

  /** Renews the locks of every held queue; those not granted (or granted anew) are lost. */
  private async renew(): Promise<void> {
    const held = this.o.queues().filter((pq) => {
      const st = this.states.get(pq);
      return st !== undefined && st.version !== undefined && !st.lost && !st.stopping;
    });
    if (held.length === 0) return;
    const grants = await lockQueues(
      this.o.api,
      this.o.group,
      held.map((pq) => pq.mq),
    );
    const now = Date.now();
    for (const pq of held) {
      const st = this.states.get(pq);
      if (!st || st.lost || st.stopping) continue;
      const v = grants.get(mqKey(pq.mq));
      if (v === st.version) st.lockedAtMs = now;
      else this.markLost(st, v === undefined ? 'renewal not granted' : 'the queue changed hands meanwhile');
    }
  }

  /** Stops `pq`'s consumption: the call in flight finishes (up to `waitMs`); nothing new starts. */
  async release(pq: ProcessQueue, waitMs: number): Promise<void> {
    const st = this.states.get(pq);
    if (!st) return;
    st.stopping = true;
    st.wake.abort();
    await this.idle([mqKey(pq.mq)], waitMs);
  }

  /** Gives the queues' locks back and forgets them. */
  async unlock(pqs: readonly ProcessQueue[]): Promise<void> {
    const mqs = pqs.filter((pq) => this.states.get(pq)?.version !== undefined).map((pq) => pq.mq);
    for (const pq of pqs) this.states.delete(pq);
    if (this.o.locking && mqs.length > 0) await unlockQueues(this.o.api, this.o.group, mqs);
  }

  /** Shutdown: every queue stops; resolves true once calls in flight end, false after `waitMs`. */
  async stop(waitMs: number): Promise<boolean> {
    clearInterval(this.renewTimer);
    for (const st of this.states.values()) {
      st.stopping = true;
      st.wake.abort();
    }
    return this.idle([...this.workers.keys()], waitMs);
  }

  private async idle(keys: string[], waitMs: number): Promise<boolean> {
    const running = keys.map((k) => this.workers.get(k)).filter((p) => p !== undefined);
    if (running.length === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), waitMs);
    });
    try {
      return await Promise.race([Promise.all(running).then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
