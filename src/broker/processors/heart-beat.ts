/**
 * HEART_BEAT (34): a client's JSON HeartbeatData body {clientID, producerDataSet[{groupName}],
 * consumerDataSet[{groupName, consumeType, messageModel, consumeFromWhere, subscriptionDataSet,
 * unitMode}]} registers (or refreshes) the channel in each group it names (../client-groups.ts).
 * Answered SUCCESS; a body that is not a HeartbeatData gets SYSTEM_ERROR.
 *
 * As in RocketMQ's ClientManageProcessor, a consumer group's heartbeat first looks its
 * subscription group config up, creating it when autoCreateSubscriptionGroup allows
 * (../subscription-groups.ts). With a config, the group's retry topic `%RETRY%<group>` is created
 * if missing (retryQueueNums queues, read + write), so clients that look its route up (push
 * consumers subscribe to it automatically) find one; the name servers hear of it at once. Without
 * one (auto-creation off, group unknown) the heartbeat still registers the client, and its pulls
 * are refused with SUBSCRIPTION_GROUP_NOT_EXIST.
 */

import { retryTopicOf } from '../../message/index.js';
import {
  createResponse,
  HeartbeatFormatError,
  parseHeartbeatData,
  RequestCode,
  ResponseCode,
} from '../../protocol/index.js';
import type { BrokerProcessor } from './context.js';
import { ensureGroupTopic } from './group-topics.js';

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
    // Before the registration, so that the group's notifyConsumerIdsChangedEnable applies to it.
    const configs = data.consumerDataSet.map((c) => ctx.subscriptionGroups.findOrCreate(c.groupName));
    ctx.clients.heartbeat(
      channel,
      { clientId: data.clientID, language: request.language, version: request.version },
      data,
      ctx.clock.now(),
    );
    for (const config of configs) {
      if (config) await ensureGroupTopic(ctx, retryTopicOf(config.groupName), config.retryQueueNums);
    }
    return createResponse(request, ResponseCode.SUCCESS);
  },
};
