/**
 * Host addresses as RocketMQ stores them in records and message ids: IPv4 as 4 address bytes +
 * a 4-byte port (8 bytes), IPv6 as 16 + 4 (20 bytes), big-endian. IPv4-mapped IPv6 addresses are
 * stored as IPv4, as Java does.
 */
import { assert } from '../common/errors.js';
import type { HostAddress } from '../common/types.js';

function readI32(b: Buffer, p: number): number {
  return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
}

function parseIpv4(s: string, out: Uint8Array, at: number): boolean {
  let part = 0;
  let digits = 0;
  let n = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46; /* '.' closes the last part */
    if (c === 46) {
      if (digits === 0 || part > 3) return false;
      out[at + part++] = n;
      n = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && n === 0) return false; // no leading zeros: "01" is ambiguous (octal)
      n = n * 10 + (c - 48);
      if (++digits > 3 || n > 255) return false;
    } else {
      return false;
    }
  }
  return part === 4;
}

function parseHexGroup(s: string): number {
  if (s.length < 1 || s.length > 4) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else if (c >= 65 && c <= 70) d = c - 55;
    else return -1;
    n = n * 16 + d;
  }
  return n;
}

/** Parses IPv6 text (with `::`, an embedded dotted IPv4 tail, a `%zone`) into 16 bytes. */
function parseIpv6(text: string): Uint8Array | undefined {
  let s = text;
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  const groups: number[] = [];
  const parseSide = (side: string, allowV4Tail: boolean): number[] | undefined => {
    if (side.length === 0) return [];
    const parts = side.split(':');
    const nums: number[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (allowV4Tail && i === parts.length - 1 && p.indexOf('.') !== -1) {
        const tail = new Uint8Array(4);
        if (!parseIpv4(p, tail, 0)) return undefined;
        nums.push((tail[0]! << 8) | tail[1]!, (tail[2]! << 8) | tail[3]!);
        continue;
      }
      const g = parseHexGroup(p);
      if (g < 0) return undefined;
      nums.push(g);
    }
    return nums;
  };
  const dbl = s.indexOf('::');
  if (dbl === -1) {
    const all = parseSide(s, true);
    if (all === undefined || all.length !== 8) return undefined;
    groups.push(...all);
  } else {
    if (s.indexOf('::', dbl + 1) !== -1) return undefined;
    const left = parseSide(s.slice(0, dbl), false);
    const right = parseSide(s.slice(dbl + 2), true);
    if (left === undefined || right === undefined || left.length + right.length > 7) return undefined;
    groups.push(...left);
    for (let i = left.length + right.length; i < 8; i++) groups.push(0);
    groups.push(...right);
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = groups[i]! >>> 8;
    out[2 * i + 1] = groups[i]! & 0xff;
  }
  return out;
}

/** Address text → 4 or 16 bytes; IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes 4 bytes, as in Java. */
function parseAddress(address: string): Uint8Array | undefined {
  const v4 = new Uint8Array(4);
  if (parseIpv4(address, v4, 0)) return v4;
  const v6 = parseIpv6(address);
  if (v6 === undefined) return undefined;
  let mapped = v6[10] === 0xff && v6[11] === 0xff;
  for (let i = 0; mapped && i < 10; i++) mapped = v6[i] === 0;
  return mapped ? v6.subarray(12) : v6;
}

const ADDRESS_CACHE_MAX = 1024;
const addressCache = new Map<string, Uint8Array>();

/**
 * Encodes a host as RocketMQ stores it: IPv4 address (4) + port (4) = 8 bytes, or IPv6 address
 * (16) + port (4) = 20 bytes. The address must be an IP literal; a host name is a bug.
 */
export function encodeHost(h: HostAddress): Buffer {
  let addr = addressCache.get(h.address);
  if (addr === undefined) {
    addr = parseAddress(h.address);
    assert(addr !== undefined, `not an IP address: ${JSON.stringify(h.address)}`);
    if (addressCache.size >= ADDRESS_CACHE_MAX) addressCache.clear();
    addressCache.set(h.address, addr);
  }
  const port = h.port;
  assert((port & 0xffff) === port, `port out of range: ${port}`);
  const out = Buffer.allocUnsafe(addr.length + 4);
  out.set(addr, 0);
  out.writeInt32BE(port, addr.length);
  return out;
}

function formatIpv6(buf: Buffer, pos: number): string {
  const g: number[] = new Array<number>(8);
  for (let i = 0; i < 8; i++) g[i] = (buf[pos + 2 * i]! << 8) | buf[pos + 2 * i + 1]!;
  // RFC 5952: the longest run of two or more zero groups (the first if tied) becomes '::'.
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) =>
    g
      .slice(from, to)
      .map((x) => x.toString(16))
      .join(':');
  if (bestAt === -1) return hex(0, 8);
  return `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}

/** Decodes 8 (IPv4) or 20 (IPv6) bytes at `pos`. The caller has checked they are there. */
/** Decoded IPv4 hosts by their 8 bytes as one number; hosts are few, records many. */
const decodedHostCache = new Map<number, HostAddress>();

export function decodeHost(buf: Buffer, pos: number, v6: boolean): HostAddress {
  if (!v6) {
    const port = readI32(buf, pos + 4);
    const key = (readI32(buf, pos) >>> 0) * 65536 + (port & 0xffff);
    const cached = (port & 0xffff) === port ? decodedHostCache.get(key) : undefined;
    if (cached !== undefined) return cached;
    const h: HostAddress = Object.freeze({
      address: `${buf[pos]}.${buf[pos + 1]}.${buf[pos + 2]}.${buf[pos + 3]}`,
      port,
    });
    if ((port & 0xffff) === port) {
      if (decodedHostCache.size >= 4096) decodedHostCache.clear();
      decodedHostCache.set(key, h);
    }
    return h;
  }
  return { address: formatIpv6(buf, pos), port: readI32(buf, pos + 16) };
}
