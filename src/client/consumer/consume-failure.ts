/**
 * What happens to messages whose handler failed (threw or returned 'RETRY_LATER'). A policy
 * decides, per failed call, which messages the consumer redelivers locally after a back-off; the
 * others count as handled and leave the queue's cache, so the committed offset moves past them.
 *
 *   policy              failed messages                                  committed offset
 *   ------------------- ------------------------------------------------ ----------------------
 *   localRedelivery     all redelivered to the handler after 1 s, 2 s,   stays at the lowest
 *   (today's default)   4 s … capped at 30 s                             failed message
 *   send-back (later)   sent to %RETRY%<group> by CONSUMER_SEND_MSG_BACK; moves on; only those
 *                       only those it could not send are redelivered     not sent hold it
 *
 * A locally redelivered message comes back with reconsumeTimes + 1.
 */
import type { MessageExt } from '../message.js';
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
