/**
 * Small metadata files (topic configs, consumer offsets, delay progress) as JSON, written
 * atomically: temp file + fsync + rename + directory fsync. A crash leaves the old or the new
 * version, never a torn one. Writes to one file are serialized; a burst of writes coalesces into
 * at most one write in flight plus one pending (the newest value wins).
 */
import { type FileIo, nodeFileIo, writeFileAtomic } from './io.js';

export class JsonFile<T> {
  private inFlight: Promise<void> | undefined;
  private pending:
    | { value: T; waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> }
    | undefined;

  constructor(
    readonly path: string,
    private readonly io: FileIo = nodeFileIo,
  ) {}

  /** The stored value, or `fallback` if the file does not exist. Malformed JSON throws. */
  async read(fallback: T): Promise<T> {
    if (!(await this.io.exists(this.path))) return fallback;
    const text = (await this.io.readFile(this.path)).toString('utf8');
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new Error(`metadata file ${this.path} is not valid JSON: ${(e as Error).message}`);
    }
  }

  /** Durably replaces the file's content; resolves when this value (or a newer one) is on disk. */
  write(value: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.pending) {
        this.pending.value = value;
        this.pending.waiters.push({ resolve, reject });
      } else {
        this.pending = { value, waiters: [{ resolve, reject }] };
      }
      if (!this.inFlight) this.drain();
    });
  }

  private drain(): void {
    const job = this.pending;
    if (!job) return;
    this.pending = undefined;
    const data = Buffer.from(`${JSON.stringify(job.value, null, 2)}\n`, 'utf8');
    this.inFlight = writeFileAtomic(this.io, this.path, data).then(
      () => {
        for (const w of job.waiters) w.resolve();
      },
      (e) => {
        for (const w of job.waiters) w.reject(e);
      },
    );
    void this.inFlight.finally(() => {
      this.inFlight = undefined;
      this.drain();
    });
  }
}

/**
 * A JsonFile its owner rewrites in the background: it says `changed()` after each change, and the
 * value of `snapshot()` is written at every `start` interval when something changed, and at
 * `close()`. A failed write is reported through `onError` and tried again at the next interval.
 */
export class PeriodicJsonFile<T> {
  readonly file: JsonFile<T | undefined>;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    path: string,
    private readonly snapshot: () => T,
    private readonly onError: (e: unknown, path: string) => void,
    io: FileIo = nodeFileIo,
  ) {
    this.file = new JsonFile(path, io);
  }

  get path(): string {
    return this.file.path;
  }

  changed(): void {
    this.dirty = true;
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.flush().catch(() => {}), intervalMs);
    this.timer.unref();
  }

  /** Writes the value if it changed since the last write; resolves when it is durable. */
  async flush(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    try {
      await this.file.write(this.snapshot());
    } catch (e) {
      this.dirty = true;
      this.onError(e, this.file.path);
      throw e;
    }
  }

  /** Stops the interval and writes what changed. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
