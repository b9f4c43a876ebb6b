/**
 * UPDATE_CONSUMER_OFFSET (15), often sent one-way. Header (UpdateConsumerOffsetRequestHeader):
 * consumerGroup, topic, queueId, commitOffset. The offset is kept in memory and written with the
 * next periodic flush of consumerOffset.json (../consumer-offsets.ts).
 *
 * tsmq's fencing field `lockVersion` (optional; an orderly consumer sends the version of its queue
 * lock, ../queue-locks.ts): when another client has locked the queue since that version was
 * granted, the commit is refused with NO_PERMISSION (16) and a remark naming both versions, so a
 * consumer that paused past its lease cannot move its successor's offset.
 */
import { createResponse, int, optInt, RequestCode, ResponseCode, str } from '../../protocol/index.js';
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
      lockVersion: optInt(f, 'lockVersion'),
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
    if (h.lockVersion !== undefined) {
      const queue = { topic: h.topic, brokerName: ctx.config.brokerName, queueId: h.queueId };
      const check = ctx.locks.checkVersion(h.consumerGroup, queue, h.lockVersion);
      if (!check.ok) return createResponse(request, ResponseCode.NO_PERMISSION, check.reason);
    }
    ctx.offsets.commit(h.consumerGroup, h.topic, h.queueId, h.commitOffset);
    return createResponse(request, ResponseCode.SUCCESS);
  },
};
