/**
 * The deterministic workload of the crash tests: message `seq` is fully determined by its number,
 * so a verifier can regenerate and compare it byte for byte.
 */
import { mulberry32 } from './prng.js';

export const CRASH_TOPICS = ['CrashA', 'CrashB', 'CrashC'] as const;
export const CRASH_QUEUES = 4;

export interface CrashMessage {
  topic: string;
  queueId: number;
  body: Buffer;
  properties: string;
}

export function crashMessage(seq: number): CrashMessage {
  const rnd = mulberry32(seq * 2654435761);
  const len = 16 + Math.floor(rnd() * 3000);
  const body = Buffer.allocUnsafe(len);
  const head = Buffer.from(`seq=${seq};`);
  head.copy(body, 0);
  for (let i = head.length; i < len; i++) body[i] = Math.floor(rnd() * 256);
  return {
    topic: CRASH_TOPICS[seq % CRASH_TOPICS.length]!,
    queueId: Math.floor(seq / 3) % CRASH_QUEUES,
    body,
    properties: `KEYS\u0001k${seq}\u0002UNIQ_KEY\u0001U${seq.toString(16).padStart(12, '0')}\u0002TAGS\u0001t${seq % 5}\u0002`,
  };
}

export function seqOfBody(body: Buffer): number {
  const s = body.subarray(0, 24).toString('latin1');
  const m = /^seq=(\d+);/.exec(s);
  if (!m) throw new Error(`body does not start with seq=: ${JSON.stringify(s)}`);
  return Number(m[1]);
}

/** Store options shared by the crash child and the verifier (file sizes must agree). */
export const crashStoreOptions = {
  flushIntervalMs: 20,
  checkpointIntervalMs: 30,
  cqUnitsPerFile: 500,
  indexSlotCount: 1024,
  indexMaxEntries: 4096,
} as const;
