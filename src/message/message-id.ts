/**
 * offsetMsgId: the broker-made message id returned in a send reply. It names where the message
 * is stored, so a lookup by id needs no index: the store host, then the record's commit-log
 * offset, as uppercase hex.
 *
 *    +---------------------------+----------+----------------------------+
 *    | store host address        | port     | commit-log physical offset |
 *    | 4 bytes (IPv4), 16 (IPv6) | 4 bytes  | 8 bytes                    |
 *    +---------------------------+----------+----------------------------+
 *    big-endian; 16 bytes = 32 hex digits (IPv4) or 28 bytes = 56 hex digits (IPv6)
 *
 * (The other id, the client-made UNIQ_KEY, is a message property and is not decoded here.)
 */
import { assert, TsmqError } from '../common/errors.js';
import type { HostAddress } from '../common/types.js';
import { decodeHost, encodeHost } from './record.js';

const TWO_32 = 4294967296;

/** The host part's hex for the last host asked: a broker has one store host, asked per message. */
let lastAddress = '';
let lastPort = -1;
let lastHostHex = '';

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).toUpperCase().padStart(2, '0'));

function hex8(n: number): string {
  return (
    HEX_BYTE[(n >>> 24) & 0xff]! +
    HEX_BYTE[(n >>> 16) & 0xff]! +
    HEX_BYTE[(n >>> 8) & 0xff]! +
    HEX_BYTE[n & 0xff]!
  );
}

export function createOffsetMsgId(storeHost: HostAddress, physicalOffset: number): string {
  assert(
    Number.isSafeInteger(physicalOffset) && physicalOffset >= 0,
    `bad physical offset ${physicalOffset}`,
  );
  if (storeHost.address !== lastAddress || storeHost.port !== lastPort) {
    lastHostHex = encodeHost(storeHost).toString('hex').toUpperCase();
    lastAddress = storeHost.address;
    lastPort = storeHost.port;
  }
  const hi = Math.floor(physicalOffset / TWO_32);
  return lastHostHex + hex8(hi) + hex8(physicalOffset - hi * TWO_32);
}

const HEX = /^[0-9a-fA-F]*$/;

/** Decodes an offsetMsgId (either case). Throws TsmqError INVALID_MESSAGE_ID. */
export function decodeOffsetMsgId(id: string): { storeHost: HostAddress; physicalOffset: number } {
  const bad = (why: string): never => {
    throw new TsmqError(
      'INVALID_MESSAGE_ID',
      `invalid message id ${JSON.stringify(id.slice(0, 80))}: ${why}`,
    );
  };
  if (id.length !== 32 && id.length !== 56) bad(`it has ${id.length} characters; expected 32 or 56`);
  if (!HEX.test(id)) bad('it is not hexadecimal');
  const bytes = Buffer.from(id, 'hex');
  const v6 = bytes.length === 28;
  const hostLen = v6 ? 20 : 8;
  const storeHost = decodeHost(bytes, 0, v6);
  if ((storeHost.port & 0xffff) !== storeHost.port) bad(`port ${storeHost.port} is out of range`);
  const hi = bytes.readInt32BE(hostLen);
  const physicalOffset = hi * TWO_32 + bytes.readUInt32BE(hostLen + 4);
  if (hi < 0 || !Number.isSafeInteger(physicalOffset)) bad('the offset is negative or above 2^53');
  return { storeHost, physicalOffset };
}
