/**
 * Helpers for the timer store and service tests: an in-memory timer topic (source), a sink that
 * records when each timer was delivered, a manual clock, and a file system that "dies" at a chosen
 * write (the write is cut short and every later call fails, as if the process were killed there).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  type DeliverOutcome,
  type TimerEntry,
  TimerMessageService,
  type TimerSink,
  type TimerSource,
  type TimerSourceUnit,
} from '../src/broker/timer/timer-service.js';
import { TimerStore, type TimerStoreOptions } from '../src/broker/timer/timer-store.js';
import { ManualClock } from '../src/common/clock.js';
import { createLogger } from '../src/common/log.js';
import { type DecodedRecord, decodeProperties, decodeRecords } from '../src/message/index.js';
import { createRequest, RequestCode, ResponseCode } from '../src/protocol/index.js';
import type { RemotingClient } from '../src/remoting/index.js';
import { type FileIo, nodeFileIo } from '../src/store/index.js';
import { pullRequest } from './broker-fixtures.js';

export const silentLogger = createLogger('timer-test', 'silent');

export function tempDir(prefix = 'tsmq-timer-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** The timer topic's queue as an array: `phys` is the timer's id (its index). */
export class ArraySource implements TimerSource {
  readonly units: TimerSourceUnit[] = [];

  add(deliverAtMs: number): number {
    const id = this.units.length;
    this.units.push({ queueOffset: id, phys: id, size: 100, deliverAtMs });
    return id;
  }

  minOffset(): number {
    return 0;
  }

  maxOffset(): number {
    return this.units.length;
  }

  async read(from: number, max: number): Promise<{ units: TimerSourceUnit[]; next: number }> {
    const units = this.units.slice(from, from + max);
    return { units, next: from + units.length };
  }
}

/** Records each delivery (id = phys) with the clock's time; `refuse` makes it answer 'retry'. */
export class RecordingSink implements TimerSink {
  readonly deliveries: Array<{ id: number; atMs: number; deliverAtMs: number; slot: number }> = [];
  refuse = false;

  constructor(private readonly clock: ManualClock) {}

  async deliver(entries: readonly TimerEntry[]): Promise<DeliverOutcome[]> {
    if (this.refuse) return entries.map(() => 'retry');
    for (const e of entries) {
      this.deliveries.push({ id: e.phys, atMs: this.clock.now(), deliverAtMs: e.deliverAtMs, slot: e.slot });
    }
    return entries.map(() => 'delivered');
  }

  countsById(): Map<number, number> {
    const m = new Map<number, number>();
    for (const d of this.deliveries) m.set(d.id, (m.get(d.id) ?? 0) + 1);
    return m;
  }
}

export { ManualClock };

/**
 * A FileIo that dies at the n-th write to a file whose path matches `pattern` (n counts from 1):
 * that write puts only its first `keepBytes` bytes (default half) on disk and throws, and so does
 * every call after it — the files keep what was written, as after a SIGKILL.
 */
export function dyingIo(pattern: RegExp, n: number, keepBytes?: number): FileIo & { dead(): boolean } {
  let count = 0;
  let dead = false;
  const paths = new Map<number, string>();
  const die = (): never => {
    throw new Error('the process died here (test)');
  };
  const guard =
    <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      if (dead) die();
      return f(...a);
    };
  return {
    ...nodeFileIo,
    dead: () => dead,
    open: async (p, flags) => {
      if (dead) die();
      const fd = await nodeFileIo.open(p, flags);
      paths.set(fd, p);
      return fd;
    },
    close: async (fd) => {
      paths.delete(fd);
      await nodeFileIo.close(fd);
    },
    write: async (fd, buf, offset, length, position) => {
      if (dead) die();
      const p = paths.get(fd) ?? '';
      if (pattern.test(p) && ++count === n) {
        dead = true;
        const keep = Math.min(length, keepBytes ?? Math.floor(length / 2));
        if (keep > 0) await nodeFileIo.write(fd, buf, offset, keep, position);
        die();
      }
      return nodeFileIo.write(fd, buf, offset, length, position);
    },
    fdatasync: guard(nodeFileIo.fdatasync),
    fsync: guard(nodeFileIo.fsync),
    ftruncate: guard(nodeFileIo.ftruncate),
    unlink: guard(nodeFileIo.unlink),
    rename: guard(nodeFileIo.rename),
    fsyncDir: guard(nodeFileIo.fsyncDir),
  };
}

/**
 * Every record of `topic`'s queues 0..queues−1 on a broker, by raw pulls from offset 0 (no
 * consumer group state involved): each stored copy of a message counts, so duplicates show.
 */
export async function pullAll(
  client: RemotingClient,
  addr: string,
  topic: string,
  queues: number,
): Promise<DecodedRecord[]> {
  const out: DecodedRecord[] = [];
  for (let queueId = 0; queueId < queues; queueId++) {
    let offset = 0;
    for (let round = 0; round < 100_000; round++) {
      const res = await client.invoke(
        addr,
        pullRequest({ topic, queueId, queueOffset: offset, maxMsgNums: 32, consumerGroup: 'CG_TIMER_TEST' }),
      );
      if (res.code === ResponseCode.SUCCESS) {
        out.push(...decodeRecords(res.body!));
        offset = Number(res.extFields!.nextBeginOffset);
        continue;
      }
      if (res.code === ResponseCode.PULL_RETRY_IMMEDIATELY || res.code === ResponseCode.PULL_OFFSET_MOVED) {
        const next = Number(res.extFields?.nextBeginOffset ?? offset);
        if (next === offset) break;
        offset = next;
        continue;
      }
      break; // PULL_NOT_FOUND: the end of the queue, or no queue yet
    }
  }
  return out;
}

/** A fixed start for the manual clock. */
export const T0 = 1_700_000_000_000;

/** A timer store and its service over an array source, a recording sink and a manual clock. */
export interface Rig {
  dir: string;
  clock: ManualClock;
  source: ArraySource;
  sink: RecordingSink;
  store: TimerStore;
  service: TimerMessageService;
  precisionMs: number;
  lastCheckpointDeliveries: number;
}

export async function openRig(
  dir: string,
  clock: ManualClock,
  source: ArraySource,
  sink: RecordingSink,
  o: Partial<TimerStoreOptions> & { heldMax?: number; precisionMs?: number; slotCount?: number } = {},
): Promise<Rig> {
  const precisionMs = o.precisionMs ?? 100;
  const store = await TimerStore.open({
    dir,
    precisionMs,
    slotCount: o.slotCount ?? 4096,
    logger: silentLogger,
    nowMs: clock.now(),
    ...(o.segmentBytes !== undefined && { segmentBytes: o.segmentBytes }),
    ...(o.pageCacheMax !== undefined && { pageCacheMax: o.pageCacheMax }),
    ...(o.dirtyMax !== undefined && { dirtyMax: o.dirtyMax }),
    ...(o.io !== undefined && { io: o.io }),
  });
  const service = new TimerMessageService({
    store,
    source,
    sink,
    clock,
    logger: silentLogger,
    checkpointIntervalMs: 1000,
    ...(o.heldMax !== undefined && { heldMax: o.heldMax }),
  });
  return {
    dir,
    clock,
    source,
    sink,
    store,
    service,
    precisionMs: store.precisionMs,
    lastCheckpointDeliveries: 0,
  };
}

/**
 * Runs rounds until `untilMs`, moving the clock to each time the service asks for (never past
 * `untilMs`); checkpoints every `checkpointEveryMs` of clock time.
 */
export async function drive(r: Rig, untilMs: number, checkpointEveryMs = 500): Promise<void> {
  let lastCp = r.clock.now();
  for (let rounds = 0; ; rounds++) {
    assert.ok(rounds < 5_000_000, 'the service does not settle');
    const now = r.clock.now();
    const next = await r.service.step(now);
    if (now - lastCp >= checkpointEveryMs) {
      await r.store.checkpoint();
      r.lastCheckpointDeliveries = r.sink.deliveries.length;
      lastCp = now;
    }
    if (next !== undefined && next <= now) continue;
    if (now >= untilMs) return;
    r.clock.set(Math.min(next ?? untilMs, untilMs, now + checkpointEveryMs));
  }
}

export function assertOnTime(sink: RecordingSink, precisionMs: number, exactIds?: Set<number>): void {
  for (const d of sink.deliveries) {
    assert.ok(d.atMs >= d.deliverAtMs, `timer ${d.id} delivered ${d.deliverAtMs - d.atMs} ms early`);
    assert.ok(
      d.atMs - d.deliverAtMs <= precisionMs,
      `timer ${d.id} delivered ${d.atMs - d.deliverAtMs} ms late (precision ${precisionMs} ms)`,
    );
    if (exactIds?.has(d.id)) assert.equal(d.atMs, d.deliverAtMs, `timer ${d.id} not delivered at its ms`);
  }
}

export function assertAllOnce(sink: RecordingSink, n: number): void {
  const counts = sink.countsById();
  assert.equal(counts.size, n, `${n - counts.size} timers never delivered`);
  for (const [id, c] of counts) assert.equal(c, 1, `timer ${id} delivered ${c} times`);
}

/**
 * Waits until the broker at `addr` has its store open: a broker process logs that it listens
 * before it opens (or recovers) its store, and answers SERVICE_NOT_AVAILABLE until then.
 */
export async function untilStoreOpen(
  client: RemotingClient,
  addr: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await client
      .invoke(addr, createRequest(RequestCode.GET_BROKER_RUNTIME_INFO))
      .catch(() => undefined);
    if (res?.code === ResponseCode.SUCCESS) return;
    assert.ok(Date.now() < deadline, `the broker at ${addr} did not open its store`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Pulls every queue of `topic` until a record of each id in `uniqs` is there (asserting before
 * `timeoutMs`); returns every stored copy by UNIQ_KEY (duplicates included).
 */
export async function collectByUniq(
  client: RemotingClient,
  addr: string,
  topic: string,
  queues: number,
  uniqs: readonly string[],
  timeoutMs: number,
): Promise<Map<string, DecodedRecord[]>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const byUniq = new Map<string, DecodedRecord[]>();
    for (const r of await pullAll(client, addr, topic, queues)) {
      const u = decodeProperties(r.properties).get('UNIQ_KEY')!;
      byUniq.set(u, [...(byUniq.get(u) ?? []), r]);
    }
    if (uniqs.every((u) => byUniq.has(u))) return byUniq;
    assert.ok(
      Date.now() < deadline,
      `${uniqs.filter((u) => !byUniq.has(u)).length} of ${uniqs.length} never delivered`,
    );
    await new Promise((r) => setTimeout(r, 100));
  }
}
