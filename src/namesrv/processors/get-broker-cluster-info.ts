/** GET_BROKER_CLUSTER_INFO (106): every broker name's addresses and every cluster's broker names. */
import { encodeJsonBody, RequestCode } from '../../protocol/index.js';
import { type NamesrvProcessor, success } from './context.js';

export const getBrokerClusterInfo: NamesrvProcessor = {
  code: RequestCode.GET_BROKER_CLUSTER_INFO,
  handle(ctx, request) {
    return success(request, undefined, encodeJsonBody(ctx.routes.getClusterInfo()));
  },
};
