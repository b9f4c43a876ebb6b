/**
 * Long polling for PULL_MESSAGE (RocketMQ's PullRequestHoldService): a pull with the SUSPEND flag
 * that finds nothing is held here, and resumed
 *
 *   - at once when the store dispatches a message of its queue at or past the offset it waits for
 *     and whose tagsCode its subscription accepts (notifyArrival, fed by onMessageDispatched);
 *   - by step() when the queue's dispatched max offset moved past that offset anyway (a wake-up
 *     missed between the pull's read and its hold), or when its deadline passed.
 *
 * Resuming re-runs the pull without the right to suspend again, so it answers with what it finds
 * (or PULL_NOT_FOUND at the deadline). A held pull whose connection closes is dropped unanswered.
 * Holds are bounded (pullHeldRequestsMax); step() is driven by a timer in production and called
 * directly by tests.
 */

import { matchesTagsCode, type TagSubscription } from '../message/index.js';
import type { RemotingChannel } from '../remoting/index.js';

export interface HeldPull {
  readonly topic: string;
  readonly queueId: number;
  /** The queue offset the pull asked for; any message at or past it may answer it. */
  readonly pullFromOffset: number;
  readonly subscription: TagSubscription;
  readonly deadlineMs: number;
  readonly channel: RemotingChannel;
  /** Re-runs the pull (without suspending) and answers it. Called at most once. */
  resume(): void;
  /** Gives up without an answer (connection closed, broker closing). Called at most once. */
  drop(): void;
}

export interface PullHoldOptions {
  maxHeld: number;
  /** The highest dispatched queue offset (exclusive) of a queue. */
  maxOffset(topic: string, queueId: number): number;
}

const queueKey = (topic: string, queueId: number) => `${topic}\u0000${queueId}`;

export class PullRequestHoldService {
  private readonly byQueue = new Map<string, Set<HeldPull>>();
  private readonly byChannel = new Map<RemotingChannel, Set<HeldPull>>();
  private count = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: PullHoldOptions) {}

  get size(): number {
    return this.count;
  }

  /** Pulls held for one queue. */
  heldFor(topic: string, queueId: number): number {
    return this.byQueue.get(queueKey(topic, queueId))?.size ?? 0;
  }

  /** Holds a pull; false when the limit is reached or its connection is already closed. */
  hold(p: HeldPull): boolean {
    if (this.count >= this.opts.maxHeld || p.channel.closed) return false;
    const key = queueKey(p.topic, p.queueId);
    let q = this.byQueue.get(key);
    if (!q) {
      q = new Set();
      this.byQueue.set(key, q);
    }
    q.add(p);
    let c = this.byChannel.get(p.channel);
    if (!c) {
      c = new Set();
      this.byChannel.set(p.channel, c);
      // One listener per connection, however many pulls it parks here.
      p.channel.onClose(() => this.dropChannel(p.channel));
    }
    c.add(p);
    this.count++;
    return true;
  }

  /** A message was dispatched: resume the pulls of its queue it can answer. */
  notifyArrival(topic: string, queueId: number, queueOffset: number, tagsCode: number): void {
    if (this.count === 0) return;
    const q = this.byQueue.get(queueKey(topic, queueId));
    if (!q) return;
    for (const p of [...q]) {
      if (queueOffset >= p.pullFromOffset && matchesTagsCode(p.subscription, tagsCode)) {
        this.remove(p);
        p.resume();
      }
    }
  }

  /** Resumes the pulls whose deadline passed or whose queue grew past their offset. */
  step(nowMs: number): void {
    if (this.count === 0) return;
    for (const q of [...this.byQueue.values()]) {
      for (const p of [...q]) {
        if (nowMs >= p.deadlineMs || this.opts.maxOffset(p.topic, p.queueId) > p.pullFromOffset) {
          this.remove(p);
          p.resume();
        }
      }
    }
  }

  start(intervalMs: number, now: () => number): void {
    this.timer = setInterval(() => this.step(now()), intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and drops every held pull. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const q of [...this.byQueue.values()]) {
      for (const p of [...q]) {
        this.remove(p);
        p.drop();
      }
    }
  }

  private dropChannel(channel: RemotingChannel): void {
    const c = this.byChannel.get(channel);
    this.byChannel.delete(channel);
    for (const p of c ?? []) {
      this.remove(p);
      p.drop();
    }
  }

  private remove(p: HeldPull): void {
    const key = queueKey(p.topic, p.queueId);
    const q = this.byQueue.get(key);
    if (!q?.delete(p)) return;
    if (q.size === 0) this.byQueue.delete(key);
    const c = this.byChannel.get(p.channel);
    c?.delete(p);
    // The channel's entry stays (with its one close listener) until the connection closes.
    this.count--;
  }
}
