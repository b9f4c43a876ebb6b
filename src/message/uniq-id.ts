/**
 * Message ids the broker makes up for messages that arrive without one (RocketMQ 5.x brokers set
 * UNIQ_KEY when a client left it out), in the client id's layout so tools decode them alike:
 * hex of IPv4 (4) | pid (2) | random per process (4) | ms since the start of this month (4) |
 * counter (2), 32 hex digits.
 */
import { randomBytes } from 'node:crypto';

const prefix = (() => {
  const b = Buffer.alloc(10);
  // 127.0.0.1: the broker's address is in the offsetMsgId already; this only needs uniqueness.
  b.set([127, 0, 0, 1], 0);
  b.writeUInt16BE(process.pid & 0xffff, 4);
  randomBytes(4).copy(b, 6);
  return b.toString('hex').toUpperCase();
})();

let counter = 0;

export function createUniqId(nowMs = Date.now()): string {
  const d = new Date(nowMs);
  const monthStart = new Date(d.getFullYear(), d.getMonth(), 1).getTime();
  const tail = Buffer.alloc(6);
  tail.writeUInt32BE((nowMs - monthStart) >>> 0, 0);
  counter = (counter + 1) & 0xffff;
  tail.writeUInt16BE(counter, 4);
  return prefix + tail.toString('hex').toUpperCase();
}
