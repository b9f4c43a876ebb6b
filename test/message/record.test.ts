import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isTsmqError } from '../../src/common/errors.js';
import { javaStringHashCode } from '../../src/common/java-hash.js';
import type { HostAddress } from '../../src/common/types.js';
import {
  type AppendMessage,
  BLANK_MAGIC,
  BLANK_RECORD_MIN_BYTES,
  type DecodedRecord,
  type DecodeResult,
  decodeHost,
  decodeProperties,
  decodeRecord,
  decodeRecords,
  encodeHost,
  encodeProperties,
  getProperty,
  MAGIC_V1,
  MAGIC_V2,
  MAX_PROPERTIES_BYTES,
  MAX_TOPIC_BYTES,
  MessageProperty,
  type PreparedRecord,
  prepareRecord,
  RECORD_FIXED_BYTES_V4,
  RecordStreamDecoder,
  type StreamItem,
  SysFlag,
  transactionType,
  writeBlankRecord,
  writeRecord,
} from '../../src/message/index.js';
import { type Rng, seeded } from '../../test-support/prng.js';

// ---------------------------------------------------------------------------------------------
// Seeded randomness. Override with TSMQ_SEED=<n> to replay; the seed is printed on failure.
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Generators and an independent reference parser
// ---------------------------------------------------------------------------------------------

const TOPIC_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-%|';
const TEXT_PIECES = [
  'a',
  'Z',
  '9',
  ' ',
  '=',
  'é',
  'ß',
  '中',
  '文',
  '🚀',
  '👍🏽',
  '\u0000',
  '\t',
  'KEYS',
  'ё',
];

function randomTopic(rng: Rng): string {
  const n = rng.bool(0.1) ? MAX_TOPIC_BYTES : rng.int(1, 40);
  let s = '';
  for (let i = 0; i < n; i++) s += TOPIC_CHARS[rng.int(0, TOPIC_CHARS.length - 1)];
  return s;
}

function randomText(rng: Rng, max: number): string {
  let s = '';
  const n = rng.int(0, max);
  for (let i = 0; i < n; i++) s += rng.pick(TEXT_PIECES);
  return s;
}

function randomProps(rng: Rng): Map<string, string> {
  const m = new Map<string, string>();
  const n = rng.int(0, 6);
  for (let i = 0; i < n; i++) {
    const key = rng.bool(0.3) ? rng.pick(Object.values(MessageProperty)) : `k${randomText(rng, 5)}`;
    m.set(key, randomText(rng, 20));
  }
  return m;
}

function randomHost(rng: Rng): HostAddress {
  const port = rng.int(0, 65535);
  if (rng.bool()) {
    return { address: `${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(0, 255)}`, port };
  }
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(rng.bool(0.4) ? '0' : rng.int(0, 0xffff).toString(16));
  groups[0] = (rng.int(0x2000, 0xfeff) | 0).toString(16); // never IPv4-mapped
  return { address: groups.join(':'), port };
}

const u53 = (rng: Rng) => Math.floor(rng.next() * 2 ** 21) * 2 ** 32 + rng.int(0, 2 ** 32 - 1);

function randomMessage(rng: Rng): AppendMessage {
  const props = randomProps(rng);
  return {
    topic: randomTopic(rng),
    queueId: rng.int(0, 65535),
    body: rng.bytes(rng.bool(0.05) ? rng.int(2000, 5000) : rng.int(1, 300)),
    properties: props.size > 0 ? encodeProperties(props) : rng.bool() ? '' : undefined,
    flag: rng.int(-(2 ** 31), 2 ** 31 - 1),
    sysFlag: rng.pick([
      0,
      SysFlag.MULTI_TAGS,
      SysFlag.TRANSACTION_PREPARED_TYPE,
      SysFlag.TRANSACTION_COMMIT_TYPE,
    ]),
    bornTimestamp: u53(rng),
    bornHost: randomHost(rng),
    reconsumeTimes: rng.int(0, 16),
    preparedTransactionOffset: rng.bool() ? 0 : u53(rng),
  };
}

interface Written {
  msg: AppendMessage;
  rec: PreparedRecord;
  pos: number;
  queueOffset: number;
  physicalOffset: number;
  storeTimestamp: number;
  storeHost: HostAddress;
}

/** Writes `count` random records back to back; physical offsets start above 2^32. */
function writeMany(rng: Rng, count: number, base = 2 ** 33 + 17): { buf: Buffer; written: Written[] } {
  const written: Written[] = [];
  const parts: Buffer[] = [];
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const msg = randomMessage(rng);
    const storeHost = randomHost(rng);
    const storeHostBytes = encodeHost(storeHost);
    const rec = prepareRecord(msg, 4 * 1024 * 1024, storeHostBytes.length === 20);
    const out = Buffer.alloc(rec.size);
    const w: Written = {
      msg,
      rec,
      pos,
      queueOffset: u53(rng),
      physicalOffset: base + pos,
      storeTimestamp: u53(rng),
      storeHost,
    };
    writeRecord(out, 0, rec, w.queueOffset, w.physicalOffset, w.storeTimestamp, storeHostBytes);
    parts.push(out);
    written.push(w);
    pos += rec.size;
  }
  return { buf: Buffer.concat(parts), written };
}

function sameHost(a: HostAddress, b: HostAddress): boolean {
  return encodeHost(a).equals(encodeHost(b));
}

function checkDecoded(d: DecodedRecord, w: Written): void {
  const m = w.msg;
  assert.equal(d.totalSize, w.rec.size);
  assert.equal(d.magic, MAGIC_V1);
  assert.equal(d.topic, m.topic);
  assert.equal(d.queueId, m.queueId);
  assert.equal(d.flag, m.flag ?? 0);
  assert.equal(d.queueOffset, w.queueOffset);
  assert.equal(d.physicalOffset, w.physicalOffset);
  assert.equal(d.bornTimestamp, m.bornTimestamp);
  assert.equal(d.storeTimestamp, w.storeTimestamp);
  assert.ok(sameHost(d.bornHost, m.bornHost!), `born host ${d.bornHost.address} vs ${m.bornHost!.address}`);
  assert.equal(d.bornHost.port, m.bornHost!.port);
  assert.ok(sameHost(d.storeHost, w.storeHost));
  assert.equal(d.reconsumeTimes, m.reconsumeTimes ?? 0);
  assert.equal(d.preparedTransactionOffset, m.preparedTransactionOffset ?? 0);
  assert.ok(d.body.equals(m.body));
  assert.equal(d.properties, m.properties ?? '');
  const v6 =
    (encodeHost(m.bornHost!).length === 20 ? SysFlag.BORNHOST_V6 : 0) |
    (encodeHost(w.storeHost).length === 20 ? SysFlag.STOREHOST_V6 : 0);
  assert.equal(d.sysFlag, (m.sysFlag ?? 0) | v6);
  assert.equal(d.raw.length, d.totalSize);
}

/** A second, deliberately plain parser: checks that a decoded record is self-consistent. */
function assertConsistent(d: DecodedRecord, checkedCrc: boolean): void {
  const r = d.raw;
  assert.equal(r.length, d.totalSize);
  assert.equal(r.readInt32BE(0), d.totalSize);
  const magic = r.readInt32BE(4);
  assert.ok(magic === MAGIC_V1 || magic === MAGIC_V2);
  const sys = r.readInt32BE(36);
  let p = 48 + (sys & 0x10 ? 20 : 8) + 8 + (sys & 0x20 ? 20 : 8) + 12;
  const bodyLen = r.readInt32BE(p);
  p += 4;
  assert.ok(r.subarray(p, p + bodyLen).equals(d.body));
  p += bodyLen;
  const topicLen = magic === MAGIC_V2 ? r.readInt16BE(p) : r.readUInt8(p);
  p += magic === MAGIC_V2 ? 2 : 1;
  assert.ok(topicLen > 0);
  assert.equal(r.subarray(p, p + topicLen).indexOf(0), -1);
  p += topicLen;
  const propLen = r.readInt16BE(p);
  assert.ok(propLen >= 0);
  p += 2 + propLen;
  assert.equal(p, d.totalSize, 'lengths must add up');
  if (checkedCrc) {
    assert.equal(crc32Reference(d.body), d.bodyCrc, 'CRC must match');
  }
}

/** Bitwise CRC-32 (IEEE), masked as RocketMQ stores it; independent of node:zlib. */
function crc32Reference(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) {
    c ^= b[i]!;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ((c ^ 0xffffffff) >>> 0) & 0x7fffffff;
}

/** Whether cutting `b` at `k` and zero-filling loses only bytes that were zero anyway. */
function lostOnlyZeros(b: Buffer, k: number): boolean {
  for (let i = k; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function expectRecord(r: DecodeResult): DecodedRecord {
  if (r.kind !== 'record') assert.fail(`expected a record, got ${JSON.stringify(r)}`);
  return r.record;
}

function throwsCode(fn: () => unknown, code: Parameters<typeof isTsmqError>[1], ...mentions: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isTsmqError(e, code), `expected ${code}, got ${String(e)}`);
    for (const m of mentions)
      assert.ok(e.message.includes(m), `message ${JSON.stringify(e.message)} lacks ${m}`);
    return true;
  });
}

const MiB4 = 4 * 1024 * 1024;
const simple = (over: Partial<AppendMessage> = {}): AppendMessage => ({
  topic: 'T',
  queueId: 0,
  body: Buffer.from('x'),
  ...over,
});

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

describe('record layout', () => {
  test('one record, byte for byte', () => {
    const msg: AppendMessage = {
      topic: 'T',
      queueId: 3,
      body: Buffer.from('hi'),
      properties: 'A\u0001B\u0002',
      flag: 7,
      sysFlag: SysFlag.TRANSACTION_PREPARED_TYPE,
      bornTimestamp: 1_700_000_000_000,
      bornHost: { address: '10.0.0.1', port: 8080 },
      reconsumeTimes: 1,
      preparedTransactionOffset: 16,
    };
    const rec = prepareRecord(msg, MiB4);
    assert.equal(rec.size, 98);
    const buf = Buffer.alloc(100, 0xee);
    writeRecord(
      buf,
      1,
      rec,
      2 ** 32 + 5,
      0x1_0203_0405,
      1_700_000_000_001,
      encodeHost({ address: '192.168.1.2', port: 10911 }),
    );
    const expected = [
      '00000062', // TOTALSIZE 98
      'daa320a7', // MAGICCODE V1
      '58932aac', // BODYCRC: crc32('hi') = 0xd8932aac, top bit masked off
      '00000003', // QUEUEID
      '00000007', // FLAG
      '0000000100000005', // QUEUEOFFSET 2^32 + 5
      '0000000102030405', // PHYSICALOFFSET
      '00000004', // SYSFLAG: transaction prepared, IPv4 hosts
      '0000018bcfe56800', // BORNTIMESTAMP 1700000000000
      '0a000001' + '00001f90', // BORNHOST 10.0.0.1:8080
      '0000018bcfe56801', // STORETIMESTAMP
      'c0a80102' + '00002a9f', // STOREHOST 192.168.1.2:10911
      '00000001', // RECONSUMETIMES
      '0000000000000010', // PREPARED TRANSACTION OFFSET
      '00000002' + '6869', // BODY
      '01' + '54', // TOPIC
      '0004' + '41014202', // PROPERTIES
    ].join('');
    assert.equal(buf.subarray(1, 99).toString('hex'), expected);
    assert.equal(buf[0], 0xee, 'nothing written before pos');
    assert.equal(buf[99], 0xee, 'nothing written after pos + size');
    const d = expectRecord(decodeRecord(buf, 1, { expectedPhysicalOffset: 0x1_0203_0405 }));
    assert.equal(d.bodyCrc, 0x58932aac);
    assert.deepEqual(d.bornHost, { address: '10.0.0.1', port: 8080 });
    assert.deepEqual(d.storeHost, { address: '192.168.1.2', port: 10911 });
    assert.equal(transactionType(d.sysFlag), SysFlag.TRANSACTION_PREPARED_TYPE);
    assert.equal(getProperty(d.properties, 'A'), 'B');
  });

  test('constants', () => {
    assert.equal(MAGIC_V1, -626843481);
    assert.equal(MAGIC_V2, -626843477);
    assert.equal(BLANK_MAGIC, -875286124);
    assert.equal(RECORD_FIXED_BYTES_V4, 91);
    assert.equal(prepareRecord(simple({ topic: 'ab', body: Buffer.from('xyz') }), MiB4).size, 91 + 2 + 3);
  });

  test('known CRC: crc32("123456789") = 0xCBF43926, stored masked', () => {
    const rec = prepareRecord(simple({ body: Buffer.from('123456789') }), MiB4);
    assert.equal(rec.bodyCrc, 0x4bf43926);
    assert.equal(crc32Reference(Buffer.from('123456789')), 0x4bf43926);
  });

  test('IPv6 hosts set the sysflag bits and grow the record by 12 bytes each', () => {
    const v4 = prepareRecord(simple(), MiB4);
    const v6 = prepareRecord(
      simple({ bornHost: { address: '::1', port: 9 }, sysFlag: SysFlag.STOREHOST_V6 }),
      MiB4,
      true,
    );
    assert.equal(v4.sysFlag & (SysFlag.BORNHOST_V6 | SysFlag.STOREHOST_V6), 0);
    assert.equal(v6.sysFlag & (SysFlag.BORNHOST_V6 | SysFlag.STOREHOST_V6), 0x30);
    assert.equal(v6.size, v4.size + 24);
    // A stale BORNHOST_V6 bit from the caller is cleared when the host is IPv4.
    assert.equal(prepareRecord(simple({ sysFlag: 0x10 | 0x20 }), MiB4).sysFlag, 0);
    const buf = Buffer.alloc(v6.size);
    writeRecord(buf, 0, v6, 1, 0, 2, encodeHost({ address: '2001:db8::7', port: 10911 }));
    const d = expectRecord(decodeRecord(buf, 0));
    assert.deepEqual(d.bornHost, { address: '::1', port: 9 });
    assert.deepEqual(d.storeHost, { address: '2001:db8::7', port: 10911 });
  });

  test('writeRecord refuses a store host that does not match the prepared size, or no room', () => {
    const rec = prepareRecord(simple(), MiB4);
    assert.throws(() =>
      writeRecord(Buffer.alloc(200), 0, rec, 0, 0, 0, encodeHost({ address: '::1', port: 1 })),
    );
    assert.throws(() =>
      writeRecord(Buffer.alloc(rec.size - 1), 0, rec, 0, 0, 0, encodeHost({ address: '1.2.3.4', port: 1 })),
    );
  });

  test('properties without the trailing separator get one, so a record never ends in 0', () => {
    const rec = prepareRecord(simple({ properties: 'A\u0001\u0000' }), MiB4);
    assert.equal(Buffer.from(rec.properties).toString('hex'), '41010002');
    assert.equal(rec.propertiesLength, 4);
    const buf = Buffer.alloc(rec.size);
    writeRecord(buf, 0, rec, 0, 0, 0, encodeHost({ address: '1.2.3.4', port: 1 }));
    assert.equal(decodeProperties(expectRecord(decodeRecord(buf, 0)).properties).get('A'), '\u0000');
  });

  test('defaults: born host 127.0.0.1:0, born time now, flags 0', () => {
    const before = Date.now();
    const rec = prepareRecord(simple(), MiB4);
    const buf = Buffer.alloc(rec.size);
    writeRecord(buf, 0, rec, 0, 0, 0, encodeHost({ address: '1.2.3.4', port: 1 }));
    const d = expectRecord(decodeRecord(buf, 0));
    assert.deepEqual(d.bornHost, { address: '127.0.0.1', port: 0 });
    assert.ok(d.bornTimestamp >= before && d.bornTimestamp <= Date.now());
    assert.equal(d.flag, 0);
    assert.equal(d.reconsumeTimes, 0);
    assert.equal(d.preparedTransactionOffset, 0);
    assert.equal(d.properties, '');
  });
});

describe('validation', () => {
  test('TOPIC_EMPTY', () => throwsCode(() => prepareRecord(simple({ topic: '' }), MiB4), 'TOPIC_EMPTY'));

  test('TOPIC_TOO_LONG above 127 bytes; 127 is fine', () => {
    prepareRecord(simple({ topic: 'a'.repeat(127) }), MiB4);
    throwsCode(() => prepareRecord(simple({ topic: 'a'.repeat(128) }), MiB4), 'TOPIC_TOO_LONG', '128', '127');
    throwsCode(() => prepareRecord(simple({ topic: 'é'.repeat(64) }), MiB4), 'TOPIC_TOO_LONG', '128');
  });

  test('TOPIC_INVALID outside [%|a-zA-Z0-9_-]', () => {
    for (const t of ['a b', 'a/b', 'é', 'a.b', 'a\u0000', 'tab\t']) {
      throwsCode(() => prepareRecord(simple({ topic: t }), MiB4), 'TOPIC_INVALID');
    }
    for (const t of ['%RETRY%group', 'a|b', 'A-z_09']) prepareRecord(simple({ topic: t }), MiB4);
  });

  test('QUEUE_ID_INVALID unless an integer in [0, 65535]', () => {
    for (const q of [-1, 65536, 1.5, Number.NaN, 2 ** 32]) {
      throwsCode(() => prepareRecord(simple({ queueId: q }), MiB4), 'QUEUE_ID_INVALID', String(q));
    }
    prepareRecord(simple({ queueId: 65535 }), MiB4);
  });

  test('MESSAGE_BODY_EMPTY', () =>
    throwsCode(() => prepareRecord(simple({ body: new Uint8Array(0) }), MiB4), 'MESSAGE_BODY_EMPTY'));

  test('MESSAGE_TOO_LARGE when the body exceeds the limit', () => {
    prepareRecord(simple({ body: Buffer.alloc(1024, 1) }), 1024);
    throwsCode(
      () => prepareRecord(simple({ body: Buffer.alloc(1025, 1) }), 1024),
      'MESSAGE_TOO_LARGE',
      '1025',
      '1024',
    );
  });

  test('PROPERTIES_TOO_LARGE above 32767 bytes', () => {
    const ok = `${'k\u0001'}${'v'.repeat(MAX_PROPERTIES_BYTES - 3)}\u0002`;
    assert.equal(Buffer.byteLength(ok), MAX_PROPERTIES_BYTES);
    prepareRecord(simple({ properties: ok }), MiB4);
    const big = `k\u0001${'v'.repeat(MAX_PROPERTIES_BYTES - 2)}\u0002`;
    throwsCode(
      () => prepareRecord(simple({ properties: big }), MiB4),
      'PROPERTIES_TOO_LARGE',
      '32768',
      '32767',
    );
    // UTF-8 bytes count, not characters.
    const wide = `k\u0001${'中'.repeat(11000)}\u0002`;
    throwsCode(() => prepareRecord(simple({ properties: wide }), MiB4), 'PROPERTIES_TOO_LARGE');
  });

  test('PROPERTY_INVALID for separators or an empty key', () => {
    throwsCode(() => encodeProperties({ 'a\u0001': 'b' }), 'PROPERTY_INVALID');
    throwsCode(() => encodeProperties({ a: 'b\u0002' }), 'PROPERTY_INVALID');
    throwsCode(() => encodeProperties(new Map([['a', 'x\u0001y']])), 'PROPERTY_INVALID');
    throwsCode(() => encodeProperties({ '': 'b' }), 'PROPERTY_INVALID');
  });

  test('the topic cache stays bounded and keeps validating', () => {
    for (let i = 0; i < 10_050; i++) prepareRecord(simple({ topic: `t${i}` }), MiB4);
    prepareRecord(simple({ topic: 't0' }), MiB4);
    throwsCode(() => prepareRecord(simple({ topic: 't 0' }), MiB4), 'TOPIC_INVALID');
  });
});

describe('round trips', () => {
  seeded('600 random records decode to what was written', 1, (rng) => {
    const { buf, written } = writeMany(rng, 600);
    for (const w of written) {
      const d = expectRecord(decodeRecord(buf, w.pos, { expectedPhysicalOffset: w.physicalOffset }));
      checkDecoded(d, w);
      assertConsistent(d, true);
    }
    const all = decodeRecords(buf);
    assert.equal(all.length, written.length);
    for (const [i, d] of all.entries()) checkDecoded(d, written[i]!);
  });

  seeded('random property maps survive encode → record → decode', 2, (rng) => {
    for (let i = 0; i < 300; i++) {
      const props = randomProps(rng);
      const s = encodeProperties(props);
      const rec = prepareRecord(simple({ properties: s }), MiB4);
      const buf = Buffer.alloc(rec.size);
      writeRecord(buf, 0, rec, 0, 0, 0, encodeHost({ address: '1.2.3.4', port: 1 }));
      const back = decodeProperties(expectRecord(decodeRecord(buf, 0)).properties);
      assert.deepEqual([...back], [...props]);
      for (const [k, v] of props) assert.equal(getProperty(s, k), v);
    }
  });

  test('V2 records (2-byte topic length) decode, including topics over 127 bytes', () => {
    for (const topic of ['Topic', 'x'.repeat(300)]) {
      const v1 = prepareRecord(simple({ body: Buffer.from('body'), properties: 'K\u0001V\u0002' }), MiB4);
      const buf1 = Buffer.alloc(v1.size);
      writeRecord(buf1, 0, v1, 7, 0, 9, encodeHost({ address: '1.2.3.4', port: 5 }));
      // Rebuild as V2: new magic, 2-byte topic length, the given topic.
      const topicAt = v1.size - 2 - v1.propertiesLength - v1.topicBytes.length - 1;
      const t = Buffer.from(topic);
      const tl = Buffer.alloc(2);
      tl.writeInt16BE(t.length);
      const v2 = Buffer.concat([buf1.subarray(0, topicAt), tl, t, buf1.subarray(topicAt + 2)]);
      v2.writeInt32BE(v2.length, 0);
      v2.writeInt32BE(MAGIC_V2, 4);
      const d = expectRecord(decodeRecord(v2, 0));
      assert.equal(d.magic, MAGIC_V2);
      assert.equal(d.topic, topic);
      assert.equal(d.body.toString(), 'body');
      assert.equal(d.properties, 'K\u0001V\u0002');
      assert.equal(d.queueOffset, 7);
      assertConsistent(d, true);
    }
  });

  test('decoded body and raw are views, not copies', () => {
    const rec = prepareRecord(simple({ body: Buffer.from('abc') }), MiB4);
    const buf = Buffer.alloc(rec.size);
    writeRecord(buf, 0, rec, 0, 0, 0, encodeHost({ address: '1.2.3.4', port: 1 }));
    const d = expectRecord(decodeRecord(buf, 0));
    assert.equal(d.body.buffer, buf.buffer);
    assert.equal(d.raw.buffer, buf.buffer);
    assert.equal(d.raw.byteOffset, buf.byteOffset);
  });
});

describe('decodeRecord outcomes', () => {
  const one = (): Buffer => {
    const rec = prepareRecord(simple({ body: Buffer.from('hello'), properties: 'A\u0001B\u0002' }), MiB4);
    const b = Buffer.alloc(rec.size);
    writeRecord(b, 0, rec, 0, 1000, 0, encodeHost({ address: '1.2.3.4', port: 1 }));
    return b;
  };

  test('zeros are the end', () => {
    assert.deepEqual(decodeRecord(Buffer.alloc(64), 0), { kind: 'end' });
    assert.deepEqual(decodeRecord(Buffer.alloc(4), 0), { kind: 'end' });
  });

  test('need-more when the buffer simply ends', () => {
    const b = one();
    assert.deepEqual(decodeRecord(b.subarray(0, 0), 0), { kind: 'need-more', needed: 4 });
    assert.deepEqual(decodeRecord(b.subarray(0, 3), 0), { kind: 'need-more', needed: 4 });
    assert.deepEqual(decodeRecord(b.subarray(0, 6), 0), { kind: 'need-more', needed: 8 });
    for (let k = 8; k < b.length; k++) {
      assert.deepEqual(decodeRecord(b.subarray(0, k), 0), { kind: 'need-more', needed: b.length });
    }
    assert.equal(decodeRecord(b, b.length + 10).kind, 'need-more');
  });

  test('a torn record followed by zeros is never a record, at every cut', () => {
    for (const props of ['', 'A\u0001B\u0002', 'P\u0001\u0000\u0002']) {
      for (const bornHost of [
        { address: '1.2.3.4', port: 1 },
        { address: 'fe80::1', port: 2 },
      ]) {
        const rec = prepareRecord(simple({ body: Buffer.from('hello'), properties: props, bornHost }), MiB4);
        const b = Buffer.alloc(rec.size);
        writeRecord(b, 0, rec, 0x1_0000_0001, 1000, 5, encodeHost({ address: '1.2.3.4', port: 1 }));
        for (let k = 0; k < b.length; k++) {
          const torn = Buffer.alloc(b.length + 16);
          b.copy(torn, 0, 0, k);
          for (const checkCrc of [true, false]) {
            const r = decodeRecord(torn, 0, { checkCrc });
            // With empty properties the record ends in PROPLEN = 00 00: losing those bytes loses
            // nothing, and what is on disk is the whole record.
            if (lostOnlyZeros(b, k)) assert.ok(expectRecord(r).raw.equals(b));
            else assert.ok(r.kind === 'corrupt' || r.kind === 'end', `cut at ${k}: ${JSON.stringify(r)}`);
          }
        }
      }
    }
  });

  test('corrupt: bad magic, bad sizes, CRC, physical offset, limit', () => {
    const b = one();
    const mutate = (f: (x: Buffer) => void): Buffer => {
      const x = Buffer.from(b);
      f(x);
      return x;
    };
    const kind = (x: Buffer, o?: Parameters<typeof decodeRecord>[2]) => decodeRecord(x, 0, o).kind;
    assert.equal(kind(mutate((x) => x.writeInt32BE(0x12345678, 4))), 'corrupt');
    assert.equal(kind(mutate((x) => x.writeInt32BE(-5, 0))), 'corrupt');
    assert.equal(kind(mutate((x) => x.writeInt32BE(7, 0))), 'corrupt');
    assert.equal(kind(mutate((x) => x.writeInt32BE(50, 0))), 'corrupt');
    assert.equal(kind(mutate((x) => x.writeInt32BE(b.length - 1, 0))), 'corrupt');
    assert.equal(kind(mutate((x) => (x[90] = x[90]! ^ 1))), 'corrupt', 'body byte flipped');
    assert.equal(
      kind(
        mutate((x) => (x[90] = x[90]! ^ 1)),
        { checkCrc: false },
      ),
      'record',
    );
    assert.equal(kind(b, { expectedPhysicalOffset: 1000 }), 'record');
    assert.equal(kind(b, { expectedPhysicalOffset: 999 }), 'corrupt');
    assert.equal(kind(b, { maxRecordBytes: b.length - 1 }), 'corrupt');
    // An oversized TOTALSIZE is refused from the header alone, without waiting for the bytes.
    assert.equal(kind(mutate((x) => x.writeInt32BE(2 ** 30, 0)).subarray(0, 20)), 'corrupt');
    assert.equal(decodeRecord(b, -1).kind, 'corrupt');
    assert.equal(decodeRecord(b, 0.5).kind, 'corrupt');
  });

  test('blank records', () => {
    const seg = Buffer.alloc(64, 0xaa);
    writeBlankRecord(seg, 16, 48);
    assert.deepEqual(decodeRecord(seg, 16), { kind: 'blank', size: 48 });
    assert.equal(seg.subarray(16, 24).toString('hex'), '00000030cbd43194');
    assert.deepEqual(decodeRecord(seg.subarray(0, 24), 16), { kind: 'blank', size: 48 });
    assert.throws(() => writeBlankRecord(seg, 0, BLANK_RECORD_MIN_BYTES - 1));
    const tiny = Buffer.alloc(8);
    tiny.writeInt32BE(4, 0);
    tiny.writeInt32BE(BLANK_MAGIC, 4);
    assert.equal(decodeRecord(tiny, 0).kind, 'corrupt');
    assert.throws(
      () => decodeRecords(seg.subarray(16)),
      (e) => isTsmqError(e, 'CORRUPT_RECORD'),
    );
  });
});

describe('fuzz', () => {
  /** Every decodeRecord call must return, and any 'record' must be self-consistent. */
  function probe(buf: Buffer, pos: number, checkCrc: boolean, what: string): DecodeResult {
    let r: DecodeResult;
    try {
      r = decodeRecord(buf, pos, { checkCrc });
    } catch (e) {
      assert.fail(`${what}: decodeRecord threw ${String(e)} on ${buf.toString('hex').slice(0, 400)}`);
    }
    if (r.kind === 'record') assertConsistent(r.record, checkCrc);
    return r;
  }

  seeded('24,000 random and mutated inputs never throw or yield an inconsistent record', 3, (rng) => {
    const { buf, written } = writeMany(rng, 200, 0);
    const recordBytes = written.map((w) => buf.subarray(w.pos, w.pos + w.rec.size));
    let records = 0;
    for (let i = 0; i < 24_000; i++) {
      const mode = i % 4;
      const checkCrc = rng.bool(0.7);
      if (mode === 0) {
        // Random bytes, half of them behind a plausible TOTALSIZE and magic to get past the head.
        const b = rng.bytes(rng.int(0, 400));
        if (b.length >= 8 && rng.bool()) {
          b.writeInt32BE(rng.bool() ? b.length : rng.int(0, b.length + 8), 0);
          b.writeInt32BE(rng.pick([MAGIC_V1, MAGIC_V2, BLANK_MAGIC]), 4);
          if (b.length >= 40 && rng.bool()) b.writeInt32BE(rng.pick([0, 0x10, 0x20, 0x30]), 36);
        }
        probe(b, 0, checkCrc, `random #${i}`);
      } else if (mode === 1) {
        // A valid record with a few bytes flipped.
        const b = Buffer.from(rng.pick(recordBytes));
        const flips = rng.int(1, 4);
        for (let f = 0; f < flips; f++) b[rng.int(0, b.length - 1)] = rng.int(0, 255);
        if (probe(b, 0, checkCrc, `flipped #${i}`).kind === 'record') records++;
      } else if (mode === 2) {
        // A torn record: cut anywhere, then zeros (as in a preallocated segment).
        const src = rng.pick(recordBytes);
        const k = rng.int(0, src.length - 1);
        const b = Buffer.alloc(src.length + rng.int(0, 64));
        src.copy(b, 0, 0, k);
        const r = probe(b, 0, checkCrc, `torn at ${k} #${i}`);
        if (lostOnlyZeros(src, k)) assert.ok(expectRecord(r).raw.equals(src));
        else assert.ok(r.kind === 'corrupt' || r.kind === 'end', `torn at ${k}: ${r.kind}`);
      } else {
        // A record cut short with nothing after it: need-more, at a random position in a window.
        const w = rng.pick(written);
        const k = rng.int(0, w.rec.size - 1);
        const r = probe(buf.subarray(0, w.pos + k), w.pos, checkCrc, `short #${i}`);
        assert.equal(r.kind, 'need-more');
        if (k >= 8) assert.deepEqual(r, { kind: 'need-more', needed: w.rec.size });
      }
    }
    assert.ok(records > 0, 'some flips (in header fields) still decode');
  });

  seeded('getProperty agrees with decodeProperties on arbitrary strings', 4, (rng) => {
    const alphabet = ['K', 'E', 'Y', 'S', 'X', '\u0001', '\u0002', 'é'];
    const keys = ['K', 'KEYS', 'XKEYS', 'EYS', 'S', 'é', 'KE'];
    for (let i = 0; i < 5000; i++) {
      let s = '';
      const n = rng.int(0, 24);
      for (let j = 0; j < n; j++) s += rng.pick(alphabet);
      const map = decodeProperties(s);
      for (const k of [...keys, ...map.keys()]) {
        assert.equal(
          getProperty(s, k),
          map.get(k),
          `getProperty(${JSON.stringify(s)}, ${JSON.stringify(k)})`,
        );
      }
    }
  });
});

describe('RecordStreamDecoder', () => {
  function collect(dec: RecordStreamDecoder, buf: Buffer, sizes: () => number): StreamItem[] {
    const out: StreamItem[] = [];
    for (let pos = 0; pos < buf.length; ) {
      const n = Math.min(sizes(), buf.length - pos);
      // A fresh copy per chunk, as a socket would hand them over.
      out.push(...dec.push(Buffer.from(buf.subarray(pos, pos + n))));
      pos += n;
    }
    dec.finish();
    return out;
  }

  const recordsOf = (items: StreamItem[]) => items.filter((x): x is DecodedRecord => !('kind' in x));

  seeded('random chunk boundaries give the same records', 5, (rng) => {
    const { buf, written } = writeMany(rng, 150);
    const whole = decodeRecords(buf);
    for (let trial = 0; trial < 20; trial++) {
      const max = rng.pick([2, 7, 64, 300, 5000, 100_000]);
      const items = collect(new RecordStreamDecoder(), buf, () => rng.int(1, max));
      const recs = recordsOf(items);
      assert.equal(recs.length, written.length);
      recs.forEach((d, i) => {
        assert.ok(d.raw.equals(whole[i]!.raw));
        checkDecoded(d, written[i]!);
      });
    }
  });

  seeded('one byte at a time', 6, (rng) => {
    const { buf, written } = writeMany(rng, 40);
    const recs = recordsOf(collect(new RecordStreamDecoder(), buf, () => 1));
    assert.equal(recs.length, written.length);
    for (const [i, d] of recs.entries()) checkDecoded(d, written[i]!);
  });

  seeded('a blank record is reported and its whole length skipped', 7, (rng) => {
    const a = writeMany(rng, 5);
    const b = writeMany(rng, 5);
    const blank = Buffer.alloc(100, 0x5a); // the rest of a segment: contents ignored
    writeBlankRecord(blank, 0, blank.length);
    const stream = Buffer.concat([a.buf, blank, b.buf]);
    for (const max of [1, 3, 50, 1000]) {
      const items = collect(new RecordStreamDecoder(), stream, () => rng.int(1, max));
      assert.equal(items.length, 11);
      assert.deepEqual(items[5], { kind: 'blank', size: 100 });
      for (const [i, d] of recordsOf(items).entries()) {
        checkDecoded(d, i < 5 ? a.written[i]! : b.written[i - 5]!);
      }
    }
  });

  test('corruption and truncation throw CORRUPT_RECORD', () => {
    const rec = prepareRecord(simple(), MiB4);
    const one = Buffer.alloc(rec.size);
    writeRecord(one, 0, rec, 0, 0, 0, encodeHost({ address: '1.2.3.4', port: 1 }));
    const bad = Buffer.from(one);
    bad[bad.length - 5] = bad[bad.length - 5]! ^ 0xff;
    const isCorrupt = (e: unknown) => isTsmqError(e, 'CORRUPT_RECORD');

    const d1 = new RecordStreamDecoder();
    d1.push(one);
    assert.throws(() => d1.push(bad), isCorrupt);
    assert.throws(() => d1.push(one), isCorrupt, 'stays failed');

    const d2 = new RecordStreamDecoder();
    d2.push(one.subarray(0, 10));
    assert.equal(d2.pendingBytes, 10);
    assert.throws(() => d2.finish(), isCorrupt);

    assert.throws(() => new RecordStreamDecoder().push(Buffer.alloc(8)), isCorrupt, 'zeros');
    assert.throws(() => decodeRecords(Buffer.concat([one, one.subarray(0, 20)])), isCorrupt);
    assert.equal(decodeRecords(Buffer.concat([one, one])).length, 2);
  });
});

describe('properties', () => {
  test('encode: entry order, Map or object, empty', () => {
    assert.equal(encodeProperties({}), '');
    assert.equal(encodeProperties({ TAGS: 'a', KEYS: 'k1 k2' }), 'TAGS\u0001a\u0002KEYS\u0001k1 k2\u0002');
    assert.equal(encodeProperties(new Map([['x', '']])), 'x\u0001\u0002');
  });

  test('decode: with or without the trailing separator, skipping malformed entries', () => {
    assert.deepEqual([...decodeProperties('')], []);
    assert.deepEqual([...decodeProperties('a\u0001b')], [['a', 'b']]);
    assert.deepEqual([...decodeProperties('a\u0001b\u0002')], [['a', 'b']]);
    assert.deepEqual(
      [...decodeProperties('a\u0001b\u0002\u0002c\u0001\u0002')],
      [
        ['a', 'b'],
        ['c', ''],
      ],
    );
    assert.deepEqual([...decodeProperties('junk\u0002\u0001v\u0002a\u0001b')], [['a', 'b']]);
    assert.deepEqual([...decodeProperties('a\u00011\u0002a\u00012\u0002')], [['a', '2']], 'last wins');
    assert.deepEqual([...decodeProperties('a\u0001b\u0001c')], [['a', 'b\u0001c']]);
    assert.deepEqual([...decodeProperties('中\u0001🚀\u0002')], [['中', '🚀']]);
  });

  test('getProperty matches whole keys only', () => {
    const s = encodeProperties({ XKEYS: 'no', A: 'KEYS', TAGS: 't', KEYS: 'k1 k2', E: '' });
    assert.equal(getProperty(s, 'KEYS'), 'k1 k2');
    assert.equal(getProperty(s, 'XKEYS'), 'no');
    assert.equal(getProperty(s, 'EYS'), undefined);
    assert.equal(getProperty(s, 'TAGS'), 't');
    assert.equal(getProperty(s, 'E'), '');
    assert.equal(getProperty(s, 'MISSING'), undefined);
    assert.equal(getProperty(s, ''), undefined);
    assert.equal(getProperty('A\u0001KEYS\u0002', 'KEYS'), undefined, 'not inside a value');
    assert.equal(getProperty('KEYS\u0001v', 'KEYS'), 'v', 'no trailing separator');
    assert.equal(getProperty('KEYS', 'KEYS'), undefined, 'no value separator');
    assert.equal(getProperty('', 'KEYS'), undefined);
    assert.equal(getProperty('a\u00011\u0002a\u00012\u0002', 'a'), '2', 'last wins, like decodeProperties');
    assert.equal(getProperty('x\u0002a\u0001b\u0002', '\u0002a'), undefined);
    assert.equal(getProperty(s, MessageProperty.SHARDING_KEY), undefined);
    assert.equal(MessageProperty.SHARDING_KEY, '__SHARDINGKEY');
    assert.equal(MessageProperty.DELAY, 'DELAY');
  });
});

describe('hosts', () => {
  test('IPv4 and IPv6 encodings', () => {
    assert.equal(encodeHost({ address: '192.168.0.1', port: 10911 }).toString('hex'), 'c0a8000100002a9f');
    assert.equal(
      encodeHost({ address: '2001:db8::1', port: 1 }).toString('hex'),
      '20010db8000000000000000000000001' + '00000001',
    );
    // Dual-stack sockets report IPv4 clients as IPv4-mapped IPv6; Java stores them as IPv4.
    assert.equal(encodeHost({ address: '::ffff:10.1.2.3', port: 5 }).toString('hex'), '0a01020300000005');
    assert.equal(encodeHost({ address: 'fe80::1%eth0', port: 0 }).length, 20);
    assert.equal(encodeHost({ address: '::', port: 0 }).length, 20);
  });

  test('decodeHost writes IPv6 in RFC 5952 form', () => {
    const cases: Array<[string, string]> = [
      ['::1', '::1'],
      ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['1:0:2:0:3:0:4:0', '1:0:2:0:3:0:4:0'],
      ['0:0:0:0:0:0:0:0', '::'],
      ['fe80::', 'fe80::'],
      ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
      ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ];
    for (const [input, canonical] of cases) {
      const b = encodeHost({ address: input, port: 77 });
      assert.deepEqual(decodeHost(b, 0, true), { address: canonical, port: 77 }, input);
    }
  });

  test('host names and malformed addresses are bugs (assertions)', () => {
    for (const a of [
      'localhost',
      '1.2.3',
      '1.2.3.256',
      '01.2.3.4',
      '1::2::3',
      '1:2:3:4:5:6:7:8:9',
      '12345::',
      '',
    ]) {
      assert.throws(() => encodeHost({ address: a, port: 1 }), /assertion failed/, a);
    }
    assert.throws(() => encodeHost({ address: '1.2.3.4', port: 65536 }), /assertion failed/);
  });
});

test('readDispatchInfo finds TAGS, KEYS and UNIQ_KEY in one scan, last occurrence winning; a dispatch hint carries all of it', async () => {
  const {
    readDispatchInfo,
    newDispatchInfo,
    dispatchProperties,
    writeDispatchHint,
    applyDispatchHint,
    DISPATCH_HINT_FIELDS,
    prepareRecord: prep,
    writeRecord: write,
    encodeHost: host,
  } = await import('../../src/message/index.js');
  const cases: Array<[string, { tags?: string; keys?: string; uniq?: string }]> = [
    ['', {}],
    ['TAGS\u0001a\u0002', { tags: 'a' }],
    ['XTAGS\u0001no\u0002KEYS\u0001k1 k2\u0002UNIQ_KEY\u0001ABC\u0002', { keys: 'k1 k2', uniq: 'ABC' }],
    ['TAGS\u0001first\u0002TAGS\u0001second\u0002', { tags: 'second' }],
    ['KEYS\u0001ключ 鍵\u0002TAGS\u0001ünï\u0002', { keys: 'ключ 鍵', tags: 'ünï' }],
    ['TAGSX\u0001no\u0002UNIQ_KE\u0001no\u0002', {}],
    ['UNIQ_KEY\u0001ид-7F00\u0002TAGS\u0001\u0002', { uniq: 'ид-7F00', tags: '' }],
    // Values long enough to be scanned and hashed four bytes at a time, separators at any byte.
    [
      'TAGS\u0001TagWithALongName\u0002UNIQ_KEY\u00017F000001000000000000000000ABCDE\u0002KEYS\u0001k1 k2 k3\u0002',
      { tags: 'TagWithALongName', uniq: '7F000001000000000000000000ABCDE', keys: 'k1 k2 k3' },
    ],
    [
      'LONGERKEY1\u0001some value\u0002TAGS\u0001ab\u0001cdefghi\u0002UNIQ_KEY\u0001ABCDEFGé\u0002',
      { tags: 'ab\u0001cdefghi', uniq: 'ABCDEFGé' },
    ],
  ];
  for (const [props, want] of cases) {
    for (const crc of [false, true]) {
      // With the record CRC, IPv6 hosts too (the header is longer).
      const rec = prep(
        {
          topic: 'Topic',
          queueId: 3,
          body: Buffer.from('b'),
          properties: props,
          ...(crc ? { bornHost: { address: '::1', port: 7 } } : {}),
        },
        1024,
        crc,
        crc,
      );
      const buf = Buffer.alloc(rec.size + 5);
      write(buf, 5, rec, 7, 1234, 99, host({ address: crc ? '::2' : '10.0.0.1', port: 10911 }));
      const info = newDispatchInfo();
      readDispatchInfo(buf, 5, rec.size, info);
      assert.equal(info.tags, want.tags, JSON.stringify(props));
      assert.equal(info.keys, want.keys);
      assert.equal(info.uniqKey, want.uniq);
      // The hashes taken from the bytes equal those of the strings (ASCII or not).
      assert.equal(info.tagsHash, want.tags ? javaStringHashCode(want.tags) : 0);
      if (want.uniq) assert.equal(info.uniqIndexKeyHash, javaStringHashCode(`Topic#${want.uniq}`));
      assert.equal(info.queueId, 3);
      assert.equal(info.queueOffset, 7);
      assert.equal(info.physicalOffset, 1234);
      assert.equal(info.storeTimestamp, 99);
      assert.ok(dispatchProperties(info).startsWith(props));
      // The hint of these bytes, applied to another view of them (the record at another position),
      // gives what reading them gives.
      const hints = new Float64Array(2 * DISPATCH_HINT_FIELDS);
      const topics = ['Other'];
      writeDispatchHint(hints, 1, topics, buf, 5, newDispatchInfo());
      assert.deepEqual(topics, ['Other', 'Topic']);
      const view = Buffer.concat([Buffer.alloc(3), buf.subarray(5)]);
      const fromHint = newDispatchInfo();
      applyDispatchHint(hints, 1, topics, view, 3, fromHint);
      for (const k of [
        'size',
        'queueId',
        'queueOffset',
        'physicalOffset',
        'sysFlag',
        'storeTimestamp',
        'topic',
        'tagsHash',
        'uniqIndexKeyHash',
        'tags',
        'keys',
        'uniqKey',
      ] as const) {
        assert.equal(fromHint[k], info[k], `${k} of ${JSON.stringify(props)}`);
      }
      assert.equal(dispatchProperties(fromHint), dispatchProperties(info));
    }
  }
});
