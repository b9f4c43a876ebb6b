import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isTsmqError } from '../../src/common/errors.js';
import {
  decodeFrame,
  decodeJsonHeader,
  encodeCommand,
  encodeCommandToBuffer,
  encodeJsonHeader,
  jsonHeaderText,
  type RemotingCommand,
} from '../../src/protocol/index.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const json = (text: string) => Buffer.from(text, 'utf8');

/** A SEND_MESSAGE_V2 request as a 4.x Java producer sends it (with fewer extFields). */
const REQUEST: RemotingCommand = {
  code: 310,
  language: 'JAVA',
  version: 401,
  opaque: 7,
  flag: 0,
  remark: undefined,
  extFields: { a: 'PG', b: 'TopicA', e: '0' },
  body: Buffer.from('hello'),
  serializeType: 0,
};

/** A TOPIC_NOT_EXIST response with a remark outside ASCII (✗ is 3 bytes of UTF-8). */
const RESPONSE: RemotingCommand = {
  code: 17,
  language: 'JAVA',
  version: 401,
  opaque: 7,
  flag: 1,
  remark: 'topic ✗',
  extFields: undefined,
  body: undefined,
  serializeType: 0,
};

describe('JSON header: byte-exact encoding', () => {
  test('request: fastjson key order, no remark, body after the header', () => {
    // 12 + 12 + 31 + 9 + 18 + 11 + 33 + 14 + 1 = 141 = 0x8d bytes of header text.
    const text =
      '{"code":310,"extFields":{"a":"PG","b":"TopicA","e":"0"},"flag":0,"language":"JAVA",' +
      '"opaque":7,"serializeTypeCurrentRPC":"JSON","version":401}';
    assert.equal(jsonHeaderText(REQUEST), text);
    assert.deepEqual(encodeJsonHeader(REQUEST), json(text));
    // LENGTH = 4 + 141 + 5 = 150 = 0x96; serialize type 0, header length 0x8d.
    const frame = Buffer.concat([hex('00000096 0000008d'), json(text), hex('68656c6c6f')]);
    assert.deepEqual(encodeCommandToBuffer(REQUEST), frame);
    const parts = encodeCommand(REQUEST);
    assert.equal(parts.length, 2);
    assert.equal(parts[1], REQUEST.body, 'the body goes out as the caller gave it, not copied');
    assert.deepEqual(decodeFrame(frame.subarray(4)), REQUEST);
  });

  test('response: remark as UTF-8, no extFields, no body', () => {
    // 10 + 9 + 18 + 11 + 21 + 33 + 14 + 1 = 117 = 0x75 bytes.
    const text =
      '{"code":17,"flag":1,"language":"JAVA","opaque":7,"remark":"topic ✗",' +
      '"serializeTypeCurrentRPC":"JSON","version":401}';
    assert.equal(jsonHeaderText(RESPONSE), text);
    assert.equal(json(text).length, 0x75);
    const frame = Buffer.concat([hex('00000079 00000075'), json(text)]);
    assert.deepEqual(encodeCommandToBuffer(RESPONSE), frame);
    assert.equal(encodeCommand(RESPONSE).length, 1);
    assert.deepEqual(decodeFrame(frame.subarray(4)), RESPONSE);
  });

  test('escapes: quotes, backslashes, control characters as fastjson writes them', () => {
    const cmd = { ...RESPONSE, remark: 'a"b\\c\n\u0001', extFields: { i: 'TAGS\u0001T\u0002' } };
    assert.equal(
      jsonHeaderText(cmd),
      '{"code":17,"extFields":{"i":"TAGS\\u0001T\\u0002"},"flag":1,"language":"JAVA","opaque":7,' +
        '"remark":"a\\"b\\\\c\\n\\u0001","serializeTypeCurrentRPC":"JSON","version":401}',
    );
  });
});

describe('JSON header: what real peers send', () => {
  test('a Java 4.x response (captured form): no remark, no extFields', () => {
    const cmd = decodeJsonHeader(
      json('{"code":0,"flag":1,"language":"JAVA","opaque":0,"serializeTypeCurrentRPC":"JSON","version":403}'),
    );
    assert.deepEqual(cmd, {
      code: 0,
      language: 'JAVA',
      version: 403,
      opaque: 0,
      flag: 1,
      remark: undefined,
      extFields: undefined,
      body: undefined,
      serializeType: 0,
    });
  });

  test('a Java 4.x SEND_MESSAGE_V2 with property separators escaped', () => {
    const cmd = decodeJsonHeader(
      json(
        '{"code":310,"extFields":{"f":"0","g":"1491978653614","d":"4","e":"0","b":"yyztest2",' +
          '"c":"TBW102","a":"yyzGroup2","j":"0","k":"false","h":"0",' +
          '"i":"TAGS\\u0001TAG\\u0002WAIT\\u0001true\\u0002"},"flag":0,"language":"JAVA","opaque":5,' +
          '"serializeTypeCurrentRPC":"JSON","version":115}',
      ),
    );
    assert.equal(cmd.code, 310);
    assert.equal(cmd.extFields?.g, '1491978653614');
    assert.equal(cmd.extFields?.i, 'TAGS\u0001TAG\u0002WAIT\u0001true\u0002');
  });

  test('ali-ons: its own key order, no serializeTypeCurrentRPC, numbers and booleans in extFields', () => {
    const cmd = decodeJsonHeader(
      json(
        '{"code":11,"language":"JAVA","opaque":3,"flag":0,"version":121,' +
          '"extFields":{"consumerGroup":"G","queueId":2,"queueOffset":1700000000000,"unitMode":false,' +
          '"subscription":"*","gone":null}}',
      ),
    );
    assert.equal(cmd.code, 11);
    assert.equal(cmd.version, 121);
    assert.deepEqual(cmd.extFields, {
      consumerGroup: 'G',
      queueId: '2',
      queueOffset: '1700000000000',
      unitMode: 'false',
      subscription: '*',
    });
  });

  test('explicit nulls, unknown keys, whitespace; missing fields take Java defaults', () => {
    const cmd = decodeJsonHeader(
      json(' { "code" : 34 , "remark" : null , "extFields" : null , "future" : {"x":[1]} , "flag" : 2 } '),
    );
    assert.deepEqual(cmd, {
      code: 34,
      language: 'JAVA',
      version: 0,
      opaque: 0,
      flag: 2,
      remark: undefined,
      extFields: undefined,
      body: undefined,
      serializeType: 0,
    });
    assert.equal(decodeJsonHeader(json('{}')).code, 0);
  });

  test('language: names, numbers, unknown names read as OTHER', () => {
    const lang = (v: string) => decodeJsonHeader(json(`{"code":1,"language":${v}}`)).language;
    assert.equal(lang('"NODE_JS"'), 'NODE_JS');
    assert.equal(lang('"GO"'), 'GO');
    assert.equal(lang('9'), 'GO');
    assert.equal(lang('""'), 'OTHER');
    assert.equal(lang('"KOTLIN"'), 'OTHER');
    assert.equal(lang('"toString"'), 'OTHER');
    assert.equal(lang('99'), 'OTHER');
    assert.equal(lang('null'), 'JAVA');
    assert.equal(lang('{}'), 'OTHER');
  });

  test('serializeTypeCurrentRPC is ignored: the frame says how the header is written', () => {
    const cmd = decodeJsonHeader(json('{"code":1,"serializeTypeCurrentRPC":"ROCKETMQ"}'));
    assert.equal(cmd.serializeType, 0);
  });

  test('ints as digit strings, as fastjson reads them; -0 reads as 0', () => {
    const cmd = decodeJsonHeader(json('{"code":"105","opaque":"-12","version":-0}'));
    assert.equal(cmd.code, 105);
    assert.equal(cmd.opaque, -12);
    assert.ok(Object.is(cmd.version, 0));
  });

  test('remark: numbers and booleans become their text', () => {
    assert.equal(decodeJsonHeader(json('{"remark":42}')).remark, '42');
    assert.equal(decodeJsonHeader(json('{"remark":""}')).remark, '');
  });

  test('extFields: nested values become JSON text, __proto__ stays an own key', () => {
    const cmd = decodeJsonHeader(json('{"extFields":{"o":{"x":1},"l":[1,"a"],"__proto__":"p"}}'));
    const ext = cmd.extFields!;
    assert.equal(ext.o, '{"x":1}');
    assert.equal(ext.l, '[1,"a"]');
    assert.equal(Object.getPrototypeOf(ext), Object.prototype);
    assert.deepEqual(Object.keys(ext), ['o', 'l', '__proto__']);
    assert.equal(Object.getOwnPropertyDescriptor(ext, '__proto__')?.value, 'p');
    // and a number under __proto__ is turned into text without touching the prototype
    const n = decodeJsonHeader(json('{"extFields":{"__proto__":5}}')).extFields!;
    assert.equal(Object.getPrototypeOf(n), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(n, '__proto__')?.value, '5');
  });

  test('lone surrogates survive JSON (escaped by JSON.stringify)', () => {
    const cmd = { ...RESPONSE, remark: 'x\ud800y' };
    assert.equal(decodeJsonHeader(encodeJsonHeader(cmd)).remark, 'x\ud800y');
  });
});

describe('JSON header: HEADER_INVALID', () => {
  const cases: [string, string][] = [
    ['empty', ''],
    ['not JSON', '{"code":'],
    ['trailing garbage', '{"code":1}x'],
    ['top level array', '[1,2]'],
    ['top level string', '"code"'],
    ['top level number', '42'],
    ['top level null', 'null'],
    ['code a fraction', '{"code":1.5}'],
    ['code over int32', '{"code":2147483648}'],
    ['code under int32', '{"code":-2147483649}'],
    ['code not digits', '{"code":"10a"}'],
    ['code digit string over int32', '{"code":"9999999999"}'],
    ['code boolean', '{"code":true}'],
    ['code object', '{"code":{}}'],
    ['opaque NaN-ish', '{"opaque":1e400}'],
    ['flag array', '{"flag":[1]}'],
    ['version string', '{"version":"v1"}'],
    ['extFields array', '{"extFields":["a"]}'],
    ['extFields string', '{"extFields":"a=b"}'],
    ['remark object', '{"remark":{"a":1}}'],
  ];
  for (const [name, text] of cases) {
    test(name, () => {
      assert.throws(
        () => decodeJsonHeader(json(text)),
        (e) => isTsmqError(e, 'HEADER_INVALID'),
      );
    });
  }
});
