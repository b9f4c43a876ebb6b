/**
 * The crash loop: a child process appends and reports acknowledgements; we SIGKILL it at a random
 * moment, recover the store in this process and check, after every round, that every acknowledged
 * message is present exactly once, in queue order, byte-identical, and that nothing partial or
 * foreign can be read.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeRecords } from '../src/message/index.js';
import { MessageStore } from '../src/store/index.js';
import { CRASH_QUEUES, CRASH_TOPICS, crashMessage, crashStoreOptions, seqOfBody } from './crash-workload.js';
import { mulberry32 } from './prng.js';

const childPath = new URL('./crash-child.js', import.meta.url).pathname;

export interface CrashRunOptions {
  rounds: number;
  flushMode: 'SYNC' | 'ASYNC';
  seed: number;
  segmentBytes: number;
  /** Upper bound of acknowledgements to wait for before the kill, per round. */
  maxAcksBeforeKill: number;
}

export interface CrashRunStats {
  rounds: number;
  acked: number;
  stored: number;
  unackedButStored: number;
}

interface Acked {
  phys: number;
  q: number;
}

/** Resolves when `cond()` holds, polling on child output events; rejects at the deadline. */
function waitFor(child: ChildProcess, cond: () => boolean, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (cond()) return resolve();
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    const check = () => {
      if (cond()) {
        cleanup();
        resolve();
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      if (cond()) resolve();
      else reject(new Error(`child exited (${code}) while waiting for ${what}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout!.off('data', check);
      child.off('exit', onExit);
    };
    child.stdout!.on('data', check);
    child.on('exit', onExit);
  });
}

export async function runCrashRounds(o: CrashRunOptions): Promise<CrashRunStats> {
  const rnd = mulberry32(o.seed);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmq-crash-'));
  const acked = new Map<number, Acked>();
  const stats: CrashRunStats = { rounds: 0, acked: 0, stored: 0, unackedButStored: 0 };
  try {
    for (let round = 0; round < o.rounds; round++) {
      const firstSeq = round * 10_000_000;
      const child = spawn(
        process.execPath,
        [childPath, dir, o.flushMode, String(firstSeq), String(o.segmentBytes)],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      let ready = false;
      let roundAcks = 0;
      let partial = '';
      child.stdout!.on('data', (d: Buffer) => {
        const lines = (partial + d.toString()).split('\n');
        partial = lines.pop()!;
        for (const line of lines) {
          const [kind, a, b, c] = line.split(' ');
          if (kind === 'ready') ready = true;
          else if (kind === 'ack') {
            acked.set(Number(a), { phys: Number(b), q: Number(c) });
            roundAcks++;
          }
        }
      });
      const exited = new Promise<void>((r) => child.on('exit', () => r()));
      const target = 1 + Math.floor(rnd() * o.maxAcksBeforeKill);
      try {
        await waitFor(child, () => ready, 30_000, 'the child to open the store');
        await waitFor(child, () => roundAcks >= target, 60_000, `${target} acknowledgements`);
      } catch (e) {
        child.kill('SIGKILL');
        throw new Error(`round ${round} (seed ${o.seed}): ${(e as Error).message}; child stderr: ${stderr}`);
      }
      child.kill('SIGKILL');
      await exited;
      stats.rounds++;
      await verify(dir, acked, stats, `round ${round} (seed ${o.seed}, ${o.flushMode})`);
    }
    stats.acked = acked.size;
    return stats;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function verify(
  dir: string,
  acked: Map<number, Acked>,
  stats: CrashRunStats,
  where: string,
): Promise<void> {
  const store = await MessageStore.open({ rootDir: dir, segmentBytes: 1 << 20, ...crashStoreOptions });
  try {
    assert.ok(store.recovery.crashed, `${where}: a SIGKILL must be detected as a crash`);
    const seen = new Set<number>();
    for (const topic of CRASH_TOPICS) {
      for (let q = 0; q < CRASH_QUEUES; q++) {
        let offset = store.minOffsetInQueue(topic, q);
        const max = store.maxOffsetInQueue(topic, q);
        let lastSeq = -1;
        while (offset < max) {
          const r = await store.getMessages(topic, q, offset, { maxCount: 256 });
          assert.equal(r.status, 'FOUND', `${where}: ${topic}/${q}@${offset} gave ${r.status}`);
          for (let i = 0; i < r.records.length; i++) {
            const [rec] = decodeRecords(r.records[i]!);
            assert.ok(rec, `${where}: undecodable record`);
            const seq = seqOfBody(rec.body);
            const want = crashMessage(seq);
            assert.equal(rec.topic, topic);
            assert.equal(rec.queueId, q);
            assert.equal(rec.queueOffset, r.queueOffsets[i]);
            assert.ok(rec.body.equals(want.body), `${where}: body of seq ${seq} differs`);
            // The store appends its record CRC as the last property.
            assert.equal(
              rec.properties.slice(0, want.properties.length),
              want.properties,
              `${where}: properties of seq ${seq} differ`,
            );
            const crcProp = rec.properties.slice(want.properties.length);
            assert.equal(crcProp.length, 20);
            assert.ok(crcProp.startsWith('__CRC32#\u0001') && crcProp.endsWith('\u0002'));
            assert.match(crcProp.slice(9, 19), /^\d{10}$/);
            assert.ok(!seen.has(seq), `${where}: seq ${seq} stored twice`);
            assert.ok(seq > lastSeq, `${where}: ${topic}/${q} out of order: ${seq} after ${lastSeq}`);
            seen.add(seq);
            lastSeq = seq;
          }
          offset = r.nextBeginOffset;
        }
      }
    }
    for (const [seq, a] of acked) {
      assert.ok(seen.has(seq), `${where}: acknowledged seq ${seq} (offset ${a.phys}) is missing`);
      const rec = await store.getMessageByPhysicalOffset(a.phys);
      assert.equal(seqOfBody(rec.body), seq, `${where}: offset ${a.phys} does not hold seq ${seq}`);
      assert.equal(rec.queueOffset, a.q);
    }
    stats.stored = seen.size;
    stats.unackedButStored = seen.size - acked.size;
  } finally {
    await store.close();
  }
}
