/**
 * CHECK_CLIENT_CONFIG (46): a RocketMQ client asks, when it starts with a subscription that is not
 * a TAG expression, whether the broker can serve it. Body (CheckClientRequestBody, JSON):
 * { clientId, group, subscriptionData: { topic, subString, expressionType, … } }.
 *
 *   case                                           answer
 *   ---------------------------------------------- ------------------------------------------------
 *   TAG (or no expressionType)                     SUCCESS
 *   SQL92, enablePropertyFilter=false              SYSTEM_ERROR "The broker does not support …"
 *   SQL92 that does not parse                      SUBSCRIPTION_PARSE_FAILED, naming where
 *   SQL92 that parses                              SUCCESS (compiled and cached for its pulls)
 *   another type, or a body that is not one        SYSTEM_ERROR
 */
import { createResponse, parseLaxJson, RequestCode, ResponseCode } from '../../protocol/index.js';
import { sqlSubscription } from '../sql-filter.js';
import type { BrokerProcessor } from './context.js';

interface CheckBody {
  subscriptionData?: { topic?: unknown; subString?: unknown; expressionType?: unknown };
}

export const checkClientConfig: BrokerProcessor = {
  code: RequestCode.CHECK_CLIENT_CONFIG,
  handle(ctx, request) {
    let body: CheckBody;
    try {
      body = parseLaxJson(request.body?.toString('utf8') ?? '') as CheckBody;
    } catch (e) {
      return createResponse(
        request,
        ResponseCode.SYSTEM_ERROR,
        `the body is not a CheckClientRequestBody: ${(e as Error).message}`,
      );
    }
    const sub = body?.subscriptionData;
    const type = typeof sub?.expressionType === 'string' ? sub.expressionType : 'TAG';
    if (type === 'TAG') return createResponse(request, ResponseCode.SUCCESS);
    if (type !== 'SQL92') {
      return createResponse(
        request,
        ResponseCode.SYSTEM_ERROR,
        `The broker does not support consumer to filter message by ${type}`,
      );
    }
    const f = sqlSubscription(
      ctx.config.enablePropertyFilter,
      typeof sub?.subString === 'string' ? sub.subString : '',
    );
    if ('code' in f) return createResponse(request, f.code, f.remark);
    return createResponse(request, ResponseCode.SUCCESS);
  },
};
