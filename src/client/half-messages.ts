/**
 * The unresolved transactions of a cluster, read the way the brokers' check service sees them
 * (../message/transaction-records.ts): on each broker, the half messages of
 * RMQ_SYS_TRANS_HALF_TOPIC from the check progress on (the CID_SYS_RMQ_TRANS offset), minus those
 * an op resolved (by half offset or transaction id), minus older copies a check re-put. Read with
 * the built-in TOOLS_CONSUMER group, which commits nothing. For `tsmq tx list`.
 */
import { decodeOp, HALF_TOPIC, halfInfo, OP_TOPIC, TRANSACTION_GROUP } from '../message/index.js';
import type { ClientInstance } from './client-instance.js';
import { ConsumerApi } from './consumer/pull-api.js';
import type { MessageExt, MessageQueue } from './message.js';
import { readQueue, routeIfAny } from './tools-read.js';

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

/** Unresolved half messages of every broker, oldest first per broker, at most `max` per broker. */
export async function readHalfMessages(instance: ClientInstance, max = 1000): Promise<HalfMessage[]> {
  const route = await routeIfAny(instance, HALF_TOPIC);
  if (!route) return [];
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
