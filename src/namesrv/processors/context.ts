/**
 * What every name server request handler gets, and the two responses they share. One handler per
 * file beside this one; `registry.ts` lists them by request code.
 */
import type { Logger } from '../../common/log.js';
import { createResponse, type RemotingCommand, ResponseCode } from '../../protocol/index.js';
import type { RemotingChannel } from '../../remoting/index.js';
import type { RouteInfoManager } from '../route-info.js';

export interface NamesrvContext {
  routes: RouteInfoManager;
  logger: Logger;
}

export type NamesrvHandler = (
  ctx: NamesrvContext,
  request: RemotingCommand,
  channel: RemotingChannel,
) => RemotingCommand;

export interface NamesrvProcessor {
  code: number;
  handle: NamesrvHandler;
}

export function success(
  request: RemotingCommand,
  extFields?: Record<string, string>,
  body?: Buffer,
): RemotingCommand {
  return createResponse(request, ResponseCode.SUCCESS, undefined, extFields, body);
}

/**
 * A request we cannot act on (a missing header field, a body that does not decode): RocketMQ
 * answers these with SYSTEM_ERROR and the reason in the remark, and so do we.
 */
export function refused(request: RemotingCommand, remark: string): RemotingCommand {
  return createResponse(request, ResponseCode.SYSTEM_ERROR, remark);
}
