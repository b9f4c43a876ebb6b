/**
 * BROADCASTING offsets: every member consumes every queue, so each keeps its own offsets, in
 * `<offsetStoreDir>/<clientId>/<group>/offsets.json` (offsetStoreDir defaults to ~/.tsmq_offsets;
 * RocketMQ's LocalFileOffsetStore uses the same layout under ~/.rocketmq_offsets):
 *
 *   {"format":"tsmq-consumer-offsets","version":1,"clientId":"10.0.0.5@DEFAULT","group":"g",
 *    "offsets":[{"topic":"T","brokerName":"broker-a","queueId":0,"offset":42}, ...],
 *    "crc32":1234567890}
 *
 * crc32 covers JSON.stringify(offsets). The file is replaced atomically — written to
 * offsets.json.tmp, fsynced, renamed over offsets.json, then the directory fsynced — so a crash
 * leaves the old or the new file, never a torn one (a stale .tmp is simply overwritten). Writes
 * are serialized and skipped when nothing changed since the last one.
 *
 * The client id must be stable across restarts for the file to be found again: a broadcasting
 * consumer's instanceName defaults to "DEFAULT" (as RocketMQ's does). Two stores of one process
 * may not share a file: the second load() fails with CLIENT_STATE_INVALID.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { crc32Range } from '../../common/crc32.js';
import { TsmqError } from '../../common/errors.js';
import type { MessageQueue } from '../message.js';
import { type OffsetStore, OffsetTable } from './offset-store.js';

export const OFFSET_FILE_FORMAT = 'tsmq-consumer-offsets';
export const OFFSET_FILE_VERSION = 1;

export function defaultOffsetStoreDir(): string {
  return path.join(os.homedir(), '.tsmq_offsets');
}

/** Files held open by a store of this process. */
const inUse = new Set<string>();

/** A path segment from a client id or group: separators and other oddities become '_'. */
function segment(s: string): string {
  const safe = s.replace(/[^A-Za-z0-9@._%|#-]/g, '_');
  return safe === '.' || safe === '..' ? safe.replace(/\./g, '_') : safe;
}

export function offsetFilePath(dir: string, clientId: string, group: string): string {
  return path.join(dir, segment(clientId), segment(group), 'offsets.json');
}

interface FileEntry {
  topic: string;
  brokerName: string;
  queueId: number;
  offset: number;
}

function crcOf(offsets: FileEntry[]): number {
  const b = Buffer.from(JSON.stringify(offsets), 'utf8');
  return crc32Range(b, 0, b.length);
}

function parseOffsetFile(text: string, file: string): FileEntry[] {
  const bad = (why: string) =>
    new TsmqError('CLIENT_STATE_INVALID', `the consumer offset file ${file} is unusable: ${why}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw bad(`not JSON (${(e as Error).message})`);
  }
  const o = json as { format?: unknown; version?: unknown; offsets?: unknown; crc32?: unknown };
  if (typeof o !== 'object' || o === null || o.format !== OFFSET_FILE_FORMAT)
    throw bad('not a tsmq offset file');
  if (o.version !== OFFSET_FILE_VERSION) throw bad(`version ${String(o.version)} is not supported`);
  if (!Array.isArray(o.offsets)) throw bad('no offsets array');
  const offsets: FileEntry[] = o.offsets.map((e: unknown) => {
    const x = e as Partial<FileEntry>;
    const ok =
      typeof x === 'object' &&
      x !== null &&
      typeof x.topic === 'string' &&
      typeof x.brokerName === 'string' &&
      Number.isSafeInteger(x.queueId) &&
      (x.queueId as number) >= 0 &&
      Number.isSafeInteger(x.offset) &&
      (x.offset as number) >= 0;
    if (!ok) throw bad(`bad entry ${JSON.stringify(e)}`);
    return { topic: x.topic!, brokerName: x.brokerName!, queueId: x.queueId!, offset: x.offset! };
  });
  if (o.crc32 !== crcOf(offsets)) throw bad('CRC mismatch');
  return offsets;
}

export class LocalFileOffsetStore implements OffsetStore {
  readonly file: string;
  private readonly table = new OffsetTable();
  /** What the file holds (loaded, then as last written). */
  private readonly stored = new OffsetTable();
  private dirty = false;
  private writing: Promise<void> = Promise.resolve();
  private loaded = false;

  constructor(
    dir: string,
    private readonly clientId: string,
    private readonly group: string,
  ) {
    this.file = path.resolve(offsetFilePath(dir, clientId, group));
  }

  async load(): Promise<void> {
    if (inUse.has(this.file)) {
      throw new TsmqError(
        'CLIENT_STATE_INVALID',
        `another consumer of this process uses ${this.file}; give broadcasting consumers of one group distinct instanceNames`,
      );
    }
    inUse.add(this.file);
    this.loaded = true;
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const e of parseOffsetFile(text, this.file)) {
      const mq = { topic: e.topic, brokerName: e.brokerName, queueId: e.queueId };
      this.table.update(mq, e.offset, false);
      this.stored.update(mq, e.offset, false);
    }
  }

  update(mq: MessageQueue, offset: number, increaseOnly: boolean): void {
    if (this.table.update(mq, offset, increaseOnly)) this.dirty = true;
  }

  readMemory(mq: MessageQueue): number | undefined {
    return this.table.get(mq);
  }

  async readStored(mq: MessageQueue): Promise<number | undefined> {
    return this.stored.get(mq);
  }

  /** Writes every offset this member holds (the file is the member's own); `mqs` is not needed. */
  persist(_mqs: readonly MessageQueue[]): Promise<void> {
    const run = this.writing.then(() => this.writeNow());
    this.writing = run.catch(() => undefined);
    return run;
  }

  /** A broadcasting member keeps every queue's offset, so removal keeps it too. */
  remove(_mq: MessageQueue): void {}

  async close(): Promise<void> {
    await this.writing;
    if (this.loaded) inUse.delete(this.file);
    this.loaded = false;
  }

  private async writeNow(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    const entries = this.table.all();
    const offsets: FileEntry[] = entries.map((e) => ({
      topic: e.mq.topic,
      brokerName: e.mq.brokerName,
      queueId: e.mq.queueId,
      offset: e.offset,
    }));
    const doc = {
      format: OFFSET_FILE_FORMAT,
      version: OFFSET_FILE_VERSION,
      clientId: this.clientId,
      group: this.group,
      offsets,
      crc32: crcOf(offsets),
    };
    try {
      await writeAtomically(this.file, `${JSON.stringify(doc)}\n`);
    } catch (e) {
      this.dirty = true;
      throw e;
    }
    for (const e of entries) this.stored.update(e.mq, e.offset, false);
  }
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  const tmp = `${file}.tmp`;
  const fh = await fs.open(tmp, 'w');
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
  const d = await fs.open(dir, 'r');
  try {
    await d.sync();
  } catch {
    // Some file systems refuse to fsync a directory; the rename is then as durable as they allow.
  } finally {
    await d.close();
  }
}
