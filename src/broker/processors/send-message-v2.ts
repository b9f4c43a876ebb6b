/** SEND_MESSAGE_V2 (310): one message with the one-letter (v2) header, what 4.x clients send. */
import { RequestCode } from '../../protocol/index.js';
import type { BrokerProcessor } from './context.js';
import { sendSingle } from './send-single.js';

export const sendMessageV2: BrokerProcessor = {
  code: RequestCode.SEND_MESSAGE_V2,
  handle: (ctx, request, channel) => sendSingle(ctx, request, channel, true),
};
