import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { decodeMessages, type MessageExt, toMessageExt } from '../../src/client/message.js';
import { isTsmqError } from '../../src/common/errors.js';
import type { HostAddress } from '../../src/common/types.js';
import {
  type AppendMessage,
  decodeRecords,
  encodeHost,
  encodeProperties,
  prepareRecord,
  SysFlag,
  writeRecord,
} from '../../src/message/index.js';

/** A pull body: the records as the store writes them (record CRC on), back to back. */
function pullBody(msgs: AppendMessage[], storeHost: HostAddress, firstPhysical = 4096): Buffer {
  const hostBytes = encodeHost(storeHost);
  const parts: Buffer[] = [];
  let physical = firstPhysical;
  msgs.forEach((m, i) => {
    const rec = prepareRecord(m, 4 * 1024 * 1024, hostBytes.length === 20, true);
    const b = Buffer.alloc(rec.size);
    writeRecord(b, 0, rec, 100 + i, physical, 1_700_000_000_000 + i, hostBytes);
    physical += rec.size;
    parts.push(b);
  });
  return Buffer.concat(parts);
}

const sample: AppendMessage[] = [
  {
    topic: 'Orders',
    queueId: 3,
    body: Buffer.from('{"id":1}'),
    properties: encodeProperties({ TAGS: 'paid', KEYS: 'k1 k2', UNIQ_KEY: 'U1', region: 'eu' }),
    bornHost: { address: '10.0.0.7', port: 50_000 },
    flag: 7,
    reconsumeTimes: 2,
  },
  { topic: 'Orders', queueId: 3, body: Buffer.from('no properties at all') },
  {
    topic: 'Other',
    queueId: 3,
    body: deflateSync(Buffer.from('x'.repeat(5000))),
    sysFlag: SysFlag.COMPRESSED,
    properties: encodeProperties({ TAGS: 'z', ünï: 'cödé' }),
    bornHost: { address: '::1', port: 1 },
  },
];

/** Every field of the SDK's message, as plain data. */
function fields(m: MessageExt): Record<string, unknown> {
  return {
    topic: m.topic,
    body: m.body.toString('hex'),
    tags: m.tags,
    keys: m.keys,
    properties: [...m.properties],
    msgId: m.msgId,
    offsetMsgId: m.offsetMsgId,
    brokerName: m.brokerName,
    queueId: m.queueId,
    queueOffset: m.queueOffset,
    commitLogOffset: m.commitLogOffset,
    bornTimestamp: m.bornTimestamp,
    storeTimestamp: m.storeTimestamp,
    reconsumeTimes: m.reconsumeTimes,
    sysFlag: m.sysFlag,
    flag: m.flag,
    storeSize: m.storeSize,
  };
}

test('decodeMessages gives every field as decoding each record in full does (IPv4 and IPv6 store hosts)', () => {
  for (const host of [
    { address: '192.168.1.20', port: 10_911 },
    { address: 'fe80::1', port: 10_911 },
  ]) {
    const body = pullBody(sample, host);
    const lazy = decodeMessages(body, 'broker-a');
    const full = decodeRecords(body).map((r) => toMessageExt(r, 'broker-a'));
    assert.equal(lazy.length, 3);
    assert.deepEqual(lazy.map(fields), full.map(fields));
    assert.equal(lazy[0]!.msgId, 'U1');
    assert.deepEqual(lazy[0]!.keys, ['k1', 'k2']);
    assert.equal(lazy[1]!.msgId, lazy[1]!.offsetMsgId, 'no UNIQ_KEY: the offsetMsgId');
    assert.equal(lazy[2]!.body.toString(), 'x'.repeat(5000), 'inflated');
    assert.equal(lazy[2]!.properties.get('ünï'), 'cödé');
  }
});

test('a pulled message reads like a plain object: JSON, spreading its JSON, and changes that stick', () => {
  const [m] = decodeMessages(pullBody(sample, { address: '127.0.0.1', port: 10_911 }), 'broker-a');
  const json = JSON.parse(JSON.stringify(m)) as Record<string, unknown>;
  assert.equal(json.msgId, 'U1');
  assert.equal(json.tags, 'paid');
  assert.deepEqual(json.keys, ['k1', 'k2']);
  assert.equal(json.queueOffset, 100);
  m!.reconsumeTimes++;
  assert.equal(m!.reconsumeTimes, 3);
  assert.equal(m!.keys, m!.keys, 'the keys array is made once');
  m!.properties.set('added', 'yes');
  assert.equal(m!.properties.get('added'), 'yes', 'the properties map is made once');
  assert.equal(m!.tags, 'paid');
});

test('decodeMessages: CRCs are checked only when asked; framing always', () => {
  const body = pullBody(sample.slice(0, 2), { address: '127.0.0.1', port: 10_911 });
  // A flipped body byte: the record CRC and body CRC no longer match.
  const flipped = Buffer.from(body);
  const at = flipped.indexOf('{"id":1}');
  flipped[at + 1] = 0x58;
  assert.equal(decodeMessages(flipped, 'b')[0]!.body.toString(), '{Xid":1}');
  assert.throws(
    () => decodeMessages(flipped, 'b', { checkCrc: true }),
    (e) => isTsmqError(e, 'CORRUPT_RECORD'),
  );
  assert.equal(decodeMessages(body, 'b', { checkCrc: true }).length, 2);
  // A bad magic or a cut record is refused whatever the option.
  const badMagic = Buffer.from(body);
  badMagic[5] = 0;
  assert.throws(
    () => decodeMessages(badMagic, 'b'),
    (e) => isTsmqError(e, 'CORRUPT_RECORD'),
  );
  assert.throws(
    () => decodeMessages(body.subarray(0, body.length - 3), 'b'),
    (e) => isTsmqError(e, 'CORRUPT_RECORD'),
  );
});
