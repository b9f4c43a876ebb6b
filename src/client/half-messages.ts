/**
 * The unresolved transactions of a cluster, read the way the brokers' check service sees them
 * (../message/transaction-records.ts): on each broker, the half messages of
 * RMQ_SYS_TRANS_HALF_TOPIC from the check progress on (the CID_SYS_RMQ_TRANS offset), minus those
 * an op resolved (by half offset or transaction id), minus older copies a check re-put. Read with
 * the built-in TOOLS_CONSUMER group, which commits nothing. For `tsmq tx list`.
 */
import { TsmqError } from '../common/errors.js';
import {
  decodeOp,
  HALF_TOPIC,
  halfInfo,
  OP_TOPIC,
  parseTagExpression,
  TRANSACTION_GROUP,
} from '../message/index.js';
import type { ClientInstance } from './client-instance.js';
import { ConsumerApi } from './consumer/pull-api.js';
import { TOOLS_CONSUMER_GROUP } from './dead-letters.js';
import type { MessageExt, MessageQueue } from './message.js';

export interface HalfMessage {
  brokerName: string;
  transactionId: string;
  /** The topic and queue the message goes to when committed. */
  topic: string;
  queueId: number;
  producerGroup: string | undefined;
  /** Checks so far. */
  checkTimes: number;
  bornTimestamp: number;
  /** The half as stored (topic RMQ_SYS_TRANS_HALF_TOPIC). */
  msg: MessageExt;
}

const ALL = parseTagExpression('*')!;

async function readQueue(
  api: ConsumerApi,
  queue: MessageQueue,
  from: number,
  max: number,
): Promise<MessageExt[]> {
  const out: MessageExt[] = [];
  let offset = Math.max(from, await api.minOffset(queue));
  const end = await api.maxOffset(queue);
  while (offset < end && out.length < max) {
    const r = await api.pull({
      group: TOOLS_CONSUMER_GROUP,
      queue,
      offset,
      maxMsgNums: 32,
      expression: '*',
      filter: ALL,
      subVersion: 0,
      suspendTimeoutMs: 0,
    });
    if (r.status !== 'FOUND' && r.status !== 'NO_MATCHED_MSG') break;
    out.push(...r.msgs);
    if (r.nextBeginOffset <= offset) break;
    offset = r.nextBeginOffset;
  }
  return out;
}

/** Unresolved half messages of every broker, oldest first per broker, at most `max` per broker. */
export async function readHalfMessages(instance: ClientInstance, max = 1000): Promise<HalfMessage[]> {
  let route: Awaited<ReturnType<ClientInstance['route']>>;
  try {
    route = await instance.route(HALF_TOPIC, true);
  } catch (e) {
    if (e instanceof TsmqError && e.codeName === 'NO_ROUTE') return [];
    throw e;
  }
  const api = new ConsumerApi(instance);
  const out: HalfMessage[] = [];
  for (const b of route.brokerDatas) {
    const half: MessageQueue = { topic: HALF_TOPIC, brokerName: b.brokerName, queueId: 0 };
    const op: MessageQueue = { topic: OP_TOPIC, brokerName: b.brokerName, queueId: 0 };
    const halfFrom = (await api.queryConsumerOffset(TRANSACTION_GROUP, half)) ?? 0;
    const opFrom = (await api.queryConsumerOffset(TRANSACTION_GROUP, op).catch(() => undefined)) ?? 0;
    const resolvedOffsets = new Set<number>();
    const resolvedTx = new Set<string>();
    for (const m of await readQueue(api, op, opFrom, 1_000_000)) {
      const decoded = decodeOp(m);
      if (!decoded) continue;
      for (const o of decoded.halfOffsets) resolvedOffsets.add(o);
      if (decoded.transactionId) resolvedTx.add(decoded.transactionId);
    }
    const halves = await readQueue(api, half, halfFrom, 1_000_000);
    const latest = new Map<string, number>();
    for (const m of halves) latest.set(m.msgId, m.queueOffset);
    let n = 0;
    for (const m of halves) {
      if (resolvedOffsets.has(m.queueOffset) || resolvedTx.has(m.msgId)) continue;
      if (latest.get(m.msgId)! > m.queueOffset) continue;
      const info = halfInfo(m);
      if (typeof info === 'string') continue;
      out.push({
        brokerName: b.brokerName,
        transactionId: info.transactionId,
        topic: info.realTopic,
        queueId: info.realQueueId,
        producerGroup: info.producerGroup,
        checkTimes: info.checkTimes,
        bornTimestamp: m.bornTimestamp,
        msg: m,
      });
      if (++n >= max) break;
    }
  }
  return out;
}
