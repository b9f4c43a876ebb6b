/**
 * All consume queues of a store, by topic and queue id, under `<root>/consumequeue/`.
 *
 * Directory layout: `consumequeue/<topic>/<queueId>/<20-digit byte offset>` (see consume-queue.ts
 * for the file format). A missing `consumequeue` directory opens as an empty store: the queues
 * are derived data, and the dispatcher rebuilds them from the commit log.
 *
 * Descriptors: all queues draw from one DescriptorBudget of `maxOpenFiles` (default 256), so the
 * number of open files does not grow with the number of queues (see consume-queue.ts).
 */
import path from 'node:path';
import { assert, TsmqError } from '../common/errors.js';
import {
  ConsumeQueue,
  type ConsumeQueueOptions,
  DEFAULT_MAX_OPEN_FILES,
  DescriptorBudget,
} from './consume-queue.js';
import type { FileIo } from './io.js';

/** Queues opened (or flushed, truncated, corrected) at once: bounds descriptors and queued I/O. */
const IO_CONCURRENCY = 16;
const QUEUE_DIR_NAME = /^\d{1,5}$/;
const MAX_QUEUE_ID = 65_535;

/** Marks a topic directory being deleted: `<topic>.deleted-<ms>`. */
const DELETED_MARK = '.deleted-';

export class ConsumeQueueStore {
  private readonly byTopic = new Map<string, Map<number, ConsumeQueue>>();
  private closed = false;
  /** The descriptors of every queue of this store. */
  private readonly budget: DescriptorBudget;

  private constructor(
    private readonly io: FileIo,
    private readonly rootDir: string,
    private readonly opts: ConsumeQueueOptions,
  ) {
    assert(Number.isSafeInteger(opts.unitsPerFile) && opts.unitsPerFile > 0, 'unitsPerFile > 0');
    assert(Number.isSafeInteger(opts.tailCacheUnits) && opts.tailCacheUnits >= 0, 'tailCacheUnits >= 0');
    this.budget = new DescriptorBudget(opts.maxOpenFiles ?? DEFAULT_MAX_OPEN_FILES);
  }

  /** Loads every topic/queue directory found under `<root>/consumequeue`. */
  static async open(io: FileIo, rootDir: string, opts: ConsumeQueueOptions): Promise<ConsumeQueueStore> {
    const store = new ConsumeQueueStore(io, rootDir, opts);
    const cqRoot = path.join(rootDir, 'consumequeue');
    const found: Array<{ topic: string; queueId: number }> = [];
    for (const topic of await io.readdir(cqRoot)) {
      if (topic.includes(DELETED_MARK)) {
        // A deletion interrupted by a crash: finish it (a topic name never holds a dot).
        await io.rmrf(path.join(cqRoot, topic));
        continue;
      }
      for (const name of await readdirIfDir(io, path.join(cqRoot, topic))) {
        const queueId = Number(name);
        if (QUEUE_DIR_NAME.test(name) && queueId <= MAX_QUEUE_ID) found.push({ topic, queueId });
      }
    }
    const queues = await mapLimit(found, IO_CONCURRENCY, ({ topic, queueId }) =>
      ConsumeQueue.open(io, rootDir, topic, queueId, opts, store.budget),
    );
    for (const q of queues) store.add(q);
    return store;
  }

  get(topic: string, queueId: number): ConsumeQueue | undefined {
    return this.byTopic.get(topic)?.get(queueId);
  }

  /** Synchronous, for the dispatcher's hot path: a new queue touches the disk only on its first flush. */
  getOrCreate(topic: string, queueId: number): ConsumeQueue {
    const existing = this.byTopic.get(topic)?.get(queueId);
    if (existing !== undefined) return existing;
    if (this.closed) throw new TsmqError('STORE_CLOSED', 'consume queue store is closed');
    // The topic becomes a directory name: refuse anything that could escape consumequeue/.
    if (topic === '' || topic === '.' || topic === '..' || topic.includes('/') || topic.includes('\0')) {
      throw new TsmqError(
        'TOPIC_INVALID',
        `topic ${JSON.stringify(topic)} cannot name a consume queue directory`,
      );
    }
    if (!Number.isInteger(queueId) || queueId < 0 || queueId > MAX_QUEUE_ID) {
      throw new TsmqError('QUEUE_ID_INVALID', `queue id ${queueId} is not in [0, ${MAX_QUEUE_ID}]`);
    }
    const q = ConsumeQueue.createEmpty(this.io, this.rootDir, topic, queueId, this.opts, this.budget);
    this.add(q);
    return q;
  }

  private add(q: ConsumeQueue): void {
    let queues = this.byTopic.get(q.topic);
    if (queues === undefined) {
      queues = new Map();
      this.byTopic.set(q.topic, queues);
    }
    assert(!queues.has(q.queueId), `consume queue ${q.topic}/${q.queueId} added twice`);
    queues.set(q.queueId, q);
  }

  all(): ConsumeQueue[] {
    const out: ConsumeQueue[] = [];
    for (const queues of this.byTopic.values()) out.push(...queues.values());
    return out;
  }

  topics(): string[] {
    return [...this.byTopic.keys()];
  }

  /** The topic's queues, by ascending queue id. */
  queuesOf(topic: string): ConsumeQueue[] {
    const queues = this.byTopic.get(topic);
    if (queues === undefined) return [];
    return [...queues.values()].sort((a, b) => a.queueId - b.queueId);
  }

  /** Flushes every queue; rejects with the first failure after all have been tried. */
  async flushAll(): Promise<void> {
    // A queue destroyed by a concurrent deleteTopic is skipped, not a failure.
    await eachLimit(this.all(), IO_CONCURRENCY, (q) => (q.isClosed() ? Promise.resolve() : q.flush()));
  }

  async truncateAllByPhysicalOffset(physicalEnd: number): Promise<void> {
    await eachLimit(this.all(), IO_CONCURRENCY, async (q) => {
      if (!q.isClosed()) await q.truncateByPhysicalOffset(physicalEnd);
    });
  }

  async correctAllMinOffsets(minPhysical: number): Promise<void> {
    await eachLimit(this.all(), IO_CONCURRENCY, async (q) => {
      if (!q.isClosed()) await q.correctMinOffset(minPhysical);
    });
  }

  /** The largest commitLogOffset + size over all queues, or -1 if no queue has a unit. */
  async maxPhysicalEnd(): Promise<number> {
    let max = -1;
    await eachLimit(this.all(), IO_CONCURRENCY, async (q) => {
      if (q.isClosed()) return;
      const end = await q.maxPhysicalEnd();
      max = Math.max(max, end);
    });
    return max;
  }

  /** Forgets the topic's queues and deletes their files. */
  async deleteTopic(topic: string): Promise<void> {
    const queues = this.byTopic.get(topic);
    // Unlisted first, so a concurrent getOrCreate starts a fresh queue instead of using a dying one.
    this.byTopic.delete(topic);
    if (queues !== undefined) await eachLimit([...queues.values()], IO_CONCURRENCY, (q) => q.destroy());
    const cqRoot = path.join(this.rootDir, 'consumequeue');
    if (queues !== undefined || (await this.io.exists(path.join(cqRoot, topic)))) {
      // Renamed first (atomically), so a crash halfway through the removal cannot bring part of
      // the topic back at the next open, which removes such leftovers.
      const doomed = path.join(cqRoot, `${topic}${DELETED_MARK}${Date.now()}`);
      try {
        await this.io.rename(path.join(cqRoot, topic), doomed);
      } catch (e) {
        // Queues that were never flushed have no directory: nothing to remove.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw e;
      }
      await this.io.fsyncDir(cqRoot);
      await this.io.rmrf(doomed);
    }
  }

  /** Flushes and closes every queue; rejects with the first failure after all have been closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await eachLimit(this.all(), IO_CONCURRENCY, (q) => q.close());
  }

  /**
   * Stops as a crash would: waits for flushes already writing, then closes every descriptor
   * without flushing what is pending. Rejects with the first failure after all have been tried.
   */
  async abandon(): Promise<void> {
    this.closed = true;
    await eachLimit(this.all(), IO_CONCURRENCY, (q) => q.abandon());
  }

  /** Descriptors of this store's queues open (or being opened or closed) right now. */
  openDescriptors(): number {
    return this.budget.held();
  }
}

async function readdirIfDir(io: FileIo, dir: string): Promise<string[]> {
  try {
    return await io.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw e;
  }
}

/** Maps with at most `limit` calls in flight; rejects with the first failure once all are done. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (e) {
        if (!failed) {
          failed = true;
          failure = e;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failure;
  return out;
}

async function eachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  await mapLimit(items, limit, fn);
}
