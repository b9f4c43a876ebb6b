/**
 * GET_TOPIC_CONFIG (351), admin: one topic's config on this broker. Header
 * (GetTopicConfigRequestHeader): topic (`lo`, a 5.x static-topic flag, is ignored: tsmq has no
 * static topics). Body: TopicConfigAndQueueMapping, i.e. the TopicConfig as topics.json holds it
 * (src/protocol/admin-bodies.ts). Unknown topic → TOPIC_NOT_EXIST 17; missing header field →
 * SYSTEM_ERROR.
 */
import {
  createResponse,
  encodeTopicConfigAndQueueMapping,
  RequestCode,
  ResponseCode,
  str,
} from '../../protocol/index.js';
import type { BrokerProcessor } from './context.js';
import { parseOr } from './offset-header.js';

export const getTopicConfig: BrokerProcessor = {
  code: RequestCode.GET_TOPIC_CONFIG,
  handle(ctx, request) {
    const p = parseOr(request, (f) => ({ topic: str(f, 'topic') }));
    if (!p.ok) return p.response;
    const tc = ctx.topics.get(p.header.topic);
    if (!tc) {
      return createResponse(
        request,
        ResponseCode.TOPIC_NOT_EXIST,
        `No topic in this broker. topic: ${p.header.topic}`,
      );
    }
    return createResponse(
      request,
      ResponseCode.SUCCESS,
      undefined,
      undefined,
      encodeTopicConfigAndQueueMapping(tc),
    );
  },
};
