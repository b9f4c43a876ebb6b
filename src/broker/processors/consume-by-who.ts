/**
 * QUERY_TOPIC_CONSUME_BY_WHO (300), admin: which consumer groups consume a topic on this broker.
 * Header (QueryTopicConsumeByWhoRequestHeader): topic. Body: GroupList {"groupList":[...]}, sorted —
 * the groups with a live consumer subscribed to the topic, and the groups with committed offsets
 * for it (which includes groups offline now). Always SUCCESS (an empty list for a topic nobody
 * consumes, known or not); a missing header field is SYSTEM_ERROR.
 */
import { createResponse, encodeGroupList, RequestCode, ResponseCode, str } from '../../protocol/index.js';
import type { BrokerProcessor } from './context.js';
import { parseOr } from './offset-header.js';

export const queryTopicConsumeByWho: BrokerProcessor = {
  code: RequestCode.QUERY_TOPIC_CONSUME_BY_WHO,
  handle(ctx, request) {
    const p = parseOr(request, (f) => ({ topic: str(f, 'topic') }));
    if (!p.ok) return p.response;
    const { topic } = p.header;
    const groups = new Set([...ctx.clients.groupsSubscribedTo(topic), ...ctx.offsets.groupsOfTopic(topic)]);
    const body = encodeGroupList({ groupList: [...groups].sort() });
    return createResponse(request, ResponseCode.SUCCESS, undefined, undefined, body);
  },
};
