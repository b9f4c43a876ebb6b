/** Shared helpers of the store tests: temp dirs, a counting and fault-injecting FileIo. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import {
  type FileIo,
  type MessageStore,
  type MessageStoreOptions,
  nodeFileIo,
  unitAt,
} from '../src/store/index.js';

export function tempDir(prefix = 'tsmq-test-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A maker of temp dirs for one test file: each call gives a new one, and all are removed when the
 * file's tests are done (node:test `after`).
 */
export function tempDirsOfFile(): () => string {
  const cleanups: Array<() => void> = [];
  after(() => {
    for (const c of cleanups) c();
  });
  return () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    return t.dir;
  };
}

/**
 * Store options that make small tests exercise rolling and flushing: 64 KiB segments, consume-queue
 * files of 100 units, a tiny index, and flushes and checkpoints every few milliseconds.
 */
export const smallStoreOptions: Readonly<Partial<MessageStoreOptions>> = {
  segmentBytes: 64 * 1024,
  cqUnitsPerFile: 100,
  indexSlotCount: 64,
  indexMaxEntries: 500,
  flushIntervalMs: 10,
  checkpointIntervalMs: 50,
};

export type IoOp = 'write' | 'fdatasync' | 'read' | 'open';

/**
 * A FileIo that counts calls and can be told to fail or to hold an operation. `failNext(op, path
 * fragment)` makes the next matching call reject with an EIO error; `usage` overrides disk usage.
 */
export class FaultyIo implements FileIo {
  readonly counts: Record<IoOp, number> = { write: 0, fdatasync: 0, read: 0, open: 0 };
  private readonly fdPaths = new Map<number, string>();
  private failures: Array<{ op: IoOp; match: string; error: string }> = [];
  usage: { totalBytes: number; freeBytes: number } | undefined;
  /** Called before each fdatasync; may return a promise to hold it. */
  beforeFdatasync: ((path: string) => Promise<void> | void) | undefined;
  writesByPath = new Map<string, number>();

  constructor(private readonly inner: FileIo = nodeFileIo) {}

  failNext(op: IoOp, match = '', error = 'EIO'): void {
    this.failures.push({ op, match, error });
  }

  private maybeFail(op: IoOp, p: string): void {
    const i = this.failures.findIndex((f) => f.op === op && p.includes(f.match));
    if (i >= 0) {
      const f = this.failures.splice(i, 1)[0]!;
      const e = new Error(`${f.error}: injected ${op} failure on ${p}`) as NodeJS.ErrnoException;
      e.code = f.error;
      throw e;
    }
  }

  async open(p: string, flags: 'r' | 'r+' | 'w+' | 'wx+'): Promise<number> {
    this.counts.open++;
    this.maybeFail('open', p);
    const fd = await this.inner.open(p, flags);
    this.fdPaths.set(fd, p);
    return fd;
  }
  close(fd: number) {
    this.fdPaths.delete(fd);
    return this.inner.close(fd);
  }
  async write(fd: number, buf: Uint8Array, offset: number, length: number, position: number) {
    const p = this.fdPaths.get(fd) ?? '';
    this.counts.write++;
    this.writesByPath.set(p, (this.writesByPath.get(p) ?? 0) + 1);
    this.maybeFail('write', p);
    return this.inner.write(fd, buf, offset, length, position);
  }
  async read(fd: number, buf: Uint8Array, offset: number, length: number, position: number) {
    this.counts.read++;
    this.maybeFail('read', this.fdPaths.get(fd) ?? '');
    return this.inner.read(fd, buf, offset, length, position);
  }
  async fdatasync(fd: number) {
    const p = this.fdPaths.get(fd) ?? '';
    this.counts.fdatasync++;
    this.maybeFail('fdatasync', p);
    await this.beforeFdatasync?.(p);
    return this.inner.fdatasync(fd);
  }
  fsync(fd: number) {
    return this.inner.fsync(fd);
  }
  ftruncate(fd: number, length: number) {
    return this.inner.ftruncate(fd, length);
  }
  fstatSize(fd: number) {
    return this.inner.fstatSize(fd);
  }
  size(p: string) {
    return this.inner.size(p);
  }
  mtimeMs(p: string) {
    return this.inner.mtimeMs(p);
  }
  exists(p: string) {
    return this.inner.exists(p);
  }
  mkdirp(p: string) {
    return this.inner.mkdirp(p);
  }
  readdir(p: string) {
    return this.inner.readdir(p);
  }
  unlink(p: string) {
    return this.inner.unlink(p);
  }
  rmrf(p: string) {
    return this.inner.rmrf(p);
  }
  rename(a: string, b: string) {
    return this.inner.rename(a, b);
  }
  fsyncDir(p: string) {
    return this.inner.fsyncDir(p);
  }
  readFile(p: string) {
    return this.inner.readFile(p);
  }
  async diskUsage(p: string) {
    return this.usage ?? this.inner.diskUsage(p);
  }
}

/** Polls `cond` every few ms until it holds or the deadline passes. */
export async function waitUntil(
  cond: () => boolean | Promise<boolean>,
  ms = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Every consume queue's units, as `physicalOffset:size:tagsCode` lists by `topic/queueId`: for
 * comparing the queues a store built with those rebuilt from its log.
 */
export async function consumeQueueUnits(store: MessageStore): Promise<Record<string, string>> {
  const units: Record<string, string> = {};
  for (const cq of store.consumeQueues.all()) {
    const parts: string[] = [];
    for (let o = cq.minOffset(); o < cq.maxOffset(); ) {
      const u = await cq.readUnits(o, 50);
      for (let i = 0; i < u.length / 20; i++) {
        const x = unitAt(u, i);
        parts.push(`${x.physicalOffset}:${x.size}:${x.tagsCode}`);
      }
      o += u.length / 20;
    }
    units[`${cq.topic}/${cq.queueId}`] = parts.join(',');
  }
  return units;
}
