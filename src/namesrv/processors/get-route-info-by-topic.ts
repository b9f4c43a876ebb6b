/**
 * GET_ROUTEINFO_BY_TOPIC (105): a topic's queues and the brokers that hold them (route-data.ts).
 * A topic no live broker serves → TOPIC_NOT_EXIST with RocketMQ's remark; producers and consumers
 * treat it as "no route yet" (a producer then falls back to the auto-create template TBW102).
 */
import { createResponse, encodeJsonBody, RequestCode, ResponseCode } from '../../protocol/index.js';
import { parseGetRouteInfoHeader } from '../headers.js';
import { type NamesrvProcessor, refused, success } from './context.js';

export function noRouteRemark(topic: string): string {
  return `No topic route info in name server for the topic: ${topic}`;
}

export const getRouteInfoByTopic: NamesrvProcessor = {
  code: RequestCode.GET_ROUTEINFO_BY_TOPIC,
  handle(ctx, request) {
    const header = parseGetRouteInfoHeader(request.extFields);
    if (!header.ok) return refused(request, header.error);
    const route = ctx.routes.pickupTopicRouteData(header.value.topic);
    if (!route)
      return createResponse(request, ResponseCode.TOPIC_NOT_EXIST, noRouteRemark(header.value.topic));
    return success(request, undefined, encodeJsonBody(route));
  },
};
