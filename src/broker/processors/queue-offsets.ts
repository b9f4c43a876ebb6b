/**
 * The queue-position queries; each header is (topic, queueId[, timestamp]) and each answer one
 * header field:
 *
 *   code                             request header              response header
 *   -------------------------------- --------------------------- ---------------------------------
 *   SEARCH_OFFSET_BY_TIMESTAMP 29    topic, queueId, timestamp   offset: first message stored at
 *                                                                or after timestamp
 *   GET_MAX_OFFSET 30                topic, queueId              offset: one past the last
 *                                                                dispatched message
 *   GET_MIN_OFFSET 31                topic, queueId              offset: the first kept message
 *   GET_EARLIEST_MSG_STORETIME 32    topic, queueId              timestamp: store time of the
 *                                                                first kept message, -1 if none
 *
 * Sources: RocketMQ's GetMaxOffsetRequestHeader, GetMinOffsetRequestHeader,
 * SearchOffsetRequestHeader (boundaryType, 5.x, is read as its default: lower),
 * GetEarliestMsgStoretimeRequestHeader and their response headers; AdminBrokerProcessor.
 */
import {
  createResponse,
  type Fields,
  int,
  type RemotingCommand,
  RequestCode,
  ResponseCode,
  str,
} from '../../protocol/index.js';
import type { MessageStore } from '../../store/index.js';
import type { BrokerContext, BrokerProcessor } from './context.js';
import { parseOr, storeUnavailable } from './offset-header.js';

interface QueueHeader {
  topic: string;
  queueId: number;
}

const queueHeader = (f: Fields): QueueHeader => ({ topic: str(f, 'topic'), queueId: int(f, 'queueId') });

function queueQuery<H extends QueueHeader>(
  code: number,
  parse: (f: Fields) => H,
  answer: (store: MessageStore, h: H) => Promise<Record<string, string>> | Record<string, string>,
): BrokerProcessor {
  return {
    code,
    async handle(ctx: BrokerContext, request: RemotingCommand) {
      const p = parseOr(request, parse);
      if (!p.ok) return p.response;
      const store = ctx.store();
      if (!store) return storeUnavailable(request);
      return createResponse(request, ResponseCode.SUCCESS, undefined, await answer(store, p.header));
    },
  };
}

export const getMaxOffset = queueQuery(RequestCode.GET_MAX_OFFSET, queueHeader, (s, h) => ({
  offset: String(s.dispatchedMaxOffsetInQueue(h.topic, h.queueId)),
}));

export const getMinOffset = queueQuery(RequestCode.GET_MIN_OFFSET, queueHeader, (s, h) => ({
  offset: String(s.minOffsetInQueue(h.topic, h.queueId)),
}));

export const searchOffsetByTimestamp = queueQuery(
  RequestCode.SEARCH_OFFSET_BY_TIMESTAMP,
  (f) => ({ ...queueHeader(f), timestamp: int(f, 'timestamp') }),
  async (s, h) => ({ offset: String(await s.offsetForTimestamp(h.topic, h.queueId, h.timestamp)) }),
);

export const getEarliestMsgStoretime = queueQuery(
  RequestCode.GET_EARLIEST_MSG_STORETIME,
  queueHeader,
  async (s, h) => ({ timestamp: String((await s.earliestMessageTime(h.topic, h.queueId)) ?? -1) }),
);
