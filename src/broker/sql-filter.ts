/**
 * SQL92 subscriptions on the broker (RocketMQ's ExpressionMessageFilter): an expression is compiled
 * once (../message/sql92/) and kept in a bounded cache shared by every consumer that uses the same
 * text; a pull then drops the records whose properties do not make it TRUE, so they never cross
 * the network. RocketMQ needs `enablePropertyFilter=true` for this (default false there); tsmq
 * enables it by default.
 */
import { compileSql92, decodeRecord, getProperty, type SqlFilter } from '../message/index.js';
import { ResponseCode } from '../protocol/index.js';
import type { GetMessageResult } from '../store/index.js';

/** Compiled expressions kept (least recently used dropped first). */
const CACHE_MAX = 1024;
const cache = new Map<string, SqlFilter | string>();

/** The compiled filter of `expression`, or a sentence saying where it does not parse. */
export function sqlFilterOf(expression: string): SqlFilter | string {
  const known = cache.get(expression);
  if (known !== undefined) {
    cache.delete(expression);
    cache.set(expression, known);
    return known;
  }
  const r = compileSql92(expression);
  const value = r.ok ? r.filter : r.message;
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
  cache.set(expression, value);
  return value;
}

/**
 * The filter a SQL92 subscription asks for, or the refusal a pull (or CHECK_CLIENT_CONFIG) answers:
 * SYSTEM_ERROR when enablePropertyFilter is off, SUBSCRIPTION_PARSE_FAILED naming where the
 * expression does not parse.
 */
export function sqlSubscription(
  enablePropertyFilter: boolean,
  expression: string | undefined,
): SqlFilter | { code: number; remark: string } {
  if (!enablePropertyFilter) {
    return {
      code: ResponseCode.SYSTEM_ERROR,
      remark: 'The broker does not support consumer to filter message by SQL92 (enablePropertyFilter=false)',
    };
  }
  const f = sqlFilterOf((expression ?? '').trim());
  if (typeof f === 'string') {
    return {
      code: ResponseCode.SUBSCRIPTION_PARSE_FAILED,
      remark: `parse the SQL92 subscription failed: ${f}`,
    };
  }
  return f;
}

/**
 * Keeps the records of a pull that the filter accepts. When none is left the status becomes
 * NO_MATCHED_MESSAGE (the client pulls again from past them at once), as for tags.
 */
export function filterBySql(result: GetMessageResult, filter: SqlFilter): GetMessageResult {
  if (result.records.length === 0) return result;
  const records: Buffer[] = [];
  const queueOffsets: number[] = [];
  let totalBytes = 0;
  result.records.forEach((buf, i) => {
    const d = decodeRecord(buf, 0);
    if (d.kind !== 'record') return;
    const props = d.record.properties;
    if (!filter.matches((name) => getProperty(props, name))) return;
    records.push(buf);
    queueOffsets.push(result.queueOffsets[i]!);
    totalBytes += buf.length;
  });
  if (records.length === result.records.length) return result;
  return {
    ...result,
    status: records.length === 0 ? 'NO_MATCHED_MESSAGE' : result.status,
    records,
    queueOffsets,
    totalBytes,
  };
}
