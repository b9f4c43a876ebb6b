import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { native, nativeStatus } from '../../src/common/native.js';
import {
  decodeRecord,
  encodeHost,
  fillRecordCrcs,
  type PreparedRecord,
  prepareRecord,
  writeRecord,
} from '../../src/message/record.js';
import { type Rng, seeded } from '../../test-support/prng.js';

const disabled = process.env.TSMQ_NATIVE === '0';

test('the native addon is loaded (unless TSMQ_NATIVE=0)', () => {
  if (disabled) {
    assert.equal(native, undefined);
    assert.equal(nativeStatus(), 'disabled by TSMQ_NATIVE=0');
    return;
  }
  // CI has a compiler: a missing build is a defect, not a reason to skip.
  assert.ok(native, `native CRC addon not loaded: ${nativeStatus()} (run npm run build:native)`);
  assert.match(nativeStatus(), /^native CRC-32 \((pclmul|table)\)$/);
  // Where the CPU has PCLMULQDQ the folding path must be the one in use (the addon drops it if
  // its load-time self-check fails, which this makes a test failure).
  if (process.arch === 'x64' && process.platform === 'linux') {
    const cpu = fs.readFileSync('/proc/cpuinfo', 'utf8');
    if (/\bpclmulqdq\b/.test(cpu) && /\bsse4_1\b/.test(cpu)) assert.equal(native.simd, true);
  }
});

const n = native;
const skip = n === undefined ? 'native addon not loaded' : false;

function sharedCopy(b: Uint8Array, offset: number): Buffer {
  const out = Buffer.from(new SharedArrayBuffer(b.length + offset + 5), offset, b.length);
  out.set(b);
  return out;
}

seeded('native crc32 equals zlib.crc32 for every length 0..300, unaligned, and continues', 0x1001, (rng) => {
  if (!n) return;
  const pool = rng.bytes(400);
  const shared = sharedCopy(pool, 3);
  for (let len = 0; len <= 300; len++) {
    const start = rng.int(0, 99);
    const want = crc32(pool.subarray(start, start + len));
    assert.equal(n.crc32(pool, start, start + len, 0), want, `length ${len} at ${start}`);
    assert.equal(n.crc32(shared, start, start + len, 0), want, `shared, length ${len} at ${start}`);
    const mid = start + rng.int(0, len);
    assert.equal(n.crc32(pool, mid, start + len, n.crc32(pool, start, mid, 0)), want, `split at ${mid}`);
    const init = (rng.next() * 4294967296) >>> 0;
    assert.equal(n.crc32(pool, start, start + len, init), crc32(pool.subarray(start, start + len), init));
  }
  assert.equal(n.crc32(Buffer.from('123456789'), 0, 9, 0), 0xcbf43926);
});

seeded('native crc32 equals zlib.crc32 on long inputs (the SIMD path), split anywhere', 0x1002, (rng) => {
  if (!n) return;
  const pool = rng.bytes(70_000);
  const shared = sharedCopy(pool, 1);
  const lengths = [4096, 4097, 4111, 8191, 65536];
  for (let i = 0; i < 60; i++) lengths.push(rng.int(0, 65536));
  for (const len of lengths) {
    const start = rng.int(0, 70_000 - len);
    const want = crc32(pool.subarray(start, start + len));
    assert.equal(n.crc32(pool, start, start + len, 0), want, `length ${len} at ${start}`);
    assert.equal(n.crc32(shared, start, start + len, 0), want, `shared, length ${len} at ${start}`);
    const mid = start + rng.int(0, len);
    assert.equal(n.crc32(pool, mid, start + len, n.crc32(pool, start, mid, 0)), want, `split at ${mid}`);
  }
  // A buffer at an odd offset of a plain ArrayBuffer.
  const view = new Uint8Array(pool.buffer, pool.byteOffset + 7, 5000);
  assert.equal(n.crc32(view, 0, 5000, 0), crc32(view));
});

test('native crc32 rejects bad arguments', { skip }, () => {
  const b = Buffer.alloc(10);
  assert.throws(() => n!.crc32(b, 0, 11, 0), RangeError);
  assert.throws(() => n!.crc32(b, 5, 4, 0), RangeError);
  assert.throws(() => n!.crc32(b, -1, 4, 0), RangeError);
  assert.throws(() => n!.crc32(b, 0.5, 4, 0), RangeError);
  assert.throws(() => n!.crc32(new Uint16Array(4) as unknown as Uint8Array, 0, 4, 0), TypeError);
  assert.throws(() => n!.crc32('abc' as unknown as Uint8Array, 0, 1, 0), TypeError);
  // The starting value is an unsigned 32-bit CRC, as zlib.crc32 takes it: no silent wrap-around.
  assert.throws(() => n!.crc32(b, 0, 4, -1), RangeError);
  assert.throws(() => n!.crc32(b, 0, 4, 2 ** 32), RangeError);
  assert.throws(() => n!.crc32(b, 0, 4, 1.5), RangeError);
  assert.equal(n!.crc32(b, 0, 4, 0xffffffff), crc32(b.subarray(0, 4), 0xffffffff));
});

const STORE_V4 = encodeHost({ address: '10.0.0.7', port: 10911 });
const STORE_V6 = encodeHost({ address: '2001:db8::7', port: 10911 });

function randomText(rng: Rng, max: number): string {
  const alphabet = ['a', 'Z', '9', '=', ' ', 'é', 'ß', '中', '文', '😀', '-', '_'];
  let s = '';
  const len = rng.int(0, max);
  for (let i = 0; i < len; i++) s += rng.pick(alphabet);
  return s;
}

function randomRecord(rng: Rng, storeHostV6: boolean, recordCrc: boolean): PreparedRecord {
  const props: string[] = [];
  const count = rng.int(0, 4);
  for (let i = 0; i < count; i++) props.push(`k${i}${randomText(rng, 6)}\u0001${randomText(rng, 40)}`);
  const bornHost = rng.bool()
    ? { address: `192.168.${rng.int(0, 255)}.${rng.int(0, 255)}`, port: rng.int(0, 65535) }
    : { address: `fe80::${rng.int(1, 0xffff).toString(16)}`, port: rng.int(0, 65535) };
  const bodyLen = rng.pick([1, 2, 15, 16, 63, 64, 127, 128, 1024, rng.int(1, 5000)]);
  return prepareRecord(
    {
      topic: rng.pick(['T', 'orders', 'a-much_longer-topic-name%with|chars']),
      queueId: rng.int(0, 15),
      body: rng.bytes(bodyLen),
      properties: props.length > 0 ? `${props.join('\u0002')}\u0002` : '',
      flag: rng.int32(),
      bornTimestamp: 1_700_000_000_000 + rng.int(0, 1e9),
      bornHost,
      reconsumeTimes: rng.int(0, 16),
    },
    4 * 1024 * 1024,
    storeHostV6,
    recordCrc,
    true,
  );
}

seeded('native fillRecordCrcs writes exactly what the TS fillRecordCrcs writes', 0x1003, (rng) => {
  if (!n) return;
  for (const sharedArena of [false, true]) {
    const recs: { pos: number; rec: PreparedRecord }[] = [];
    const specs: PreparedRecord[] = [];
    for (let i = 0; i < 120; i++) specs.push(randomRecord(rng, rng.bool(), rng.bool(0.7)));
    const total = specs.reduce((s, r) => s + r.size + 3, 0) + 64;
    const arenaOffset = rng.int(0, 7);
    const arena = sharedArena
      ? Buffer.from(new SharedArrayBuffer(total + arenaOffset), arenaOffset, total)
      : Buffer.from(new ArrayBuffer(total + arenaOffset), arenaOffset, total);
    arena.fill(0xa5);
    let pos = rng.int(0, 9);
    for (const rec of specs) {
      writeRecord(
        arena,
        pos,
        rec,
        rng.int(0, 1e6),
        pos + 1e9,
        1_700_000_000_000 + rng.int(0, 1e6),
        rec.storeHostV6 ? STORE_V6 : STORE_V4,
        sharedArena,
      );
      recs.push({ pos, rec });
      pos += rec.size + rng.int(0, 3);
    }
    const viaTs = Buffer.from(arena);
    for (const { pos, rec } of recs) fillRecordCrcs(viaTs, pos, rec.recordCrc);
    const jobs = new Int32Array(recs.length + 4);
    recs.forEach(({ pos, rec }, i) => {
      jobs[i] = (pos << 1) | (rec.recordCrc ? 1 : 0);
    });
    n.fillRecordCrcs(arena, jobs, recs.length);
    assert.ok(arena.equals(viaTs), `shared ${sharedArena}: the arenas differ`);
    for (const { pos, rec } of recs) {
      const r = decodeRecord(arena, pos, { checkCrc: true, requireRecordCrc: rec.recordCrc });
      assert.equal(r.kind, 'record', `record at ${pos}: ${JSON.stringify(r)}`);
      if (r.kind === 'record') {
        assert.equal(r.record.bodyCrc, crc32(rec.msg.body) & 0x7fffffff);
        assert.ok(r.record.body.equals(rec.msg.body));
      }
    }
    // Every IPv4/IPv6 combination and both CRC modes were covered.
    const kinds = new Set(recs.map(({ rec }) => `${rec.sysFlag & 0x30}/${rec.recordCrc}`));
    assert.equal(kinds.size, 8, [...kinds].join(' '));
  }
});

test('native fillRecordCrcs rejects bad jobs with an Error and touches nothing outside the arena', {
  skip,
}, () => {
  const rec = prepareRecord({ topic: 'T', queueId: 0, body: Buffer.alloc(100, 7) }, 1024, false, true, true);
  const backing = Buffer.alloc(rec.size + 64, 0xee);
  const arena = backing.subarray(16, 16 + rec.size + 8);
  writeRecord(arena, 0, rec, 0, 0, 0, STORE_V4);
  const bad = (jobs: number[], pattern: RegExp, target: Buffer = arena) => {
    const before = Buffer.from(backing);
    assert.throws(
      () => n!.fillRecordCrcs(target, Int32Array.from(jobs), jobs.length),
      (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.match(e.message, pattern);
        return true;
      },
    );
    assert.ok(backing.subarray(0, 16).equals(before.subarray(0, 16)), 'wrote before the arena');
    assert.ok(
      backing.subarray(16 + arena.length).equals(before.subarray(16 + arena.length)),
      'wrote after it',
    );
  };
  // Past the end, and a record whose end is past the end.
  bad([(arena.length + 100) << 1], /job 0: .*position \d+/);
  bad([1 | (0x3fffffff << 1)], /position 1073741823/);
  bad([(1 << 1) | 1], /position 1\b/);
  // A garbage TOTALSIZE: too large, negative, zero, too small for a header.
  for (const size of [0x7fffffff, -5, 0, 40]) {
    const copy = Buffer.from(arena);
    copy.writeInt32BE(size, 0);
    bad([1], /job 0: not a written record at position 0/, copy);
  }
  // A garbage BODYLEN: past the record, negative.
  for (const bodyLen of [rec.size, -1, 0x7fffffff]) {
    const copy = Buffer.from(arena);
    copy.writeInt32BE(bodyLen, 84);
    bad([1], /BODYLEN/, copy);
  }
  // The first good job is done before the bad one is reported.
  const copy = Buffer.from(arena);
  assert.throws(() => n!.fillRecordCrcs(copy, Int32Array.from([1, 999 << 1]), 2), /job 1: .*position 999/);
  const viaTs = Buffer.from(arena);
  fillRecordCrcs(viaTs, 0, true);
  assert.ok(copy.equals(viaTs));
  // n beyond the jobs, and wrong types.
  assert.throws(() => n!.fillRecordCrcs(arena, new Int32Array(1), 2), RangeError);
  assert.throws(() => n!.fillRecordCrcs(arena, new Uint32Array(1) as unknown as Int32Array, 1), TypeError);
  // n = 0 does nothing.
  n!.fillRecordCrcs(arena, new Int32Array(0), 0);
});
