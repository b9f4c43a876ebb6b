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

import { decimal } from './header-fields.js';

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

export type HeaderResult = { ok: true; header: SendMessageRequestHeader } | { ok: false; error: string };

// The parse and the encode below are written out field by field, in the table's order (which
// decides which error a header with several bad fields gets): every send passes here, and a
// loop over the table with computed keys cost the broker about as much as the rest of the header's
// decoding.

/** Raised inside the parse and turned into its error result. */
class FieldError extends Error {}

function missing(field: Field): never {
  throw new FieldError(`the custom field <${field}> is null`);
}

function notNumber(field: Field, raw: string): never {
  throw new FieldError(`the custom field <${field}> is not a number: ${raw}`);
}

const INTEGER_TEXT = /^\s*-?\d+\s*$/;

/** A Java int (`long` false) or long field: plain digits, or with white space around them. */
function integer(field: Field, raw: string, long: boolean): number {
  let n = decimal(raw);
  if (Number.isNaN(n)) n = INTEGER_TEXT.test(raw) ? Number(raw) : Number.NaN;
  const fits = long ? Number.isSafeInteger(n) : n >= -(2 ** 31) && n < 2 ** 31;
  if (!Number.isFinite(n) || !fits) notNumber(field, raw);
  return n;
}

function required(field: Field, raw: string | undefined): string {
  if (raw === undefined) missing(field);
  return raw;
}

/** Java's Boolean.parseBoolean: anything but "true" (any case) is false. */
function bool(raw: string): boolean {
  return raw === 'true' || (raw !== 'false' && raw.toLowerCase() === 'true');
}

/** Parses a v1 (`v2 = false`) or v2 send header from extFields. */
export function parseSendHeader(ext: Record<string, string> | undefined, v2: boolean): HeaderResult {
  const f = ext ?? {};
  try {
    return v2
      ? parseFields(f.a, f.b, f.c, f.d, f.e, f.f, f.g, f.h, f.i, f.j, f.k, f.l, f.m, f.n)
      : parseFields(
          f.producerGroup,
          f.topic,
          f.defaultTopic,
          f.defaultTopicQueueNums,
          f.queueId,
          f.sysFlag,
          f.bornTimestamp,
          f.flag,
          f.properties,
          f.reconsumeTimes,
          f.unitMode,
          f.maxReconsumeTimes,
          f.batch,
          f.brokerName,
        );
  } catch (e) {
    if (e instanceof FieldError) return { ok: false, error: e.message };
    throw e;
  }
}

function parseFields(
  producerGroup: string | undefined,
  topic: string | undefined,
  defaultTopic: string | undefined,
  defaultTopicQueueNums: string | undefined,
  queueId: string | undefined,
  sysFlag: string | undefined,
  bornTimestamp: string | undefined,
  flag: string | undefined,
  properties: string | undefined,
  reconsumeTimes: string | undefined,
  unitMode: string | undefined,
  maxReconsumeTimes: string | undefined,
  batch: string | undefined,
  brokerName: string | undefined,
): HeaderResult {
  const header: SendMessageRequestHeader = {
    producerGroup: required('producerGroup', producerGroup),
    topic: required('topic', topic),
    defaultTopic: required('defaultTopic', defaultTopic),
    defaultTopicQueueNums: integer(
      'defaultTopicQueueNums',
      required('defaultTopicQueueNums', defaultTopicQueueNums),
      false,
    ),
    queueId: integer('queueId', required('queueId', queueId), false),
    sysFlag: integer('sysFlag', required('sysFlag', sysFlag), false),
    bornTimestamp: integer('bornTimestamp', required('bornTimestamp', bornTimestamp), true),
    flag: integer('flag', required('flag', flag), false),
  };
  if (properties !== undefined) header.properties = properties;
  if (reconsumeTimes !== undefined) header.reconsumeTimes = integer('reconsumeTimes', reconsumeTimes, false);
  if (unitMode !== undefined) header.unitMode = bool(unitMode);
  if (maxReconsumeTimes !== undefined) {
    header.maxReconsumeTimes = integer('maxReconsumeTimes', maxReconsumeTimes, false);
  }
  if (batch !== undefined) header.batch = bool(batch);
  if (brokerName !== undefined) header.brokerName = brokerName;
  return { ok: true, header };
}

/** Encodes a send header as extFields (what a producer sends); used by tests and clients. */
export function encodeSendHeader(h: SendMessageRequestHeader, v2: boolean): Record<string, string> {
  return v2 ? encodeV2(h) : encodeV1(h);
}

/** What every producer sends, with named stores (one object shape from send to send). */
function encodeV2(h: SendMessageRequestHeader): Record<string, string> {
  const ext: Record<string, string> = {};
  if (h.producerGroup !== undefined) ext.a = String(h.producerGroup);
  if (h.topic !== undefined) ext.b = String(h.topic);
  if (h.defaultTopic !== undefined) ext.c = String(h.defaultTopic);
  if (h.defaultTopicQueueNums !== undefined) ext.d = String(h.defaultTopicQueueNums);
  if (h.queueId !== undefined) ext.e = String(h.queueId);
  if (h.sysFlag !== undefined) ext.f = String(h.sysFlag);
  if (h.bornTimestamp !== undefined) ext.g = String(h.bornTimestamp);
  if (h.flag !== undefined) ext.h = String(h.flag);
  if (h.properties !== undefined) ext.i = String(h.properties);
  if (h.reconsumeTimes !== undefined) ext.j = String(h.reconsumeTimes);
  if (h.unitMode !== undefined) ext.k = String(h.unitMode);
  if (h.maxReconsumeTimes !== undefined) ext.l = String(h.maxReconsumeTimes);
  if (h.batch !== undefined) ext.m = String(h.batch);
  if (h.brokerName !== undefined) ext.n = String(h.brokerName);
  return ext;
}

function encodeV1(h: SendMessageRequestHeader): Record<string, string> {
  const ext: Record<string, string> = {};
  const put = (field: Field, v: string | number | boolean | undefined): void => {
    if (v !== undefined) ext[field] = String(v);
  };
  put('producerGroup', h.producerGroup);
  put('topic', h.topic);
  put('defaultTopic', h.defaultTopic);
  put('defaultTopicQueueNums', h.defaultTopicQueueNums);
  put('queueId', h.queueId);
  put('sysFlag', h.sysFlag);
  put('bornTimestamp', h.bornTimestamp);
  put('flag', h.flag);
  put('properties', h.properties);
  put('reconsumeTimes', h.reconsumeTimes);
  put('unitMode', h.unitMode);
  put('maxReconsumeTimes', h.maxReconsumeTimes);
  put('batch', h.batch);
  put('brokerName', h.brokerName);
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
