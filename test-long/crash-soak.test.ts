/** Long crash loops (`npm run test:long`): hundreds of SIGKILLs per flush mode, larger segments. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCrashRounds } from '../test-support/crash-harness.js';

const seed = Number(process.env.TSMQ_SEED ?? Date.now() % 100_000);
const rounds = Number(process.env.TSMQ_CRASH_ROUNDS ?? 60);

for (const flushMode of ['SYNC', 'ASYNC'] as const) {
  test(`${flushMode}: ${rounds} SIGKILL rounds lose and corrupt nothing (seed ${seed})`, {
    timeout: 1_800_000,
  }, async () => {
    const s = await runCrashRounds({
      rounds,
      flushMode,
      seed: flushMode === 'SYNC' ? seed : seed + 1,
      segmentBytes: 1024 * 1024,
      maxAcksBeforeKill: 3000,
    });
    assert.equal(s.rounds, rounds);
    assert.ok(s.acked > rounds);
  });
}
