import { test } from 'node:test';
import { runRecoveryFuzz } from '../../test-support/recovery-fuzz.js';

const seed = Number(process.env.TSMQ_SEED ?? Date.now() % 1_000_000);

test(`recovery after random damage past the flushed offset keeps a valid prefix (seed ${seed})`, async () => {
  await runRecoveryFuzz(seed, 25);
});
