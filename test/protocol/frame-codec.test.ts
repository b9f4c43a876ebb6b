import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isTsmqError } from '../../src/common/errors.js';
import {
  createRequest,
  createResponse,
  DEFAULT_MAX_FRAME_BYTES,
  decodeFrame,
  encodeCommand,
  encodeCommandToBuffer,
  FrameDecoder,
  type RemotingCommand,
  type SerializeTypeCode,
} from '../../src/protocol/index.js';
import {
  assertWellFormed,
  byteChunks,
  normalize,
  type Rng,
  randomChunks,
  randomCommand,
  seeded,
} from '../../test-support/protocol-fixtures.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decodeAll(decoder: FrameDecoder, chunks: readonly Buffer[]): RemotingCommand[] {
  const out: RemotingCommand[] = [];
  for (const c of chunks) out.push(...decoder.push(c));
  return out;
}

/** A command with a small body, for streams fed a byte at a time. */
function smallCommand(rng: Rng, type: SerializeTypeCode): RemotingCommand {
  return randomCommand(rng, type, { maxBodyBytes: 2048 });
}

describe('round trips', () => {
  for (const type of [0, 1] as const) {
    const name = type === 0 ? 'JSON' : 'binary';
    seeded(`random commands through the ${name} header`, 0x100 + type, (rng) => {
      for (let i = 0; i < 600; i++) {
        const cmd = randomCommand(rng, type);
        const frame = encodeCommandToBuffer(cmd);
        const back = decodeFrame(frame.subarray(4));
        assertWellFormed(back);
        assert.deepStrictEqual(back, normalize(cmd), `command ${i}`);
        const parts = encodeCommand(cmd);
        assert.deepStrictEqual(Buffer.concat(parts), frame);
        if (cmd.body !== undefined && cmd.body.length > 0) assert.equal(parts[1], cmd.body);
        else assert.equal(parts.length, 1);
      }
    });
  }

  test('requests and responses made by the helpers', () => {
    for (const serializeType of [0, 1] as const) {
      const req = createRequest(105, { topic: 'TopicTest' }, undefined, { serializeType });
      const res = createResponse(req, 0, undefined, undefined, Buffer.from('{"brokerDatas":[]}'));
      assert.deepStrictEqual(decodeFrame(encodeCommandToBuffer(req).subarray(4)), req);
      assert.deepStrictEqual(decodeFrame(encodeCommandToBuffer(res).subarray(4)), res);
    }
  });
});

describe('FrameDecoder chunking', () => {
  seeded('one big chunk, 1-byte chunks and random chunks give the same commands', 0x200, (rng) => {
    const cmds: RemotingCommand[] = [];
    for (let i = 0; i < 150; i++) cmds.push(smallCommand(rng, rng.bool() ? 0 : 1));
    const stream = Buffer.concat(cmds.map(encodeCommandToBuffer));
    const expected = cmds.map(normalize);

    const whole = decodeAll(new FrameDecoder(), [stream]);
    assert.deepStrictEqual(whole, expected);
    const bytes = decodeAll(new FrameDecoder(), byteChunks(stream));
    assert.deepStrictEqual(bytes, expected);
    for (let k = 0; k < 20; k++) {
      const decoder = new FrameDecoder();
      assert.deepStrictEqual(decodeAll(decoder, randomChunks(rng, stream)), expected, `chunking ${k}`);
      assert.equal(decoder.bufferedBytes, 0);
    }
  });

  test('each push returns the commands its chunk completes', () => {
    const a = encodeCommandToBuffer(createRequest(34, undefined, undefined, { opaque: 1 }));
    const b = encodeCommandToBuffer(createRequest(35, undefined, undefined, { opaque: 2 }));
    const d = new FrameDecoder();
    assert.deepEqual(d.push(Buffer.alloc(0)), []);
    assert.deepEqual(d.push(a.subarray(0, 3)), []);
    assert.equal(d.bufferedBytes, 3);
    const out = d.push(Buffer.concat([a.subarray(3), b.subarray(0, 10)]));
    assert.deepEqual(
      out.map((c) => c.opaque),
      [1],
    );
    assert.deepEqual(
      d.push(b.subarray(10)).map((c) => c.opaque),
      [2],
    );
    assert.equal(d.bufferedBytes, 0);
  });

  test('a frame whole in its chunk is decoded in place: its body is a view, not a copy', () => {
    const frame = encodeCommandToBuffer(createRequest(310, { a: 'G' }, Buffer.from('payload')));
    const [cmd] = new FrameDecoder().push(frame);
    assert.equal(cmd!.body!.buffer, frame.buffer);
    assert.equal(cmd!.body!.toString(), 'payload');
  });

  test('a large frame in 1 KiB chunks takes linear, not quadratic, time', () => {
    const body = Buffer.alloc(8 * 1024 * 1024, 7);
    const frame = encodeCommandToBuffer(createRequest(310, undefined, body));
    const d = new FrameDecoder();
    const started = performance.now();
    let got: RemotingCommand[] = [];
    for (let p = 0; p < frame.length; p += 1024) got = got.concat(d.push(frame.subarray(p, p + 1024)));
    const ms = performance.now() - started;
    assert.equal(got.length, 1);
    assert.ok(got[0]!.body!.equals(body));
    // Linear is tens of ms; copying the buffered bytes on every push would take minutes.
    assert.ok(ms < 2000, `${ms} ms`);
  });
});

describe('FrameDecoder limits and errors', () => {
  test('FRAME_TOO_LARGE as soon as the length is read: 2^31-1 throws on its 4 bytes', () => {
    const d = new FrameDecoder();
    assert.equal(d.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES);
    assert.throws(
      () => d.push(hex('7fffffff')),
      (e) => isTsmqError(e, 'FRAME_TOO_LARGE'),
    );
    assert.equal(d.bufferedBytes, 0);
  });

  test('FRAME_TOO_LARGE when the length arrives a byte at a time', () => {
    const d = new FrameDecoder();
    assert.deepEqual(d.push(hex('7f')), []);
    assert.deepEqual(d.push(hex('ff')), []);
    assert.deepEqual(d.push(hex('ff')), []);
    assert.throws(
      () => d.push(hex('ff 00 00')),
      (e) => isTsmqError(e, 'FRAME_TOO_LARGE'),
    );
  });

  test('the limit counts the length field, as Netty does: 16 MiB - 4 passes, one more fails', () => {
    const d = new FrameDecoder();
    assert.deepEqual(d.push(hex('00fffffc')), []); // 16 MiB - 4: accepted, waiting for its bytes
    assert.throws(
      () => new FrameDecoder().push(hex('00fffffd')),
      (e) => isTsmqError(e, 'FRAME_TOO_LARGE'),
    );
  });

  test('a custom limit, exactly', () => {
    const cmd = createRequest(34, undefined, Buffer.alloc(100));
    const frame = encodeCommandToBuffer(cmd);
    assert.equal(new FrameDecoder({ maxFrameBytes: frame.length }).push(frame).length, 1);
    assert.throws(
      () => new FrameDecoder({ maxFrameBytes: frame.length - 1 }).push(frame.subarray(0, 4)),
      (e) => isTsmqError(e, 'FRAME_TOO_LARGE'),
    );
  });

  const frameCases: [string, string, string][] = [
    ['length 0', '00000000', 'FRAME_INVALID'],
    ['length 3', '00000003 000000', 'FRAME_INVALID'],
    ['negative length', 'ffffffff', 'FRAME_INVALID'],
    ['most negative length', '80000000', 'FRAME_INVALID'],
    ['header length over the frame', '00000008 00000005 7b7d0000', 'FRAME_INVALID'],
    ['header length 2^24-1 in a small frame', '00000004 00ffffff', 'FRAME_INVALID'],
    ['serialize type 2', '00000006 02000002 7b7d', 'HEADER_INVALID'],
    ['serialize type 255', '00000004 ff000000', 'HEADER_INVALID'],
    ['empty JSON header', '00000004 00000000', 'HEADER_INVALID'],
    ['JSON header not JSON', '00000006 00000002 7b7b', 'HEADER_INVALID'],
    ['empty binary header', '00000004 01000000', 'HEADER_INVALID'],
    ['binary header too short', '00000008 01000004 00110000', 'HEADER_INVALID'],
  ];
  for (const [name, bytes, code] of frameCases) {
    test(`${code}: ${name}`, () => {
      assert.throws(
        () => new FrameDecoder().push(hex(bytes)),
        (e) => isTsmqError(e, code as 'FRAME_INVALID' | 'HEADER_INVALID'),
      );
      // the same, a byte at a time
      const d = new FrameDecoder();
      assert.throws(
        () => decodeAll(d, byteChunks(hex(bytes))),
        (e) => isTsmqError(e, code as 'FRAME_INVALID' | 'HEADER_INVALID'),
      );
    });
  }

  test('decodeFrame: FRAME_INVALID under 4 bytes', () => {
    assert.throws(
      () => decodeFrame(hex('000000')),
      (e) => isTsmqError(e, 'FRAME_INVALID'),
    );
    assert.throws(
      () => decodeFrame(hex('')),
      (e) => isTsmqError(e, 'FRAME_INVALID'),
    );
  });

  test('after a throw the decoder is spent: every push throws the same error', () => {
    const d = new FrameDecoder();
    const good = encodeCommandToBuffer(createRequest(34));
    let first: unknown;
    try {
      d.push(Buffer.concat([good, hex('00000006 02000002 7b7d'), good]));
    } catch (e) {
      first = e;
    }
    assert.ok(isTsmqError(first, 'HEADER_INVALID'));
    assert.throws(
      () => d.push(good),
      (e) => e === first,
    );
    assert.throws(
      () => d.push(Buffer.alloc(0)),
      (e) => e === first,
    );
  });

  test('encodeCommand: FRAME_TOO_LARGE for a header over 2^24-1 bytes', () => {
    const cmd = createRequest(34, undefined, undefined, { remark: 'x'.repeat(0xffffff) });
    assert.throws(
      () => encodeCommand(cmd),
      (e) => isTsmqError(e, 'FRAME_TOO_LARGE'),
    );
    const fits = createRequest(34, undefined, undefined, {
      remark: 'x'.repeat(0xffffff - 200),
      serializeType: 1,
    });
    assert.equal(encodeCommand(fits)[0]!.readUInt32BE(4), 0x01000000 | (0xffffff - 200 + 21));
  });
});
