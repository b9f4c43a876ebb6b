/**
 * GET_ALL_DELAY_OFFSET (45), admin/slave sync: each delay level's delivery progress, as
 * delayOffset.json holds it ({"offsetTable":{"<level>":<next queue offset>}}), but current (the
 * file trails by up to flushDelayOffsetInterval). RocketMQ answers ScheduleMessageService.encode().
 */
import { createResponse, RequestCode, ResponseCode } from '../../protocol/index.js';
import type { BrokerProcessor } from './context.js';
import { storeUnavailable } from './offset-header.js';

export const getAllDelayOffset: BrokerProcessor = {
  code: RequestCode.GET_ALL_DELAY_OFFSET,
  handle(ctx, request) {
    const schedule = ctx.schedule();
    if (!schedule) return storeUnavailable(request);
    const body = Buffer.from(JSON.stringify(schedule.offsetTable()), 'utf8');
    return createResponse(request, ResponseCode.SUCCESS, undefined, undefined, body);
  },
};
