/**
 * What happens to messages whose handler failed (threw or returned 'RETRY_LATER'). A policy
 * decides, per failed call, which messages the consumer redelivers locally after a back-off; the
 * others count as handled and leave the queue's cache, so the committed offset moves past them.
 *
 *   policy            used by default for          failed messages               committed offset
 *   ----------------- ---------------------------- ----------------------------- ----------------
 *   sendBack          concurrent CLUSTERING        CONSUMER_SEND_MSG_BACK: the   moves on; those
 *                                                 broker stores them to         not sent hold it
 *                                                 %RETRY%<group> (10 s, 30 s,
 *                                                 1 m … 2 h later) or, past
 *                                                 maxReconsumeTimes, %DLQ%;
 *                                                 those it could not send are
 *                                                 redelivered locally
 *   deadLetter        orderly, past                sent to %DLQ%<group> (with    moves on; those
 *                     maxReconsumeTimes            the queue lock's version);    not sent keep
 *                                                 those not sent are retried    the queue waiting
 *   localRedelivery   concurrent BROADCASTING      all redelivered to the        stays at the
 *                     (the retry topic would       handler after 1 s, 2 s, 4 s   lowest failed
 *                     reach every member)          … capped at 30 s              message
 *
 * A locally redelivered message comes back with reconsumeTimes + 1; one from the retry topic with
 * the reconsumeTimes the broker stored (one more than the delivery that failed). Nothing is
 * dropped: a message leaves the cache only once handled, or stored again by its broker.
 */
import type { Logger } from '../../common/log.js';
import { ResponseCode } from '../../protocol/index.js';
import { isBrokerResponseError } from '../errors.js';
import type { MessageExt, MessageQueue } from '../message.js';
import type { ConsumerApi } from './pull-api.js';
import type { ConsumeContext } from './types.js';

export interface ConsumeFailurePolicy {
  /** Returns the messages to redeliver locally; the rest are done with. Must not throw. */
  onFailure(msgs: MessageExt[], ctx: ConsumeContext): Promise<MessageExt[]>;
}

/** Every failed message is given to the handler again after a back-off. */
export const localRedelivery: ConsumeFailurePolicy = {
  async onFailure(msgs) {
    return msgs;
  },
};

export interface SendBackOptions {
  api: ConsumerApi;
  group: string;
  /** Sent with every send-back when given; the group's retryMaxTimes applies otherwise. */
  maxReconsumeTimes?: number;
  logger: Logger;
}

/** Sends each failed message back to its broker; the ones it could not send are redelivered locally. */
export function sendBack(o: SendBackOptions): ConsumeFailurePolicy {
  return {
    async onFailure(msgs, ctx) {
      const delayLevel = ctx.delayLevelWhenNextConsume ?? 0;
      const sent = await Promise.allSettled(
        msgs.map((m) =>
          o.api.sendMessageBack(o.group, m, {
            delayLevel,
            ...(o.maxReconsumeTimes !== undefined && { maxReconsumeTimes: o.maxReconsumeTimes }),
          }),
        ),
      );
      const failed: MessageExt[] = [];
      sent.forEach((r, i) => {
        if (r.status === 'fulfilled') return;
        failed.push(msgs[i]!);
        o.logger.warn(
          { msgId: msgs[i]!.msgId, err: (r.reason as Error).message },
          'send-back failed; the message will be redelivered locally',
        );
      });
      return failed;
    },
  };
}

export interface DeadLetterOptions {
  api: ConsumerApi;
  group: string;
  /** The version of the queue lock the messages were consumed under (orderly CLUSTERING). */
  lockVersion: (mq: MessageQueue) => number | undefined;
  /** The broker refused the lock version: the queue's lease is gone. */
  refused: (mq: MessageQueue) => void;
  logger: Logger;
}

/** Sends each message to the group's DLQ; the ones not sent are returned to be retried. */
export function deadLetter(o: DeadLetterOptions): ConsumeFailurePolicy {
  return {
    async onFailure(msgs, ctx) {
      const lockVersion = o.lockVersion(ctx.queue);
      const failed: MessageExt[] = [];
      // One at a time, in order: the queue is ordered and the first refusal ends the lease.
      for (const m of msgs) {
        try {
          await o.api.sendMessageBack(o.group, m, {
            delayLevel: -1,
            ...(lockVersion !== undefined && { lockVersion }),
          });
          o.logger.warn(
            { msgId: m.msgId, queueOffset: m.queueOffset, reconsumeTimes: m.reconsumeTimes },
            'message sent to the dead-letter queue',
          );
        } catch (e) {
          failed.push(m);
          if (isBrokerResponseError(e, ResponseCode.NO_PERMISSION)) {
            o.refused(ctx.queue);
            failed.push(...msgs.slice(msgs.indexOf(m) + 1));
            break;
          }
          o.logger.warn(
            { msgId: m.msgId, err: (e as Error).message },
            'sending to the dead-letter queue failed; retrying the message',
          );
        }
      }
      return failed;
    },
  };
}

export interface RetryBackoff {
  /** The first redelivery's delay, ms. Default 1,000. */
  initialMs: number;
  /** The longest delay, ms. Default 30,000. */
  maxMs: number;
}

export const DEFAULT_RETRY_BACKOFF: RetryBackoff = { initialMs: 1_000, maxMs: 30_000 };

/** The delay before redelivery `attempt` (1 for the first): doubling from initialMs, capped. */
export function retryDelayMs(attempt: number, b: RetryBackoff = DEFAULT_RETRY_BACKOFF): number {
  const exp = Math.min(Math.max(attempt - 1, 0), 30);
  return Math.min(b.maxMs, b.initialMs * 2 ** exp);
}
