/**
 * HEART_BEAT (34): a client's JSON HeartbeatData body {clientID, producerDataSet[{groupName}],
 * consumerDataSet[{groupName, consumeType, messageModel, consumeFromWhere, subscriptionDataSet,
 * unitMode}]} registers (or refreshes) the channel in each group it names (../client-groups.ts).
 * Answered SUCCESS; a body that is not a HeartbeatData gets SYSTEM_ERROR.
 */
import { createResponse, RequestCode, ResponseCode } from '../../protocol/index.js';
import { HeartbeatFormatError, parseHeartbeatData } from '../client-groups.js';
import type { BrokerProcessor } from './context.js';

export const heartBeat: BrokerProcessor = {
  code: RequestCode.HEART_BEAT,
  handle(ctx, request, channel) {
    let data: ReturnType<typeof parseHeartbeatData>;
    try {
      data = parseHeartbeatData(request.body);
    } catch (e) {
      if (e instanceof HeartbeatFormatError) {
        return createResponse(request, ResponseCode.SYSTEM_ERROR, `decode heartbeat failed: ${e.message}`);
      }
      throw e;
    }
    ctx.clients.heartbeat(
      channel,
      { clientId: data.clientID, language: request.language, version: request.version },
      data,
      ctx.clock.now(),
    );
    return createResponse(request, ResponseCode.SUCCESS);
  },
};
