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
