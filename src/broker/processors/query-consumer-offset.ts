/**
 * QUERY_CONSUMER_OFFSET (14). Header (QueryConsumerOffsetRequestHeader): consumerGroup, topic,
 * queueId, setZeroIfNotFound (5.x, optional). Response header: offset.
 *
 *   committed offset | setZeroIfNotFound | queue                        | answer
 *   -----------------+-------------------+------------------------------+-----------------------
 *   yes              | any               | any                          | SUCCESS, that offset
 *   no               | "false"           | any                          | QUERY_NOT_FOUND 22
 *   no               | absent / "true"   | min 0 and holds messages     | SUCCESS, 0
 *   no               | absent / "true"   | empty, or min moved past 0   | QUERY_NOT_FOUND 22
 *
 * RocketMQ answers 0 when the queue's min offset is 0 and offset 0 is not yet "in disk" only (a
 * young queue: a new group reads it from the start); tsmq has no page-cache test and takes "min is
 * 0 and the queue holds messages" for young. On QUERY_NOT_FOUND the client applies its
 * ConsumeFromWhere.
 */
import { createResponse, int, optStr, RequestCode, ResponseCode, str } from '../../protocol/index.js';
import type { BrokerProcessor } from './context.js';
import { parseOr, storeUnavailable } from './offset-header.js';

export const queryConsumerOffset: BrokerProcessor = {
  code: RequestCode.QUERY_CONSUMER_OFFSET,
  handle(ctx, request) {
    const p = parseOr(request, (f) => ({
      consumerGroup: str(f, 'consumerGroup'),
      topic: str(f, 'topic'),
      queueId: int(f, 'queueId'),
      setZeroIfNotFound: optStr(f, 'setZeroIfNotFound'),
    }));
    if (!p.ok) return p.response;
    const h = p.header;
    const offset = ctx.offsets.query(h.consumerGroup, h.topic, h.queueId);
    if (offset !== undefined) {
      return createResponse(request, ResponseCode.SUCCESS, undefined, { offset: String(offset) });
    }
    const store = ctx.store();
    if (!store) return storeUnavailable(request);
    const young =
      store.minOffsetInQueue(h.topic, h.queueId) <= 0 &&
      store.dispatchedMaxOffsetInQueue(h.topic, h.queueId) > 0;
    if (h.setZeroIfNotFound !== 'false' && young) {
      return createResponse(request, ResponseCode.SUCCESS, undefined, { offset: '0' });
    }
    return createResponse(
      request,
      ResponseCode.QUERY_NOT_FOUND,
      'Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first',
    );
  },
};
