/**
 * Runs a push consumer's handler calls (RocketMQ's ConsumeMessageConcurrentlyService): at most
 * `concurrency` at once, the rest waiting in arrival order. The queue is not bounded here: what
 * can wait is bounded by the pull thresholds, which stop pulling a queue whose cache is full.
 *
 * stop() starts nothing more and waits (up to a timeout) for the calls running; tasks that never
 * started stay unacknowledged in their queues' caches, so their offsets are not committed.
 */
import type { MessageExt } from '../message.js';
import type { ProcessQueue } from './process-queue.js';

export interface ConsumeTask {
  readonly pq: ProcessQueue;
  readonly msgs: MessageExt[];
  /** 0 for a first delivery, n for the n-th local redelivery. */
  readonly attempt: number;
}

export class ConsumeService {
  private waiting: ConsumeTask[] = [];
  private head = 0;
  private running = 0;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly concurrency: number,
    private readonly run: (task: ConsumeTask) => Promise<void>,
  ) {}

  /** Calls running now. */
  get active(): number {
    return this.running;
  }

  /** Tasks waiting for a free slot. */
  get queued(): number {
    return this.waiting.length - this.head;
  }

  submit(task: ConsumeTask): void {
    if (this.stopped) return;
    this.waiting.push(task);
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.running < this.concurrency && this.head < this.waiting.length) {
      const task = this.waiting[this.head]!;
      this.waiting[this.head] = undefined as unknown as ConsumeTask;
      this.head++;
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting = this.waiting.slice(this.head);
        this.head = 0;
      }
      this.running++;
      // run() handles its own failures; a throw here is a bug, reported and not swallowed.
      this.run(task)
        .catch((e: unknown) => {
          queueMicrotask(() => {
            throw e;
          });
        })
        .finally(() => {
          this.running--;
          if (this.running === 0) for (const w of this.idleWaiters.splice(0)) w();
          this.pump();
        });
    }
  }

  /** Drops waiting tasks; resolves true once running calls end, false if `timeoutMs` passes first. */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopped = true;
    this.waiting = [];
    this.head = 0;
    if (this.running === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([idle, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
