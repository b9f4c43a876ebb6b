import { test } from 'node:test';

/** A small seeded PRNG (mulberry32) for reproducible tests: same seed, same sequence in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeded random values for tests and fuzzers. */
export class Rng {
  readonly next: () => number;
  constructor(readonly seed: number) {
    this.next = mulberry32(seed);
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) b.writeUInt32LE((this.next() * 4294967296) >>> 0, i);
    for (; i < n; i++) b[i] = this.int(0, 255);
    return b;
  }
  int32(): number {
    return this.pick([0, 1, -1, 0x7fffffff, -0x80000000, this.int(-0x80000000, 0x7fffffff)]);
  }
  int16(): number {
    return this.pick([0, 1, -1, 0x7fff, -0x8000, this.int(-0x8000, 0x7fff)]);
  }
}

/** Override with TSMQ_SEED=<n> to replay a failure; the seed is printed with it. */
export const BASE_SEED = process.env.TSMQ_SEED !== undefined ? Number(process.env.TSMQ_SEED) : 0x5eed4242;

/** Runs `fn` as a test with a seeded Rng; a failure's message names the seed that replays it. */
export function seeded(name: string, salt: number, fn: (rng: Rng) => void): void {
  test(name, () => {
    const seed = (BASE_SEED ^ salt) >>> 0;
    try {
      fn(new Rng(seed));
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      err.message = `[seed ${seed}; replay with TSMQ_SEED=${BASE_SEED}] ${err.message}`;
      throw err;
    }
  });
}
