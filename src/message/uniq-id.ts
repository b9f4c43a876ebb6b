/**
 * Message ids in RocketMQ's MessageClientIDSetter layout, the UNIQ_KEY property: producers make
 * one per message (with their own IP), and the broker makes one for a message that arrives
 * without (RocketMQ 5.x brokers do the same; ours says 127.0.0.1, since the broker's address is in
 * the offsetMsgId already and this only needs to be unique). Upper-case hex of, big-endian:
 *
 *   +-------------+-----+--------------------+------------------------------+---------+
 *   | IP          | pid | random per process | ms since the start of month  | counter |
 *   | 4 (IPv6 16) | 2   | 4                  | 4 (local time, as Java's)    | 2       |
 *   +-------------+-----+--------------------+------------------------------+---------+
 *
 * 16 bytes / 32 hex digits for IPv4, 28 / 56 for IPv6. The random part stands where Java puts a
 * class loader's hash code: what tells two processes with the same pid apart. The counter is one
 * per process, shared by every prefix, and wraps at 65536 — ids stay unique as long as no process
 * makes more than 65536 of them within one millisecond.
 */
import { randomBytes } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

const processPart = (() => {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(process.pid & 0xffff, 0);
  randomBytes(4).copy(b, 2);
  return b;
})();

/** The IP bytes of an address: 4 for IPv4, 16 for IPv6; 127.0.0.1 when it is neither. */
function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (isIPv6(ip)) {
    // Expand "::" and any embedded IPv4 tail into eight 16-bit groups.
    let text = ip;
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
    if (v4) {
      const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
      text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
    }
    const [head, tail] = text.split('::') as [string, string | undefined];
    const left = head ? head.split(':') : [];
    const right = tail ? tail.split(':') : [];
    const groups =
      tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
    const out = Buffer.alloc(16);
    for (let i = 0; i < 8; i++) out.writeUInt16BE(Number.parseInt(groups[i] ?? '0', 16) & 0xffff, i * 2);
    return out;
  }
  return Buffer.from([127, 0, 0, 1]);
}

/** The fixed head of this process's ids for an IP (IP, pid and the random part), in hex. */
function prefixOf(ip: string): string {
  return Buffer.concat([ipBytes(ip), processPart])
    .toString('hex')
    .toUpperCase();
}

const BROKER_IP = '127.0.0.1';
/** Prefixes by IP; a process uses one or two IPs, so this stays tiny (bounded all the same). */
const prefixes = new Map<string, string>([[BROKER_IP, prefixOf(BROKER_IP)]]);
const PREFIXES_MAX = 64;
let counter = 0;

/** Two upper-case hex digits per byte value. */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).toUpperCase().padStart(2, '0'));

/** The local month [startMs, endMs) of the last id made: months change rarely, Dates cost. */
let monthStartMs = 0;
let monthEndMs = 0;

function monthStartOf(nowMs: number): number {
  if (nowMs < monthStartMs || nowMs >= monthEndMs) {
    const d = new Date(nowMs);
    monthStartMs = new Date(d.getFullYear(), d.getMonth(), 1).getTime();
    monthEndMs = new Date(d.getFullYear(), d.getMonth() + 1, 1).getTime();
  }
  return monthStartMs;
}

/** A new id for a message from `ip` (default 127.0.0.1, what the broker uses), made at `nowMs`. */
export function createUniqId(nowMs = Date.now(), ip = BROKER_IP): string {
  let prefix = prefixes.get(ip);
  if (prefix === undefined) {
    prefix = prefixOf(ip);
    if (prefixes.size < PREFIXES_MAX) prefixes.set(ip, prefix);
  }
  const t = (nowMs - monthStartOf(nowMs)) >>> 0;
  counter = (counter + 1) & 0xffff;
  return (
    prefix +
    HEX[t >>> 24]! +
    HEX[(t >>> 16) & 0xff]! +
    HEX[(t >>> 8) & 0xff]! +
    HEX[t & 0xff]! +
    HEX[counter >>> 8]! +
    HEX[counter & 0xff]!
  );
}
