/** The broker's counters (src/broker/stats.ts) on a manual clock: rates and day boundaries. */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, test } from 'node:test';
import { formatRuntime, humanReadableBytes, TSMQ_VERSION } from '../../src/broker/processors/runtime-info.js';
import { BrokerStats, DailyTotal, RateWindow } from '../../src/broker/stats.js';
import { ManualClock } from '../../src/common/clock.js';

describe('broker counters', () => {
  test('RateWindow: events per second over the window, never over more time than since boot', () => {
    const w = new RateWindow(600);
    const boot = 1_700_000_000_000;
    w.add(50, boot + 100);
    // Half a second after boot: 50 events over at least one second.
    assert.equal(w.rate(10, boot + 500, boot), 50);
    w.add(50, boot + 5_000);
    assert.equal(w.rate(10, boot + 10_000, boot), 10);
    // Past the 10 s window only the 60 s and 600 s windows see them.
    assert.equal(w.rate(10, boot + 30_000, boot), 0);
    assert.equal(w.rate(60, boot + 30_000, boot), 100 / 30);
    // The bucket of boot's second, reused one ring (601 s) later, starts again from zero.
    w.add(7, boot + 601_100);
    assert.equal(w.rate(1, boot + 601_500, boot), 7 / 1.5);
  });

  test('DailyTotal: today and yesterday mornings move at local midnight, exactly', () => {
    const lateEvening = new Date(2024, 2, 9, 23, 59, 58).getTime();
    const t = new DailyTotal(lateEvening);
    t.add(5, lateEvening);
    const nextDay = new Date(2024, 2, 10, 0, 0, 1).getTime();
    t.add(3, nextDay);
    assert.deepEqual([t.total, t.todayMorning, t.yesterdayMorning], [8, 5, 0]);
    t.add(1, new Date(2024, 2, 11, 9, 0, 0).getTime());
    assert.deepEqual([t.total, t.todayMorning, t.yesterdayMorning], [9, 8, 5]);
    // Three quiet days later: nothing happened since, so both mornings are the total.
    t.roll(new Date(2024, 2, 14, 9, 0, 0).getTime());
    assert.deepEqual([t.total, t.todayMorning, t.yesterdayMorning], [9, 9, 9]);
  });

  test('BrokerStats: puts, gets and a group’s consume rate', () => {
    const clock = new ManualClock(1_700_000_000_000);
    const s = new BrokerStats(clock);
    assert.equal(s.putTps(), '0.00 0.00 0.00');
    s.onPut(20);
    s.onGet('G', 'T', 6);
    clock.advance(2_000);
    assert.equal(s.puts().todayNow, 20);
    assert.equal(s.gets().todayNow, 6);
    assert.equal(s.putTps(), '10.00 10.00 10.00');
    assert.equal(s.getTransferedTps(), '3.00 3.00 3.00');
    assert.equal(s.groupGetTps('G', 'T'), 3);
    assert.equal(s.groupGetTps('G', 'other'), 0);
  });

  test('RocketMQ formats: human-readable bytes and the runtime', () => {
    assert.equal(humanReadableBytes(0), '0 B');
    assert.equal(humanReadableBytes(1023), '1023 B');
    assert.equal(humanReadableBytes(1536), '1.5 KiB');
    assert.equal(humanReadableBytes(5 * 1024 ** 3), '5.0 GiB');
    assert.equal(
      formatRuntime(((2 * 24 + 3) * 3600 + 4 * 60 + 5) * 1000 + 999),
      '[ 2 days, 3 hours, 4 minutes, 5 seconds ]',
    );
  });

  test('TSMQ_VERSION is package.json’s version', async () => {
    const pkg = JSON.parse(await fs.readFile(new URL('../../../package.json', import.meta.url), 'utf8'));
    assert.equal(TSMQ_VERSION, pkg.version);
  });
});
