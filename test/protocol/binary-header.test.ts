import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isTsmqError } from '../../src/common/errors.js';
import {
  decodeBinaryHeader,
  decodeFrame,
  encodeBinaryHeader,
  encodeCommand,
  encodeCommandToBuffer,
  type RemotingCommand,
  RequestCode,
} from '../../src/protocol/index.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const REQUEST: RemotingCommand = {
  code: 310,
  language: 'JAVA',
  version: 401,
  opaque: 7,
  flag: 0,
  remark: undefined,
  extFields: { a: 'PG', b: 'TopicA', e: '0' },
  body: Buffer.from('hello'),
  serializeType: 1,
};

const RESPONSE: RemotingCommand = {
  code: 17,
  language: 'JAVA',
  version: 401,
  opaque: 7,
  flag: 1,
  remark: 'topic ✗',
  extFields: undefined,
  body: undefined,
  serializeType: 1,
};

// code 310 | JAVA | version 401 | opaque 7 | flag 0 | no remark | 30 bytes of extFields:
// "a"→"PG" (2+1+4+2 = 9), "b"→"TopicA" (2+1+4+6 = 13), "e"→"0" (2+1+4+1 = 8).
const REQUEST_HEADER = `
  0136 00 0191 00000007 00000000
  00000000
  0000001e
    0001 61 00000002 5047
    0001 62 00000006 546f70696341
    0001 65 00000001 30`;

// code 17 | JAVA | version 401 | opaque 7 | flag 1 | remark "topic ✗" (9 bytes) | no extFields.
const RESPONSE_HEADER = `
  0011 00 0191 00000007 00000001
  00000009 746f70696320 e29c97
  00000000`;

describe('binary header: byte-exact encoding', () => {
  test('request: header 21 + 30 = 51 = 0x33 bytes, body after it', () => {
    assert.deepEqual(encodeBinaryHeader(REQUEST), hex(REQUEST_HEADER));
    // LENGTH = 4 + 51 + 5 = 60 = 0x3c; serialize type 1 in the high byte, header length 0x33.
    const frame = hex(`0000003c 01000033 ${REQUEST_HEADER} 68656c6c6f`);
    assert.deepEqual(encodeCommandToBuffer(REQUEST), frame);
    assert.equal(encodeCommand(REQUEST)[1], REQUEST.body);
    assert.deepEqual(decodeFrame(frame.subarray(4)), REQUEST);
  });

  test('response: header 21 + 9 = 30 = 0x1e bytes, no body', () => {
    assert.deepEqual(encodeBinaryHeader(RESPONSE), hex(RESPONSE_HEADER));
    const frame = hex(`00000022 0100001e ${RESPONSE_HEADER}`);
    assert.deepEqual(encodeCommandToBuffer(RESPONSE), frame);
    assert.deepEqual(decodeFrame(frame.subarray(4)), RESPONSE);
  });

  test('negative int16 and int32 fields, NODE_JS', () => {
    const cmd = {
      ...RESPONSE,
      code: -1,
      version: -32768,
      opaque: -2,
      flag: -1,
      language: 'NODE_JS' as const,
    };
    assert.deepEqual(
      encodeBinaryHeader(cmd),
      hex('ffff 0d 8000 fffffffe ffffffff 00000009 746f70696320e29c97 00000000'),
    );
    assert.deepEqual(decodeBinaryHeader(encodeBinaryHeader(cmd)), cmd);
  });

  test('empty remark and empty extFields travel as absent', () => {
    const cmd = { ...RESPONSE, remark: '', extFields: {} };
    const bytes = encodeBinaryHeader(cmd);
    assert.deepEqual(bytes, hex('0011 00 0191 00000007 00000001 00000000 00000000'));
    const back = decodeBinaryHeader(bytes);
    assert.equal(back.remark, undefined);
    assert.equal(back.extFields, undefined);
  });

  test('an empty key and an empty value are kept', () => {
    const cmd = { ...RESPONSE, remark: undefined, extFields: { '': '' } };
    const bytes = encodeBinaryHeader(cmd);
    assert.deepEqual(bytes, hex('0011 00 0191 00000007 00000001 00000000 00000006 0000 00000000'));
    assert.deepEqual(decodeBinaryHeader(bytes).extFields, { '': '' });
  });
});

describe('binary header: refused on encode', () => {
  test('a code over int16 (POP_MESSAGE) is HEADER_INVALID, not truncated as Java does', () => {
    const cmd = { ...RESPONSE, code: RequestCode.POP_MESSAGE };
    assert.throws(
      () => encodeBinaryHeader(cmd),
      (e) => isTsmqError(e, 'HEADER_INVALID'),
    );
    assert.throws(
      () => encodeCommand(cmd),
      (e) => isTsmqError(e, 'HEADER_INVALID'),
    );
  });

  test('a version over int16 and a key over 32767 bytes are HEADER_INVALID', () => {
    assert.throws(
      () => encodeBinaryHeader({ ...RESPONSE, version: 40000 }),
      (e) => isTsmqError(e, 'HEADER_INVALID'),
    );
    const ext = { ['k'.repeat(32768)]: 'v' };
    assert.throws(
      () => encodeBinaryHeader({ ...RESPONSE, extFields: ext }),
      (e) => isTsmqError(e, 'HEADER_INVALID'),
    );
    const ok = { ['é'.repeat(16383)]: 'v' }; // 32766 bytes
    assert.equal(
      Object.keys(decodeBinaryHeader(encodeBinaryHeader({ ...RESPONSE, extFields: ok })).extFields!)[0]!
        .length,
      16383,
    );
  });
});

describe('binary header: decoding', () => {
  test('unknown language numbers read as OTHER, as Java reads them as null', () => {
    const bytes = hex(RESPONSE_HEADER);
    bytes[2] = 14;
    assert.equal(decodeBinaryHeader(bytes).language, 'OTHER');
    bytes[2] = 0xff;
    assert.equal(decodeBinaryHeader(bytes).language, 'OTHER');
  });

  test('bytes after EXTFIELDS are ignored, as Java ignores them', () => {
    const bytes = Buffer.concat([hex(REQUEST_HEADER), hex('deadbeef')]);
    assert.deepEqual(decodeBinaryHeader(bytes), { ...REQUEST, body: undefined });
  });

  test('a duplicate key reads as its last value; __proto__ stays an own key', () => {
    // 8 + 8 + (2 + 9 + 4 + 1) = 32 = 0x20 bytes of entries.
    const bytes = hex(`0011 00 0000 00000001 00000000 00000000 00000020
      0001 6b 00000001 31
      0001 6b 00000001 32
      0009 5f5f70726f746f5f5f 00000001 33`);
    const ext = decodeBinaryHeader(bytes).extFields!;
    assert.equal(Object.getPrototypeOf(ext), Object.prototype);
    assert.deepEqual(Object.keys(ext), ['k', '__proto__']);
    assert.equal(ext.k, '2');
    assert.equal(Object.getOwnPropertyDescriptor(ext, '__proto__')?.value, '3');
  });

  test('invalid UTF-8 reads as U+FFFD, as Java reads it', () => {
    const bytes = hex('0011 00 0000 00000001 00000000 00000001 ff 00000000');
    assert.equal(decodeBinaryHeader(bytes).remark, '\ufffd');
  });

  test('a header range inside a larger buffer', () => {
    const bytes = Buffer.concat([hex('aabb'), hex(RESPONSE_HEADER), hex('ccdd')]);
    assert.deepEqual(decodeBinaryHeader(bytes, 2, bytes.length - 2), RESPONSE);
  });
});

describe('binary header: HEADER_INVALID', () => {
  const cases: [string, string][] = [
    ['empty', ''],
    ['shorter than the fixed 21 bytes', '0011 00 0000 00000001 00000000 00000000 000000'],
    ['negative remark length', '0011 00 0000 00000001 00000000 ffffffff 00000000'],
    ['remark length past the end', '0011 00 0000 00000001 00000000 00000002 41 00000000'],
    ['remark eats the extFields length', '0011 00 0000 00000001 00000000 00000004 00000000'],
    ['negative extFields length', '0011 00 0000 00000001 00000000 00000000 80000000'],
    ['extFields length past the end', '0011 00 0000 00000001 00000000 00000000 00000008 0001 61 00000000'],
    ['entry cut in its key length', '0011 00 0000 00000001 00000000 00000000 00000001 00'],
    ['negative key length', '0011 00 0000 00000001 00000000 00000000 00000006 ffff 00000000'],
    ['key past the entries', '0011 00 0000 00000001 00000000 00000000 00000006 0005 00000000'],
    ['entry cut in its value length', '0011 00 0000 00000001 00000000 00000000 00000005 0001 61 0000'],
    ['negative value length', '0011 00 0000 00000001 00000000 00000000 00000007 0001 61 ffffffff'],
    ['value past the entries', '0011 00 0000 00000001 00000000 00000000 00000007 0001 61 00000001'],
  ];
  for (const [name, bytes] of cases) {
    test(name, () => {
      assert.throws(
        () => decodeBinaryHeader(hex(bytes)),
        (e) => isTsmqError(e, 'HEADER_INVALID'),
      );
    });
  }

  test('every truncation of a valid header is refused or reads as a shorter valid header', () => {
    const full = hex(REQUEST_HEADER);
    for (let n = 0; n < full.length; n++) {
      assert.throws(
        () => decodeBinaryHeader(full.subarray(0, n)),
        (e) => isTsmqError(e, 'HEADER_INVALID'),
        `cut at ${n}`,
      );
    }
  });
});

describe('binary header: the encoder scratch and the JavaScript string paths', () => {
  test('many distinct short keys and values read back as written', () => {
    const values: string[] = [];
    for (let i = 0; i < 5000; i++) values.push(i % 3 === 0 ? String(i) : `v${i.toString(36)}`);
    for (const round of [0, 1]) {
      for (let i = 0; i < values.length; i += 7) {
        const ext: Record<string, string> = {};
        for (let j = i; j < Math.min(i + 7, values.length); j++)
          ext[values[j]!] = values[values.length - 1 - j]!;
        const cmd: RemotingCommand = { ...REQUEST, extFields: ext };
        assert.deepEqual(
          decodeBinaryHeader(encodeBinaryHeader(cmd)),
          { ...cmd, body: undefined },
          `round ${round}`,
        );
      }
    }
  });

  test('ASCII, non-ASCII, empty and long strings at every length around the JavaScript paths', () => {
    const pieces = ['', 'x', 'é', '✗', '𝄞', 'a\u0001b'];
    for (let n = 0; n <= 40; n++) {
      for (const p of pieces) {
        const s = 'k'.repeat(n) + p;
        const cmd: RemotingCommand = {
          ...RESPONSE,
          remark: s || undefined,
          extFields: { [`${s}K`]: s, z: s },
        };
        const header = encodeBinaryHeader(cmd);
        assert.deepEqual(decodeBinaryHeader(header), cmd, JSON.stringify(s));
      }
    }
  });

  test('a header larger than the scratch buffer', () => {
    const big = 'ü'.repeat(40_000); // 80,000 UTF-8 bytes
    const cmd: RemotingCommand = { ...REQUEST, extFields: { a: 'PG', big, b: 'x'.repeat(30_000) } };
    const header = encodeBinaryHeader(cmd);
    assert.equal(header.length, 21 + (6 + 1 + 2) + (6 + 3 + 80_000) + (6 + 1 + 30_000));
    assert.deepEqual(decodeBinaryHeader(header), { ...cmd, body: undefined });
    // And the next, small header is still right.
    assert.deepEqual(encodeBinaryHeader(REQUEST), hex(REQUEST_HEADER));
  });
});
