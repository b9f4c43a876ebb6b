/**
 * Seeded fuzzing of the frame decoder and the header decoders. Whatever the bytes, a decoder only
 * ever returns well-formed commands or throws a TsmqError of the remoting range — never another
 * exception, never a hang — and whatever it returns re-encodes to a frame that decodes to the
 * same command. Replay a failure with the TSMQ_SEED it prints.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { isTsmqError } from '../../src/common/errors.js';
import {
  decodeBinaryHeader,
  decodeFrame,
  decodeJsonHeader,
  encodeCommandToBuffer,
  FrameDecoder,
  type RemotingCommand,
} from '../../src/protocol/index.js';
import {
  assertWellFormed,
  normalize,
  type Rng,
  randomChunks,
  randomCommand,
  seeded,
} from '../../test-support/protocol-fixtures.js';

const REMOTING_ERRORS = new Set(['FRAME_TOO_LARGE', 'FRAME_INVALID', 'HEADER_INVALID']);

const outcomes = { commands: 0, errors: 0 };

/** Runs `fn`; it may return commands or throw a remoting TsmqError, nothing else. */
function expectCommandsOrError(what: string, fn: () => RemotingCommand[]): RemotingCommand[] {
  let cmds: RemotingCommand[];
  try {
    cmds = fn();
  } catch (e) {
    if (!isTsmqError(e) || !REMOTING_ERRORS.has(e.codeName)) {
      throw new Error(`${what}: threw something other than a remoting TsmqError: ${String(e)}`, { cause: e });
    }
    outcomes.errors++;
    return [];
  }
  for (const cmd of cmds) {
    assertWellFormed(cmd);
    // Canonical: what we decoded, we can encode, and it reads back the same.
    assert.deepStrictEqual(decodeFrame(encodeCommandToBuffer(cmd).subarray(4)), cmd, what);
  }
  outcomes.commands += cmds.length;
  return cmds;
}

function feed(rng: Rng, stream: Buffer, maxFrameBytes?: number): RemotingCommand[] {
  const decoder = new FrameDecoder(maxFrameBytes === undefined ? {} : { maxFrameBytes });
  const out: RemotingCommand[] = [];
  for (const chunk of randomChunks(rng, stream)) out.push(...decoder.push(chunk));
  return out;
}

/** A command small enough to fuzz quickly. */
function smallCommand(rng: Rng): RemotingCommand {
  return randomCommand(rng, rng.bool() ? 0 : 1, { maxBodyBytes: 256 });
}

function frameOf(serializeType: number, header: Buffer, body: Buffer): Buffer {
  const prefix = Buffer.alloc(8);
  prefix.writeInt32BE(4 + header.length + body.length, 0);
  prefix.writeUInt32BE(((serializeType << 24) | header.length) >>> 0, 4);
  return Buffer.concat([prefix, header, body]);
}

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x22, 0x5c, 0x7b, 0x7d];

function mutate(rng: Rng, buf: Buffer): Buffer {
  const out = Buffer.from(buf);
  const n = rng.int(1, 6);
  for (let i = 0; i < n && out.length > 0; i++) {
    const at = rng.int(0, out.length - 1);
    out[at] = rng.bool(0.5) ? rng.pick(INTERESTING) : rng.int(0, 255);
  }
  return out;
}

// Random JSON values for structure-aware header fuzzing.
const NAMES = [
  'code',
  'language',
  'version',
  'opaque',
  'flag',
  'remark',
  'extFields',
  'serializeTypeCurrentRPC',
  'x',
  '__proto__',
];
function randomJsonValue(rng: Rng, depth: number): unknown {
  switch (rng.int(0, depth > 1 ? 8 : 10)) {
    case 0:
      return null;
    case 1:
      return rng.bool();
    case 2:
      return rng.int32();
    case 3:
      return rng.pick([1.5, -0, 1e300, -1e21, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 + 2]);
    case 4:
      return String(rng.int32());
    case 5:
      return rng.pick(['JAVA', 'NODE_JS', 'OTHER', '', 'JSON', 'ROCKETMQ', 'toString', '9999999999']);
    case 6:
    case 7:
    case 8:
      return rng.bytes(rng.int(0, 8)).toString('latin1');
    case 9: {
      const a: unknown[] = [];
      for (let i = rng.int(0, 3); i > 0; i--) a.push(randomJsonValue(rng, depth + 1));
      return a;
    }
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(0, 6); i > 0; i--) {
        Object.defineProperty(o, rng.bool(0.7) ? rng.pick(NAMES) : rng.bytes(2).toString('hex'), {
          value: randomJsonValue(rng, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return o;
    }
  }
}

function randomJsonHeader(rng: Rng): Buffer {
  const o: Record<string, unknown> = {};
  for (const name of NAMES) {
    if (rng.bool(0.6)) {
      Object.defineProperty(o, name, {
        value: name === 'extFields' && rng.bool(0.5) ? randomJsonValue(rng, 0) : randomJsonValue(rng, 1),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  const text = Buffer.from(JSON.stringify(rng.bool(0.95) ? o : randomJsonValue(rng, 0)) ?? 'undefined');
  return rng.bool(0.2) ? mutate(rng, text) : text;
}

const CASES = 6000; // per test; four tests

describe('fuzz: decoders return commands or throw TsmqError, nothing else', { timeout: 60_000 }, () => {
  seeded('random bytes, random chunks, random limits', 0xf001, (rng) => {
    for (let i = 0; i < CASES; i++) {
      const stream = rng.bytes(rng.bool(0.9) ? rng.int(0, 64) : rng.int(0, 1024));
      const max = rng.bool(0.3) ? rng.int(8, 512) : undefined;
      expectCommandsOrError(`case ${i}`, () => feed(rng, stream, max));
      expectCommandsOrError(`case ${i} (decodeFrame)`, () => [decodeFrame(stream)]);
      expectCommandsOrError(`case ${i} (binary header)`, () => [decodeBinaryHeader(stream)]);
    }
  });

  seeded(
    'well-framed random headers: random serialize type, binary bytes, JSON structures',
    0xf002,
    (rng) => {
      for (let i = 0; i < CASES; i++) {
        const type = rng.pick([0, 0, 0, 1, 1, rng.int(2, 255)]);
        let header: Buffer;
        if (type === 0) header = randomJsonHeader(rng);
        else if (type === 1 && rng.bool(0.5))
          header = mutate(
            rng,
            encodeCommandToBuffer({
              ...smallCommand(rng),
              serializeType: 1,
              code: 1,
              version: 1,
              body: undefined,
            }).subarray(8),
          );
        else header = rng.bytes(rng.int(0, 64));
        const body = rng.bytes(rng.int(0, 8));
        let frame = frameOf(type, header, body);
        if (rng.bool(0.1)) frame = mutate(rng, frame);
        expectCommandsOrError(`case ${i}`, () => feed(rng, frame));
        if (type === 0) expectCommandsOrError(`case ${i} (JSON header)`, () => [decodeJsonHeader(header)]);
        if (type === 1)
          expectCommandsOrError(`case ${i} (binary header)`, () => [decodeBinaryHeader(header)]);
      }
    },
  );

  seeded('mutated valid streams', 0xf003, (rng) => {
    for (let i = 0; i < CASES; i++) {
      const cmds: RemotingCommand[] = [];
      for (let k = rng.int(1, 3); k > 0; k--) cmds.push(smallCommand(rng));
      const stream = mutate(rng, Buffer.concat(cmds.map(encodeCommandToBuffer)));
      expectCommandsOrError(`case ${i}`, () =>
        feed(rng, stream, rng.bool(0.2) ? rng.int(8, 4096) : undefined),
      );
    }
  });

  seeded('truncated valid streams return exactly the whole frames before the cut', 0xf004, (rng) => {
    for (let i = 0; i < CASES; i++) {
      const cmds: RemotingCommand[] = [];
      for (let k = rng.int(1, 3); k > 0; k--) cmds.push(smallCommand(rng));
      const frames = cmds.map(encodeCommandToBuffer);
      const stream = Buffer.concat(frames);
      const cut = rng.int(0, stream.length - 1);
      const got = expectCommandsOrError(`case ${i}`, () => feed(rng, stream.subarray(0, cut)));
      let whole = 0;
      for (let end = 0, k = 0; k < frames.length; k++) {
        end += frames[k]!.length;
        if (end <= cut) whole++;
      }
      assert.deepStrictEqual(got, cmds.slice(0, whole).map(normalize), `case ${i}: cut at ${cut}`);
      // A frame cut short and handed to decodeFrame as if whole: a command or a TsmqError.
      const first = frames[0]!;
      const short = first.subarray(4, rng.int(4, first.length));
      expectCommandsOrError(`case ${i} (decodeFrame)`, () => [decodeFrame(short)]);
    }
    assert.ok(outcomes.commands > 0 && outcomes.errors > 0, JSON.stringify(outcomes));
  });
});
