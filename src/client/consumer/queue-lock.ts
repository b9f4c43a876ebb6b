/**
 * The orderly consumer's two lock calls to a queue's master: LOCK_BATCH_MQ (take or renew a
 * group's queue locks; the answer names the queues now held, each with its fencing lock version)
 * and UNLOCK_BATCH_MQ (let them go). Queues are batched per broker group.
 */
import {
  createRequest,
  decodeLockBatchResponse,
  encodeLockBatchRequest,
  RequestCode,
} from '../../protocol/index.js';
import { type MessageQueue, mqKey } from '../message.js';
import type { ConsumerApi } from './pull-api.js';

/** The queues granted by one LOCK_BATCH_MQ round, by mqKey → lock version. */
export type LockGrants = Map<string, number>;

function byBroker(mqs: readonly MessageQueue[]): Map<string, MessageQueue[]> {
  const out = new Map<string, MessageQueue[]>();
  for (const q of mqs) {
    const list = out.get(q.brokerName);
    if (list) list.push(q);
    else out.set(q.brokerName, [q]);
  }
  return out;
}

/**
 * Locks (or renews) `mqs` for this client. A broker that cannot be reached grants nothing; the
 * caller treats its queues as not held.
 */
export async function lockQueues(
  api: ConsumerApi,
  group: string,
  mqs: readonly MessageQueue[],
): Promise<LockGrants> {
  const grants: LockGrants = new Map();
  await Promise.all(
    [...byBroker(mqs).values()].map(async (list) => {
      try {
        const addr = await api.brokerAddr(list[0]!);
        const res = await api.instance.invokeOk(
          addr,
          {
            ...createRequest(RequestCode.LOCK_BATCH_MQ),
            body: encodeLockBatchRequest({
              consumerGroup: group,
              clientId: api.instance.clientId,
              mqSet: list,
              onlyThisBroker: true,
            }),
          },
          'queue lock',
        );
        for (const q of decodeLockBatchResponse(res.body).lockVersions) grants.set(mqKey(q), q.lockVersion);
      } catch {
        // Nothing granted by this broker this round.
      }
    }),
  );
  return grants;
}

/** Releases `mqs`; failures are ignored (the lease runs out on its own). */
export async function unlockQueues(
  api: ConsumerApi,
  group: string,
  mqs: readonly MessageQueue[],
): Promise<void> {
  await Promise.all(
    [...byBroker(mqs).values()].map(async (list) => {
      try {
        const addr = await api.brokerAddr(list[0]!);
        await api.instance.invokeOk(
          addr,
          {
            ...createRequest(RequestCode.UNLOCK_BATCH_MQ),
            body: encodeLockBatchRequest({
              consumerGroup: group,
              clientId: api.instance.clientId,
              mqSet: list,
              onlyThisBroker: true,
            }),
          },
          'queue unlock',
        );
      } catch {
        // The lease expires on its own.
      }
    }),
  );
}
