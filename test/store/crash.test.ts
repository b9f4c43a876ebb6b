import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCrashRounds } from '../../test-support/crash-harness.js';

const seed = Number(process.env.TSMQ_SEED ?? Date.now() % 100_000);

test(`SYNC flush: every acknowledged append survives 20 SIGKILLs (seed ${seed})`, {
  timeout: 240_000,
}, async () => {
  const s = await runCrashRounds({
    rounds: 20,
    flushMode: 'SYNC',
    seed,
    segmentBytes: 256 * 1024,
    maxAcksBeforeKill: 1500,
  });
  assert.equal(s.rounds, 20);
  assert.ok(s.acked > 20, `only ${s.acked} acknowledgements in 20 rounds`);
});

test(`ASYNC flush: no corruption and no lost write after 20 SIGKILLs (seed ${seed})`, {
  timeout: 240_000,
}, async () => {
  const s = await runCrashRounds({
    rounds: 20,
    flushMode: 'ASYNC',
    seed: seed + 1,
    segmentBytes: 256 * 1024,
    maxAcksBeforeKill: 3000,
  });
  assert.equal(s.rounds, 20);
  assert.ok(s.acked > 20);
});
