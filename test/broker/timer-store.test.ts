/**
 * The timer store's codec and its service, driven in-process: an array as the timer topic, a
 * sink that records delivery times, a manual clock (rounds run exactly when the service says
 * something is due, so lateness is measured in the service's own terms). Recovery after crashes:
 * timer-recovery.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import {
  checkpointBytes,
  decodeCheckpoint,
  decodeSlot,
  decodeUnit,
  decodeWheelHeader,
  encodeCheckpoint,
  encodeSlot,
  encodeUnit,
  encodeWheelHeader,
  SLOT_BYTES,
  TIMER_UNIT_BYTES,
  type TimerCheckpoint,
} from '../../src/broker/timer/timer-codec.js';
import { Rng } from '../../test-support/prng.js';
import {
  ArraySource,
  assertAllOnce,
  assertOnTime,
  drive,
  ManualClock,
  openRig,
  RecordingSink,
  T0,
  tempDir,
} from '../../test-support/timer-fixtures.js';

describe('timer codec', () => {
  test('units, slot records, the wheel header and checkpoints round-trip', () => {
    const rng = new Rng(7);
    const big = () => rng.int(0, 2 ** 20) * 2 ** 32 + rng.int(0, 2 ** 32 - 1);
    for (let i = 0; i < 2000; i++) {
      const u = {
        deliverAtMs: big(),
        slot: big(),
        phys: big(),
        prevPos: rng.bool() ? -1 : big(),
        size: rng.int(1, 2 ** 32 - 1),
      };
      const b = Buffer.alloc(TIMER_UNIT_BYTES + 8);
      encodeUnit(b, 8, u);
      assert.deepEqual(decodeUnit(b, 8), u);
      const s = { slot: big(), firstPos: big(), lastPos: big(), count: rng.int(1, 2 ** 32 - 1) };
      const sb = Buffer.alloc(SLOT_BYTES);
      encodeSlot(sb, 0, s);
      assert.deepEqual(decodeSlot(sb, 0), s);
    }
    assert.equal(decodeSlot(Buffer.alloc(SLOT_BYTES), 0), undefined, 'zeros are an empty record');
    assert.equal(decodeUnit(Buffer.alloc(TIMER_UNIT_BYTES), 0), undefined, 'zeros are no unit');
    const h = { slotCount: 259_204, precisionMs: 1000, createdMs: T0 };
    assert.deepEqual(decodeWheelHeader(encodeWheelHeader(h)), h);
    const c: TimerCheckpoint = {
      seq: 42,
      logEnd: 40 * 12345,
      enqueueOffset: 99_999,
      doneSlot: 17_000_000_123,
      pending: 1_000_000,
      precisionMs: 100,
      slotCount: 4096,
      doneBeforeMs: T0 + 1234,
      segments: [
        { base: 0, maxSlot: 17_000_000_200 },
        { base: 41_943_040, maxSlot: -1 },
      ],
      slotWrites: [
        { index: 5, record: { slot: 17_000_000_125, firstPos: 0, lastPos: 400, count: 3 } },
        { index: 4095, record: { slot: 17_000_004_191, firstPos: 80, lastPos: 80, count: 1 } },
      ],
    };
    const bytes = encodeCheckpoint(c);
    assert.equal(bytes.length, checkpointBytes(2, 2));
    assert.deepEqual(decodeCheckpoint(bytes), c);
  });

  test('fuzz: a flipped byte or a cut is always detected, never misread', () => {
    const seed = Number(process.env.TSMQ_SEED ?? 20_240_611);
    const rng = new Rng(seed);
    for (let i = 0; i < 3000; i++) {
      const u = {
        deliverAtMs: T0 + rng.int(0, 1e9),
        slot: rng.int(0, 1e10),
        phys: rng.int(0, 1e12),
        prevPos: rng.int(-1, 1e9),
        size: rng.int(1, 1e6),
      };
      const b = Buffer.alloc(TIMER_UNIT_BYTES);
      encodeUnit(b, 0, u);
      const at = rng.int(0, TIMER_UNIT_BYTES - 1);
      b[at] = b[at]! ^ (1 + rng.int(0, 254));
      assert.equal(decodeUnit(b, 0), undefined, `seed ${seed}: a flipped unit byte ${at} went unnoticed`);
      const s = Buffer.alloc(SLOT_BYTES);
      encodeSlot(s, 0, {
        slot: rng.int(1, 1e10),
        firstPos: rng.int(0, 1e9),
        lastPos: rng.int(0, 1e9),
        count: rng.int(1, 1e6),
      });
      const sat = rng.int(0, SLOT_BYTES - 1);
      s[sat] = s[sat]! ^ (1 + rng.int(0, 254));
      const got = decodeSlot(s, 0);
      assert.ok(
        got === 'corrupt' || got === undefined,
        `seed ${seed}: a flipped slot byte ${sat} went unnoticed`,
      );

      const c: TimerCheckpoint = {
        seq: rng.int(1, 1e9),
        logEnd: rng.int(0, 1e12),
        enqueueOffset: rng.int(0, 1e9),
        doneSlot: rng.int(0, 1e10),
        pending: rng.int(0, 1e7),
        precisionMs: rng.int(10, 60_000),
        slotCount: rng.int(16, 4e6),
        doneBeforeMs: rng.bool() ? 0 : T0 + rng.int(0, 1e9),
        segments: Array.from({ length: rng.int(0, 4) }, () => ({
          base: rng.int(0, 1e12),
          maxSlot: rng.int(-1, 1e10),
        })),
        slotWrites: Array.from({ length: rng.int(0, 20) }, () => ({
          index: rng.int(0, 4e6),
          record: {
            slot: rng.int(1, 1e10),
            firstPos: rng.int(0, 1e9),
            lastPos: rng.int(0, 1e9),
            count: rng.int(1, 1e6),
          },
        })),
      };
      const cb = encodeCheckpoint(c);
      assert.deepEqual(decodeCheckpoint(cb), c);
      if (rng.bool()) {
        const flip = Buffer.from(cb);
        const fat = rng.int(0, flip.length - 1);
        flip[fat] = flip[fat]! ^ (1 + rng.int(0, 254));
        assert.equal(
          typeof decodeCheckpoint(flip),
          'string',
          `seed ${seed}: checkpoint byte ${fat} flipped unnoticed`,
        );
      } else {
        const cut = cb.subarray(0, rng.int(0, cb.length - 1));
        assert.equal(
          typeof decodeCheckpoint(cut),
          'string',
          `seed ${seed}: a checkpoint cut at ${cut.length} read as whole`,
        );
      }
    }
  });
});

describe('timer service', () => {
  test('10,000 timers: each delivered once, at its own ms, in time order', async () => {
    const dir = tempDir();
    const clock = new ManualClock(T0);
    const source = new ArraySource();
    const sink = new RecordingSink(clock);
    const rng = new Rng(1);
    for (let i = 0; i < 10_000; i++) source.add(T0 + rng.int(1, 60_000));
    const r = await openRig(dir, clock, source, sink, { precisionMs: 100 });
    await drive(r, T0 + 61_000);
    assertAllOnce(sink, 10_000);
    assertOnTime(sink, 100, new Set(source.units.map((u) => u.phys)));
    for (let i = 1; i < sink.deliveries.length; i++) {
      assert.ok(sink.deliveries[i]!.deliverAtMs >= sink.deliveries[i - 1]!.deliverAtMs, 'out of time order');
    }
    assert.equal(r.store.pending, 0);
    await r.service.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('timers past due when linked (downtime, late arrival) are delivered at once', async () => {
    const dir = tempDir();
    const clock = new ManualClock(T0);
    const source = new ArraySource();
    const sink = new RecordingSink(clock);
    const r = await openRig(dir, clock, source, sink, { precisionMs: 100 });
    for (let i = 0; i < 50; i++) source.add(T0 + 5_000 + i);
    await drive(r, T0 + 1_000);
    assert.equal(sink.deliveries.length, 0);
    // The service is stopped for 20 s (rounds stop; the clock goes on), then more arrive past due.
    clock.set(T0 + 25_000);
    for (let i = 0; i < 50; i++) source.add(T0 + 10_000 + i);
    await drive(r, T0 + 25_000);
    assertAllOnce(sink, 100);
    for (const d of sink.deliveries) assert.equal(d.atMs, T0 + 25_000, 'past-due timers wait no longer');
    await r.service.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a timer arriving after its slot opened is held at once and still delivered at its ms', async () => {
    const dir = tempDir();
    const clock = new ManualClock(T0);
    const source = new ArraySource();
    const sink = new RecordingSink(clock);
    const r = await openRig(dir, clock, source, sink, { precisionMs: 1000 });
    source.add(T0 + 2_500);
    await drive(r, T0 + 2_100); // slot T0+2000..3000 is open now
    const late = source.add(T0 + 2_700);
    await drive(r, T0 + 4_000);
    assertAllOnce(sink, 2);
    assertOnTime(sink, 1000, new Set([0, late]));
    await r.service.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a slot of more timers than may be held is delivered from its end, never early', async () => {
    const dir = tempDir();
    const clock = new ManualClock(T0);
    const source = new ArraySource();
    const sink = new RecordingSink(clock);
    const rng = new Rng(3);
    for (let i = 0; i < 1500; i++) source.add(T0 + 3_000 + rng.int(0, 999)); // all in one 1 s slot
    for (let i = 0; i < 200; i++) source.add(T0 + 5_000 + rng.int(0, 999)); // a slot that fits
    const r = await openRig(dir, clock, source, sink, { precisionMs: 1000, heldMax: 500 });
    await drive(r, T0 + 7_000);
    assertAllOnce(sink, 1700);
    assertOnTime(sink, 1000);
    for (const d of sink.deliveries)
      if (d.id < 1500) assert.equal(d.atMs, T0 + 4_000, 'stream slot at its end');
    for (const d of sink.deliveries)
      if (d.id >= 1500) assert.equal(d.atMs, d.deliverAtMs, 'held slot at the ms');
    assert.ok(r.service.heldCount() === 0);
    await r.service.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('timers beyond the wheel are rolled and delivered on time', async () => {
    const dir = tempDir();
    const clock = new ManualClock(T0);
    const source = new ArraySource();
    const sink = new RecordingSink(clock);
    const rng = new Rng(5);
    // 32 slots of 100 ms: the wheel spans 3.2 s; timers up to 20 s ahead must roll several times.
    for (let i = 0; i < 500; i++) source.add(T0 + rng.int(1, 20_000));
    const r = await openRig(dir, clock, source, sink, { precisionMs: 100, slotCount: 32 });
    await drive(r, T0 + 21_000);
    assertAllOnce(sink, 500);
    assertOnTime(sink, 100);
    assert.ok(r.service.stats().rolled > 0, 'some timers rolled');
    await r.service.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('refusals by the store hold a timer and retry it; nothing is lost', async () => {
    const dir = tempDir();
    const clock = new ManualClock(T0);
    const source = new ArraySource();
    const sink = new RecordingSink(clock);
    for (let i = 0; i < 100; i++) source.add(T0 + 1_000 + i);
    const r = await openRig(dir, clock, source, sink, { precisionMs: 100 });
    sink.refuse = true;
    await drive(r, T0 + 1_500);
    assert.equal(sink.deliveries.length, 0);
    sink.refuse = false;
    await drive(r, T0 + 4_000);
    assertAllOnce(sink, 100);
    await r.service.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('memory stays bounded while 100,000 timers are pending over a day', async () => {
    const dir = tempDir();
    const clock = new ManualClock(T0);
    const source = new ArraySource();
    const sink = new RecordingSink(clock);
    const rng = new Rng(11);
    for (let i = 0; i < 100_000; i++) source.add(T0 + 60_000 + rng.int(0, 86_400_000));
    const r = await openRig(dir, clock, source, sink, {
      precisionMs: 1000,
      slotCount: 90_000,
      pageCacheMax: 256,
      dirtyMax: 8192,
      heldMax: 4096,
    });
    let maxDirty = 0;
    let maxTail = 0;
    for (let i = 0; i < 40; i++) {
      await r.service.step(clock.now());
      const m = r.store.memory();
      maxDirty = Math.max(maxDirty, m.wheelDirtyRecords);
      maxTail = Math.max(maxTail, m.logTailBytes);
    }
    const st = r.service.stats();
    assert.equal(st.enqueueBehind, 0, 'all linked');
    assert.equal(st.pending, 100_000);
    const m = r.store.memory();
    assert.ok(m.wheelPagesCached <= 256, `${m.wheelPagesCached} wheel pages cached`);
    assert.ok(maxDirty <= 8192 + 512, `${maxDirty} dirty wheel records`);
    assert.ok(maxTail <= 2 * 1024 * 1024, `log tail ${maxTail} bytes`);
    assert.ok(m.logBlocksCached <= 512);
    assert.equal(r.service.heldCount(), 0, 'nothing held: no slot is near');
    // The first minute passes: the near window holds one or two slots' timers at most.
    await drive(r, T0 + 120_000, 1000);
    assert.ok(r.service.heldCount() <= 4096);
    const delivered = sink.deliveries.length;
    assert.ok(delivered > 0 && delivered < 1000, `${delivered} delivered in the first minute`);
    assertOnTime(sink, 1000);
    await r.service.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a clean close and reopen: nothing lost, nothing twice; delivered segments are deleted', async () => {
    const dir = tempDir();
    const clock = new ManualClock(T0);
    const source = new ArraySource();
    const sink = new RecordingSink(clock);
    const rng = new Rng(13);
    for (let i = 0; i < 5000; i++) source.add(T0 + rng.int(1, 10_000));
    let r = await openRig(dir, clock, source, sink, { segmentBytes: TIMER_UNIT_BYTES * 256 });
    await drive(r, T0 + 4_000);
    await r.service.close();
    r = await openRig(dir, clock, source, sink, { segmentBytes: TIMER_UNIT_BYTES * 256 });
    assert.equal(r.store.recovery.fresh, false);
    await drive(r, T0 + 11_000);
    assertAllOnce(sink, 5000);
    assertOnTime(sink, 100);
    await r.store.checkpoint();
    assert.ok(r.store.segmentCount() <= 2, `${r.store.segmentCount()} log segments left`);
    await r.service.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
