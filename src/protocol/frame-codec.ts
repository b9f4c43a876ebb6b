/**
 * The remoting frame: how one RemotingCommand travels on a TCP connection, in either direction.
 * Every integer is big-endian.
 *
 *     offset   size
 *    +-------+-------+----------------------------------------------------------------+
 *    |     0 |     4 | LENGTH = n     int32, bytes that follow (this field excluded)   |
 *    |     4 |     1 | SERIALIZE      0 JSON header, 1 ROCKETMQ binary header         |
 *    |     5 |     3 | HEADERLEN = h  uint24                                          |
 *    |     8 |     h | HEADER         see json-header.ts / binary-header.ts           |
 *    |   8+h | n-4-h | BODY           opaque to this layer; absent when n = 4 + h     |
 *    +-------+-------+----------------------------------------------------------------+
 *
 * Bytes 4..7 are one int32 in RocketMQ's code (`serializeType << 24 | headerLength`). There is no
 * magic, version or checksum — it is RocketMQ's format, not ours — so a peer that is not speaking
 * it is caught by the checks below or by the header decoders, not by a CRC.
 *
 * The limit. A frame of more than `maxFrameBytes` (16 MiB by default, RocketMQ's
 * `com.rocketmq.remoting.frameMaxLength`), LENGTH field included as Netty counts it, is refused
 * as soon as its LENGTH is read, before any of it is buffered: FRAME_TOO_LARGE.
 *
 * Errors, all TsmqError and all fatal to the connection (a byte stream has no resync point):
 *
 *     LENGTH < 4 (negative included)                    FRAME_INVALID
 *     LENGTH + 4 > maxFrameBytes                        FRAME_TOO_LARGE
 *     HEADERLEN > LENGTH - 4                            FRAME_INVALID
 *     SERIALIZE not 0 or 1                              HEADER_INVALID
 *     HEADER not parsable                               HEADER_INVALID
 *
 * A connection cut mid-frame leaves a partial frame in the decoder, which is simply dropped with
 * it: nothing is returned for a frame until all of it has arrived.
 */
import { assert, TsmqError } from '../common/errors.js';
import { decodeBinaryHeader, encodeBinaryHeaderWithReserve } from './binary-header.js';
import { decodeJsonHeader, encodeJsonHeaderWithReserve } from './json-header.js';
import type { RemotingCommand } from './remoting-command.js';

/** Bytes of the LENGTH field. */
export const FRAME_LENGTH_BYTES = 4;
/** Bytes before the header: LENGTH and SERIALIZE|HEADERLEN. */
export const FRAME_PREFIX_BYTES = 8;
/** The largest header HEADERLEN can express. */
export const MAX_HEADER_BYTES = 0xffffff;
/** The default frame limit, LENGTH field included: 16 MiB, as RocketMQ's. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** LENGTH is an int32, so no frame is longer than this, whatever the limit. */
const INT32_MAX = 0x7fffffff;

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/**
 * Encodes a command as [prefix + header, body] — the body is the caller's Buffer, not copied —
 * or as [prefix + header] when there is no body. Write both (socket.cork() … uncork()).
 * Throws TsmqError HEADER_INVALID if the binary header cannot express the command and
 * FRAME_TOO_LARGE if LENGTH or HEADERLEN would overflow; the peer's limit is the caller's
 * business.
 */
export function encodeCommand(cmd: RemotingCommand): Buffer[] {
  assert(cmd.serializeType === 0 || cmd.serializeType === 1, `serialize type ${cmd.serializeType}`);
  const head =
    cmd.serializeType === 1
      ? encodeBinaryHeaderWithReserve(cmd, FRAME_PREFIX_BYTES)
      : encodeJsonHeaderWithReserve(cmd, FRAME_PREFIX_BYTES);
  const headerBytes = head.length - FRAME_PREFIX_BYTES;
  const body = cmd.body;
  const bodyBytes = body === undefined ? 0 : body.length;
  if (headerBytes > MAX_HEADER_BYTES) {
    throw new TsmqError('FRAME_TOO_LARGE', `header of ${headerBytes} bytes is over ${MAX_HEADER_BYTES}`);
  }
  const length = 4 + headerBytes + bodyBytes;
  if (length > INT32_MAX) {
    throw new TsmqError('FRAME_TOO_LARGE', `frame of ${length} bytes does not fit an int32 length`);
  }
  head.writeInt32BE(length, 0);
  head.writeUInt32BE(((cmd.serializeType << 24) | headerBytes) >>> 0, 4);
  return bodyBytes > 0 ? [head, body!] : [head];
}

/** The whole frame in one Buffer (copies the body; for tests and small commands). */
export function encodeCommandToBuffer(cmd: RemotingCommand): Buffer {
  const parts = encodeCommand(cmd);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/**
 * Decodes one frame given without its LENGTH field (bytes 4.. of the diagram). The header's
 * strings are copied out; the body is a view of `frame`, not a copy.
 */
export function decodeFrame(frame: Buffer): RemotingCommand {
  if (frame.length < 4) {
    throw new TsmqError(
      'FRAME_INVALID',
      `frame of ${frame.length} bytes is shorter than its 4-byte header length`,
    );
  }
  const word = frame.readUInt32BE(0);
  const serializeType = word >>> 24;
  const headerBytes = word & MAX_HEADER_BYTES;
  const headerEnd = 4 + headerBytes;
  if (headerEnd > frame.length) {
    throw new TsmqError(
      'FRAME_INVALID',
      `header length ${headerBytes} is over the ${frame.length - 4} bytes left in the frame`,
    );
  }
  let cmd: RemotingCommand;
  if (serializeType === 0) cmd = decodeJsonHeader(frame, 4, headerEnd);
  else if (serializeType === 1) cmd = decodeBinaryHeader(frame, 4, headerEnd);
  else throw new TsmqError('HEADER_INVALID', `unknown serialize type ${serializeType}`);
  if (headerEnd < frame.length) cmd.body = frame.subarray(headerEnd);
  return cmd;
}

export interface FrameDecoderOptions {
  /** The largest frame accepted, LENGTH field included. Default 16 MiB. */
  maxFrameBytes?: number;
}

/**
 * Turns a byte stream, cut anywhere, into commands. Feed it every chunk the socket gives, in
 * order; each call returns the commands completed by that chunk (often none, sometimes many).
 *
 * Cost. Frames that lie whole inside one chunk are decoded in place, with no copy. A frame split
 * across chunks is kept as a list of views and copied once, when its last byte arrives, so the
 * work is linear in the bytes pushed, however they are cut; memory held is what has arrived of
 * the current frame, never more than the limit.
 *
 * Ownership. The decoder keeps views of the chunks it is given, and bodies it returns may be
 * views of them: do not reuse a chunk's memory after pushing it (Node's sockets never do).
 *
 * After it throws, the decoder is spent: every later push throws the same error. Close the
 * connection.
 */
export class FrameDecoder {
  readonly maxFrameBytes: number;
  /** Views of the bytes of the current, incomplete frame (LENGTH field included). */
  private parts: Buffer[] = [];
  private partsBytes = 0;
  /** Total bytes of the current frame once its LENGTH is known, else -1. */
  private frameBytes = -1;
  private failure: TsmqError | undefined;

  constructor(opts: FrameDecoderOptions = {}) {
    const max = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    assert(Number.isInteger(max) && max >= 8, `maxFrameBytes ${max} must be an integer >= 8`);
    this.maxFrameBytes = max;
  }

  /** Bytes held of a frame not yet complete. */
  get bufferedBytes(): number {
    return this.partsBytes;
  }

  push(chunk: Buffer): RemotingCommand[] {
    if (this.failure !== undefined) throw this.failure;
    try {
      return this.consume(chunk);
    } catch (e) {
      // Only TsmqErrors come from the checks and header decoders; anything else is a bug and
      // still poisons the decoder, since its state is unknown.
      this.failure =
        e instanceof TsmqError ? e : new TsmqError('FRAME_INVALID', 'frame decoder failed', { cause: e });
      this.parts = [];
      this.partsBytes = 0;
      throw e;
    }
  }

  /** Checks a LENGTH field and returns the frame's total size, LENGTH field included. */
  private frameSize(length: number): number {
    if (length < 4) throw new TsmqError('FRAME_INVALID', `frame length ${length} is under 4`);
    if (length > this.maxFrameBytes - FRAME_LENGTH_BYTES) {
      throw new TsmqError(
        'FRAME_TOO_LARGE',
        `frame of ${length + FRAME_LENGTH_BYTES} bytes is over the limit of ${this.maxFrameBytes}`,
      );
    }
    return length + FRAME_LENGTH_BYTES;
  }

  private consume(chunk: Buffer): RemotingCommand[] {
    const out: RemotingCommand[] = [];
    const n = chunk.length;
    let p = 0;
    while (p < n) {
      if (this.partsBytes === 0) {
        // At a frame boundary: decode every frame that lies whole in the chunk, in place.
        const left = n - p;
        if (left >= FRAME_LENGTH_BYTES) {
          const size = this.frameSize(chunk.readInt32BE(p));
          if (left >= size) {
            out.push(decodeFrame(chunk.subarray(p + FRAME_LENGTH_BYTES, p + size)));
            p += size;
            continue;
          }
          this.frameBytes = size;
        }
        this.parts.push(chunk.subarray(p));
        this.partsBytes = left;
        break;
      }
      if (this.frameBytes < 0) {
        // The LENGTH field itself was cut: complete it first.
        const take = Math.min(FRAME_LENGTH_BYTES - this.partsBytes, n - p);
        this.parts.push(chunk.subarray(p, p + take));
        this.partsBytes += take;
        p += take;
        if (this.partsBytes < FRAME_LENGTH_BYTES) break;
        const lengthField = Buffer.concat(this.parts, FRAME_LENGTH_BYTES);
        this.frameBytes = this.frameSize(lengthField.readInt32BE(0));
        this.parts = [lengthField];
        continue;
      }
      const take = Math.min(this.frameBytes - this.partsBytes, n - p);
      this.parts.push(chunk.subarray(p, p + take));
      this.partsBytes += take;
      p += take;
      if (this.partsBytes === this.frameBytes) {
        const frame = Buffer.concat(this.parts, this.frameBytes);
        this.parts = [];
        this.partsBytes = 0;
        this.frameBytes = -1;
        out.push(decodeFrame(frame.subarray(FRAME_LENGTH_BYTES)));
      }
    }
    return out;
  }
}
