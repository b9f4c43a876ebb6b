import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BrokerContext } from '../../src/broker/processors/context.js';
import { stampProperties } from '../../src/broker/processors/send-common.js';
import { planPut } from '../../src/broker/schedule/put-message.js';
import {
  decodeProperties,
  encodeProperties,
  isCanonicalProperties,
  MessageProperty,
} from '../../src/message/index.js';

/** Every string of up to `n` characters over `alphabet`. */
function* strings(alphabet: string, n: number): Generator<string> {
  yield '';
  let level = [''];
  for (let len = 1; len <= n; len++) {
    const next: string[] = [];
    for (const s of level) for (const c of alphabet) next.push(s + c);
    yield* next;
    level = next;
  }
}

function roundTrips(s: string): boolean {
  try {
    return encodeProperties(decodeProperties(s)) === s;
  } catch {
    return false;
  }
}

describe('properties: the canonical form', () => {
  test('isCanonicalProperties(s) exactly when decoding and encoding give s back (every string of up to 8 characters of KV\\u0001\\u0002)', () => {
    let canonical = 0;
    for (const s of strings('KV\u0001\u0002', 8)) {
      const expected = roundTrips(s);
      assert.equal(isCanonicalProperties(s), expected, JSON.stringify(s));
      if (expected) canonical++;
    }
    assert.ok(canonical > 100);
  });

  test('stampProperties gives what decode, set and encode give', () => {
    const ctx = (cluster: string) => ({ config: { brokerClusterName: cluster } }) as unknown as BrokerContext;
    const reference = (text: string, cluster: string) => {
      const props = decodeProperties(text);
      let uniqKey = props.get(MessageProperty.UNIQ_KEY);
      if (!uniqKey) {
        uniqKey = 'NEW';
        props.set(MessageProperty.UNIQ_KEY, uniqKey);
      }
      props.set(MessageProperty.CLUSTER, cluster);
      return { properties: encodeProperties(props), uniqKey };
    };
    const inputs = [
      '',
      'TAGS\u0001a\u0002',
      'TAGS\u0001a\u0002UNIQ_KEY\u0001ID1\u0002WAIT\u0001true\u0002',
      'UNIQ_KEY\u0001\u0002TAGS\u0001a\u0002',
      'CLUSTER\u0001old\u0002TAGS\u0001a\u0002',
      'TAGS\u0001a\u0002TAGS\u0001b\u0002',
      'TAGS\u0001a',
      'TAGS\u0001a\u0001b\u0002',
      '\u0001x\u0002',
      'XUNIQ_KEY\u0001ID\u0002',
      'A\u0001UNIQ_KEY\u0001\u0002',
    ];
    for (const text of inputs) {
      for (const cluster of ['DefaultCluster', '']) {
        let want: { properties: string; uniqKey: string };
        try {
          want = reference(text, cluster);
        } catch (e) {
          assert.throws(() => stampProperties(ctx(cluster), text), { message: (e as Error).message });
          continue;
        }
        const got = stampProperties(ctx(cluster), text);
        if (want.uniqKey === 'NEW') {
          assert.match(got.uniqKey, /^[0-9A-F]{32}$/, JSON.stringify(text));
          want.uniqKey = got.uniqKey;
          want.properties = want.properties.replace('NEW', got.uniqKey);
        }
        assert.deepEqual(got, want, JSON.stringify(text));
      }
    }
    assert.throws(() => stampProperties(ctx('bad\u0001name'), 'TAGS\u0001a\u0002'), /separator/);
  });

  test('planPut sends a message with no DELAY or timer entry now, and still reads one that has', () => {
    const policy = { delayLevelsMs: [1000, 5000], timerEnable: true, timerMaxDelayMs: 3 * 86_400_000 };
    const msg = (properties: string) => ({ topic: 'T', queueId: 1, body: Buffer.from('x'), properties });
    for (const p of ['', 'TAGS\u0001a\u0002', 'XDELAY\u0002DELAYED\u0001x\u0002', 'K\u0001DELAY\u0002']) {
      assert.equal(planPut(msg(p), policy, 0).route, 'now', JSON.stringify(p));
    }
    assert.equal(planPut(msg('TAGS\u0001a\u0002DELAY\u00012\u0002'), policy, 0).route, 'delay');
    assert.equal(planPut(msg('DELAY\u00010\u0002'), policy, 0).route, 'now');
    assert.equal(planPut(msg('TIMER_DELAY_MS\u00015000\u0002'), policy, 0).route, 'timer');
    assert.equal(planPut(msg('A\u0001B\u0002TIMER_DELIVER_MS\u000170000\u0002'), policy, 0).route, 'timer');
    assert.equal(planPut(msg('TIMER_DELAY_SEC\u00015'), policy, 0).route, 'timer');
    assert.throws(() => planPut(msg('DELAY\u0001x\u0002'), policy, 0), /DELAY/);
  });
});
