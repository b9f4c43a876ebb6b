/**
 * The broker's message counters (RocketMQ's StoreStatsService and BrokerStats, reduced to what
 * GET_BROKER_RUNTIME_INFO and GET_CONSUME_STATS report):
 *
 * - messages put (stored by a send) and messages got (returned by a pull), in total since boot and
 *   at the start of today and of yesterday (local time), RocketMQ's msgPut/GetTotal{TodayNow,
 *   TodayMorning, YesterdayMorning};
 * - put and get rates over the last 10, 60 and 600 seconds;
 * - each consumer group's get rate per topic over the last minute (consumeTps).
 *
 * Rates come from one-second buckets in a ring (601 of them for the broker-wide counters, 61 per
 * group and topic), filled as events arrive and summed when asked: nothing runs on a timer. A rate
 * over w seconds sums the current, partial second and the w whole seconds before it (never from
 * before boot) and divides by the time those buckets span, at least one second: w to w + 1
 * seconds, so the figure moves smoothly rather than dropping as each second begins.
 *
 * Day boundaries are taken lazily too: the first event (or read) of a new day moves "today
 * morning" to "yesterday morning" and takes the current total as the new "today morning". No event
 * happened between midnight and that moment, so the total then is exactly the total at midnight.
 */
import type { Clock } from '../common/clock.js';

/** Longest rate window of the broker-wide counters, seconds (RocketMQ reports 10, 60 and 600 s). */
const BROKER_WINDOW_SEC = 600;
/** Window of a group's consume rate, seconds (RocketMQ's per-minute statistics). */
const GROUP_WINDOW_SEC = 60;
/** Group × topic rates kept at most; beyond it the oldest-created is dropped (its rate restarts at 0). */
export const GROUP_RATES_MAX = 4096;

/** Event counts per second in a ring of one-second buckets, for rates over up to `windowSec`. */
export class RateWindow {
  private readonly counts: Float64Array;
  private readonly seconds: Float64Array;
  private readonly ring: number;

  constructor(private readonly windowSec: number) {
    this.ring = windowSec + 1;
    this.counts = new Float64Array(this.ring);
    this.seconds = new Float64Array(this.ring).fill(-1);
  }

  add(n: number, nowMs: number): void {
    const s = Math.floor(nowMs / 1000);
    const i = s % this.ring;
    if (this.seconds[i] !== s) {
      this.seconds[i] = s;
      this.counts[i] = 0;
    }
    this.counts[i]! += n;
  }

  /** Events per second over the last `sec` seconds (at most the ring's size), not before sinceMs. */
  rate(sec: number, nowMs: number, sinceMs: number): number {
    const w = Math.min(sec, this.windowSec);
    const nowSec = Math.floor(nowMs / 1000);
    let sum = 0;
    for (let k = 0; k <= w; k++) {
      const s = nowSec - k;
      const i = s % this.ring;
      if (this.seconds[i] === s) sum += this.counts[i]!;
    }
    const windowStartMs = Math.max(sinceMs, (nowSec - w) * 1000);
    return sum / Math.max(1, (nowMs - windowStartMs) / 1000);
  }
}

function startOfLocalDay(ms: number): number {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** The start of the local day after the one starting at `dayStartMs` (days are 23 to 25 h long). */
function startOfNextLocalDay(dayStartMs: number): number {
  return startOfLocalDay(dayStartMs + 30 * 3600_000);
}

/** A running total with its values at the start of today and of yesterday (local time). */
export class DailyTotal {
  total = 0;
  todayMorning = 0;
  yesterdayMorning = 0;
  private dayStartMs: number;
  /** The end of the day that began at dayStartMs: until then an event needs no Date. */
  private dayEndMs: number;

  constructor(nowMs: number) {
    this.dayStartMs = startOfLocalDay(nowMs);
    this.dayEndMs = startOfNextLocalDay(this.dayStartMs);
  }

  add(n: number, nowMs: number): void {
    this.roll(nowMs);
    this.total += n;
  }

  /** Moves the morning marks if a day began since the last event. */
  roll(nowMs: number): void {
    if (nowMs >= this.dayStartMs && nowMs < this.dayEndMs) return;
    const day = startOfLocalDay(nowMs);
    if (day === this.dayStartMs) return;
    // The total has not moved since the last event, so it is also the total at every midnight since.
    const oneDayLater = startOfLocalDay(day - 1) === this.dayStartMs;
    this.yesterdayMorning = oneDayLater ? this.todayMorning : this.total;
    this.todayMorning = this.total;
    this.dayStartMs = day;
    this.dayEndMs = startOfNextLocalDay(day);
  }
}

export interface DailyCounts {
  todayNow: number;
  todayMorning: number;
  yesterdayMorning: number;
}

export class BrokerStats {
  readonly bootTimestamp: number;
  private readonly putTotal: DailyTotal;
  private readonly getTotal: DailyTotal;
  private readonly putRate = new RateWindow(BROKER_WINDOW_SEC);
  private readonly getRate = new RateWindow(BROKER_WINDOW_SEC);
  private readonly groupRates = new Map<string, RateWindow>();

  constructor(private readonly clock: Clock) {
    this.bootTimestamp = clock.now();
    this.putTotal = new DailyTotal(this.bootTimestamp);
    this.getTotal = new DailyTotal(this.bootTimestamp);
  }

  /** `n` messages were stored by a send. */
  onPut(n: number): void {
    const now = this.clock.now();
    this.putTotal.add(n, now);
    this.putRate.add(n, now);
  }

  /** A pull of `group` returned `n` messages of `topic`. */
  onGet(group: string, topic: string, n: number): void {
    const now = this.clock.now();
    this.getTotal.add(n, now);
    this.getRate.add(n, now);
    const key = `${topic}@${group}`;
    let w = this.groupRates.get(key);
    if (!w) {
      if (this.groupRates.size >= GROUP_RATES_MAX) {
        const oldest = this.groupRates.keys().next().value;
        if (oldest !== undefined) this.groupRates.delete(oldest);
      }
      w = new RateWindow(GROUP_WINDOW_SEC);
      this.groupRates.set(key, w);
    }
    w.add(n, now);
  }

  puts(): DailyCounts {
    return daily(this.putTotal, this.clock.now());
  }

  gets(): DailyCounts {
    return daily(this.getTotal, this.clock.now());
  }

  /** RocketMQ's putTps: "<10 s> <60 s> <600 s>" messages per second. */
  putTps(): string {
    return this.tps(this.putRate);
  }

  /** RocketMQ's getTransferedTps: messages returned by pulls, per second, "<10 s> <60 s> <600 s>". */
  getTransferedTps(): string {
    return this.tps(this.getRate);
  }

  /** Messages per second `group` pulled from `topic` over the last minute. */
  groupGetTps(group: string, topic: string): number {
    const w = this.groupRates.get(`${topic}@${group}`);
    return w ? w.rate(GROUP_WINDOW_SEC, this.clock.now(), this.bootTimestamp) : 0;
  }

  private tps(w: RateWindow): string {
    const now = this.clock.now();
    return [10, 60, 600].map((s) => w.rate(s, now, this.bootTimestamp).toFixed(2)).join(' ');
  }
}

function daily(t: DailyTotal, nowMs: number): DailyCounts {
  t.roll(nowMs);
  return { todayNow: t.total, todayMorning: t.todayMorning, yesterdayMorning: t.yesterdayMorning };
}
