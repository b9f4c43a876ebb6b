/**
 * LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42): queue locks for orderly consumers
 * (../queue-locks.ts has the rules and the fencing versions; the bodies are documented in
 * src/protocol/admin-bodies.ts).
 *
 *   case                                               answer
 *   -------------------------------------------------- ------------------------------------------
 *   body missing or not a lock request                 SYSTEM_ERROR 1, what is wrong with it
 *   queue of another broker, unknown topic, queue id   not granted (left out of lockOKMQSet),
 *     beyond the topic's read queues                     logged once per group and topic
 *   queue held by another live client of the group     not granted
 *   free, expired, or already the caller's             granted (renewed), with its lock version
 *   unlock of a queue the caller does not hold         ignored
 */
import { isTsmqError } from '../../common/errors.js';
import {
  AdminBodyError,
  createResponse,
  decodeLockBatchRequest,
  encodeLockBatchResponse,
  type LockBatchRequest,
  type MessageQueue,
  type RemotingCommand,
  RequestCode,
  ResponseCode,
} from '../../protocol/index.js';
import type { BrokerContext, BrokerProcessor } from './context.js';

const warned = new Set<string>();

function parse(request: RemotingCommand): LockBatchRequest | RemotingCommand {
  try {
    const r = decodeLockBatchRequest(request.body);
    if (r.consumerGroup === '' || r.clientId === '')
      throw new AdminBodyError('consumerGroup and clientId must not be empty');
    return r;
  } catch (e) {
    if (e instanceof AdminBodyError || isTsmqError(e)) {
      return createResponse(request, ResponseCode.SYSTEM_ERROR, `bad lock request: ${(e as Error).message}`);
    }
    throw e;
  }
}

/** The queues of the request this broker can lock; the others are logged (once) and skipped. */
function lockable(ctx: BrokerContext, r: LockBatchRequest): MessageQueue[] {
  return r.mqSet.filter((q) => {
    const topic = ctx.topics.get(q.topic);
    const why =
      q.brokerName !== ctx.config.brokerName
        ? `it belongs to broker ${q.brokerName}`
        : !topic
          ? 'the topic does not exist here'
          : q.queueId < 0 || q.queueId >= topic.readQueueNums
            ? `the topic has ${topic.readQueueNums} read queues`
            : undefined;
    if (why === undefined) return true;
    const key = `${r.consumerGroup}\u0001${q.topic}\u0001${q.brokerName}`;
    if (!warned.has(key) && warned.size < 10_000) {
      warned.add(key);
      ctx.logger.warn(
        { group: r.consumerGroup, client: r.clientId, topic: q.topic, queueId: q.queueId },
        `lock refused for ${q.topic}/${q.brokerName}/${q.queueId}: ${why}`,
      );
    }
    return false;
  });
}

export const lockBatchMq: BrokerProcessor = {
  code: RequestCode.LOCK_BATCH_MQ,
  handle(ctx, request) {
    const r = parse(request);
    if (!('mqSet' in r)) return r;
    const grants = ctx.locks.tryLockBatch(r.consumerGroup, r.clientId, lockable(ctx, r));
    const body = encodeLockBatchResponse({
      lockOKMQSet: grants.map((g) => g.queue),
      lockVersions: grants.map((g) => ({ ...g.queue, lockVersion: g.lockVersion })),
    });
    return createResponse(request, ResponseCode.SUCCESS, undefined, undefined, body);
  },
};

export const unlockBatchMq: BrokerProcessor = {
  code: RequestCode.UNLOCK_BATCH_MQ,
  handle(ctx, request) {
    const r = parse(request);
    if (!('mqSet' in r)) return r;
    ctx.locks.unlockBatch(r.consumerGroup, r.clientId, r.mqSet);
    return createResponse(request, ResponseCode.SUCCESS);
  },
};
