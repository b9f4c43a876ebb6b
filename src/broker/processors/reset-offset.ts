/**
 * INVOKE_BROKER_TO_RESET_OFFSET (222), admin: moves a consumer group's offsets on every read queue
 * of a topic on this broker to a time (the first message stored at or after it), to the earliest
 * or to the latest offset — the backtracking of `tsmq offset reset` and mqadmin resetOffsetByTime.
 *
 * Header (ResetOffsetRequestHeader): topic, group, timestamp (ms; tsmq: -1 earliest, -2 latest),
 * isForce ("true": move forward as well; otherwise a queue only moves back, as RocketMQ does).
 *
 * The broker's committed offsets change at once (so a group with no live member starts there), then
 * every live consumer of the group gets RESET_CONSUMER_CLIENT_OFFSET (220, same header, body
 * ResetOffsetBody) so it drops what it has cached, and pulls and commits from the new offsets. A
 * consumer that does not answer is logged; its offsets were already moved on the broker, and it
 * picks them up at its next rebalance. The answer's body is the ResetOffsetBody applied.
 *
 *   case                                   answer
 *   -------------------------------------- --------------------------------------
 *   missing or bad header field            SYSTEM_ERROR 1
 *   topic unknown here                     TOPIC_NOT_EXIST 17
 *   store not open                         SERVICE_NOT_AVAILABLE 14
 */
import {
  createRequest,
  createResponse,
  encodeResetOffsetBody,
  int,
  type MessageQueueEntry,
  optStr,
  RESET_TO_EARLIEST,
  RESET_TO_LATEST,
  RequestCode,
  ResponseCode,
  str,
} from '../../protocol/index.js';
import type { BrokerProcessor } from './context.js';
import { parseOr, storeUnavailable } from './offset-header.js';

/** How long the broker waits for each consumer to confirm a reset, ms. */
export const RESET_NOTIFY_TIMEOUT_MS = 5000;

export const invokeBrokerToResetOffset: BrokerProcessor = {
  code: RequestCode.INVOKE_BROKER_TO_RESET_OFFSET,
  async handle(ctx, request) {
    const p = parseOr(request, (f) => ({
      topic: str(f, 'topic'),
      group: str(f, 'group'),
      timestamp: int(f, 'timestamp'),
      isForce: optStr(f, 'isForce') === 'true',
    }));
    if (!p.ok) return p.response;
    const h = p.header;
    const store = ctx.store();
    if (!store) return storeUnavailable(request);
    const topic = ctx.topics.get(h.topic);
    if (!topic) return createResponse(request, ResponseCode.TOPIC_NOT_EXIST, `topic[${h.topic}] not exist`);
    if (h.timestamp < RESET_TO_LATEST) {
      return createResponse(
        request,
        ResponseCode.SYSTEM_ERROR,
        `timestamp ${h.timestamp} is not a time, -1 or -2`,
      );
    }

    const table: MessageQueueEntry<number>[] = [];
    for (let queueId = 0; queueId < topic.readQueueNums; queueId++) {
      const min = store.minOffsetInQueue(h.topic, queueId);
      const max = store.dispatchedMaxOffsetInQueue(h.topic, queueId);
      let target =
        h.timestamp === RESET_TO_EARLIEST
          ? min
          : h.timestamp === RESET_TO_LATEST
            ? max
            : await store.offsetForTimestamp(h.topic, queueId, h.timestamp);
      target = Math.min(Math.max(target, min), max);
      const current = ctx.offsets.query(h.group, h.topic, queueId);
      if (!h.isForce && current !== undefined && target > current) target = current;
      ctx.offsets.commit(h.group, h.topic, queueId, target);
      table.push({ queue: { topic: h.topic, brokerName: ctx.config.brokerName, queueId }, offsets: target });
    }
    const body = encodeResetOffsetBody({ offsetTable: table });

    const members = ctx.clients.consumerGroup(h.group)?.channels ?? new Map();
    await Promise.all(
      [...members.values()].map(async (member) => {
        const notice = createRequest(
          RequestCode.RESET_CONSUMER_CLIENT_OFFSET,
          { topic: h.topic, group: h.group, timestamp: String(h.timestamp), isForce: String(h.isForce) },
          body,
        );
        try {
          const res = await member.channel.invoke(notice, RESET_NOTIFY_TIMEOUT_MS);
          if (res.code !== ResponseCode.SUCCESS) throw new Error(res.remark ?? `code ${res.code}`);
        } catch (e) {
          ctx.logger.warn(
            { group: h.group, client: member.clientId, err: (e as Error).message },
            'a consumer did not confirm an offset reset; it will read the new offsets at its next rebalance',
          );
        }
      }),
    );
    ctx.logger.info(
      { group: h.group, topic: h.topic, timestamp: h.timestamp, members: members.size },
      'consumer offsets reset',
    );
    return createResponse(request, ResponseCode.SUCCESS, undefined, undefined, body);
  },
};
