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
 * Pulls of one queue hand their messages out in offset order, so the cache is two arrays in
 * offset order (offsets, messages), appended to at the end; an acknowledged message leaves a hole
 * and the front advances past holes (no hashing per message). A put below the highest offset (a
 * reset backwards, a redelivery) is a sorted insert.
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
  /** Cached offsets, ascending from `head`; `items[i]` is undefined once acknowledged. */
  private offs: number[] = [];
  private items: (MessageExt | undefined)[] = [];
  /** The first slot still cached (every slot before it was acknowledged); offs.length if none. */
  private head = 0;
  private live = 0;
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
    return this.live;
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
    return this.live === 0 ? 0 : this.maxPutOffset - this.offs[this.head]!;
  }

  /** Caches messages (in queue order); ones already cached are skipped. Returns those added. */
  put(msgs: readonly MessageExt[]): MessageExt[] {
    const added: MessageExt[] = [];
    const offs = this.offs;
    const items = this.items;
    for (const m of msgs) {
      const o = m.queueOffset;
      const n = offs.length;
      if (this.head === n || o > offs[n - 1]!) {
        offs.push(o);
        items.push(m);
      } else {
        const i = this.lowerBound(o);
        if (i < n && offs[i] === o) {
          if (items[i] !== undefined) continue; // cached already
          items[i] = m; // acknowledged before (a reset backwards): cached again
        } else {
          offs.splice(i, 0, o);
          items.splice(i, 0, m);
        }
      }
      this.live++;
      this.bytes += m.body.length;
      if (o > this.maxPutOffset) this.maxPutOffset = o;
      added.push(m);
    }
    return added;
  }

  /** Acknowledges messages; returns the committable offset afterwards (see the table above). */
  remove(msgs: readonly MessageExt[]): number | undefined {
    const items = this.items;
    for (const m of msgs) {
      const i = this.indexOf(m.queueOffset);
      if (i < 0) continue;
      const cached = items[i];
      if (cached === undefined) continue;
      items[i] = undefined;
      this.live--;
      this.bytes -= cached.body.length;
    }
    const n = items.length;
    let h = this.head;
    while (h < n && items[h] === undefined) h++;
    if (h === n) {
      this.offs.length = 0;
      items.length = 0;
      h = 0;
    } else if (h > 1024 && h * 2 > n) {
      this.offs.splice(0, h);
      items.splice(0, h);
      h = 0;
    }
    this.head = h;
    return this.committable();
  }

  committable(): number | undefined {
    if (this.live > 0) return this.offs[this.head];
    return this.maxPutOffset >= 0 ? this.maxPutOffset + 1 : undefined;
  }

  /** Forgets every cached message and where it got to (a seek). */
  clear(): void {
    this.offs = [];
    this.items = [];
    this.head = 0;
    this.live = 0;
    this.bytes = 0;
    this.maxPutOffset = -1;
  }

  /** The first slot from `head` whose offset is at least `offset`. */
  private lowerBound(offset: number): number {
    const offs = this.offs;
    let lo = this.head;
    let hi = offs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (offs[mid]! < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The slot of `offset` from `head`, or -1. Offsets cached back to back are found at once. */
  private indexOf(offset: number): number {
    const offs = this.offs;
    const n = offs.length;
    if (this.head >= n) return -1;
    const guess = this.head + (offset - offs[this.head]!);
    if (guess >= this.head && guess < n && offs[guess] === offset) return guess;
    const i = this.lowerBound(offset);
    return i < n && offs[i] === offset ? i : -1;
  }
}
