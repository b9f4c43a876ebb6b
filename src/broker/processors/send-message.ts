/** SEND_MESSAGE (10): one message with the long-named (v1) header. */
import { RequestCode } from '../../protocol/index.js';
import type { BrokerProcessor } from './context.js';
import { sendSingle } from './send-single.js';

export const sendMessage: BrokerProcessor = {
  code: RequestCode.SEND_MESSAGE,
  handle: (ctx, request, channel) => sendSingle(ctx, request, channel, false),
};
