import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeMessageProperties, type Message, messageProperties } from '../../src/client/message.js';
import { isTsmqError } from '../../src/common/errors.js';
import { encodeProperties } from '../../src/message/index.js';

const ID = '0A0102030001ABCD0000000000000001';

function outcome(f: () => string): string {
  try {
    return f();
  } catch (e) {
    assert.ok(isTsmqError(e), String(e));
    return `${e.codeName}: ${e.message}`;
  }
}

test('encodeMessageProperties gives what encoding messageProperties gives: entries, order, errors', () => {
  const base = { topic: 'T', body: 'b' };
  const cases: Message[] = [
    base,
    { ...base, tags: 'A', keys: 'k1' },
    { ...base, tags: '', keys: ['a', '', 'b'], waitStoreMsgOK: false },
    { ...base, keys: [] },
    { ...base, properties: { z: '1', a: '2', '10': 'num', 'é ✓': 'ü' }, tags: 'X', delayLevel: 3 },
    { ...base, deliverAt: new Date(1_800_000_000_123.4), delayLevel: 0 },
    { ...base, delayMs: 2500 },
    { ...base, properties: { TAGS: 'reserved' } },
    { ...base, properties: { '': 'empty key' } },
    { ...base, properties: { 'a\u0001b': 'x' } },
    { ...base, properties: { a: 'x\u0002y' } },
    { ...base, tags: 'bad\u0001tag' },
    { ...base, keys: ['ok', 'bad\u0002key'] },
  ];
  for (const m of cases) {
    assert.equal(
      outcome(() => encodeMessageProperties(m, ID)),
      outcome(() => encodeProperties(messageProperties(m, ID))),
      JSON.stringify(m),
    );
  }
});
