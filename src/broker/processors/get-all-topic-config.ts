/**
 * GET_ALL_TOPIC_CONFIG (21), admin: the body is RocketMQ's TopicConfigSerializeWrapper as JSON,
 * {"topicConfigTable": {name: TopicConfig}, "dataVersion": {timestamp, counter}}.
 */
import { createResponse, RequestCode, ResponseCode } from '../../protocol/index.js';
import type { BrokerProcessor } from './context.js';

export const getAllTopicConfig: BrokerProcessor = {
  code: RequestCode.GET_ALL_TOPIC_CONFIG,
  handle(ctx, request) {
    const body = {
      topicConfigTable: Object.fromEntries(ctx.topics.all().map((tc) => [tc.topicName, tc])),
      dataVersion: ctx.topics.dataVersion(),
    };
    return createResponse(
      request,
      ResponseCode.SUCCESS,
      undefined,
      undefined,
      Buffer.from(JSON.stringify(body), 'utf8'),
    );
  },
};
