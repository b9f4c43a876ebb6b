/**
 * Message properties as RocketMQ encodes them: `key\u0001value\u0002` repeated, in one string.
 * The reserved keys (KEYS, TAGS, UNIQ_KEY, DELAY, ...) are RocketMQ's wire names.
 */
import { TsmqError } from '../common/errors.js';

/** Property keys RocketMQ reserves, by their wire names. */
export const MessageProperty = {
  KEYS: 'KEYS',
  TAGS: 'TAGS',
  /** 'true' or 'false': the producer waits for the store's flush/replication before the reply. */
  WAIT: 'WAIT',
  /** Delay level of a classic scheduled message. */
  DELAY: 'DELAY',
  RETRY_TOPIC: 'RETRY_TOPIC',
  REAL_TOPIC: 'REAL_TOPIC',
  REAL_QID: 'REAL_QID',
  TRAN_MSG: 'TRAN_MSG',
  PGROUP: 'PGROUP',
  MIN_OFFSET: 'MIN_OFFSET',
  MAX_OFFSET: 'MAX_OFFSET',
  BUYER_ID: 'BUYER_ID',
  ORIGIN_MESSAGE_ID: 'ORIGIN_MESSAGE_ID',
  TRANSFER_FLAG: 'TRANSFER_FLAG',
  CORRECTION_FLAG: 'CORRECTION_FLAG',
  MQ2_FLAG: 'MQ2_FLAG',
  RECONSUME_TIME: 'RECONSUME_TIME',
  MSG_REGION: 'MSG_REGION',
  TRACE_ON: 'TRACE_ON',
  /** The client-generated message id. */
  UNIQ_KEY: 'UNIQ_KEY',
  MAX_RECONSUME_TIMES: 'MAX_RECONSUME_TIMES',
  CONSUME_START_TIME: 'CONSUME_START_TIME',
  TRAN_PREPARED_QUEUE_OFFSET: 'TRAN_PREPARED_QUEUE_OFFSET',
  TRANSACTION_CHECK_TIMES: 'TRANSACTION_CHECK_TIMES',
  CHECK_IMMUNITY_TIME_IN_SECONDS: 'CHECK_IMMUNITY_TIME_IN_SECONDS',
  INSTANCE_ID: 'INSTANCE_ID',
  CORRELATION_ID: 'CORRELATION_ID',
  REPLY_TO_CLIENT: 'REPLY_TO_CLIENT',
  TTL: 'TTL',
  ARRIVE_TIME: 'ARRIVE_TIME',
  PUSH_REPLY_TIME: 'PUSH_REPLY_TIME',
  CLUSTER: 'CLUSTER',
  MSG_TYPE: 'MSG_TYPE',
  INNER_MULTI_DISPATCH: 'INNER_MULTI_DISPATCH',
  INNER_MULTI_QUEUE_OFFSET: 'INNER_MULTI_QUEUE_OFFSET',
  SHARDING_KEY: '__SHARDINGKEY',
  TIMER_DELAY_SEC: 'TIMER_DELAY_SEC',
  TIMER_DELAY_MS: 'TIMER_DELAY_MS',
  TIMER_DELIVER_MS: 'TIMER_DELIVER_MS',
  TIMER_OUT_MS: 'TIMER_OUT_MS',
  TIMER_ENQUEUE_MS: 'TIMER_ENQUEUE_MS',
  TIMER_DEQUEUE_MS: 'TIMER_DEQUEUE_MS',
  TIMER_ROLL_TIMES: 'TIMER_ROLL_TIMES',
  TIMER_DEL_UNIQKEY: 'TIMER_DEL_UNIQKEY',
  POP_CK: 'POP_CK',
  POP_CK_OFFSET: 'POP_CK_OFFSET',
  FIRST_POP_TIME: 'FIRST_POP_TIME',
  DLQ_ORIGIN_TOPIC: 'DLQ_ORIGIN_TOPIC',
  DLQ_ORIGIN_MESSAGE_ID: 'DLQ_ORIGIN_MESSAGE_ID',
} as const;

/** Separates several keys inside the KEYS property. */
export const KEY_SEPARATOR = ' ';

export const NAME_VALUE_SEPARATOR = '\u0001';
export const PROPERTY_SEPARATOR = '\u0002';
export const NV_CODE = 1;
export const PS_CODE = 2;

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

function checkPropertyText(s: string, what: string, key: string): void {
  if (s.indexOf(NAME_VALUE_SEPARATOR) !== -1 || s.indexOf(PROPERTY_SEPARATOR) !== -1) {
    throw new TsmqError(
      'PROPERTY_INVALID',
      `property ${what} ${JSON.stringify(key.slice(0, 64))} holds a separator character (\\u0001 or \\u0002)`,
    );
  }
}

/**
 * Encodes properties as `key\u0001value\u0002` for each entry, in iteration order. Throws
 * PROPERTY_INVALID on an empty key or a key or value that holds a separator.
 */
export function encodeProperties(props: Record<string, string> | Map<string, string>): string {
  let s = '';
  if (props instanceof Map) {
    for (const [k, v] of props) s += entryText(k, v);
  } else {
    // Keys, not entries: no [key, value] array per property (every send encodes its properties).
    for (const k of Object.keys(props)) s += entryText(k, props[k]!);
  }
  return s;
}

function entryText(k: string, v: string): string {
  if (k.length === 0) throw new TsmqError('PROPERTY_INVALID', 'a property key is empty');
  checkPropertyText(k, 'key', k);
  checkPropertyText(v, 'value of', k);
  return k + NAME_VALUE_SEPARATOR + v + PROPERTY_SEPARATOR;
}

/**
 * One encoded entry `k\u0001v\u0002`, as `encodeProperties` writes it (same checks, same
 * PROPERTY_INVALID errors): for building a properties string without an object in between.
 */
export function propertyEntry(k: string, v: string): string {
  return entryText(k, v);
}

/** `propertyEntry` for a key known to be valid (a MessageProperty name): only the value is checked. */
export function systemPropertyEntry(k: string, v: string): string {
  checkPropertyText(v, 'value of', k);
  return k + NAME_VALUE_SEPARATOR + v + PROPERTY_SEPARATOR;
}

/**
 * Decodes a properties string, with or without its trailing \u0002. An entry's value runs from
 * the first \u0001 to the next \u0002; entries without \u0001 or with an empty key are skipped;
 * a key given twice keeps its last value. `getProperty` follows the same rules.
 */
export function decodeProperties(s: string): Map<string, string> {
  const map = new Map<string, string>();
  let start = 0;
  const n = s.length;
  while (start < n) {
    let end = s.indexOf(PROPERTY_SEPARATOR, start);
    if (end === -1) end = n;
    const sep = s.indexOf(NAME_VALUE_SEPARATOR, start);
    if (sep !== -1 && sep < end && sep > start) map.set(s.slice(start, sep), s.slice(sep + 1, end));
    start = end + 1;
  }
  return map;
}

/** Where each key seen so far starts: one array for every call (they are synchronous). */
const keyStarts: number[] = [];

/**
 * Whether `s` is exactly what `encodeProperties(decodeProperties(s))` gives back: every entry a
 * non-empty key, one \u0001, a value and a closing \u0002, and no key twice. What a producer
 * sends is so; a broker that only adds entries to such a string may append them to it instead of
 * decoding and encoding it again.
 */
export function isCanonicalProperties(s: string): boolean {
  const n = s.length;
  if (n === 0) return true;
  if (s.charCodeAt(n - 1) !== PS_CODE) return false;
  keyStarts.length = 0;
  let start = 0;
  while (start < n) {
    const end = s.indexOf(PROPERTY_SEPARATOR, start); // found: s ends with one
    const sep = s.indexOf(NAME_VALUE_SEPARATOR, start);
    if (sep <= start || sep > end) return false; // no \u0001 in the entry, or an empty key
    const second = s.indexOf(NAME_VALUE_SEPARATOR, sep + 1);
    if (second !== -1 && second < end) return false; // a \u0001 in the value
    const keyLength = sep - start;
    for (const other of keyStarts) {
      if (s.charCodeAt(other + keyLength) !== NV_CODE) continue;
      let i = 0;
      while (i < keyLength && s.charCodeAt(other + i) === s.charCodeAt(start + i)) i++;
      if (i === keyLength) return false; // the same key again
    }
    keyStarts.push(start);
    start = end + 1;
  }
  return true;
}

/**
 * One property's value, found by scanning the encoded string without building a map. A match
 * counts only at the start of an entry and followed by \u0001, so 'KEYS' does not match inside
 * 'XKEYS' or inside a value. Like `decodeProperties`, the last entry with the key wins.
 */
export function getProperty(s: string, key: string): string | undefined {
  const klen = key.length;
  if (klen === 0) return undefined;
  let from = s.length - klen;
  while (from >= 0) {
    const i = s.lastIndexOf(key, from);
    if (i === -1) return undefined;
    if ((i === 0 || s.charCodeAt(i - 1) === PS_CODE) && s.charCodeAt(i + klen) === NV_CODE) {
      // A key holding a separator could still match here by accident; such keys never exist.
      if (key.indexOf(NAME_VALUE_SEPARATOR) !== -1 || key.indexOf(PROPERTY_SEPARATOR) !== -1) {
        return undefined;
      }
      const vstart = i + klen + 1;
      const vend = s.indexOf(PROPERTY_SEPARATOR, vstart);
      return s.slice(vstart, vend === -1 ? s.length : vend);
    }
    from = i - 1;
  }
  return undefined;
}
