import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  decimal,
  encodeSendHeader,
  parseSendHeader,
  type SendMessageRequestHeader,
} from '../../src/protocol/index.js';

// The table-driven parse the field-by-field one replaced, kept here as the reference.
type Kind = 'string' | 'int' | 'long' | 'bool';
const FIELDS: ReadonlyArray<readonly [keyof SendMessageRequestHeader, string, Kind, boolean]> = [
  ['producerGroup', 'a', 'string', true],
  ['topic', 'b', 'string', true],
  ['defaultTopic', 'c', 'string', true],
  ['defaultTopicQueueNums', 'd', 'int', true],
  ['queueId', 'e', 'int', true],
  ['sysFlag', 'f', 'int', true],
  ['bornTimestamp', 'g', 'long', true],
  ['flag', 'h', 'int', true],
  ['properties', 'i', 'string', false],
  ['reconsumeTimes', 'j', 'int', false],
  ['unitMode', 'k', 'bool', false],
  ['maxReconsumeTimes', 'l', 'int', false],
  ['batch', 'm', 'bool', false],
  ['brokerName', 'n', 'string', false],
];

function referenceParse(ext: Record<string, string> | undefined, v2: boolean): unknown {
  const out: Record<string, unknown> = {};
  for (const [field, letter, kind, required] of FIELDS) {
    const raw = ext?.[v2 ? letter : field];
    if (raw === undefined) {
      if (required) return { ok: false, error: `the custom field <${field}> is null` };
      continue;
    }
    let v: unknown = raw;
    if (kind === 'bool') v = raw.toLowerCase() === 'true';
    if (kind === 'int' || kind === 'long') {
      const n = /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
      const fits = kind === 'int' ? n >= -(2 ** 31) && n < 2 ** 31 : Number.isSafeInteger(n);
      if (!Number.isFinite(n) || !fits) {
        return { ok: false, error: `the custom field <${field}> is not a number: ${raw}` };
      }
      v = n;
    }
    out[field] = v;
  }
  return { ok: true, header: out };
}

const HEADER: SendMessageRequestHeader = {
  producerGroup: 'PG',
  topic: 'TopicA',
  defaultTopic: 'TBW102',
  defaultTopicQueueNums: 4,
  queueId: 3,
  sysFlag: 0,
  bornTimestamp: 1_764_000_000_000,
  flag: 0,
  properties: 'TAGS\u0001a\u0002',
  reconsumeTimes: 0,
  unitMode: false,
  batch: false,
  brokerName: 'broker-a',
};

const NUMBERS = [
  '0',
  '-0',
  '7',
  '-7',
  ' 7',
  '7 ',
  '\t-12\n',
  '+7',
  '',
  '-',
  '1e3',
  '0x10',
  '007',
  '2147483647',
  '2147483648',
  '-2147483648',
  '-2147483649',
  '999999999999999',
  '9007199254740991',
  '9007199254740992',
  '-9007199254740991',
  '12345678901234567890',
  '٣',
  '1.0',
  'NaN',
];
const BOOLS = ['true', 'false', 'TRUE', 'True', 'yes', '', '1'];

describe('send headers', () => {
  test('encode then parse, v1 and v2', () => {
    for (const v2 of [false, true]) {
      assert.deepEqual(parseSendHeader(encodeSendHeader(HEADER, v2), v2), { ok: true, header: HEADER });
    }
  });

  test('the parse answers as the table-driven reference, for odd numbers, booleans and missing fields', () => {
    for (const v2 of [false, true]) {
      const base = encodeSendHeader(HEADER, v2);
      const keys = Object.keys(base);
      const cases: Array<Record<string, string> | undefined> = [undefined, {}];
      for (const key of keys) {
        const without = { ...base };
        delete without[key];
        cases.push(without);
        for (const n of NUMBERS) cases.push({ ...base, [key]: n });
        for (const b of BOOLS) cases.push({ ...base, [key]: b });
      }
      for (const ext of cases) {
        assert.deepEqual(parseSendHeader(ext, v2), referenceParse(ext, v2), JSON.stringify(ext));
      }
    }
  });

  test('decimal reads what /^-?\\d+$/ then Number() read, and nothing else', () => {
    for (const text of [
      ...NUMBERS,
      ...BOOLS,
      '-1',
      '-',
      '--1',
      '1-',
      '123456789012345',
      '1234567890123456',
    ]) {
      const expected = /^-?\d+$/.test(text) ? Number(text) : Number.NaN;
      assert.ok(Object.is(decimal(text), expected), JSON.stringify(text));
    }
  });
});
