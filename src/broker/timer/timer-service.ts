/**
 * Timer messages (RocketMQ 5's TIMER_DELIVER_MS / TIMER_DELAY_MS / TIMER_DELAY_SEC): the put path
 * stores them to rmq_sys_wheel_timer queue 0 with their delivery time (put-message.ts); this
 * service links each into the timer store (timer-store.ts) and, when its time comes, has it
 * stored at its real topic and queue. It sees the queue through a `TimerSource` and delivers
 * through a `TimerSink`, so tests can drive it without a broker.
 *
 * Enqueue: messages of the timer topic are read in order from `enqueueOffset` and each linked into
 * a slot, chosen thus (C is the next slot to open, D the first slot not yet delivered):
 *
 *   slot of deliverAt (deliverAt div precision)       linked into
 *   ------------------------------------------------- --------------------------------------------
 *   ≥ C, and < D + slotCount − 1                      its slot
 *   ≥ D + slotCount − 1 (beyond the wheel)            slot D + slotCount − 2; when that slot is
 *                                                     opened the timer is linked again ("rolled")
 *   < C (the slot is open or delivered already:       slot D, and into the held timers at once, if
 *     arrived late, or past due after downtime)       D is open in held mode and there is room;
 *                                                     else slot C
 *
 * Dequeue: a slot is opened when its start is less than LEAD_MS away (so its chain is read before
 * it is due). Opening a slot of at most `heldMax` timers (minus those held already) reads its
 * whole chain into the held timers — a heap by delivery time, shared by the open slots — and each
 * is delivered at its own millisecond. A slot of more is delivered from its end on ("stream"
 * mode: the chain in batches, each sorted by time), so a timer of such a slot may be late by up
 * to one slot width. At most `openMax` slots are open at once. D moves past a slot once it and
 * every slot before it are delivered; only then are its units subtracted from `pending` (the
 * checkpoint's D and pending must agree: see timer-store.ts).
 *
 * Memory: the held timers (≤ heldMax, plus one chain being read) and the timer store's bounded
 * caches. Nothing depends on how many timers are pending.
 *
 * Deliveries: the sink stores the message at its real queue; a refusal for the store's state
 * ('retry') holds the timer a second longer, anything else that fails ('skipped') is logged by
 * the sink and counted. A timer is delivered at least once: after a crash, the slots from the
 * last checkpoint's D on are delivered again.
 *
 * `step(nowMs)` does one round (enqueue what arrived, open due slots, deliver what is due) and
 * says when the next is due; `start()` runs rounds then, on `kick()` (a timer message arrived)
 * and at least every IDLE_POLL_MS, and checkpoints the store every `checkpointIntervalMs`.
 */
import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/log.js';
import { RoundLoop } from '../round-loop.js';
import type { StoredUnit, TimerStore } from './timer-store.js';

/** A message waiting in the timer topic, as its consume-queue unit describes it. */
export interface TimerSourceUnit {
  queueOffset: number;
  phys: number;
  size: number;
  deliverAtMs: number;
}

/** The timer topic's queue, as the service reads it. */
export interface TimerSource {
  minOffset(): number;
  /** End of what can be read (dispatched). */
  maxOffset(): number;
  /** Up to `max` messages from `from`, in order; `next` is where the following read starts. */
  read(from: number, max: number): Promise<{ units: TimerSourceUnit[]; next: number }>;
}

/** A timer due for delivery. */
export interface TimerEntry {
  deliverAtMs: number;
  phys: number;
  size: number;
  /** The slot whose chain holds it. */
  slot: number;
}

export type DeliverOutcome = 'delivered' | 'retry' | 'skipped';

/** Stores due messages at their real queues, in the order given. */
export interface TimerSink {
  deliver(entries: readonly TimerEntry[]): Promise<DeliverOutcome[]>;
}

export interface TimerServiceOptions {
  store: TimerStore;
  source: TimerSource;
  sink: TimerSink;
  clock: Clock;
  logger: Logger;
  checkpointIntervalMs: number;
  /** Timers held in memory at most (default 65,536). */
  heldMax?: number;
  /** Slots open at once at most (default 4). */
  openMax?: number;
}

/** A slot is opened this long before it starts (at most one slot width). */
const LEAD_MS_MAX = 1000;
/** Longest wait between rounds when nothing is due. */
const IDLE_POLL_MS = 1000;
/** Timer-topic messages linked per round at most, and per read (a batch). */
const ENQUEUE_ROUND_MAX = 16_384;
const ENQUEUE_BATCH = 8192;
/** Chain units read into the heap per round at most (deliveries go on between rounds). */
const WALK_PER_ROUND = 4096;
/** Timers delivered per sink call. */
const DELIVER_BATCH = 256;
/** Wait after the store refused a delivery for its state. */
const RETRY_AFTER_MS = 1000;
/** Empty slots passed per round at most before yielding. */
const EMPTY_SLOTS_PER_ROUND = 65_536;

interface Held extends TimerEntry {
  /** When to try: deliverAt, or later after a refusal. */
  dueAtMs: number;
}

interface OpenSlot {
  slot: number;
  mode: 'held' | 'stream';
  /** Units in its chain, late ones included (subtracted from pending once D passes it). */
  count: number;
  /** Held or being delivered, not yet done. */
  outstanding: number;
  /** The chain is still being read (held) or delivered (stream). */
  walking: boolean;
  /** Where the chain goes on (-1: read to its end). */
  nextPos: number;
}

/** A binary min-heap of held timers by dueAtMs. */
class HeldHeap {
  private readonly a: Held[] = [];
  get size(): number {
    return this.a.length;
  }
  peek(): Held | undefined {
    return this.a[0];
  }
  items(): readonly Held[] {
    return this.a;
  }
  push(h: Held): void {
    const a = this.a;
    a.push(h);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.dueAtMs <= h.dueAtMs) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = h;
  }
  pop(): Held | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const r = l + 1;
        const c = r < a.length && a[r]!.dueAtMs < a[l]!.dueAtMs ? r : l;
        if (a[c]!.dueAtMs >= last.dueAtMs) break;
        a[i] = a[c]!;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

export interface TimerServiceStats {
  /** Slots D (first not delivered) and C (next to open). */
  doneSlot: number;
  nextSlot: number;
  openSlots: number;
  held: number;
  pending: number;
  /** Timer-topic messages not yet linked. */
  enqueueBehind: number;
  delivered: number;
  skipped: number;
  rolled: number;
}

export class TimerMessageService {
  private readonly heap = new HeldHeap();
  private readonly open = new Map<number, OpenSlot>();
  private nextSlot: number;
  private readonly heldMax: number;
  private readonly openMax: number;
  private readonly leadMs: number;
  private readonly rounds: RoundLoop;
  private checkpointTimer: NodeJS.Timeout | undefined;
  delivered = 0;
  skipped = 0;
  rolled = 0;

  /** The slot the store's checkpoint stopped in, and the time before which its timers were delivered. */
  private readonly resumeSlot: number;
  private readonly resumeBeforeMs: number;
  private readonly resumeLogEnd: number;
  private readonly inFlight = new Set<Held[]>();

  constructor(private readonly opts: TimerServiceOptions) {
    const s = opts.store;
    if (s.enqueueOffset === undefined) s.enqueueOffset = opts.source.minOffset();
    this.nextSlot = s.doneSlot;
    this.resumeSlot = s.doneSlot;
    this.resumeBeforeMs = s.doneBeforeMs;
    this.resumeLogEnd = s.logEnd();
    s.doneBeforeHook = () => this.doneBefore();
    this.heldMax = opts.heldMax ?? 65_536;
    this.openMax = opts.openMax ?? 4;
    this.leadMs = Math.min(s.precisionMs, LEAD_MS_MAX);
    this.rounds = new RoundLoop({
      round: (now) => this.step(now),
      clock: opts.clock,
      logger: opts.logger,
      what: 'timer',
      idlePollMs: IDLE_POLL_MS,
      retryAfterMs: RETRY_AFTER_MS,
    });
  }

  get store(): TimerStore {
    return this.opts.store;
  }

  stats(): TimerServiceStats {
    const s = this.opts.store;
    return {
      doneSlot: s.doneSlot,
      nextSlot: this.nextSlot,
      openSlots: this.open.size,
      held: this.heap.size,
      pending: s.pending,
      enqueueBehind: Math.max(0, this.opts.source.maxOffset() - (s.enqueueOffset ?? 0)),
      delivered: this.delivered,
      skipped: this.skipped,
      rolled: this.rolled,
    };
  }

  /** Timers held in memory now (the near window). */
  heldCount(): number {
    return this.heap.size;
  }

  // ---------------------------------------------------------------------------- routing

  private firstOpen(): OpenSlot | undefined {
    return this.open.values().next().value;
  }

  private route(deliverAtMs: number): { slot: number; held: boolean } {
    const s = this.opts.store;
    let slot = s.slotOf(deliverAtMs);
    if (slot < this.nextSlot) {
      // Late: into its own slot if that is open, else the first open one, if held; else C.
      if (this.heap.size < this.heldMax) {
        const own = this.open.get(slot);
        if (own && own.mode === 'held') return { slot, held: true };
        const d = this.firstOpen();
        if (d && d.mode === 'held') return { slot: d.slot, held: true };
      }
      slot = this.nextSlot;
    }
    const far = s.doneSlot + s.slotCount - 2;
    if (slot > far) slot = far;
    return { slot, held: false };
  }

  /** Links a timer where `route` says, holding it at once when its slot is open. */
  private async link(deliverAtMs: number, phys: number, size: number): Promise<void> {
    const s = this.opts.store;
    for (;;) {
      const r = this.route(deliverAtMs);
      if (!s.isLoaded(r.slot)) {
        await s.load(r.slot);
        continue;
      }
      s.link(r.slot, deliverAtMs, phys, size);
      if (r.held) {
        const o = this.open.get(r.slot)!;
        o.count++;
        o.outstanding++;
        this.heap.push({ deliverAtMs, phys, size, slot: r.slot, dueAtMs: deliverAtMs });
      }
      return;
    }
  }

  // ------------------------------------------------------------------------------- round

  /**
   * One round at `nowMs`. Returns when the next round is due (≤ nowMs: at once), or undefined
   * when nothing waits.
   */
  async step(nowMs: number): Promise<number | undefined> {
    const more = await this.enqueue();
    await this.openSlots(nowMs);
    const walked = await this.walkHeld();
    const deliveredSome = await this.deliverDue(nowMs);
    this.closeDone();
    if (more || walked || deliveredSome) return nowMs;
    return this.nextDue(nowMs);
  }

  private async enqueue(): Promise<boolean> {
    const { store, source, logger } = this.opts;
    let linked = 0;
    while (linked < ENQUEUE_ROUND_MAX && !this.rounds.closed) {
      let from = store.enqueueOffset ?? 0;
      const min = source.minOffset();
      if (from < min) {
        logger.error(
          { from, minOffset: min },
          `timer messages ${from}..${min - 1} were deleted by retention before they were linked`,
        );
        from = min;
        store.enqueueOffset = min;
      }
      if (from >= source.maxOffset()) return false;
      if (store.needsCheckpoint()) await store.checkpoint().catch(() => undefined);
      const { units, next } = await source.read(from, Math.min(ENQUEUE_BATCH, store.linkRoom()));
      // The batch is linked out of order (by wheel page); a checkpoint waits until it is all
      // linked, so that every unit below its enqueueOffset is in its log.
      store.beginBatch();
      try {
        await this.linkBatch(units);
      } finally {
        store.endBatch();
      }
      store.enqueueOffset = Math.max(store.enqueueOffset ?? 0, next);
      linked += units.length;
      if (next === from) return false;
    }
    return (store.enqueueOffset ?? 0) < source.maxOffset();
  }

  /**
   * Links a batch grouped by wheel page, as many pages at a time as the page cache holds with
   * room to spare: each page is read once per batch, however the timers are spread. A slot's
   * units keep their order.
   */
  private async linkBatch(units: readonly TimerSourceUnit[]): Promise<void> {
    const store = this.opts.store;
    const byPage = new Map<number, TimerSourceUnit[]>();
    for (const u of units) {
      const page = store.pageOf(this.route(u.deliverAtMs).slot);
      let list = byPage.get(page);
      if (!list) {
        list = [];
        byPage.set(page, list);
      }
      list.push(u);
    }
    const pages = [...byPage.values()];
    const group = Math.max(1, Math.floor(store.pageCacheMax / 2));
    for (let i = 0; i < pages.length; i += group) {
      const chunk = pages.slice(i, i + group);
      await Promise.all(chunk.map((list) => store.load(this.route(list[0]!.deliverAtMs).slot)));
      for (const list of chunk) {
        for (const u of list) await this.link(u.deliverAtMs, u.phys, u.size);
      }
    }
  }

  private async openSlots(nowMs: number): Promise<void> {
    const s = this.opts.store;
    let passed = 0;
    while (this.open.size < this.openMax && !this.rounds.closed) {
      if (this.open.size === 0 && s.pending === 0) {
        // Nothing waits anywhere: jump to now.
        this.nextSlot = Math.max(this.nextSlot, s.slotOf(nowMs));
        s.doneSlot = this.nextSlot;
      }
      const slot = this.nextSlot;
      if (s.slotStartMs(slot) - this.leadMs > nowMs) return;
      // Never run so far ahead of D that the farthest slot a timer may be linked into (D +
      // slotCount − 2) would lie behind C: D is held back by a slot that cannot deliver.
      if (slot >= s.doneSlot + s.slotCount - 3) return;
      if (!s.isLoaded(slot)) await s.load(slot);
      const rec = s.record(slot);
      if (!rec) {
        this.nextSlot = slot + 1;
        if (this.open.size === 0) s.doneSlot = this.nextSlot;
        if (++passed >= EMPTY_SLOTS_PER_ROUND) return;
        continue;
      }
      let mode: OpenSlot['mode'];
      if (rec.count <= this.heldMax - this.heap.size) mode = 'held';
      else if (this.open.size === 0) mode = 'stream';
      else return; // wait until the held timers drain
      this.open.set(slot, {
        slot,
        mode,
        count: rec.count,
        outstanding: 0,
        walking: true,
        nextPos: rec.lastPos,
      });
      this.nextSlot = slot + 1;
    }
  }

  /** Reads the chains of open held-mode slots into the heap, WALK_PER_ROUND units at most. */
  private async walkHeld(): Promise<boolean> {
    let budget = WALK_PER_ROUND;
    let any = false;
    for (const o of this.open.values()) {
      if (o.mode !== 'held' || !o.walking) continue;
      while (o.nextPos >= 0 && budget > 0 && !this.rounds.closed) {
        const chunk = await this.readChain(o, Math.min(budget, 1024));
        if (!chunk) break;
        budget -= chunk.length;
        any = true;
        for (const u of chunk) await this.hold(o, u);
      }
      if (o.nextPos < 0) o.walking = false;
      if (budget <= 0) break;
    }
    return any;
  }

  /**
   * The next units of an open slot's chain, or undefined when the chain cannot be read on (a
   * damaged unit): its remaining timers are lost, which is logged and counted.
   */
  private async readChain(o: OpenSlot, max: number): Promise<StoredUnit[] | undefined> {
    try {
      const { units, next } = await this.opts.store.readChain(o.slot, o.nextPos, max);
      o.nextPos = next;
      return units;
    } catch (e) {
      this.opts.logger.error(
        { err: e, slot: o.slot, pos: o.nextPos },
        `timer slot ${o.slot}: its chain cannot be read past log position ${o.nextPos}; the rest of its timers are lost`,
      );
      this.skipped++;
      o.nextPos = -1;
      return undefined;
    }
  }

  /** Holds a unit of an open slot, or links it again when it lies beyond the slot (rolled). */
  private async hold(o: OpenSlot, u: StoredUnit): Promise<void> {
    const s = this.opts.store;
    if (this.delivered0(o, u)) return;
    if (u.deliverAtMs >= s.slotStartMs(o.slot + 1)) {
      this.rolled++;
      await this.link(u.deliverAtMs, u.phys, u.size);
      return;
    }
    o.outstanding++;
    this.heap.push({
      deliverAtMs: u.deliverAtMs,
      phys: u.phys,
      size: u.size,
      slot: o.slot,
      dueAtMs: u.deliverAtMs,
    });
  }

  private async deliverDue(nowMs: number): Promise<boolean> {
    let any = false;
    // Held timers, by time.
    const batch: Held[] = [];
    while (batch.length < DELIVER_BATCH && (this.heap.peek()?.dueAtMs ?? Number.POSITIVE_INFINITY) <= nowMs) {
      batch.push(this.heap.pop()!);
    }
    if (batch.length > 0) {
      any = true;
      await this.deliver(batch, nowMs);
    }
    // A stream slot, once all of it is due.
    const d = this.firstOpen();
    if (d && d.mode === 'stream' && d.walking && nowMs >= this.opts.store.slotStartMs(d.slot + 1)) {
      any = true;
      const units = (await this.readChain(d, DELIVER_BATCH)) ?? [];
      const due: Held[] = [];
      for (const u of units) {
        if (this.delivered0(d, u)) continue;
        if (u.deliverAtMs >= this.opts.store.slotStartMs(d.slot + 1)) {
          this.rolled++;
          await this.link(u.deliverAtMs, u.phys, u.size);
          continue;
        }
        d.outstanding++;
        due.push({
          deliverAtMs: u.deliverAtMs,
          phys: u.phys,
          size: u.size,
          slot: d.slot,
          dueAtMs: u.deliverAtMs,
        });
      }
      due.sort((a, b) => a.deliverAtMs - b.deliverAtMs);
      if (d.nextPos < 0) d.walking = false;
      await this.deliver(due, nowMs);
    }
    return any;
  }

  /**
   * Whether a unit of the slot the last checkpoint stopped in was delivered before the restart
   * (linked before the checkpoint and due before its doneBeforeMs): it is not delivered again.
   * Units linked since (timer-topic messages read again) are delivered whatever their time.
   */
  private delivered0(o: OpenSlot, u: StoredUnit): boolean {
    return (
      o.slot === this.resumeSlot &&
      u.pos < this.resumeLogEnd &&
      u.deliverAtMs < this.resumeBeforeMs &&
      u.deliverAtMs < this.opts.store.slotStartMs(o.slot + 1)
    );
  }

  /**
   * For the checkpoint: every timer of slot D due before the returned time has been delivered.
   * That is the earliest timer of D still held or being delivered — or, while D's chain is still
   * being read, what the last restart knew — and 0 when nothing is known.
   */
  private doneBefore(): number {
    const s = this.opts.store;
    const d = this.firstOpen();
    if (!d || d.slot !== s.doneSlot) return 0;
    let w = d.walking ? (d.slot === this.resumeSlot ? this.resumeBeforeMs : 0) : s.slotStartMs(d.slot + 1);
    for (const h of this.heap.items()) if (h.slot === d.slot && h.deliverAtMs < w) w = h.deliverAtMs;
    for (const batch of this.inFlight) {
      for (const h of batch) if (h.slot === d.slot && h.deliverAtMs < w) w = h.deliverAtMs;
    }
    return w;
  }

  private async deliver(batch: Held[], nowMs: number): Promise<void> {
    let outcomes: DeliverOutcome[];
    this.inFlight.add(batch);
    try {
      outcomes = await this.opts.sink.deliver(batch);
    } catch (e) {
      this.opts.logger.error({ err: e }, 'timer delivery failed; retrying in a second');
      outcomes = batch.map(() => 'retry');
    } finally {
      this.inFlight.delete(batch);
    }
    for (const [i, h] of batch.entries()) {
      const out = outcomes[i] ?? 'retry';
      if (out === 'retry') {
        h.dueAtMs = nowMs + RETRY_AFTER_MS;
        this.heap.push(h);
        continue;
      }
      if (out === 'delivered') this.delivered++;
      else this.skipped++;
      const o = this.open.get(h.slot);
      if (o) o.outstanding--;
    }
  }

  /** Moves D past the delivered slots at the front (and only those: see the file header). */
  private closeDone(): void {
    const s = this.opts.store;
    for (const o of this.open.values()) {
      if (o.walking || o.outstanding > 0) break;
      this.open.delete(o.slot);
      s.pending -= o.count;
    }
    s.doneSlot = this.firstOpen()?.slot ?? this.nextSlot;
  }

  private nextDue(nowMs: number): number | undefined {
    const s = this.opts.store;
    let next = this.heap.peek()?.dueAtMs;
    const d = this.firstOpen();
    if (d && d.mode === 'stream' && d.walking) {
      const end = s.slotStartMs(d.slot + 1);
      next = next === undefined ? end : Math.min(next, end);
    }
    if (this.open.size < this.openMax && (s.pending > 0 || this.open.size > 0)) {
      const openAt = s.slotStartMs(this.nextSlot) - this.leadMs;
      next = next === undefined ? openAt : Math.min(next, openAt);
    }
    if (next !== undefined && next < nowMs) return nowMs;
    return next;
  }

  // -------------------------------------------------------------------------- background

  start(): void {
    if (this.checkpointTimer) return;
    this.checkpointTimer = setInterval(
      () => void this.opts.store.checkpoint().catch(() => undefined),
      this.opts.checkpointIntervalMs,
    );
    this.checkpointTimer.unref();
    this.rounds.start();
  }

  /** A timer message arrived: look again now. */
  kick(): void {
    this.rounds.kick();
  }

  /** Stops after the round in progress; the store is checkpointed and closed. */
  async close(): Promise<void> {
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    await this.rounds.stop();
    await this.opts.store.close();
  }

  /** Stops without a checkpoint, as a crash would (tests). */
  async abandon(): Promise<void> {
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    await this.rounds.stop();
    await this.opts.store.abandon();
  }
}
