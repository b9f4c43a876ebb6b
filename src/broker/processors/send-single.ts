/**
 * One message, the body of the request, stored in one queue: the work behind SEND_MESSAGE and
 * SEND_MESSAGE_V2, which differ only in their header's keys (see ../send-headers.ts). A message
 * with a delay level or a timer property first waits in the schedule or timer topic
 * (../schedule/put-message.ts); the reply then names its place there (queue offset and
 * offsetMsgId), as RocketMQ's does, and the queue id it asked for.
 */

import {
  createResponse,
  encodeSendResponseHeader,
  parseSendHeader,
  type RemotingCommand,
  ResponseCode,
} from '../../protocol/index.js';
import type { RemotingChannel } from '../../remoting/index.js';
import type { BrokerContext } from './context.js';
import {
  admitSend,
  bornHostOf,
  checkSend,
  retryToDeadLetter,
  stampProperties,
  storeFailure,
} from './send-common.js';

export async function sendSingle(
  ctx: BrokerContext,
  request: RemotingCommand,
  channel: RemotingChannel,
  v2: boolean,
): Promise<RemotingCommand> {
  const parsed = parseSendHeader(request.extFields, v2);
  if (!parsed.ok) return createResponse(request, ResponseCode.SYSTEM_ERROR, parsed.error);
  const h = parsed.header;
  const checked = await checkSend(ctx, request, h);
  if (!checked.ok) return checked.response;
  let { properties, uniqKey } = stampProperties(ctx, h.properties);
  let topic = h.topic;
  let queueId = checked.queueId;
  const dead = await retryToDeadLetter(ctx, h, properties);
  if (dead && !dead.ok) return createResponse(request, dead.code, dead.remark);
  if (dead) ({ topic, queueId, properties } = dead);
  const bornHost = bornHostOf(channel);
  const body = request.body ?? Buffer.alloc(0);
  const admitted = await admitSend(ctx, request, channel, h.topic, 1, body.length);
  if (!admitted.ok) return admitted.response;
  try {
    // Through the broker's put entry: a DELAY or timer property sends it to wait first.
    const { put } = await ctx.messagePut.put({
      topic,
      queueId,
      body,
      properties,
      flag: h.flag,
      sysFlag: h.sysFlag,
      bornTimestamp: h.bornTimestamp,
      ...(bornHost && { bornHost }),
      reconsumeTimes: h.reconsumeTimes ?? 0,
    });
    ctx.stats.onPut(1);
    return createResponse(
      request,
      ResponseCode.SUCCESS,
      undefined,
      encodeSendResponseHeader({
        msgId: put.offsetMsgId,
        queueId,
        queueOffset: put.queueOffset,
        transactionId: uniqKey,
      }),
    );
  } catch (e) {
    return storeFailure(ctx, request, e);
  } finally {
    admitted.release();
  }
}
