/**
 * One assigned queue's local state (RocketMQ's ProcessQueue): the messages pulled and not yet
 * acknowledged, kept by queue offset, their count and body bytes (what flow control looks at), and
 * the offset that is safe to commit:
 *
 *   cache                                  committable offset
 *   -------------------------------------- ------------------------------------------------------
 *   holds messages                         the lowest offset still cached (in flight or waiting
 *                                          for a retry): never past an unacknowledged message
 *   empty, something was cached before     the highest offset ever cached + 1
 *   empty, nothing cached yet              none (the caller keeps its own position)
 *
 * Pulls of one queue are sequential, so messages arrive in offset order and a Map's insertion
 * order is the offset order; an out-of-order put (a reset backwards) re-sorts.
 */
import type { MessageExt, MessageQueue } from '../message.js';

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export class ProcessQueue {
  private readonly msgs = new Map<number, MessageExt>();
  private bytes = 0;
  /** The highest offset ever cached; -1 before the first put. */
  private maxPutOffset = -1;
  private readonly abort = new AbortController();
  private droppedFlag = false;
  private stoppedFlag = false;
  lastPullMs = 0;
  lastConsumeMs = 0;

  constructor(readonly mq: MessageQueue) {}

  /** Removed from the assignment: pull no more, and commit nothing more (another member may). */
  get dropped(): boolean {
    return this.droppedFlag;
  }

  /** No more pulls: the queue was dropped or the consumer is shutting down. */
  get pullStopped(): boolean {
    return this.stoppedFlag;
  }

  drop(): void {
    this.droppedFlag = true;
    this.stopPulling();
  }

  /** Ends the queue's pulling (shutdown) while handlers in flight may still acknowledge. */
  stopPulling(): void {
    this.stoppedFlag = true;
    this.abort.abort();
  }

  /** Aborts when pulling stops (wakes the pull loop's waits). */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  sleep(ms: number): Promise<void> {
    return delay(ms, this.abort.signal);
  }

  get count(): number {
    return this.msgs.size;
  }

  get cachedBytes(): number {
    return this.bytes;
  }

  /**
   * How far pulling has run ahead of the lowest unacknowledged message: the highest offset ever
   * cached minus the lowest still cached (0 when the cache is empty). RocketMQ measures the last
   * cached minus the first cached, which drops to 0 as soon as the messages after a stuck one are
   * consumed, so pulls go on while the commit point stays behind; this measure keeps them stopped.
   */
  get span(): number {
    const first = this.firstKey();
    return first === undefined ? 0 : this.maxPutOffset - first;
  }

  /** Caches messages (in queue order); ones already cached are skipped. Returns those added. */
  put(msgs: readonly MessageExt[]): MessageExt[] {
    const added: MessageExt[] = [];
    let unordered = false;
    for (const m of msgs) {
      if (this.msgs.has(m.queueOffset)) continue;
      // Below something ever cached: maybe below something still cached (a reset backwards).
      if (this.msgs.size > 0 && m.queueOffset < this.maxPutOffset) unordered = true;
      this.msgs.set(m.queueOffset, m);
      this.bytes += m.body.length;
      if (m.queueOffset > this.maxPutOffset) this.maxPutOffset = m.queueOffset;
      added.push(m);
    }
    if (unordered) {
      const sorted = [...this.msgs.entries()].sort((a, b) => a[0] - b[0]);
      this.msgs.clear();
      for (const [k, v] of sorted) this.msgs.set(k, v);
    }
    return added;
  }

  /** Acknowledges messages; returns the committable offset afterwards (see the table above). */
  remove(msgs: readonly MessageExt[]): number | undefined {
    for (const m of msgs) {
      const cached = this.msgs.get(m.queueOffset);
      if (!cached) continue;
      this.msgs.delete(m.queueOffset);
      this.bytes -= cached.body.length;
    }
    return this.committable();
  }

  committable(): number | undefined {
    const first = this.firstKey();
    if (first !== undefined) return first;
    return this.maxPutOffset >= 0 ? this.maxPutOffset + 1 : undefined;
  }

  /** Forgets every cached message and where it got to (a seek). */
  clear(): void {
    this.msgs.clear();
    this.bytes = 0;
    this.maxPutOffset = -1;
  }

  private firstKey(): number | undefined {
    for (const k of this.msgs.keys()) return k;
    return undefined;
  }
}
