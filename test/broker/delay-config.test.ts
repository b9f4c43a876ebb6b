/** broker.conf keys of delayed and timed messages: defaults, formats, ranges, RocketMQ's alias. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BrokerConfigError,
  defaultBrokerConfig,
  parseBrokerConf,
  resolveBrokerConfig,
} from '../../src/broker/index.js';
import { parseDelayLevels } from '../../src/broker/schedule/delay-levels.js';

test('defaults: RocketMQ\u2019s 18 levels, timers on, 3 days at most, 1 s slots', () => {
  const c = defaultBrokerConfig();
  assert.equal(c.messageDelayLevel, '1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h');
  const levels = parseDelayLevels(c.messageDelayLevel) as number[];
  assert.equal(levels.length, 18);
  assert.deepEqual(levels.slice(0, 5), [1000, 5000, 10_000, 30_000, 60_000]);
  assert.equal(levels.at(-1), 7_200_000);
  assert.equal(c.timerEnable, true);
  assert.equal(c.timerMaxDelaySec, 259_200);
  assert.equal(c.timerPrecisionMs, 1000);
  assert.equal(c.flushDelayOffsetInterval, 1000);
  assert.equal(c.timerFlushIntervalMs, 1000);
});

test('messageDelayLevel takes ms, s, m, h and d; anything else names the level and the line', () => {
  assert.deepEqual(parseDelayLevels(' 100ms  2s 3m 1h 1d '), [100, 2000, 180_000, 3_600_000, 86_400_000]);
  const { config } = parseBrokerConf('messageDelayLevel=100ms 200ms 500ms\ntimerPrecisionMs=50\n');
  assert.equal(config.messageDelayLevel, '100ms 200ms 500ms');
  assert.equal(config.timerPrecisionMs, 50);
  for (const [bad, why] of [
    ['1s 5x', /level 2 is "5x"/],
    ['1s 0s', /level 2 is 0s: a level must be longer than 0/],
    ['1.5s', /level 1 is "1.5s"/],
    ['', /holds no level/],
    ['366d', /at most 365d/],
    [Array.from({ length: 65 }, () => '1s').join(' '), /at most 64 are allowed/],
  ] as const) {
    assert.throws(
      () => parseBrokerConf(`brokerName=b\nmessageDelayLevel=${bad}`),
      (e: unknown) => e instanceof BrokerConfigError && /^line 2: /.test(e.message) && why.test(e.message),
      bad,
    );
  }
  assert.throws(() => resolveBrokerConfig({ messageDelayLevel: '1s nope' }), BrokerConfigError);
});

test('timer keys: ranges, and RocketMQ\u2019s timerWheelEnable read as timerEnable', () => {
  const { config, unknownKeys } = parseBrokerConf(
    'timerWheelEnable=false\ntimerMaxDelaySec=3600\ntimerFlushIntervalMs=200\nflushDelayOffsetInterval=500',
  );
  assert.deepEqual(unknownKeys, []);
  assert.equal(config.timerEnable, false);
  assert.equal(config.timerMaxDelaySec, 3600);
  assert.equal(config.timerFlushIntervalMs, 200);
  assert.equal(config.flushDelayOffsetInterval, 500);
  for (const line of [
    'timerPrecisionMs=5',
    'timerPrecisionMs=60001',
    'timerMaxDelaySec=0',
    'timerEnable=yes',
  ]) {
    assert.throws(() => parseBrokerConf(line), BrokerConfigError, line);
  }
  // Keys that merely look like an alias stay unknown.
  assert.deepEqual(parseBrokerConf('constructor=1').unknownKeys, [{ key: 'constructor', line: 1 }]);
});
