/**
 * GET_CONSUMER_CONNECTION_LIST (203), admin: who is online in a consumer group. Header
 * (GetConsumerConnectionListRequestHeader): consumerGroup. Body: ConsumerConnection
 * (src/protocol/admin-bodies.ts) — one connection per live client channel (clientId, its address as
 * the broker sees it, language and version from its requests), the subscriptions its heartbeats
 * registered, and the group's consumeType, messageModel and consumeFromWhere (from the latest
 * heartbeat). A group with no live consumer is CONSUMER_NOT_ONLINE 206 "the consumer group[g] not
 * online"; a missing header field SYSTEM_ERROR.
 */
import {
  type Connection,
  createResponse,
  encodeConsumerConnection,
  RequestCode,
  ResponseCode,
  str,
} from '../../protocol/index.js';
import type { BrokerProcessor } from './context.js';
import { parseOr } from './offset-header.js';

export const getConsumerConnectionList: BrokerProcessor = {
  code: RequestCode.GET_CONSUMER_CONNECTION_LIST,
  handle(ctx, request) {
    const p = parseOr(request, (f) => ({ consumerGroup: str(f, 'consumerGroup') }));
    if (!p.ok) return p.response;
    const { consumerGroup } = p.header;
    const g = ctx.clients.consumerGroup(consumerGroup);
    if (!g || g.channels.size === 0) {
      return createResponse(
        request,
        ResponseCode.CONSUMER_NOT_ONLINE,
        `the consumer group[${consumerGroup}] not online`,
      );
    }
    const connectionSet: Connection[] = [...g.channels.values()].map((c) => ({
      clientId: c.clientId,
      clientAddr: c.channel.remoteAddress,
      language: c.language,
      version: c.version,
    }));
    const body = encodeConsumerConnection({
      connectionSet,
      subscriptionTable: Object.fromEntries(g.subscriptions),
      consumeType: g.consumeType,
      messageModel: g.messageModel,
      consumeFromWhere: g.consumeFromWhere,
    });
    return createResponse(request, ResponseCode.SUCCESS, undefined, undefined, body);
  },
};
