/**
 * UNREGISTER_CLIENT (35), sent by a client at shutdown. Header (UnregisterClientRequestHeader):
 * clientID, producerGroup (optional), consumerGroup (optional). The channel leaves the named
 * groups; the consumer group's remaining members are notified. Answered SUCCESS.
 */
import { createResponse, HeaderError, optStr, RequestCode, ResponseCode, str } from '../../protocol/index.js';
import type { BrokerProcessor } from './context.js';

export const unregisterClient: BrokerProcessor = {
  code: RequestCode.UNREGISTER_CLIENT,
  handle(ctx, request, channel) {
    const f = request.extFields;
    try {
      str(f, 'clientID');
    } catch (e) {
      if (e instanceof HeaderError) return createResponse(request, ResponseCode.SYSTEM_ERROR, e.message);
      throw e;
    }
    ctx.clients.unregister(channel, optStr(f, 'producerGroup'), optStr(f, 'consumerGroup'));
    return createResponse(request, ResponseCode.SUCCESS);
  },
};
