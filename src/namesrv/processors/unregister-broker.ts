/** UNREGISTER_BROKER (104): a broker shutting down leaves the routes at once. Always SUCCESS. */
import { RequestCode } from '../../protocol/index.js';
import { parseBrokerIdentityHeader } from '../headers.js';
import { type NamesrvProcessor, refused, success } from './context.js';

export const unregisterBroker: NamesrvProcessor = {
  code: RequestCode.UNREGISTER_BROKER,
  handle(ctx, request) {
    const header = parseBrokerIdentityHeader(request.extFields);
    if (!header.ok) return refused(request, header.error);
    const h = header.value;
    ctx.routes.unregisterBroker(h.clusterName, h.brokerAddr, h.brokerName, h.brokerId);
    return success(request);
  },
};
