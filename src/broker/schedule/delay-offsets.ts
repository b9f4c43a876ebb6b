/**
 * Delivery progress of the delay levels: for each level L, the next offset of queue L − 1 of
 * SCHEDULE_TOPIC_XXXX to deliver (everything below it is in its real queue). Kept in memory and
 * written to <storeRoot>/config/delayOffset.json in RocketMQ's shape, which GET_ALL_DELAY_OFFSET
 * also answers:
 *
 *   { "offsetTable": { "<level>": <next queue offset>, ... } }
 *
 * Writes go through the store's JsonFile (temp file + fsync + rename): a crash leaves the old or
 * the new table. The table is written every flushDelayOffsetInterval when it changed, and at
 * close. A crash (SIGKILL included) thus loses at most one interval of progress, and the messages
 * delivered in it are delivered again after the restart: at least once, never lost, because a
 * level's offset moves past a message only after its real copy is stored.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../common/log.js';
import { PeriodicJsonFile } from '../../store/index.js';

export interface DelayOffsetsFile {
  offsetTable: Record<string, number>;
}

export class DelayOffsetTable {
  private readonly table = new Map<number, number>();
  private readonly file: PeriodicJsonFile<DelayOffsetsFile>;

  private constructor(storePathRootDir: string, logger: Logger) {
    this.file = new PeriodicJsonFile(
      path.join(storePathRootDir, 'config', 'delayOffset.json'),
      () => this.snapshot(),
      (err, file) => logger.error({ err, path: file }, 'writing delay offsets failed'),
    );
  }

  get path(): string {
    return this.file.path;
  }

  /** Loads delayOffset.json if present; entries that are not level → offset are skipped with a warning. */
  static async open(storePathRootDir: string, logger: Logger): Promise<DelayOffsetTable> {
    await fs.mkdir(path.join(storePathRootDir, 'config'), { recursive: true });
    const t = new DelayOffsetTable(storePathRootDir, logger);
    const stored = await t.file.file.read(undefined);
    for (const [k, v] of Object.entries(stored?.offsetTable ?? {})) {
      const level = Number(k);
      if (Number.isSafeInteger(level) && level >= 1 && Number.isSafeInteger(v) && v >= 0) {
        t.table.set(level, v);
      } else {
        logger.warn({ level: k, offset: v }, `ignoring a malformed entry of ${t.file.path}`);
      }
    }
    return t;
  }

  /** Starts the periodic write. */
  start(flushIntervalMs: number): void {
    this.file.start(flushIntervalMs);
  }

  /** The next queue offset to deliver for the level, undefined if it never delivered one. */
  get(level: number): number | undefined {
    return this.table.get(level);
  }

  set(level: number, offset: number): void {
    if (this.table.get(level) === offset) return;
    this.table.set(level, offset);
    this.file.changed();
  }

  /** The table in the file's shape, levels in order. */
  snapshot(): DelayOffsetsFile {
    const offsetTable: Record<string, number> = {};
    for (const [level, off] of [...this.table].sort((a, b) => a[0] - b[0])) offsetTable[String(level)] = off;
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
