/**
 * The background loop of the broker's delivery services (delay levels, timers): run a round, which
 * says when the next one is due (undefined: nothing known), then sleep until then — at most
 * `idlePollMs`, and less when `kick()` says something arrived. A round that throws is logged and
 * retried after `retryAfterMs`. `stop()` lets the round in progress finish.
 */
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/log.js';

export interface RoundLoopOptions {
  /** One round at `nowMs`; resolves the time the next is due, or undefined. */
  round: (nowMs: number) => Promise<number | undefined>;
  clock: Clock;
  logger: Logger;
  /** Named in the log line of a failed round. */
  what: string;
  idlePollMs: number;
  retryAfterMs: number;
}

export class RoundLoop {
  private stopped = false;
  private loop: Promise<void> | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeResolve: (() => void) | undefined;

  constructor(private readonly o: RoundLoopOptions) {}

  /** True once stop() was called: rounds check it to end early. */
  get closed(): boolean {
    return this.stopped;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Something arrived: run a round now. */
  kick(): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    const r = this.wakeResolve;
    this.wakeResolve = undefined;
    r?.();
  }

  /** Ends the loop after the round in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.kick();
    await this.loop?.catch(() => undefined);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const now = this.o.clock.now();
      let next: number | undefined;
      try {
        next = await this.o.round(now);
      } catch (e) {
        if (this.stopped) break;
        this.o.logger.error({ err: e }, `${this.o.what} round failed; retrying in ${this.o.retryAfterMs} ms`);
        next = now + this.o.retryAfterMs;
      }
      if (this.stopped) break;
      const wait = Math.min((next ?? Number.POSITIVE_INFINITY) - this.o.clock.now(), this.o.idlePollMs);
      if (wait <= 0) {
        await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      await new Promise<void>((resolve) => {
        this.wakeResolve = resolve;
        this.wakeTimer = setTimeout(() => this.kick(), wait);
      });
    }
  }
}
