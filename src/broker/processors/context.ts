/** What every broker processor may use: the broker's parts, handed over explicitly. */

import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/log.js';
import type { HostAddress } from '../../common/types.js';
import type { RemotingCommand } from '../../protocol/index.js';
import type { RemotingChannel } from '../../remoting/index.js';
import type { MessageStore } from '../../store/index.js';
import type { ClientGroups } from '../client-groups.js';
import type { BrokerConfig } from '../config.js';
import type { ConsumerOffsetManager } from '../consumer-offsets.js';
import type { RateLimiter, SendAdmission } from '../flow-control.js';
import type { PullRequestHoldService } from '../long-polling.js';
import type { QueueLockManager } from '../queue-locks.js';
import type { MessagePutService } from '../schedule/put-message.js';
import type { ScheduleMessageService } from '../schedule/schedule-service.js';
import type { BrokerStats } from '../stats.js';
import type { SubscriptionGroupManager } from '../subscription-groups.js';
import type { TimerMessageService } from '../timer/timer-service.js';
import type { TopicConfigManager } from '../topic-config.js';
import type { TransactionService } from '../transaction/transaction-service.js';

export interface BrokerContext {
  readonly config: BrokerConfig;
  readonly topics: TopicConfigManager;
  /** The open store; undefined while the broker starts or after it closed. */
  store(): MessageStore | undefined;
  /** The advertised address, stored in every record and offsetMsgId. */
  storeHost(): HostAddress;
  readonly logger: Logger;
  /** Tells the name servers about changed topic configs soon (as RocketMQ does after a create). */
  topicsChanged(): void;
  /** A random integer in [0, n) (injectable so tests can pin queue choice). */
  random(n: number): number;
  readonly clock: Clock;
  readonly offsets: ConsumerOffsetManager;
  readonly pullHold: PullRequestHoldService;
  /** Producer and consumer groups from heartbeats, with the consumers' subscriptions. */
  readonly clients: ClientGroups;
  /** Consumer groups' configs (subscriptionGroup.json). */
  readonly subscriptionGroups: SubscriptionGroupManager;
  /** Message counters and rates for the runtime and consume statistics. */
  readonly stats: BrokerStats;
  /** Queue locks of orderly consumers, with fencing versions. */
  readonly locks: QueueLockManager;
  /**
   * The broker's one entry for storing a message as its sender meant it — now, after a delay
   * level, or at a timer's time (schedule/put-message.ts). Every client-originated put uses it.
   */
  readonly messagePut: MessagePutService;
  /** Delay-level delivery; undefined while the store is not open. */
  schedule(): ScheduleMessageService | undefined;
  /** Timer delivery; undefined while the store is not open, or with timers off and none stored. */
  timer(): TimerMessageService | undefined;
  /** Per-topic and per-client send rate limits (FLOW_CONTROL). */
  readonly rateLimits: RateLimiter;
  /** The bounded send queue (SYSTEM_BUSY when a send waits too long). */
  readonly sendAdmission: SendAdmission;
  /** Transaction ends and checks; undefined while the store is not open. */
  transactions(): TransactionService | undefined;
}

export interface BrokerProcessor {
  readonly code: number;
  handle(
    ctx: BrokerContext,
    request: RemotingCommand,
    channel: RemotingChannel,
  ): Promise<RemotingCommand | undefined> | RemotingCommand | undefined;
}
