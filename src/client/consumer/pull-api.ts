/**
 * The broker calls a consumer makes, one function each, all sent to the queue's master:
 *
 *   call                          request header                          answer
 *   ----------------------------- --------------------------------------- -----------------------
 *   PULL_MESSAGE 11               consumerGroup topic queueId queueOffset  PullResult (below)
 *                                 maxMsgNums sysFlag commitOffset
 *                                 suspendTimeoutMillis subscription
 *                                 subVersion expressionType
 *   QUERY_CONSUMER_OFFSET 14      consumerGroup topic queueId              offset, or undefined on
 *                                 setZeroIfNotFound                        QUERY_NOT_FOUND 22
 *   UPDATE_CONSUMER_OFFSET 15     consumerGroup topic queueId commitOffset —
 *   SEARCH_OFFSET_BY_TIMESTAMP 29 topic queueId timestamp                  offset
 *   GET_MAX_OFFSET 30             topic queueId                            offset
 *   GET_MIN_OFFSET 31             topic queueId                            offset
 *
 * A pull's response code becomes its status; other codes throw BrokerResponseError:
 *
 *   code                          status           nextBeginOffset means
 *   ----------------------------- ---------------- ---------------------------------------------
 *   SUCCESS 0                     FOUND            after the last record returned
 *   PULL_NOT_FOUND 19             NO_NEW_MSG       the offset asked (wait for new messages)
 *   PULL_RETRY_IMMEDIATELY 20     NO_MATCHED_MSG   past units the tag filter skipped
 *   PULL_OFFSET_MOVED 21          OFFSET_ILLEGAL   where to continue (the queue's min or max)
 *
 * The broker filters by tag hash; FOUND messages are re-checked against the tag strings here, so
 * `msgs` may be empty while `nextBeginOffset` moved on (every record was a hash collision).
 *
 * The queries ask the new-group question without the broker's guess: setZeroIfNotFound=false, so
 * a group with no offset gets QUERY_NOT_FOUND and applies its own ConsumeFromWhere.
 */
import { TsmqError } from '../../common/errors.js';
import type { TagSubscription } from '../../message/index.js';
import {
  createRequest,
  type RemotingCommand,
  RequestCode,
  ResponseCode,
  type SubscriptionData,
} from '../../protocol/index.js';
import type { ClientInstance } from '../client-instance.js';
import { BrokerResponseError } from '../errors.js';
import { decodeMessages, type MessageExt, type MessageQueue } from '../message.js';
import { type ExpressionType, matchesTag } from './subscription.js';

/** PULL_MESSAGE sysFlag bits (RocketMQ's PullSysFlag). */
export const PullSysFlag = {
  COMMIT_OFFSET: 1,
  SUSPEND: 2,
  SUBSCRIPTION: 4,
  CLASS_FILTER: 8,
  LITE_PULL: 16,
} as const;

export type PullStatus = 'FOUND' | 'NO_NEW_MSG' | 'NO_MATCHED_MSG' | 'OFFSET_ILLEGAL';

export interface PullResult {
  status: PullStatus;
  nextBeginOffset: number;
  minOffset: number;
  maxOffset: number;
  /** FOUND only: the messages whose tag matches, in queue order. */
  msgs: MessageExt[];
  /** Records the broker sent, before the client-side tag check. */
  rawCount: number;
}

/** A pull's answer before its body is decoded (see `ConsumerApi.requestPull`). */
export interface RawPullResult {
  status: PullStatus;
  nextBeginOffset: number;
  minOffset: number;
  maxOffset: number;
  /** FOUND only: the records as the broker sent them. */
  body: Buffer | undefined;
}

export interface PullRequest {
  group: string;
  queue: MessageQueue;
  offset: number;
  maxMsgNums: number;
  /** The expression sent with the SUBSCRIPTION flag, and the parsed TAG filter for the re-check. */
  expression: string;
  /** 'TAG' (default) or 'SQL92' (the broker filters; no re-check here). */
  expressionType?: ExpressionType;
  filter: TagSubscription;
  subVersion: number;
  /** Ask the broker to hold the pull this long when nothing is there (SUSPEND); 0: answer at once. */
  suspendTimeoutMs: number;
  /** Commit this offset for the group with the pull (COMMIT_OFFSET); undefined: none. */
  commitOffset?: number | undefined;
  /** The RPC's timeout; default: the suspend time + 15 s, or the client's request timeout. */
  timeoutMs?: number;
  /** Verify each record's CRCs on arrival (see `decodeMessages`). Default false. */
  checkCrc?: boolean;
}

const PULL_STATUS: Record<number, PullStatus> = {
  [ResponseCode.SUCCESS]: 'FOUND',
  [ResponseCode.PULL_NOT_FOUND]: 'NO_NEW_MSG',
  [ResponseCode.PULL_RETRY_IMMEDIATELY]: 'NO_MATCHED_MSG',
  [ResponseCode.PULL_OFFSET_MOVED]: 'OFFSET_ILLEGAL',
};

/** Margin a long-polling pull's RPC timeout keeps over the time the broker may hold it. */
export const SUSPEND_RPC_MARGIN_MS = 15_000;

function headerInt(res: RemotingCommand, name: string, addr: string, what: string): number {
  const v = res.extFields?.[name];
  const n = v === undefined ? Number.NaN : Number(v);
  if (!Number.isSafeInteger(n)) {
    throw new TsmqError('HEADER_INVALID', `the ${what} answer of ${addr} has no integer ${name} (${v})`);
  }
  return n;
}

/** The consumer-side broker API of one client instance. */
export class ConsumerApi {
  constructor(readonly instance: ClientInstance) {}

  /** The master's address of the queue's broker group, refreshing the route once if unknown. */
  async brokerAddr(mq: MessageQueue): Promise<string> {
    const known = this.instance.masterAddr(mq.brokerName) ?? this.instance.anyAddr(mq.brokerName);
    if (known) return known;
    await this.instance.route(mq.topic, true);
    const addr = this.instance.masterAddr(mq.brokerName) ?? this.instance.anyAddr(mq.brokerName);
    if (!addr) {
      throw new TsmqError('NO_ROUTE', `no address known for broker ${mq.brokerName} of topic ${mq.topic}`);
    }
    return addr;
  }

  async pull(p: PullRequest): Promise<PullResult> {
    return decodePull(await this.requestPull(p), p);
  }

  /**
   * The network half of `pull`: the broker's answer with its body still encoded, so a caller can
   * ask for the next batch (from `nextBeginOffset`) before it decodes this one (`decodePull`).
   */
  async requestPull(p: PullRequest): Promise<RawPullResult> {
    const addr = await this.brokerAddr(p.queue);
    let sysFlag = PullSysFlag.SUBSCRIPTION;
    if (p.suspendTimeoutMs > 0) sysFlag |= PullSysFlag.SUSPEND;
    if (p.commitOffset !== undefined && p.commitOffset > 0) sysFlag |= PullSysFlag.COMMIT_OFFSET;
    const request = createRequest(RequestCode.PULL_MESSAGE, {
      consumerGroup: p.group,
      topic: p.queue.topic,
      queueId: String(p.queue.queueId),
      queueOffset: String(p.offset),
      maxMsgNums: String(p.maxMsgNums),
      sysFlag: String(sysFlag),
      commitOffset: String(p.commitOffset ?? 0),
      suspendTimeoutMillis: String(p.suspendTimeoutMs),
      subscription: p.expression,
      subVersion: String(p.subVersion),
      expressionType: p.expressionType ?? 'TAG',
    });
    const timeoutMs =
      p.timeoutMs ??
      (p.suspendTimeoutMs > 0 ? p.suspendTimeoutMs + SUSPEND_RPC_MARGIN_MS : this.instance.requestTimeoutMs);
    const res = await this.instance.invoke(addr, request, timeoutMs);
    const status = PULL_STATUS[res.code];
    if (status === undefined) throw new BrokerResponseError(addr, res, `pull of ${describeQueue(p.queue)}`);
    return {
      status,
      nextBeginOffset: headerInt(res, 'nextBeginOffset', addr, 'pull'),
      minOffset: headerInt(res, 'minOffset', addr, 'pull'),
      maxOffset: headerInt(res, 'maxOffset', addr, 'pull'),
      body: status === 'FOUND' ? res.body : undefined,
    };
  }

  /** The group's committed offset of the queue on its broker; undefined when it has none. */
  async queryConsumerOffset(group: string, mq: MessageQueue): Promise<number | undefined> {
    const addr = await this.brokerAddr(mq);
    const res = await this.instance.invoke(
      addr,
      createRequest(RequestCode.QUERY_CONSUMER_OFFSET, {
        consumerGroup: group,
        topic: mq.topic,
        queueId: String(mq.queueId),
        setZeroIfNotFound: 'false',
      }),
    );
    if (res.code === ResponseCode.QUERY_NOT_FOUND) return undefined;
    if (res.code !== ResponseCode.SUCCESS) {
      throw new BrokerResponseError(addr, res, `offset query of ${describeQueue(mq)}`);
    }
    return headerInt(res, 'offset', addr, 'offset query');
  }

  /**
   * Commits the group's offset of the queue. An orderly consumer passes the version of the queue
   * lock it consumed under; the broker refuses a stale one (NO_PERMISSION).
   */
  async updateConsumerOffset(
    group: string,
    mq: MessageQueue,
    offset: number,
    lockVersion?: number,
  ): Promise<void> {
    const addr = await this.brokerAddr(mq);
    await this.instance.invokeOk(
      addr,
      createRequest(RequestCode.UPDATE_CONSUMER_OFFSET, {
        consumerGroup: group,
        topic: mq.topic,
        queueId: String(mq.queueId),
        commitOffset: String(offset),
        ...(lockVersion !== undefined && { lockVersion: String(lockVersion) }),
      }),
      `offset update of ${describeQueue(mq)}`,
    );
  }

  /**
   * CONSUMER_SEND_MSG_BACK: asks the message's broker to store it again for a later delivery —
   * to the group's %RETRY% topic after `delayLevel` (0: the broker's 3 + reconsumeTimes), or to
   * its %DLQ% topic when `delayLevel` < 0 or the message reached maxReconsumeTimes (the group's
   * retryMaxTimes when not given). An orderly consumer passes its queue lock's version; the
   * broker refuses a stale one (NO_PERMISSION). Rejects with BrokerResponseError on refusal.
   */
  async sendMessageBack(
    group: string,
    msg: MessageExt,
    opts: { delayLevel: number; maxReconsumeTimes?: number; lockVersion?: number },
  ): Promise<void> {
    const addr = await this.brokerAddr({
      topic: msg.topic,
      brokerName: msg.brokerName,
      queueId: msg.queueId,
    });
    await this.instance.invokeOk(
      addr,
      createRequest(RequestCode.CONSUMER_SEND_MSG_BACK, {
        offset: String(msg.commitLogOffset),
        group,
        delayLevel: String(opts.delayLevel),
        originMsgId: msg.msgId,
        originTopic: msg.topic,
        unitMode: 'false',
        ...(opts.maxReconsumeTimes !== undefined && { maxReconsumeTimes: String(opts.maxReconsumeTimes) }),
        ...(opts.lockVersion !== undefined && { lockVersion: String(opts.lockVersion) }),
      }),
      `send-back of message ${msg.msgId} (${msg.brokerName} offset ${msg.commitLogOffset})`,
    );
  }

  /**
   * CHECK_CLIENT_CONFIG: asks every broker serving the subscription's topic whether it can serve
   * it (SQL92 support, the expression parses); rejects with the first refusal.
   */
  async checkClientConfig(group: string, subscriptionData: SubscriptionData): Promise<void> {
    const route = this.instance.cachedRoute(subscriptionData.topic);
    for (const b of route?.brokerDatas ?? []) {
      const addr = this.instance.masterAddr(b.brokerName) ?? this.instance.anyAddr(b.brokerName);
      if (!addr) continue;
      await this.instance.invokeOk(
        addr,
        {
          ...createRequest(RequestCode.CHECK_CLIENT_CONFIG),
          body: Buffer.from(JSON.stringify({ clientId: this.instance.clientId, group, subscriptionData })),
        },
        `the ${subscriptionData.expressionType} subscription of ${subscriptionData.topic}`,
      );
    }
  }

  /** One past the queue's last message. */
  maxOffset(mq: MessageQueue): Promise<number> {
    return this.queueQuery(RequestCode.GET_MAX_OFFSET, mq, {}, 'max offset');
  }

  /** The queue's first kept message. */
  minOffset(mq: MessageQueue): Promise<number> {
    return this.queueQuery(RequestCode.GET_MIN_OFFSET, mq, {}, 'min offset');
  }

  /** The first message stored at or after `timestampMs` (the max offset when none is). */
  searchOffset(mq: MessageQueue, timestampMs: number): Promise<number> {
    return this.queueQuery(
      RequestCode.SEARCH_OFFSET_BY_TIMESTAMP,
      mq,
      { timestamp: String(Math.trunc(timestampMs)) },
      'offset search',
    );
  }

  private async queueQuery(
    code: number,
    mq: MessageQueue,
    extra: Record<string, string>,
    what: string,
  ): Promise<number> {
    const addr = await this.brokerAddr(mq);
    const res = await this.instance.invokeOk(
      addr,
      createRequest(code, { topic: mq.topic, queueId: String(mq.queueId), ...extra }),
      `${what} of ${describeQueue(mq)}`,
    );
    return headerInt(res, 'offset', addr, what);
  }
}

/**
 * The messages of a raw pull answer, tag re-check applied. Throws CORRUPT_RECORD if the body does
 * not decode (see `decodeMessages`).
 */
export function decodePull(raw: RawPullResult, p: PullRequest): PullResult {
  const result: PullResult = {
    status: raw.status,
    nextBeginOffset: raw.nextBeginOffset,
    minOffset: raw.minOffset,
    maxOffset: raw.maxOffset,
    msgs: [],
    rawCount: 0,
  };
  if (raw.status === 'FOUND') {
    const all = decodeMessages(raw.body, p.queue.brokerName, { checkCrc: p.checkCrc === true });
    result.rawCount = all.length;
    result.msgs = p.filter.all ? all : all.filter((m) => matchesTag(p.filter, m));
  }
  return result;
}

export function describeQueue(mq: MessageQueue): string {
  return `${mq.topic}/${mq.brokerName}/${mq.queueId}`;
}
