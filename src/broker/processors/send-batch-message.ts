/**
 * SEND_BATCH_MESSAGE (320): several messages of one topic in the body (../batch-codec.ts), with a
 * v2 header. All go to the one queue the header names (or the broker picks), contiguously: the
 * store accepts all or none. Each inner message keeps its own flag and properties; the batch
 * header's properties (which hold what applies to all, e.g. WAIT) are appended to each one's, as
 * RocketMQ 5.x's batch encoder does. Neither the batch nor any message in it may carry a delay
 * level or a timer property (MESSAGE_ILLEGAL), nor go to a group's %RETRY% topic (MESSAGE_ILLEGAL,
 * as RocketMQ: the retry and DLQ rules apply per message).
 *
 * The reply names the first message's queue offset and joins the offsetMsgIds with commas, as
 * RocketMQ's AppendMessageResult for a batch does; transactionId is the batch's own UNIQ_KEY.
 */

import {
  type AppendMessage,
  decodeBatchBody,
  decodeProperties,
  encodeProperties,
  getProperty,
  isCanonicalProperties,
  isRetryTopic,
  MessageProperty,
  NAME_VALUE_SEPARATOR,
  PROPERTY_SEPARATOR,
} from '../../message/index.js';
import {
  createResponse,
  encodeSendResponseHeader,
  parseSendHeader,
  RequestCode,
  ResponseCode,
} from '../../protocol/index.js';
import type { BrokerProcessor } from './context.js';
import { admitSend, bornHostOf, checkSend, stampProperties, storeFailure } from './send-common.js';

/**
 * The property that would make a message wait (a delay level other than 0, or a timer), if any.
 * A batch is stored at once to one queue, contiguously, so none of it may wait (RocketMQ's rule).
 */
function waitingProperty(props: Map<string, string>): string | undefined {
  const delay = props.get(MessageProperty.DELAY);
  if (delay !== undefined && delay !== '' && delay !== '0') return `DELAY=${delay.slice(0, 16)}`;
  for (const k of [
    MessageProperty.TIMER_DELIVER_MS,
    MessageProperty.TIMER_DELAY_MS,
    MessageProperty.TIMER_DELAY_SEC,
  ]) {
    if (props.has(k)) return k;
  }
  return undefined;
}

/**
 * `waitingProperty` of a canonical properties string (no key twice), by scanning it: one pass
 * over the entries, reading only those whose key starts with D or TIMER_D (no Map per message).
 */
function waitingPropertyIn(text: string): string | undefined {
  let start = 0;
  const n = text.length;
  while (start < n) {
    let end = text.indexOf(PROPERTY_SEPARATOR, start);
    if (end === -1) end = n;
    const c = text.charCodeAt(start);
    // Only keys of D… or TIMER_D… are read (no string made for the others, such as TAGS).
    if (c === 68 /* D */ || (c === 84 /* T */ && text.startsWith('TIMER_D', start))) {
      const sep = text.indexOf(NAME_VALUE_SEPARATOR, start);
      if (sep !== -1 && sep < end) {
        const key = text.slice(start, sep);
        if (key === MessageProperty.DELAY) {
          const delay = text.slice(sep + 1, end);
          if (delay !== '' && delay !== '0') return `DELAY=${delay.slice(0, 16)}`;
        } else if (
          key === MessageProperty.TIMER_DELIVER_MS ||
          key === MessageProperty.TIMER_DELAY_MS ||
          key === MessageProperty.TIMER_DELAY_SEC
        ) {
          return key;
        }
      }
    }
    start = end + 1;
  }
  return undefined;
}

/**
 * One inner message's properties with the batch's (those it lacks) added. What producers send —
 * a canonical string — gets them appended without decoding; anything else is decoded and encoded
 * again. The waiting check comes with it, on the merged properties (a message does not get a delay
 * from the batch header: the header was checked already and has none).
 */
function innerProperties(
  text: string,
  batchEntries: ReadonlyArray<readonly [string, string]>,
): { properties: string; canonical: boolean } | { waiting: string } {
  if (isCanonicalProperties(text)) {
    const waiting = waitingPropertyIn(text);
    if (waiting) return { waiting };
    let merged = text;
    for (const [k, v] of batchEntries) {
      if (getProperty(text, k) === undefined) merged += k + NAME_VALUE_SEPARATOR + v + PROPERTY_SEPARATOR;
    }
    return { properties: merged, canonical: true };
  }
  const props = decodeProperties(text);
  const waiting = waitingProperty(props);
  if (waiting) return { waiting };
  for (const [k, v] of batchEntries) if (!props.has(k)) props.set(k, v);
  return { properties: encodeProperties(props), canonical: false };
}

/** Most messages in one batch (a bound on work per request). */
export const BATCH_MESSAGES_MAX = 10_000;

export const sendBatchMessage: BrokerProcessor = {
  code: RequestCode.SEND_BATCH_MESSAGE,
  async handle(ctx, request, channel) {
    const parsed = parseSendHeader(request.extFields, true);
    if (!parsed.ok) return createResponse(request, ResponseCode.SYSTEM_ERROR, parsed.error);
    const h = parsed.header;
    if (isRetryTopic(h.topic)) {
      return createResponse(
        request,
        ResponseCode.MESSAGE_ILLEGAL,
        `batch request does not support retry group ${h.topic}`,
      );
    }
    const batchProps = decodeProperties(h.properties ?? '');
    const waiting = waitingProperty(batchProps);
    if (waiting) {
      return createResponse(
        request,
        ResponseCode.MESSAGE_ILLEGAL,
        `a batch message may not have a delay level or a timer (it has ${waiting})`,
      );
    }
    const body = request.body ?? Buffer.alloc(0);
    if (body.length > ctx.config.maxMessageSize) {
      return createResponse(
        request,
        ResponseCode.MESSAGE_ILLEGAL,
        `the batch is ${body.length} bytes; the limit is ${ctx.config.maxMessageSize} bytes (maxMessageSize)`,
      );
    }
    const decoded = decodeBatchBody(body, BATCH_MESSAGES_MAX);
    if (!decoded.ok) return createResponse(request, ResponseCode.MESSAGE_ILLEGAL, decoded.error);
    if (decoded.messages.length === 0) {
      return createResponse(request, ResponseCode.MESSAGE_ILLEGAL, 'the batch holds no message');
    }
    const checked = await checkSend(ctx, request, h);
    if (!checked.ok) return checked.response;
    const bornHost = bornHostOf(channel);
    const batchUniq = batchProps.get(MessageProperty.UNIQ_KEY);
    batchProps.delete(MessageProperty.UNIQ_KEY);
    const batchEntries = [...batchProps];
    const inner = decoded.messages;
    const msgs = new Array<AppendMessage>(inner.length);
    const reconsumeTimes = h.reconsumeTimes ?? 0;
    let bodyBytes = 0;
    for (let i = 0; i < inner.length; i++) {
      const m = inner[i]!;
      const merged = innerProperties(m.properties, batchEntries);
      if ('waiting' in merged) {
        return createResponse(
          request,
          ResponseCode.MESSAGE_ILLEGAL,
          `a batch message may not have a delay level or a timer (message ${i} has ${merged.waiting})`,
        );
      }
      bodyBytes += m.body.length;
      const msg: AppendMessage = {
        topic: h.topic,
        queueId: checked.queueId,
        body: m.body,
        properties: stampProperties(ctx, merged.properties, merged.canonical).properties,
        flag: m.flag,
        sysFlag: h.sysFlag,
        bornTimestamp: h.bornTimestamp,
        reconsumeTimes,
      };
      if (bornHost) msg.bornHost = bornHost;
      msgs[i] = msg;
    }
    const admitted = await admitSend(ctx, request, channel, h.topic, msgs.length, bodyBytes);
    if (!admitted.ok) return admitted.response;
    try {
      const puts = await checked.store.putBatch(msgs);
      ctx.stats.onPut(puts.length);
      return createResponse(
        request,
        ResponseCode.SUCCESS,
        undefined,
        encodeSendResponseHeader({
          msgId: puts.map((p) => p.offsetMsgId).join(','),
          queueId: checked.queueId,
          queueOffset: puts[0]!.queueOffset,
          ...(batchUniq && { transactionId: batchUniq }),
        }),
      );
    } catch (e) {
      return storeFailure(ctx, request, e);
    } finally {
      admitted.release();
    }
  },
};
