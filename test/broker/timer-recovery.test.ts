/**
 * The timer store after crashes: closed without a checkpoint at random moments, or killed in the
 * middle of writing a checkpoint, the wheel or the log (a file system that dies at a chosen
 * write), with files lost or damaged, and with a changed precision. Every timer must be
 * delivered, none early, and twice only if the last checkpoint had not passed its slot.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { TIMER_UNIT_BYTES } from '../../src/broker/timer/timer-codec.js';
import type { FileIo } from '../../src/store/index.js';
import { Rng } from '../../test-support/prng.js';
import {
  ArraySource,
  assertAllOnce,
  drive,
  dyingIo,
  ManualClock,
  openRig,
  RecordingSink,
  type Rig,
  T0,
  tempDir,
} from '../../test-support/timer-fixtures.js';

describe('timer store recovery', () => {
  /**
   * Adds timers in waves (each second, due 1 ms..3 s after it) and runs to a crash (a moment, or
   * the file system dying), reopens on a plain file system, adds the remaining waves and runs to
   * the end. Checks that every timer is delivered, none early; a first delivery at most one
   * precision after its time (or after the crash); and that a timer is delivered twice only if
   * its first delivery was in a slot the last checkpoint had not passed.
   */
  async function crashAndRecover(opts: {
    seed: number;
    perWave: number;
    crashAtMs: number;
    io?: FileIo & { dead(): boolean };
    dirtyMax?: number;
    afterCrash?: (dir: string) => void;
    /** Every timer delivered before the crash may be delivered again (the store started over). */
    anyDuplicates?: boolean;
  }): Promise<Rig> {
    const dir = tempDir();
    const clock = new ManualClock(T0);
    const source = new ArraySource();
    const sink = new RecordingSink(clock);
    const rng = new Rng(opts.seed);
    const waves = 10;
    let wave = 0;
    const addWave = () => {
      const at = T0 + wave * 1000;
      for (let i = 0; i < opts.perWave; i++) source.add(at + rng.int(1, 3000));
      wave++;
    };
    const common = {
      segmentBytes: TIMER_UNIT_BYTES * 512,
      ...(opts.dirtyMax !== undefined && { dirtyMax: opts.dirtyMax }),
    };
    let r = await openRig(dir, clock, source, sink, { ...common, ...(opts.io && { io: opts.io }) });
    try {
      while (clock.now() < opts.crashAtMs) {
        if (wave < waves && clock.now() >= T0 + wave * 1000) addWave();
        await drive(r, wave < waves ? Math.min(opts.crashAtMs, T0 + wave * 1000) : opts.crashAtMs, 300);
      }
    } catch (e) {
      assert.ok(opts.io?.dead(), `only the dying file system may fail the run: ${(e as Error).message}`);
    }
    const crashMs = clock.now();
    await r.service.abandon();
    const preCrash = [...sink.deliveries];
    opts.afterCrash?.(dir);
    r = await openRig(dir, clock, source, sink, common);
    const recoveredDone = r.store.doneSlot;
    while (wave < waves) {
      await drive(r, T0 + wave * 1000, 300);
      addWave();
    }
    await drive(r, T0 + waves * 1000 + 4000);
    const n = source.units.length;
    const counts = sink.countsById();
    assert.equal(counts.size, n, `seed ${opts.seed}: ${n - counts.size} of ${n} timers lost`);
    const firsts = new Map<number, RecordingSink['deliveries'][number]>();
    for (const d of sink.deliveries) {
      assert.ok(d.atMs >= d.deliverAtMs, `seed ${opts.seed}: timer ${d.id} delivered early`);
      if (!firsts.has(d.id)) firsts.set(d.id, d);
    }
    for (const d of firsts.values()) {
      const due = d.atMs >= crashMs ? Math.max(d.deliverAtMs, crashMs) : d.deliverAtMs;
      assert.ok(
        d.atMs - due <= r.precisionMs,
        `seed ${opts.seed}: timer ${d.id} delivered ${d.atMs - due} ms late`,
      );
    }
    const before = new Map(preCrash.map((d) => [d.id, d]));
    for (const [id, c] of counts) {
      if (c === 1) continue;
      assert.equal(c, 2, `seed ${opts.seed}: timer ${id} delivered ${c} times`);
      const first = before.get(id);
      assert.ok(first, `seed ${opts.seed}: timer ${id} twice after the restart`);
      assert.ok(
        opts.anyDuplicates || first.slot >= recoveredDone,
        `seed ${opts.seed}: timer ${id} (slot ${first.slot}) repeated though the checkpoint passed slot ${recoveredDone}`,
      );
    }
    return r;
  }

  test('killed without a checkpoint at random moments: every timer delivered, duplicates only after the checkpoint', async () => {
    for (const seed of [1, 2, 3, 4]) {
      const rng = new Rng(seed * 977);
      const r = await crashAndRecover({ seed, perWave: 300, crashAtMs: T0 + rng.int(0, 11_000) });
      await r.service.close();
      fs.rmSync(r.dir, { recursive: true, force: true });
    }
  });

  test('killed in the middle of writing a checkpoint: the previous one is used', async () => {
    for (const nth of [2, 3, 5, 8]) {
      const io = dyingIo(/checkpoint-\d$/, nth);
      const r = await crashAndRecover({ seed: 100 + nth, perWave: 200, crashAtMs: T0 + 11_000, io });
      assert.ok(io.dead(), 'the file system died');
      await r.service.close();
      fs.rmSync(r.dir, { recursive: true, force: true });
    }
  });

  test('killed in the middle of writing the wheel: the checkpoint is applied again', async () => {
    for (const nth of [1, 2, 4, 7]) {
      const io = dyingIo(/[/\\]wheel$/, nth + 1); // the first write is the new wheel's header
      const r = await crashAndRecover({
        seed: 200 + nth,
        perWave: 200,
        crashAtMs: T0 + 11_000,
        io,
        dirtyMax: 16,
      });
      assert.ok(io.dead(), 'the file system died');
      await r.service.close();
      fs.rmSync(r.dir, { recursive: true, force: true });
    }
  });

  test('killed in the middle of writing the log: nothing lost', async () => {
    for (const nth of [1, 3, 6]) {
      const io = dyingIo(/[/\\]log[/\\]\d{20}$/, nth);
      const r = await crashAndRecover({ seed: 300 + nth, perWave: 200, crashAtMs: T0 + 11_000, io });
      assert.ok(io.dead(), 'the file system died');
      await r.service.close();
      fs.rmSync(r.dir, { recursive: true, force: true });
    }
  });

  test('a lost wheel file is rebuilt from the log', async () => {
    const r = await crashAndRecover({
      seed: 400,
      perWave: 300,
      crashAtMs: T0 + 3_000,
      afterCrash: (dir) => fs.rmSync(path.join(dir, 'wheel')),
    });
    assert.equal(r.store.recovery.wheelRebuilt, true);
    await r.service.close();
    fs.rmSync(r.dir, { recursive: true, force: true });
  });

  test('no valid checkpoint: the files are moved aside and every timer is linked again', async () => {
    const r = await crashAndRecover({
      seed: 500,
      perWave: 100,
      anyDuplicates: true,
      crashAtMs: T0 + 3_000,
      afterCrash: (dir) => {
        for (const f of ['checkpoint-0', 'checkpoint-1']) fs.writeFileSync(path.join(dir, f), 'garbage');
      },
    });
    assert.equal(r.store.recovery.fresh, true);
    assert.match(r.store.recovery.note ?? '', /moved to/);
    const aside = fs
      .readdirSync(path.dirname(r.dir))
      .filter((n) => n.startsWith(`${path.basename(r.dir)}.broken-`));
    assert.equal(aside.length, 1);
    await r.service.close();
    fs.rmSync(r.dir, { recursive: true, force: true });
    fs.rmSync(path.join(path.dirname(r.dir), aside[0]!), { recursive: true, force: true });
  });

  test('another precision: kept while timers are pending, taken once none is', async () => {
    const dir = tempDir();
    const clock = new ManualClock(T0);
    const source = new ArraySource();
    const sink = new RecordingSink(clock);
    for (let i = 0; i < 10; i++) source.add(T0 + 5_000 + i * 100);
    let r = await openRig(dir, clock, source, sink, { precisionMs: 100 });
    await drive(r, T0 + 1_000);
    await r.service.close();
    r = await openRig(dir, clock, source, sink, { precisionMs: 250 });
    assert.equal(r.store.precisionMs, 100, 'kept while pending');
    assert.match(r.store.recovery.note ?? '', /keeps its 100 ms slots/);
    await drive(r, T0 + 7_000);
    assertAllOnce(sink, 10);
    await r.service.close();
    r = await openRig(dir, clock, source, sink, { precisionMs: 250 });
    assert.equal(r.store.precisionMs, 250, 'taken when nothing is pending');
    assert.equal(r.store.enqueueOffset, 10, 'the timer topic is not read again');
    await r.service.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
