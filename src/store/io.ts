/**
 * The store's only door to the file system. Everything the store does to disk goes through a
 * `FileIo`, so tests can inject faults (a failing write, a failing fsync, a full disk) and count
 * calls. The Node implementation uses raw file descriptors and libuv's thread pool: no call here
 * blocks the event loop.
 */
import fs from 'node:fs';

export interface DiskUsage {
  totalBytes: number;
  freeBytes: number;
}

export interface FileIo {
  /** Opens (and with 'w+'/'a+' creates) a file; returns a file descriptor. */
  open(path: string, flags: 'r' | 'r+' | 'w+' | 'wx+'): Promise<number>;
  close(fd: number): Promise<void>;
  /** Positional write; may write fewer bytes than asked (see `writeFully`). */
  write(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** Positional read; returns the bytes read, 0 at end of file. */
  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  fdatasync(fd: number): Promise<void>;
  fsync(fd: number): Promise<void>;
  ftruncate(fd: number, length: number): Promise<void>;
  fstatSize(fd: number): Promise<number>;
  /** Size of a file by path, or undefined if it does not exist. */
  size(path: string): Promise<number | undefined>;
  mtimeMs(path: string): Promise<number>;
  exists(path: string): Promise<boolean>;
  mkdirp(path: string): Promise<void>;
  /** Names in a directory, or [] if it does not exist. */
  readdir(path: string): Promise<string[]>;
  unlink(path: string): Promise<void>;
  rmrf(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** fsyncs a directory so that creations, renames and deletions in it are durable. */
  fsyncDir(path: string): Promise<void>;
  readFile(path: string): Promise<Buffer>;
  diskUsage(path: string): Promise<DiskUsage>;
}

function cb<T>(fn: (done: (err: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    fn((err, value) => (err ? reject(err) : resolve(value)));
  });
}

export const nodeFileIo: FileIo = {
  open: (path, flags) => cb((d) => fs.open(path, flags, 0o644, d)),
  close: (fd) => cb<void>((d) => fs.close(fd, (e) => d(e, undefined))),
  write: (fd, buf, offset, length, position) =>
    cb<number>((d) => fs.write(fd, buf, offset, length, position, (e, n) => d(e, n))),
  read: (fd, buf, offset, length, position) =>
    cb<number>((d) => fs.read(fd, buf, offset, length, position, (e, n) => d(e, n))),
  fdatasync: (fd) => cb<void>((d) => fs.fdatasync(fd, (e) => d(e, undefined))),
  fsync: (fd) => cb<void>((d) => fs.fsync(fd, (e) => d(e, undefined))),
  ftruncate: (fd, length) => cb<void>((d) => fs.ftruncate(fd, length, (e) => d(e, undefined))),
  fstatSize: (fd) => cb<number>((d) => fs.fstat(fd, (e, st) => d(e, st?.size ?? 0))),
  size: async (path) => {
    try {
      return (await fs.promises.stat(path)).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  },
  mtimeMs: async (path) => (await fs.promises.stat(path)).mtimeMs,
  exists: async (path) => {
    try {
      await fs.promises.access(path);
      return true;
    } catch {
      return false;
    }
  },
  mkdirp: async (path) => {
    await fs.promises.mkdir(path, { recursive: true });
  },
  readdir: async (path) => {
    try {
      return await fs.promises.readdir(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  },
  unlink: (path) => fs.promises.unlink(path),
  rmrf: (path) => fs.promises.rm(path, { recursive: true, force: true }),
  rename: (from, to) => fs.promises.rename(from, to),
  fsyncDir: async (path) => {
    const fd = await cb<number>((d) => fs.open(path, 'r', d));
    try {
      await cb<void>((d) => fs.fsync(fd, (e) => d(e, undefined)));
    } finally {
      await cb<void>((d) => fs.close(fd, (e) => d(e, undefined)));
    }
  },
  readFile: (path) => fs.promises.readFile(path),
  diskUsage: async (path) => {
    const st = await fs.promises.statfs(path);
    return { totalBytes: st.blocks * st.bsize, freeBytes: st.bavail * st.bsize };
  },
};

/** Writes all `length` bytes, looping over short writes. */
export async function writeFully(
  io: FileIo,
  fd: number,
  buf: Uint8Array,
  offset: number,
  length: number,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < length) {
    const n = await io.write(fd, buf, offset + done, length - done, position + done);
    if (n <= 0) throw new Error(`short write: wrote ${done} of ${length} bytes`);
    done += n;
  }
}

/** Reads up to `length` bytes, looping over short reads; returns the count (less only at EOF). */
export async function readFully(
  io: FileIo,
  fd: number,
  buf: Uint8Array,
  offset: number,
  length: number,
  position: number,
): Promise<number> {
  let done = 0;
  while (done < length) {
    const n = await io.read(fd, buf, offset + done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/**
 * Writes a file atomically: temp file, fsync, rename over the target, fsync the directory.
 * A crash leaves either the old or the new content, never a mix.
 */
export async function writeFileAtomic(io: FileIo, path: string, data: Uint8Array): Promise<void> {
  const dir = path.slice(0, Math.max(0, path.lastIndexOf('/'))) || '.';
  const tmp = `${path}.tmp`;
  const fd = await io.open(tmp, 'w+');
  try {
    await writeFully(io, fd, data, 0, data.length, 0);
    await io.fsync(fd);
  } finally {
    await io.close(fd);
  }
  await io.rename(tmp, path);
  await io.fsyncDir(dir);
}
