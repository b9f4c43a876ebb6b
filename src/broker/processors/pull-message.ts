/**
 * PULL_MESSAGE (11): messages of one queue from a queue offset, as raw commit-log records
 * concatenated in the body (the client decodes them with MessageDecoder), with long polling.
 *
 * Request header (PullMessageRequestHeader): consumerGroup, topic, queueId, queueOffset,
 * maxMsgNums, sysFlag, commitOffset, suspendTimeoutMillis, subscription, subVersion,
 * expressionType, maxMsgBytes (5.x). sysFlag bits (PullSysFlag): COMMIT_OFFSET 1, SUSPEND 2,
 * SUBSCRIPTION 4, CLASS_FILTER 8, LITE_PULL 16.
 * Response header (PullMessageResponseHeader): suggestWhichBrokerId, nextBeginOffset, minOffset,
 * maxOffset.
 *
 * The store's GetMessageStatus maps to a response code as RocketMQ's PullMessageProcessor maps it
 * on a master; nextBeginOffset is the store's, already corrected as DefaultMessageStore corrects it:
 *
 *   store status                           code                          nextBeginOffset
 *   -------------------------------------- ----------------------------- ---------------------
 *   FOUND                                  SUCCESS 0 (+ body)            after the last record
 *   NO_MESSAGE_IN_QUEUE, NO_MATCHED_LOGIC_  PULL_NOT_FOUND 19 if the      0 or the queue's min
 *     QUEUE                                  offset asked is 0, else
 *                                            PULL_OFFSET_MOVED 21
 *   NO_MATCHED_MESSAGE (filter skipped all) PULL_RETRY_IMMEDIATELY 20     past the skipped units
 *   OFFSET_FOUND_NULL, OFFSET_OVERFLOW_ONE  PULL_NOT_FOUND 19             the offset asked
 *   OFFSET_TOO_SMALL                        PULL_OFFSET_MOVED 21          the queue's min
 *   OFFSET_OVERFLOW_BADLY                   PULL_OFFSET_MOVED 21          the queue's max
 *
 * PULL_NOT_FOUND with SUSPEND on the first run holds the pull (../long-polling.ts) for
 * min(suspendTimeoutMillis, pullSuspendMaxMs); the re-run answers. COMMIT_OFFSET on the first run
 * stores commitOffset for the group, whatever the pull finds.
 *
 * Before the topic, the group's subscription config is checked (a Map lookup; ../subscription-
 * groups.ts creates it when autoCreateSubscriptionGroup allows and the name is valid, as RocketMQ 5
 * does): no config → SUBSCRIPTION_GROUP_NOT_EXIST 26; consumeEnable false → NO_PERMISSION 16; a BROADCASTING group (by its heartbeat)
 * whose consumeBroadcastEnable is false → NO_PERMISSION 16.
 *
 * A SQL92 subscription (expressionType SQL92, with the flag or registered by the heartbeat) is
 * compiled once (../sql-filter.ts) and drops the records whose properties do not satisfy it; a
 * pull that kept none answers PULL_RETRY_IMMEDIATELY. An expression that does not parse →
 * SUBSCRIPTION_PARSE_FAILED 23 naming where; enablePropertyFilter=false → SYSTEM_ERROR.
 *
 * Without the SUBSCRIPTION flag the subscription the group's heartbeat registered for the topic
 * filters (its codeSet), as in RocketMQ. Where no heartbeat registered one, RocketMQ answers
 * SUBSCRIPTION_NOT_EXIST; tsmq then takes every tag ("*"), leaving filtering to the client (which
 * always re-checks tags).
 */
import { isTsmqError } from '../../common/errors.js';
import { parseTagExpression, type SqlFilter, type TagSubscription } from '../../message/index.js';
import { Perm } from '../../namesrv/index.js';
import {
  createResponse,
  type Fields,
  HeaderError,
  int,
  optInt,
  optStr,
  type RemotingCommand,
  RequestCode,
  ResponseCode,
  str,
  validateGroupName,
} from '../../protocol/index.js';
import type { RemotingChannel } from '../../remoting/index.js';
import type { GetMessageResult } from '../../store/index.js';
import { tagSubscriptionOf } from '../client-groups.js';
import { filterBySql, sqlSubscription } from '../sql-filter.js';
import type { BrokerContext, BrokerProcessor } from './context.js';

export const PullSysFlag = {
  COMMIT_OFFSET: 1,
  SUSPEND: 2,
  SUBSCRIPTION: 4,
  CLASS_FILTER: 8,
  LITE_PULL: 16,
} as const;

/** RocketMQ's MixAll.MASTER_ID: pull from the master again. */
const MASTER_ID = 0;

export interface PullMessageRequestHeader {
  consumerGroup: string;
  topic: string;
  queueId: number;
  queueOffset: number;
  maxMsgNums: number;
  sysFlag: number;
  commitOffset: number;
  suspendTimeoutMillis: number;
  subscription: string | undefined;
  subVersion: number;
  expressionType: string | undefined;
  maxMsgBytes: number | undefined;
}

export function parsePullHeader(f: Fields): PullMessageRequestHeader {
  return {
    consumerGroup: str(f, 'consumerGroup'),
    topic: str(f, 'topic'),
    queueId: int(f, 'queueId'),
    queueOffset: int(f, 'queueOffset'),
    maxMsgNums: int(f, 'maxMsgNums'),
    sysFlag: int(f, 'sysFlag'),
    commitOffset: optInt(f, 'commitOffset') ?? 0,
    suspendTimeoutMillis: optInt(f, 'suspendTimeoutMillis') ?? 0,
    subscription: optStr(f, 'subscription'),
    subVersion: optInt(f, 'subVersion') ?? 0,
    expressionType: optStr(f, 'expressionType'),
    maxMsgBytes: optInt(f, 'maxMsgBytes'),
  };
}

const STATUS_CODE: Record<GetMessageResult['status'], number> = {
  FOUND: ResponseCode.SUCCESS,
  NO_MESSAGE_IN_QUEUE: ResponseCode.PULL_NOT_FOUND, // PULL_OFFSET_MOVED unless the offset was 0
  NO_MATCHED_LOGIC_QUEUE: ResponseCode.PULL_NOT_FOUND, // idem
  NO_MATCHED_MESSAGE: ResponseCode.PULL_RETRY_IMMEDIATELY,
  OFFSET_FOUND_NULL: ResponseCode.PULL_NOT_FOUND,
  OFFSET_OVERFLOW_ONE: ResponseCode.PULL_NOT_FOUND,
  OFFSET_TOO_SMALL: ResponseCode.PULL_OFFSET_MOVED,
  OFFSET_OVERFLOW_BADLY: ResponseCode.PULL_OFFSET_MOVED,
};

function responseCodeOf(r: GetMessageResult, requestedOffset: number): number {
  if (
    (r.status === 'NO_MESSAGE_IN_QUEUE' || r.status === 'NO_MATCHED_LOGIC_QUEUE') &&
    requestedOffset !== 0
  ) {
    return ResponseCode.PULL_OFFSET_MOVED;
  }
  return STATUS_CODE[r.status];
}

/** Parsed TAG expressions by their text: every pull of a consumer carries the same one. */
const expressions = new Map<string, TagSubscription | undefined>();
/** Distinct expressions kept; past it the map starts over (they are cheap to parse again). */
const EXPRESSIONS_MAX = 1024;

function parsedExpression(expression: string | undefined): TagSubscription | undefined {
  const key = expression ?? '';
  let parsed = expressions.get(key);
  if (parsed === undefined && !expressions.has(key)) {
    parsed = parseTagExpression(expression);
    if (expressions.size >= EXPRESSIONS_MAX) expressions.clear();
    expressions.set(key, parsed);
  }
  return parsed;
}

export const pullMessage: BrokerProcessor = {
  code: RequestCode.PULL_MESSAGE,
  handle(ctx, request, channel) {
    return processPull(ctx, request, channel, true);
  },
};

async function processPull(
  ctx: BrokerContext,
  request: RemotingCommand,
  channel: RemotingChannel,
  allowSuspend: boolean,
): Promise<RemotingCommand | undefined> {
  let h: PullMessageRequestHeader;
  try {
    h = parsePullHeader(request.extFields);
  } catch (e) {
    if (e instanceof HeaderError) return createResponse(request, ResponseCode.SYSTEM_ERROR, e.message);
    throw e;
  }
  const store = ctx.store();
  if (!store) {
    return createResponse(request, ResponseCode.SERVICE_NOT_AVAILABLE, 'the broker is starting or closing');
  }
  const group = ctx.subscriptionGroups.findOrCreate(h.consumerGroup);
  if (!group) {
    const why =
      validateGroupName(h.consumerGroup) ??
      `autoCreateSubscriptionGroup=false on broker ${ctx.config.brokerName}; create it first`;
    return createResponse(
      request,
      ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST,
      `subscription group [${h.consumerGroup}] does not exist: ${why}`,
    );
  }
  if (!group.consumeEnable) {
    return createResponse(
      request,
      ResponseCode.NO_PERMISSION,
      `subscription group no permission, ${h.consumerGroup}`,
    );
  }
  if (
    !group.consumeBroadcastEnable &&
    ctx.clients.consumerGroup(h.consumerGroup)?.messageModel === 'BROADCASTING'
  ) {
    return createResponse(
      request,
      ResponseCode.NO_PERMISSION,
      `the consumer group[${h.consumerGroup}] can not consume by broadcast way`,
    );
  }
  const topic = ctx.topics.get(h.topic);
  if (!topic) {
    return createResponse(
      request,
      ResponseCode.TOPIC_NOT_EXIST,
      `topic[${h.topic}] not exist, apply first please!`,
    );
  }
  if ((topic.perm & Perm.READ) === 0) {
    return createResponse(
      request,
      ResponseCode.NO_PERMISSION,
      `the topic[${h.topic}] pulling message is forbidden`,
    );
  }
  if (h.queueId < 0 || h.queueId >= topic.readQueueNums) {
    return createResponse(
      request,
      ResponseCode.SYSTEM_ERROR,
      `queueId[${h.queueId}] is illegal, topic:[${h.topic}] topicConfig.readQueueNums:[${topic.readQueueNums}] consumer:[${channel.remoteAddress}]`,
    );
  }
  let sub: TagSubscription = { all: true };
  let sql: SqlFilter | undefined;
  if ((h.sysFlag & PullSysFlag.SUBSCRIPTION) !== 0) {
    if (h.expressionType === 'SQL92') {
      const f = sqlSubscription(ctx.config.enablePropertyFilter, h.subscription);
      if ('code' in f) return createResponse(request, f.code, f.remark);
      sql = f;
    } else if (h.expressionType !== undefined && h.expressionType !== 'TAG') {
      return createResponse(
        request,
        ResponseCode.SYSTEM_ERROR,
        `The broker does not support consumer to filter message by ${h.expressionType}`,
      );
    }
    const parsed = sql ? sub : parsedExpression(h.subscription);
    if (!parsed) {
      return createResponse(
        request,
        ResponseCode.SUBSCRIPTION_PARSE_FAILED,
        "parse the consumer's subscription failed",
      );
    }
    sub = parsed;
  } else {
    const registered = ctx.clients.subscription(h.consumerGroup, h.topic);
    if (registered?.expressionType === 'SQL92') {
      const f = sqlSubscription(ctx.config.enablePropertyFilter, registered.subString);
      if ('code' in f) return createResponse(request, f.code, f.remark);
      sql = f;
    } else if (registered) {
      if (registered.expressionType !== 'TAG') {
        return createResponse(
          request,
          ResponseCode.SYSTEM_ERROR,
          `The broker does not support consumer to filter message by ${registered.expressionType}`,
        );
      }
      sub = tagSubscriptionOf(registered);
    }
  }

  const c = ctx.config;
  const maxCount = Math.max(1, Math.min(h.maxMsgNums, c.maxTransferCountOnMessageInMemory));
  const maxBytes = Math.min(
    h.maxMsgBytes !== undefined && h.maxMsgBytes > 0 ? h.maxMsgBytes : Number.MAX_SAFE_INTEGER,
    c.maxTransferBytesOnMessageInMemory,
  );
  let result: GetMessageResult;
  try {
    result = await store.getMessages(h.topic, h.queueId, h.queueOffset, {
      maxCount,
      maxBytes,
      ...(!sub.all && { tagsCodeFilter: (code: number) => sub.codes.has(code) }),
    });
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (!isTsmqError(e) || e.codeName !== 'STORE_CLOSED') ctx.logger.error({ err: e }, 'pull failed');
    return createResponse(request, ResponseCode.SYSTEM_ERROR, `pull failed: ${message}`);
  }
  if (sql) result = filterBySql(result, sql);

  // RocketMQ stores the commit whatever the pull found, but only on the first run of a request.
  if (allowSuspend && (h.sysFlag & PullSysFlag.COMMIT_OFFSET) !== 0 && h.commitOffset >= 0) {
    ctx.offsets.commit(h.consumerGroup, h.topic, h.queueId, h.commitOffset);
  }

  const code = responseCodeOf(result, h.queueOffset);
  const holdMs = Math.min(Math.max(0, h.suspendTimeoutMillis), c.pullSuspendMaxMs);
  if (
    code === ResponseCode.PULL_NOT_FOUND &&
    allowSuspend &&
    (h.sysFlag & PullSysFlag.SUSPEND) !== 0 &&
    holdMs > 0
  ) {
    return new Promise<RemotingCommand | undefined>((resolve) => {
      const held = ctx.pullHold.hold({
        topic: h.topic,
        queueId: h.queueId,
        pullFromOffset: h.queueOffset,
        subscription: sub,
        deadlineMs: ctx.clock.now() + holdMs,
        channel,
        resume: () => {
          processPull(ctx, request, channel, false).then(resolve, (e: unknown) =>
            resolve(createResponse(request, ResponseCode.SYSTEM_ERROR, `pull failed: ${String(e)}`)),
          );
        },
        drop: () => resolve(undefined),
      });
      if (!held) {
        resolve(
          createResponse(
            request,
            ResponseCode.SYSTEM_BUSY,
            `too many suspended pulls (limit ${c.pullHeldRequestsMax}); try again later`,
          ),
        );
      }
    });
  }

  const ext = {
    suggestWhichBrokerId: String(MASTER_ID),
    nextBeginOffset: String(result.nextBeginOffset),
    minOffset: String(result.minOffset),
    maxOffset: String(result.maxOffset),
  };
  let body: Buffer | undefined;
  if (code === ResponseCode.SUCCESS) {
    ctx.stats.onGet(h.consumerGroup, h.topic, result.records.length);
    ctx.offsets.recordPull(h.consumerGroup, h.topic, h.queueId, result.nextBeginOffset);
    body = joinRecords(result.records, result.totalBytes);
  }
  return createResponse(request, code, undefined, ext, body);
}

/**
 * The response body: the channel writes one Buffer. Records that lie back to back in one buffer
 * of the store (a run of one queue's messages in the tail cache or a read-ahead block, as batched
 * sends leave them) go out as one zero-copy view; others are gathered into one copy.
 */
export function joinRecords(records: readonly Buffer[], totalBytes: number): Buffer {
  const first = records[0]!;
  if (records.length === 1) return first;
  let end = first.byteOffset + first.length;
  for (let i = 1; i < records.length; i++) {
    const r = records[i]!;
    if (r.buffer !== first.buffer || r.byteOffset !== end) return Buffer.concat(records, totalBytes);
    end += r.length;
  }
  return Buffer.from(first.buffer, first.byteOffset, totalBytes);
}
