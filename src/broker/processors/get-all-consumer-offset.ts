/**
 * GET_ALL_CONSUMER_OFFSET (43), admin/slave sync: the body is consumerOffset.json's content,
 * {"offsetTable": {"topic@group": {"queueId": offset}}}, as RocketMQ's ConsumerOffsetManager.encode().
 */
import { createResponse, RequestCode, ResponseCode } from '../../protocol/index.js';
import type { BrokerProcessor } from './context.js';

export const getAllConsumerOffset: BrokerProcessor = {
  code: RequestCode.GET_ALL_CONSUMER_OFFSET,
  handle(ctx, request) {
    const body = Buffer.from(JSON.stringify(ctx.offsets.snapshot()), 'utf8');
    return createResponse(request, ResponseCode.SUCCESS, undefined, undefined, body);
  },
};
