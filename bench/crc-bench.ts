/**
 * CRC-32 micro-benchmark (`npm run bench:crc`): one JSON line with ns per KiB of
 *   zlibNsPerKiB          zlib.crc32 over a 1 KiB Buffer
 *   jsNsPerKiB            crc32Range (src/common/crc32.ts) over the same
 *   nativeNsPerKiB        the native addon's crc32 over the same (call overhead included)
 *   nativeFillNsPerRecord native fillRecordCrcs per record of a 1 KiB body with the record CRC,
 *                         in batches of 4096 records (body CRC + record CRC)
 *   tsFillNsPerRecord     record.ts fillRecordCrcs per such record, for comparison
 * Each figure is the best of several rounds. Options: --rounds N (7).
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { crc32 } from 'node:zlib';
import { crc32Range } from '../src/common/crc32.js';
import { native, nativeStatus } from '../src/common/native.js';
import { encodeHost, fillRecordCrcs, prepareRecord, writeRecord } from '../src/message/index.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' } } });
const rounds = Number(values.rounds);

/** Best time per operation in ns of `ops` operations done by `run`, over `rounds` rounds. */
function best(ops: number, run: () => number): number {
  let min = Infinity;
  let sink = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    sink ^= run();
    const ns = ((performance.now() - t0) * 1e6) / ops;
    if (ns < min) min = ns;
  }
  if (sink === 0x7fffffff) console.error('');
  return Math.round(min * 10) / 10;
}

// 1 KiB buffers at different offsets of a pool, so no single one stays hot in L1.
const KIB = 1024;
const COUNT = 4096;
const pool = Buffer.alloc(COUNT * KIB);
for (let i = 0; i < pool.length; i++) pool[i] = (i * 2654435761) >>> 24;
const bufs = Array.from({ length: COUNT }, (_, i) => pool.subarray(i * KIB, (i + 1) * KIB));
const PASSES = 25;

const zlibNs = best(COUNT * PASSES, () => {
  let x = 0;
  for (let p = 0; p < PASSES; p++) for (const b of bufs) x ^= crc32(b);
  return x;
});
const jsNs = best(COUNT * PASSES, () => {
  let x = 0;
  for (let p = 0; p < PASSES; p++) for (const b of bufs) x ^= crc32Range(b, 0, KIB);
  return x;
});
const nativeNs =
  native === undefined
    ? null
    : best(COUNT * PASSES, () => {
        let x = 0;
        for (let p = 0; p < PASSES; p++) {
          for (let i = 0; i < COUNT; i++) x ^= native!.crc32(pool, i * KIB, (i + 1) * KIB, 0);
        }
        return x;
      });

// 4096 records of a 1 KiB body with typical properties and the record CRC, into one shared arena.
const rec = prepareRecord(
  {
    topic: 'BenchTopic',
    queueId: 3,
    body: pool.subarray(0, KIB),
    properties:
      'UNIQ_KEY\u00017F000001000118B4AAC21A2B3C4D0000\u0002WAIT\u0001true\u0002TAGS\u0001TagA\u0002',
    bornHost: { address: '10.1.2.3', port: 50000 },
  },
  4 * 1024 * 1024,
  false,
  true,
  true,
);
const arena = Buffer.from(new SharedArrayBuffer(rec.size * COUNT));
const storeHost = encodeHost({ address: '10.0.0.1', port: 10911 });
const jobs = new Int32Array(COUNT);
for (let i = 0; i < COUNT; i++) {
  const pos = i * rec.size;
  writeRecord(arena, pos, rec, i, pos, 1_700_000_000_000, storeHost, true);
  jobs[i] = (pos << 1) | 1;
}
const FILL_PASSES = 10;
const nativeFillNs =
  native === undefined
    ? null
    : best(COUNT * FILL_PASSES, () => {
        for (let p = 0; p < FILL_PASSES; p++) native!.fillRecordCrcs(arena, jobs, COUNT);
        return arena[8]!;
      });
const tsFillNs = best(COUNT * FILL_PASSES, () => {
  for (let p = 0; p < FILL_PASSES; p++)
    for (let i = 0; i < COUNT; i++) fillRecordCrcs(arena, i * rec.size, true);
  return arena[8]!;
});

console.log(
  JSON.stringify({
    bench: 'crc32',
    native: nativeStatus(),
    zlibNsPerKiB: zlibNs,
    jsNsPerKiB: jsNs,
    nativeNsPerKiB: nativeNs,
    nativeFillNsPerRecord: nativeFillNs,
    tsFillNsPerRecord: tsFillNs,
    recordBytes: rec.size,
    batch: COUNT,
  }),
);
