/**
 * The broker's overload protection for sends, in two parts.
 *
 * Rate limits (token buckets): per topic and per client host, each a messages/s and a bytes/s
 * rate (0: unlimited), with a burst of one second's worth. A send that would take a bucket below
 * zero is refused with FLOW_CONTROL (215) and takes nothing, so the other limits and topics are
 * not charged for it. Rules change at run time (UPDATE_BROKER_CONFIG keys below) and are kept in
 * <storeRoot>/config/rateLimits.json (written atomically):
 *
 *   { "topics": { "<topic>": { "msgsPerSec": 100, "bytesPerSec": 0 } },
 *     "clients": { "<host>": { "msgsPerSec": 0, "bytesPerSec": 1048576 } } }
 *
 *   UPDATE_BROKER_CONFIG key         value                          effect
 *   -------------------------------- ------------------------------ ---------------------------
 *   rateLimit.topic.<topic>          <msgs/s>,<bytes/s> (0: none)   sets the topic's limit
 *   rateLimit.client.<host>          <msgs/s>,<bytes/s>             sets the client host's limit
 *   either, value "0,0" or empty                                    removes the limit
 *
 * Send admission (RocketMQ's send thread pool queue and BrokerFastFailure): at most
 * `inFlightMax` sends are being stored at once; later ones wait in a FIFO of at most
 * `queueCapacity`, and one that waited longer than `waitTimeMillsInSendQueue` (200 ms) — or finds
 * the FIFO full — is answered SYSTEM_BUSY "[TIMEOUT_CLEAN_QUEUE]broker busy…", which producers
 * retry elsewhere. A refused send was never stored: nothing acknowledged is dropped.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../common/clock.js';
import { JsonFile } from '../store/index.js';

export interface RateRule {
  msgsPerSec: number;
  bytesPerSec: number;
}

export interface RateLimitsFile {
  topics: Record<string, RateRule>;
  clients: Record<string, RateRule>;
}

class Bucket {
  private tokens: number;
  private last: number;

  constructor(
    private rate: number,
    now: number,
  ) {
    this.tokens = rate;
    this.last = now;
  }

  setRate(rate: number): void {
    this.rate = rate;
    this.tokens = Math.min(this.tokens, rate);
  }

  /** Whether `n` tokens are there now (refilled since the last look). */
  has(n: number, now: number): boolean {
    if (this.rate <= 0) return true;
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    // A request larger than one second's worth passes on a full bucket (it could never pass otherwise).
    return this.tokens >= Math.min(n, this.rate);
  }

  take(n: number): void {
    if (this.rate > 0) this.tokens -= n;
  }
}

class Limited {
  readonly msgs: Bucket;
  readonly bytes: Bucket;
  constructor(
    public rule: RateRule,
    now: number,
  ) {
    this.msgs = new Bucket(rule.msgsPerSec, now);
    this.bytes = new Bucket(rule.bytesPerSec, now);
  }
  update(rule: RateRule): void {
    this.rule = rule;
    this.msgs.setRate(rule.msgsPerSec);
    this.bytes.setRate(rule.bytesPerSec);
  }
}

export const RATE_LIMIT_TOPIC_KEY = 'rateLimit.topic.';
export const RATE_LIMIT_CLIENT_KEY = 'rateLimit.client.';

function validRule(r: unknown): r is RateRule {
  const o = r as RateRule;
  return (
    typeof o === 'object' &&
    o !== null &&
    Number.isSafeInteger(o.msgsPerSec) &&
    o.msgsPerSec >= 0 &&
    Number.isSafeInteger(o.bytesPerSec) &&
    o.bytesPerSec >= 0
  );
}

/** Parses "<msgs/s>,<bytes/s>"; undefined for "" or "0,0" (no limit); a string saying what is wrong. */
export function parseRateRule(value: string): RateRule | undefined | string {
  const v = value.trim();
  if (v === '') return undefined;
  const m = /^(\d{1,12})\s*,\s*(\d{1,15})$/.exec(v);
  if (!m)
    return `expected "<messages per second>,<bytes per second>" (0: no limit), got ${JSON.stringify(v.slice(0, 40))}`;
  const rule = { msgsPerSec: Number(m[1]), bytesPerSec: Number(m[2]) };
  return rule.msgsPerSec === 0 && rule.bytesPerSec === 0 ? undefined : rule;
}

export class RateLimiter {
  private readonly topics = new Map<string, Limited>();
  private readonly clients = new Map<string, Limited>();
  private readonly file: JsonFile<RateLimitsFile>;

  private constructor(
    storeRoot: string,
    private readonly clock: Clock,
  ) {
    this.file = new JsonFile(path.join(storeRoot, 'config', 'rateLimits.json'));
  }

  static async open(storeRoot: string, clock: Clock): Promise<RateLimiter> {
    await fs.mkdir(path.join(storeRoot, 'config'), { recursive: true });
    const r = new RateLimiter(storeRoot, clock);
    const stored = await r.file.read({ topics: {}, clients: {} });
    const now = clock.now();
    for (const [name, rule] of Object.entries(stored.topics ?? {})) {
      if (validRule(rule)) r.topics.set(name, new Limited(rule, now));
    }
    for (const [name, rule] of Object.entries(stored.clients ?? {})) {
      if (validRule(rule)) r.clients.set(name, new Limited(rule, now));
    }
    return r;
  }

  /**
   * Takes `msgs` messages and `bytes` bytes from the topic's and the client's buckets, or nothing
   * and a sentence saying which limit refused.
   */
  tryAcquire(topic: string, clientHost: string | undefined, msgs: number, bytes: number): string | undefined {
    const t = this.topics.size === 0 ? undefined : this.topics.get(topic);
    const c = clientHost === undefined || this.clients.size === 0 ? undefined : this.clients.get(clientHost);
    if (!t && !c) return undefined;
    const now = this.clock.now();
    for (const [l, what] of [
      [t, `topic ${topic}`],
      [c, `client ${clientHost}`],
    ] as const) {
      if (!l) continue;
      if (!l.msgs.has(msgs, now)) return `${what} is over its limit of ${l.rule.msgsPerSec} messages/s`;
      if (!l.bytes.has(bytes, now)) return `${what} is over its limit of ${l.rule.bytesPerSec} bytes/s`;
    }
    for (const l of [t, c]) {
      l?.msgs.take(msgs);
      l?.bytes.take(bytes);
    }
    return undefined;
  }

  /** Sets (or with undefined removes) a limit; resolves once the rules are on disk. */
  async set(kind: 'topic' | 'client', name: string, rule: RateRule | undefined): Promise<void> {
    const map = kind === 'topic' ? this.topics : this.clients;
    if (rule === undefined) map.delete(name);
    else {
      const known = map.get(name);
      if (known) known.update(rule);
      else map.set(name, new Limited(rule, this.clock.now()));
    }
    await this.file.write(this.snapshot());
  }

  snapshot(): RateLimitsFile {
    const out: RateLimitsFile = { topics: {}, clients: {} };
    for (const [k, l] of this.topics) out.topics[k] = { ...l.rule };
    for (const [k, l] of this.clients) out.clients[k] = { ...l.rule };
    return out;
  }
}

export interface SendAdmissionOptions {
  inFlightMax: number;
  queueCapacity: number;
  waitTimeMillsInSendQueue: number;
  clock: Clock;
}

interface Waiter {
  since: number;
  resolve: (admitted: string | undefined) => void;
}

/** The bounded send queue (see the file header). */
export class SendAdmission {
  private inFlight = 0;
  private readonly waiting: Waiter[] = [];
  private head = 0;
  private sweeper: NodeJS.Timeout | undefined;
  /** Sends refused as busy since start. */
  refused = 0;

  constructor(private readonly o: SendAdmissionOptions) {}

  start(): void {
    this.sweeper = setInterval(() => this.sweep(), 10);
    this.sweeper.unref();
  }

  close(): void {
    clearInterval(this.sweeper);
    for (let i = this.head; i < this.waiting.length; i++) this.waiting[i]!.resolve('the broker is closing');
    this.waiting.length = 0;
    this.head = 0;
  }

  get queued(): number {
    return this.waiting.length - this.head;
  }

  /**
   * Resolves undefined once the send may go to the store (call `release` when it is done), or the
   * SYSTEM_BUSY remark when it may not.
   */
  acquire(): Promise<string | undefined> | undefined {
    if (this.inFlight < this.o.inFlightMax && this.queued === 0) {
      this.inFlight++;
      return undefined;
    }
    if (this.queued >= this.o.queueCapacity) {
      this.refused++;
      return Promise.resolve(
        `[TIMEOUT_CLEAN_QUEUE]broker busy, start flow control for a while: the send queue is full (${this.o.queueCapacity})`,
      );
    }
    return new Promise((resolve) => this.waiting.push({ since: this.o.clock.now(), resolve }));
  }

  release(): void {
    this.inFlight--;
    while (this.inFlight < this.o.inFlightMax && this.head < this.waiting.length) {
      const w = this.waiting[this.head]!;
      this.waiting[this.head++] = undefined as unknown as Waiter;
      this.inFlight++;
      w.resolve(undefined);
    }
    this.compact();
  }

  /** Fails the sends that waited too long (RocketMQ's cleanExpiredRequest, every 10 ms). */
  sweep(): void {
    const now = this.o.clock.now();
    while (this.head < this.waiting.length) {
      const w = this.waiting[this.head]!;
      const waited = now - w.since;
      if (waited <= this.o.waitTimeMillsInSendQueue) break;
      this.waiting[this.head++] = undefined as unknown as Waiter;
      this.refused++;
      w.resolve(
        `[TIMEOUT_CLEAN_QUEUE]broker busy, start flow control for a while, period in queue: ${waited}ms, size of queue: ${this.queued}`,
      );
    }
    this.compact();
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head);
      this.head = 0;
    } else if (this.head === this.waiting.length) {
      this.waiting.length = 0;
      this.head = 0;
    }
  }
}
