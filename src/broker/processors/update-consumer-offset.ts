/**
 * UPDATE_CONSUMER_OFFSET (15), often sent one-way. Header (UpdateConsumerOffsetRequestHeader):
 * consumerGroup, topic, queueId, commitOffset. The offset is kept in memory and written with the
 * next periodic flush of consumerOffset.json (../consumer-offsets.ts).
 */
import { createResponse, int, RequestCode, ResponseCode, str } from '../../protocol/index.js';
import type { BrokerProcessor } from './context.js';
import { parseOr } from './offset-header.js';

export const updateConsumerOffset: BrokerProcessor = {
  code: RequestCode.UPDATE_CONSUMER_OFFSET,
  handle(ctx, request) {
    const p = parseOr(request, (f) => ({
      consumerGroup: str(f, 'consumerGroup'),
      topic: str(f, 'topic'),
      queueId: int(f, 'queueId'),
      commitOffset: int(f, 'commitOffset'),
    }));
    if (!p.ok) return p.response;
    const h = p.header;
    if (h.queueId < 0 || h.commitOffset < 0) {
      return createResponse(
        request,
        ResponseCode.SYSTEM_ERROR,
        `queueId ${h.queueId} and commitOffset ${h.commitOffset} must not be negative`,
      );
    }
    ctx.offsets.commit(h.consumerGroup, h.topic, h.queueId, h.commitOffset);
    return createResponse(request, ResponseCode.SUCCESS);
  },
};
