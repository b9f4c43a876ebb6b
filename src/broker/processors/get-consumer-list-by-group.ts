/**
 * GET_CONSUMER_LIST_BY_GROUP (38). Header (GetConsumerListByGroupRequestHeader): consumerGroup.
 * Body (GetConsumerListByGroupResponseBody): {"consumerIdList":[clientId, ...]} in the broker's
 * table order, unsorted as RocketMQ's ConsumerGroupInfo.getAllClientId returns it (the client
 * sorts before rebalancing). A group with no live consumer gets SYSTEM_ERROR
 * "no consumer for this group, <group>", as RocketMQ's ConsumerManageProcessor answers.
 */
import { createResponse, HeaderError, RequestCode, ResponseCode, str } from '../../protocol/index.js';
import type { BrokerProcessor } from './context.js';

export const getConsumerListByGroup: BrokerProcessor = {
  code: RequestCode.GET_CONSUMER_LIST_BY_GROUP,
  handle(ctx, request) {
    let group: string;
    try {
      group = str(request.extFields, 'consumerGroup');
    } catch (e) {
      if (e instanceof HeaderError) return createResponse(request, ResponseCode.SYSTEM_ERROR, e.message);
      throw e;
    }
    const ids = ctx.clients.consumerIds(group);
    if (!ids || ids.length === 0) {
      return createResponse(request, ResponseCode.SYSTEM_ERROR, `no consumer for this group, ${group}`);
    }
    const body = Buffer.from(JSON.stringify({ consumerIdList: ids }), 'utf8');
    return createResponse(request, ResponseCode.SUCCESS, undefined, undefined, body);
  },
};
