/**
 * Consumer offsets of clustering groups: `topic@group` → queueId → the next queue offset the group
 * will consume. Kept in memory and written to <storeRoot>/config/consumerOffset.json in RocketMQ's
 * shape, so RocketMQ's tools read it unchanged:
 *
 *   { "offsetTable": { "<topic>@<group>": { "<queueId>": <offset>, ... }, ... } }
 *
 * Writes go through JsonFile (temp file + fsync + rename): a crash leaves the previous or the new
 * table, never a torn one. Like RocketMQ, commits are not durable one by one: the table is written
 * every flushConsumerOffsetInterval (5 s) when it changed, and at close. A crash can thus lose up to
 * one interval of commits, and consumers re-receive those messages (at-least-once).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../common/log.js';
import { JsonFile } from '../store/index.js';

interface OffsetsFile {
  offsetTable: Record<string, Record<string, number>>;
}

export const TOPIC_GROUP_SEPARATOR = '@';

export function offsetKey(topic: string, group: string): string {
  return `${topic}${TOPIC_GROUP_SEPARATOR}${group}`;
}

export class ConsumerOffsetManager {
  private readonly table = new Map<string, Map<number, number>>();
  private readonly file: JsonFile<OffsetsFile | undefined>;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    storePathRootDir: string,
    private readonly logger: Logger,
  ) {
    this.file = new JsonFile(path.join(storePathRootDir, 'config', 'consumerOffset.json'));
  }

  /** Loads consumerOffset.json if present; entries that are not offsets are skipped with a warning. */
  static async open(storePathRootDir: string, logger: Logger): Promise<ConsumerOffsetManager> {
    await fs.mkdir(path.join(storePathRootDir, 'config'), { recursive: true });
    const m = new ConsumerOffsetManager(storePathRootDir, logger);
    const stored = await m.file.read(undefined);
    for (const [key, queues] of Object.entries(stored?.offsetTable ?? {})) {
      const q = new Map<number, number>();
      for (const [id, off] of Object.entries(queues ?? {})) {
        const queueId = Number(id);
        if (Number.isSafeInteger(queueId) && queueId >= 0 && Number.isSafeInteger(off) && off >= 0) {
          q.set(queueId, off);
        } else {
          logger.warn({ key, queueId: id, offset: off }, `ignoring a malformed consumer offset for ${key}`);
        }
      }
      m.table.set(key, q);
    }
    return m;
  }

  /** Starts the periodic flush. */
  start(flushIntervalMs: number): void {
    this.timer = setInterval(() => void this.flush().catch(() => {}), flushIntervalMs);
    this.timer.unref();
  }

  /** The committed offset, or undefined if the group never committed one for this queue. */
  query(group: string, topic: string, queueId: number): number | undefined {
    return this.table.get(offsetKey(topic, group))?.get(queueId);
  }

  commit(group: string, topic: string, queueId: number, offset: number): void {
    const key = offsetKey(topic, group);
    let q = this.table.get(key);
    if (!q) {
      q = new Map();
      this.table.set(key, q);
    }
    if (q.get(queueId) === offset) return;
    q.set(queueId, offset);
    this.dirty = true;
  }

  /** The whole table in the file's shape (GET_ALL_CONSUMER_OFFSET's body). */
  snapshot(): OffsetsFile {
    const offsetTable: OffsetsFile['offsetTable'] = {};
    for (const [key, q] of this.table) {
      offsetTable[key] = Object.fromEntries([...q].sort((a, b) => a[0] - b[0]));
    }
    return { offsetTable };
  }

  /** Writes the table if it changed since the last write; resolves when it is durable. */
  async flush(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    try {
      await this.file.write(this.snapshot());
    } catch (e) {
      this.dirty = true;
      this.logger.error({ err: e, path: this.file.path }, 'writing consumer offsets failed');
      throw e;
    }
  }

  /** Stops the timer and writes what changed. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
