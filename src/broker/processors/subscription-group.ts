/**
 * Subscription group admin (../subscription-groups.ts holds the table; bodies in
 * src/protocol/admin-bodies.ts):
 *
 *   code                                      header                  body / answer
 *   ----------------------------------------- ----------------------- -------------------------------------
 *   UPDATE_AND_CREATE_SUBSCRIPTIONGROUP 200   -                       ← SubscriptionGroupConfig JSON;
 *                                                                     SUCCESS once durable; a body that is
 *                                                                     missing, not JSON, or of the wrong
 *                                                                     shape → SYSTEM_ERROR with the reason
 *   GET_ALL_SUBSCRIPTIONGROUP_CONFIG 201      -                       SubscriptionGroupWrapper
 *   DELETE_SUBSCRIPTIONGROUP 207              groupName, cleanOffset  SUCCESS whether or not it existed;
 *                                             (5.x) or removeOffset   with cleanOffset/removeOffset "true"
 *                                             (4.x), optional         the group's committed offsets go too
 *   GET_SUBSCRIPTIONGROUP_CONFIG 352          group                   SubscriptionGroupConfig; unknown →
 *                                                                     SUBSCRIPTION_GROUP_NOT_EXIST 26
 *
 * A missing header field is SYSTEM_ERROR "the custom field <x> is null". Reading a group never
 * creates it. A retry topic made for the group earlier keeps its queue count when retryQueueNums
 * changes, as in RocketMQ.
 */
import {
  AdminBodyError,
  createResponse,
  decodeSubscriptionGroupConfig,
  encodeSubscriptionGroupConfig,
  encodeSubscriptionGroupWrapper,
  optStr,
  RequestCode,
  ResponseCode,
  type SubscriptionGroupConfig,
  str,
} from '../../protocol/index.js';
import type { BrokerProcessor } from './context.js';
import { parseOr } from './offset-header.js';

export const updateAndCreateSubscriptionGroup: BrokerProcessor = {
  code: RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
  async handle(ctx, request, channel) {
    let config: SubscriptionGroupConfig;
    try {
      config = decodeSubscriptionGroupConfig(request.body);
    } catch (e) {
      if (e instanceof AdminBodyError) {
        return createResponse(
          request,
          ResponseCode.SYSTEM_ERROR,
          `invalid subscription group config: ${e.message}`,
        );
      }
      throw e;
    }
    const created = await ctx.subscriptionGroups.upsert(config);
    ctx.logger.info(
      { group: config, created, from: channel.remoteAddress },
      `subscription group ${config.groupName} ${created ? 'created' : 'updated'}`,
    );
    return createResponse(request, ResponseCode.SUCCESS);
  },
};

export const getAllSubscriptionGroupConfig: BrokerProcessor = {
  code: RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
  handle(ctx, request) {
    const body = encodeSubscriptionGroupWrapper(ctx.subscriptionGroups.wrapper());
    return createResponse(request, ResponseCode.SUCCESS, undefined, undefined, body);
  },
};

export const deleteSubscriptionGroup: BrokerProcessor = {
  code: RequestCode.DELETE_SUBSCRIPTIONGROUP,
  async handle(ctx, request, channel) {
    const p = parseOr(request, (f) => ({
      groupName: str(f, 'groupName'),
      cleanOffset: optStr(f, 'cleanOffset') === 'true' || optStr(f, 'removeOffset') === 'true',
    }));
    if (!p.ok) return p.response;
    const { groupName, cleanOffset } = p.header;
    const existed = await ctx.subscriptionGroups.delete(groupName);
    const offsetTopics = cleanOffset ? ctx.offsets.removeGroup(groupName) : 0;
    ctx.logger.info(
      { groupName, existed, cleanOffset, offsetTopics, from: channel.remoteAddress },
      `subscription group ${groupName} deleted`,
    );
    return createResponse(request, ResponseCode.SUCCESS);
  },
};

export const getSubscriptionGroupConfig: BrokerProcessor = {
  code: RequestCode.GET_SUBSCRIPTIONGROUP_CONFIG,
  handle(ctx, request) {
    const p = parseOr(request, (f) => ({ group: str(f, 'group') }));
    if (!p.ok) return p.response;
    const config = ctx.subscriptionGroups.get(p.header.group);
    if (!config) {
      return createResponse(
        request,
        ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST,
        `No group in this broker: ${p.header.group}`,
      );
    }
    return createResponse(
      request,
      ResponseCode.SUCCESS,
      undefined,
      undefined,
      encodeSubscriptionGroupConfig(config),
    );
  },
};
