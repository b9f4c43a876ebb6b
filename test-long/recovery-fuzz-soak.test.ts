/** The recovery fuzzer at length (`npm run test:long`): hundreds of damaged tails. */
import { test } from 'node:test';
import { runRecoveryFuzz } from '../test-support/recovery-fuzz.js';

const seed = Number(process.env.TSMQ_SEED ?? Date.now() % 1_000_000);
const rounds = Number(process.env.TSMQ_FUZZ_ROUNDS ?? 400);

test(`${rounds} rounds of random damage past the flushed offset recover to a valid prefix (seed ${seed})`, {
  timeout: 600_000,
}, async () => {
  await runRecoveryFuzz(seed, rounds);
});
