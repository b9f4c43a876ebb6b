/**
 * HEART_BEAT (34): a client's JSON HeartbeatData body {clientID, producerDataSet[{groupName}],
 * consumerDataSet[{groupName, consumeType, messageModel, consumeFromWhere, subscriptionDataSet,
 * unitMode}]} registers (or refreshes) the channel in each group it names (../client-groups.ts).
 * Answered SUCCESS; a body that is not a HeartbeatData gets SYSTEM_ERROR.
 *
 * As in RocketMQ, a consumer group's heartbeat also creates its retry topic `%RETRY%<group>`
 * (1 queue, read + write) if missing, so clients that look its route up (push consumers subscribe
 * to it automatically) find one; the name servers hear of it at once.
 */

import { Perm } from '../../namesrv/index.js';
import {
  createResponse,
  HeartbeatFormatError,
  parseHeartbeatData,
  RequestCode,
  ResponseCode,
} from '../../protocol/index.js';
import { topicConfig } from '../topic-config.js';
import type { BrokerProcessor } from './context.js';

/** RocketMQ's retry topic of a consumer group (MixAll.getRetryTopic). */
export const retryTopicOf = (group: string) => `%RETRY%${group}`;

export const heartBeat: BrokerProcessor = {
  code: RequestCode.HEART_BEAT,
  async handle(ctx, request, channel) {
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
    let created = false;
    for (const consumer of data.consumerDataSet) {
      const retry = retryTopicOf(consumer.groupName);
      if (!ctx.topics.get(retry)) {
        await ctx.topics.upsert(
          topicConfig(retry, { readQueueNums: 1, writeQueueNums: 1, perm: Perm.READ | Perm.WRITE }),
        );
        created = true;
      }
    }
    if (created) ctx.topicsChanged();
    return createResponse(request, ResponseCode.SUCCESS);
  },
};
