/**
 * Finding messages without a queue offset: by key (QUERY_MESSAGE) and by physical offset
 * (VIEW_MESSAGE_BY_ID). Both answer raw commit-log records, like a pull, and the client decodes
 * them with the same decoder.
 *
 * QUERY_MESSAGE (12). Header (QueryMessageRequestHeader): topic, key, maxNum, beginTimestamp,
 * endTimestamp; with the extra field `_UNIQUE_KEY_QUERY` = "true" the key is a message id (the
 * UNIQ_KEY a producer stamps) rather than one of the message's KEYS. Response header
 * (QueryMessageResponseHeader): indexLastUpdateTimestamp (store time of the last message the index
 * took in), indexLastUpdatePhyoffset (its commit-log offset). Body: the matching records, newest
 * first, concatenated.
 *
 *   request                          found                     answer
 *   -------------------------------- ------------------------- --------------------------------
 *   header field missing / not int   -                         SYSTEM_ERROR 1
 *   maxNum < 1                       -                         SYSTEM_ERROR 1
 *   key query                        messages whose KEYS hold  SUCCESS, ≤ min(maxNum, 64)
 *                                    the key or whose UNIQ_KEY  records
 *                                    is the key
 *   _UNIQUE_KEY_QUERY=true           messages whose UNIQ_KEY   SUCCESS, ≤ 32 records (RocketMQ
 *                                    is the key                 ignores maxNum here too)
 *   either                           none in [begin, end]      QUERY_NOT_FOUND 22
 *
 * The body stops before QUERY_BODY_BYTES_MAX (8 MiB, half the frame limit) unless it holds a single
 * record. A unique-key query is filtered exactly on the broker (RocketMQ leaves that to the client,
 * which filters again; the answer is the same). Timestamps are Java longs and tools send
 * Long.MAX_VALUE for "no end": values beyond 2^53 are clamped, not refused. Messages of a deleted
 * topic (below its tombstone, see DELETE_TOPIC_IN_BROKER) are never returned, though their bytes
 * and index entries remain until retention; neither by VIEW_MESSAGE_BY_ID.
 *
 * VIEW_MESSAGE_BY_ID (33). Header (ViewMessageRequestHeader): offset, the commit-log offset the
 * client decoded from an offsetMsgId (store host + offset). Body: that record. An offset that is
 * outside the log, not the start of a record, or a record that fails its CRC gets SYSTEM_ERROR
 * "can not find message by the offset, <offset>" plus the reason, as RocketMQ answers.
 */
import { isTsmqError } from '../../common/errors.js';
import { getProperty, MessageProperty } from '../../message/index.js';
import {
  createResponse,
  type Fields,
  HeaderError,
  int,
  optStr,
  RequestCode,
  ResponseCode,
  str,
} from '../../protocol/index.js';
import type { BrokerProcessor } from './context.js';
import { parseOr, storeUnavailable } from './offset-header.js';

/** RocketMQ's MixAll.UNIQUE_MSG_QUERY_FLAG: the key of a QUERY_MESSAGE is a UNIQ_KEY. */
export const UNIQUE_MSG_QUERY_FLAG = '_UNIQUE_KEY_QUERY';
/** Most records one key query returns (RocketMQ's maxMsgsNumBatch). */
export const QUERY_MAX_NUM = 64;
/** Records a unique-key query returns at most (RocketMQ's defaultQueryMaxNum). */
export const UNIQUE_QUERY_MAX_NUM = 32;
/** A query body stops before this many bytes (a single record is always sent). */
export const QUERY_BODY_BYTES_MAX = 8 * 1024 * 1024;

/**
 * A timestamp field, Java long: tools send Long.MAX_VALUE for "no end" (mqadmin queryMsgByKey), so
 * a value beyond 2^53 is clamped to the largest safe integer instead of refused.
 */
function timestamp(f: Fields, name: string): number {
  const v = str(f, name).trim();
  if (!/^-?\d+$/.test(v)) throw new HeaderError(`the custom field <${name}> is not a number: ${v}`);
  const n = Number(v);
  return Math.max(Number.MIN_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, n));
}

export const queryMessage: BrokerProcessor = {
  code: RequestCode.QUERY_MESSAGE,
  async handle(ctx, request) {
    const p = parseOr(request, (f) => ({
      topic: str(f, 'topic'),
      key: str(f, 'key'),
      maxNum: int(f, 'maxNum'),
      beginTimestamp: timestamp(f, 'beginTimestamp'),
      endTimestamp: timestamp(f, 'endTimestamp'),
      unique: optStr(f, UNIQUE_MSG_QUERY_FLAG) === 'true',
    }));
    if (!p.ok) return p.response;
    const h = p.header;
    if (h.maxNum < 1) {
      return createResponse(request, ResponseCode.SYSTEM_ERROR, `maxNum must be at least 1, got ${h.maxNum}`);
    }
    const store = ctx.store();
    if (!store) return storeUnavailable(request);
    const maxNum = h.unique ? UNIQUE_QUERY_MAX_NUM : Math.min(h.maxNum, QUERY_MAX_NUM);
    const deletedBelow = store.dispatcher.tombstones.get(h.topic) ?? 0;
    const records = (
      await store.queryMessages(h.topic, h.key, maxNum, h.beginTimestamp, h.endTimestamp)
    ).filter(
      (r) =>
        r.physicalOffset >= deletedBelow &&
        (!h.unique || getProperty(r.properties, MessageProperty.UNIQ_KEY) === h.key),
    );
    const ext = {
      indexLastUpdateTimestamp: String(store.dispatcher.lastStoreTimestamp),
      indexLastUpdatePhyoffset: String(Math.max(0, store.index.maxPhysicalOffset())),
    };
    if (records.length === 0) {
      return createResponse(
        request,
        ResponseCode.QUERY_NOT_FOUND,
        `can not find message, maybe time range not correct (topic ${h.topic}, ${h.unique ? 'message id' : 'key'} ${h.key})`,
        ext,
      );
    }
    const raws: Buffer[] = [];
    let bytes = 0;
    for (const r of records) {
      if (raws.length > 0 && bytes + r.raw.length > QUERY_BODY_BYTES_MAX) break;
      raws.push(r.raw);
      bytes += r.raw.length;
    }
    return createResponse(request, ResponseCode.SUCCESS, undefined, ext, Buffer.concat(raws, bytes));
  },
};

export const viewMessageById: BrokerProcessor = {
  code: RequestCode.VIEW_MESSAGE_BY_ID,
  async handle(ctx, request) {
    const p = parseOr(request, (f) => ({ offset: int(f, 'offset') }));
    if (!p.ok) return p.response;
    const { offset } = p.header;
    const store = ctx.store();
    if (!store) return storeUnavailable(request);
    try {
      const record = await store.getMessageByPhysicalOffset(offset);
      if (offset < (store.dispatcher.tombstones.get(record.topic) ?? 0)) {
        return createResponse(
          request,
          ResponseCode.SYSTEM_ERROR,
          `can not find message by the offset, ${offset}: its topic ${record.topic} was deleted`,
        );
      }
      return createResponse(request, ResponseCode.SUCCESS, undefined, undefined, record.raw);
    } catch (e) {
      if (!isTsmqError(e)) throw e;
      return createResponse(
        request,
        ResponseCode.SYSTEM_ERROR,
        `can not find message by the offset, ${offset}: ${e.message}`,
      );
    }
  },
};
