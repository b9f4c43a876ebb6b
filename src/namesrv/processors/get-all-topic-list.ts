/** GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206): every routable topic, as {"topicList":[...]}. */
import { encodeJsonBody, RequestCode } from '../../protocol/index.js';
import { type NamesrvProcessor, success } from './context.js';

export const getAllTopicList: NamesrvProcessor = {
  code: RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
  handle(ctx, request) {
    return success(request, undefined, encodeJsonBody(ctx.routes.getAllTopicList()));
  },
};
