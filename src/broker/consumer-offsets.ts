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
 *
 * Besides the committed offsets, the manager remembers in memory (not persisted) where each
 * group's last pull of a queue ended: RocketMQ 5's "pull offset", which GET_CONSUME_STATS reports
 * next to the committed one (pulled but not yet committed = pullOffset − consumerOffset).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../common/log.js';
import { PeriodicJsonFile } from '../store/index.js';

interface OffsetsFile {
  offsetTable: Record<string, Record<string, number>>;
}

export const TOPIC_GROUP_SEPARATOR = '@';

export function offsetKey(topic: string, group: string): string {
  return `${topic}${TOPIC_GROUP_SEPARATOR}${group}`;
}

/** The topic and group of a `topic@group` key; topics never hold '@', so the first one splits. */
export function splitOffsetKey(key: string): { topic: string; group: string } | undefined {
  const at = key.indexOf(TOPIC_GROUP_SEPARATOR);
  if (at <= 0 || at === key.length - 1) return undefined;
  return { topic: key.slice(0, at), group: key.slice(at + 1) };
}

interface GroupTopicOffsets {
  readonly topic: string;
  readonly group: string;
  /** queueId → offset */
  readonly queues: Map<number, number>;
}

export class ConsumerOffsetManager {
  private readonly table = new Map<string, GroupTopicOffsets>();
  private readonly pulled = new Map<string, GroupTopicOffsets>();
  private readonly file: PeriodicJsonFile<OffsetsFile>;

  private constructor(storePathRootDir: string, logger: Logger) {
    this.file = new PeriodicJsonFile(
      path.join(storePathRootDir, 'config', 'consumerOffset.json'),
      () => this.snapshot(),
      (err, file) => logger.error({ err, path: file }, 'writing consumer offsets failed'),
    );
  }

  /** Loads consumerOffset.json if present; entries that are not offsets are skipped with a warning. */
  static async open(storePathRootDir: string, logger: Logger): Promise<ConsumerOffsetManager> {
    await fs.mkdir(path.join(storePathRootDir, 'config'), { recursive: true });
    const m = new ConsumerOffsetManager(storePathRootDir, logger);
    const stored = await m.file.file.read(undefined);
    for (const [key, queues] of Object.entries(stored?.offsetTable ?? {})) {
      const names = splitOffsetKey(key);
      if (!names) {
        logger.warn({ key }, `ignoring consumer offsets under a key that is not topic@group: ${key}`);
        continue;
      }
      const q = new Map<number, number>();
      for (const [id, off] of Object.entries(queues ?? {})) {
        const queueId = Number(id);
        if (Number.isSafeInteger(queueId) && queueId >= 0 && Number.isSafeInteger(off) && off >= 0) {
          q.set(queueId, off);
        } else {
          logger.warn({ key, queueId: id, offset: off }, `ignoring a malformed consumer offset for ${key}`);
        }
      }
      m.table.set(key, { ...names, queues: q });
    }
    return m;
  }

  /** Starts the periodic flush. */
  start(flushIntervalMs: number): void {
    this.file.start(flushIntervalMs);
  }

  /** The committed offset, or undefined if the group never committed one for this queue. */
  query(group: string, topic: string, queueId: number): number | undefined {
    return this.table.get(offsetKey(topic, group))?.queues.get(queueId);
  }

  commit(group: string, topic: string, queueId: number, offset: number): void {
    const key = offsetKey(topic, group);
    let entry = this.table.get(key);
    if (!entry) {
      entry = { topic, group, queues: new Map() };
      this.table.set(key, entry);
    }
    if (entry.queues.get(queueId) === offset) return;
    entry.queues.set(queueId, offset);
    this.file.changed();
  }

  /** Remembers where a pull of the group ended (the next offset it will ask for); memory only. */
  recordPull(group: string, topic: string, queueId: number, nextOffset: number): void {
    const key = offsetKey(topic, group);
    let entry = this.pulled.get(key);
    if (!entry) {
      entry = { topic, group, queues: new Map() };
      this.pulled.set(key, entry);
    }
    entry.queues.set(queueId, nextOffset);
  }

  /** Where the group's last pull of the queue ended since the broker started, if it pulled it. */
  pullOffset(group: string, topic: string, queueId: number): number | undefined {
    return this.pulled.get(offsetKey(topic, group))?.queues.get(queueId);
  }

  /** Topics the group has committed offsets for (RocketMQ's whichTopicByConsumer). */
  topicsOfGroup(group: string): string[] {
    return [...this.table.values()].filter((e) => e.group === group).map((e) => e.topic);
  }

  /** Groups that have committed offsets for the topic (RocketMQ's whichGroupByTopic). */
  groupsOfTopic(topic: string): string[] {
    return [...this.table.values()].filter((e) => e.topic === topic).map((e) => e.group);
  }

  /** Forgets every group's offsets of a deleted topic; returns how many groups had some. */
  removeTopic(topic: string): number {
    return this.removeWhere((e) => e.topic === topic);
  }

  /** Forgets every offset of a deleted group; returns how many topics it had offsets for. */
  removeGroup(group: string): number {
    return this.removeWhere((e) => e.group === group);
  }

  private removeWhere(match: (e: GroupTopicOffsets) => boolean): number {
    let n = 0;
    for (const [key, e] of [...this.table]) {
      if (!match(e)) continue;
      this.table.delete(key);
      n++;
    }
    for (const [key, e] of [...this.pulled]) if (match(e)) this.pulled.delete(key);
    if (n > 0) this.file.changed();
    return n;
  }

  /** The whole table in the file's shape (GET_ALL_CONSUMER_OFFSET's body). */
  snapshot(): OffsetsFile {
    const offsetTable: OffsetsFile['offsetTable'] = {};
    for (const [key, e] of this.table) {
      offsetTable[key] = Object.fromEntries([...e.queues].sort((a, b) => a[0] - b[0]));
    }
    return { offsetTable };
  }

  /** Writes the table if it changed since the last write; resolves when it is durable. */
  flush(): Promise<void> {
    return this.file.flush();
  }

  /** Stops the periodic write and writes what changed. */
  close(): Promise<void> {
    return this.file.close();
  }
}
