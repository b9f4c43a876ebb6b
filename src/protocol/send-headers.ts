/**
 * The send path's custom headers, as RocketMQ flattens them into extFields (all values strings).
 *
 *   field                  v1 key (SEND_MESSAGE 10)   v2 key (SEND_MESSAGE_V2 310, BATCH 320)
 *   producerGroup          producerGroup              a   required
 *   topic                  topic                      b   required
 *   defaultTopic           defaultTopic               c   required (TBW102)
 *   defaultTopicQueueNums  defaultTopicQueueNums      d   required
 *   queueId                queueId                    e   required; < 0: the broker picks one
 *   sysFlag                sysFlag                    f   required
 *   bornTimestamp          bornTimestamp              g   required
 *   flag                   flag                       h   required
 *   properties             properties                 i
 *   reconsumeTimes         reconsumeTimes             j
 *   unitMode               unitMode                   k
 *   maxReconsumeTimes      maxReconsumeTimes          l
 *   batch                  batch                      m
 *   brokerName             brokerName                 n
 *
 * A required field that is missing is answered as RocketMQ answers it ("the custom field <x> is
 * null", SYSTEM_ERROR). The response header: msgId (the offsetMsgId), queueId, queueOffset and,
 * since 5.x, transactionId = the message's UNIQ_KEY.
 */

export interface SendMessageRequestHeader {
  producerGroup: string;
  topic: string;
  defaultTopic: string;
  defaultTopicQueueNums: number;
  queueId: number;
  sysFlag: number;
  bornTimestamp: number;
  flag: number;
  properties?: string;
  reconsumeTimes?: number;
  unitMode?: boolean;
  maxReconsumeTimes?: number;
  batch?: boolean;
  brokerName?: string;
}

type Field = keyof SendMessageRequestHeader;
type Kind = 'string' | 'int' | 'long' | 'bool';

/** Field order, kinds, v2 letters and whether RocketMQ marks the field @CFNotNull. */
const FIELDS: ReadonlyArray<readonly [Field, string, Kind, boolean]> = [
  ['producerGroup', 'a', 'string', true],
  ['topic', 'b', 'string', true],
  ['defaultTopic', 'c', 'string', true],
  ['defaultTopicQueueNums', 'd', 'int', true],
  ['queueId', 'e', 'int', true],
  ['sysFlag', 'f', 'int', true],
  ['bornTimestamp', 'g', 'long', true],
  ['flag', 'h', 'int', true],
  ['properties', 'i', 'string', false],
  ['reconsumeTimes', 'j', 'int', false],
  ['unitMode', 'k', 'bool', false],
  ['maxReconsumeTimes', 'l', 'int', false],
  ['batch', 'm', 'bool', false],
  ['brokerName', 'n', 'string', false],
];

export type HeaderResult = { ok: true; header: SendMessageRequestHeader } | { ok: false; error: string };

function convert(field: Field, kind: Kind, raw: string): string | number | boolean | Error {
  switch (kind) {
    case 'string':
      return raw;
    case 'bool':
      // Java's Boolean.parseBoolean: anything but "true" (any case) is false.
      return raw.toLowerCase() === 'true';
    case 'int':
    case 'long': {
      const n = /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
      const fits = kind === 'int' ? n >= -(2 ** 31) && n < 2 ** 31 : Number.isSafeInteger(n);
      if (!Number.isFinite(n) || !fits)
        return new Error(`the custom field <${field}> is not a number: ${raw}`);
      return n;
    }
  }
}

/** Parses a v1 (`v2 = false`) or v2 send header from extFields. */
export function parseSendHeader(ext: Record<string, string> | undefined, v2: boolean): HeaderResult {
  const out: Record<string, unknown> = {};
  for (const [field, letter, kind, required] of FIELDS) {
    const raw = ext?.[v2 ? letter : field];
    if (raw === undefined) {
      if (required) return { ok: false, error: `the custom field <${field}> is null` };
      continue;
    }
    const v = convert(field, kind, raw);
    if (v instanceof Error) return { ok: false, error: v.message };
    out[field] = v;
  }
  return { ok: true, header: out as unknown as SendMessageRequestHeader };
}

/** Encodes a send header as extFields (what a producer sends); used by tests and clients. */
export function encodeSendHeader(h: SendMessageRequestHeader, v2: boolean): Record<string, string> {
  const ext: Record<string, string> = {};
  for (const [field, letter] of FIELDS) {
    const v = h[field];
    if (v !== undefined) ext[v2 ? letter : field] = String(v);
  }
  return ext;
}

export interface SendMessageResponseHeader {
  msgId: string;
  queueId: number;
  queueOffset: number;
  transactionId?: string;
}

export function encodeSendResponseHeader(h: SendMessageResponseHeader): Record<string, string> {
  const ext: Record<string, string> = {
    msgId: h.msgId,
    queueId: String(h.queueId),
    queueOffset: String(h.queueOffset),
  };
  if (h.transactionId !== undefined) ext.transactionId = h.transactionId;
  return ext;
}
