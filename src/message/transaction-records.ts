/**
 * Transactional messages on disk (RocketMQ's two-topic design, so everything lives in the commit
 * log and survives a crash the way any message does):
 *
 *   topic                          queue  record                                   written by
 *   ------------------------------ ------ ---------------------------------------- ----------------
 *   RMQ_SYS_TRANS_HALF_TOPIC       0      a half message: the producer's message   a send with the
 *                                         (body, flag, properties) with REAL_TOPIC  PREPARED sysFlag;
 *                                         and REAL_QID, sysFlag reset to NOT_TYPE  a check re-puts
 *                                         so it gets a consume-queue unit; a re-put it (+1 check)
 *                                         copy has TRANSACTION_CHECK_TIMES + 1
 *   RMQ_SYS_TRANS_OP_HALF_TOPIC    0      an "op": tag `d`, body = the half's queue END_TRANSACTION
 *                                         offset in decimal (RocketMQ's), property  (commit or
 *                                         TSMQ_TRAN_ID = the transaction id        rollback), a
 *                                         (UNIQ_KEY) so every copy of the half is  give-up
 *                                         resolved by one op
 *   the real topic                 REAL_  the committed message: the half restored END_TRANSACTION
 *                                  QID    (no REAL_*), sysFlag COMMIT, the half's  commit
 *                                         commit-log offset as its prepared-
 *                                         transaction offset
 *   TRANS_CHECK_MAX_TIME_TOPIC     0      a half checked transactionCheckMax times the check service
 *                                         with no answer, kept for an operator
 *
 * Progress is two consumer offsets of the system group CID_SYS_RMQ_TRANS (RocketMQ's): the next
 * half to look at, and the first op still needed (../broker/transaction/transaction-service.ts).
 * The broker writes these records; `tsmq tx list` reads them (../client/half-messages.ts).
 */
import { decodeProperties, encodeProperties, MessageProperty } from './properties.js';
import { type AppendMessage, type DecodedRecord, SysFlag } from './record.js';

export const HALF_TOPIC = 'RMQ_SYS_TRANS_HALF_TOPIC';
export const OP_TOPIC = 'RMQ_SYS_TRANS_OP_HALF_TOPIC';
export const CHECK_MAX_TOPIC = 'TRANS_CHECK_MAX_TIME_TOPIC';
/** The system group whose offsets hold the check service's progress (RocketMQ's name). */
export const TRANSACTION_GROUP = 'CID_SYS_RMQ_TRANS';
/** The tag of an op message (RocketMQ's REMOVETAG). */
export const OP_TAG = 'd';
/** tsmq's op property: the transaction id (UNIQ_KEY) the op resolves. */
export const OP_TRANSACTION_ID = 'TSMQ_TRAN_ID';

/** sysFlag with its transaction type bits replaced. */
export function withTransactionType(sysFlag: number, type: number): number {
  return (sysFlag & ~SysFlag.TRANSACTION_ROLLBACK_TYPE) | type;
}

/** The record a PREPARED send is stored as (see the table). */
export function toHalf(msg: AppendMessage): AppendMessage {
  const props = decodeProperties(msg.properties ?? '');
  props.set(MessageProperty.REAL_TOPIC, msg.topic);
  props.set(MessageProperty.REAL_QID, String(msg.queueId));
  return {
    ...msg,
    topic: HALF_TOPIC,
    queueId: 0,
    sysFlag: withTransactionType(msg.sysFlag ?? 0, SysFlag.TRANSACTION_NOT_TYPE),
    properties: encodeProperties(props),
  };
}

/** What a half message says about its transaction. */
export interface HalfInfo {
  realTopic: string;
  realQueueId: number;
  /** The transaction id: the producer's UNIQ_KEY. */
  transactionId: string;
  producerGroup: string | undefined;
  checkTimes: number;
  /** CHECK_IMMUNITY_TIME_IN_SECONDS, ms, if given. */
  immunityMs: number | undefined;
}

/** A stored message as the broker (a DecodedRecord) or a client (its properties decoded) has it. */
export interface StoredLike {
  topic: string;
  properties: string | ReadonlyMap<string, string>;
  body: Uint8Array;
}

const propsOf = (m: StoredLike): ReadonlyMap<string, string> =>
  typeof m.properties === 'string' ? decodeProperties(m.properties) : m.properties;

/** What a half message says of its transaction, or a sentence saying why it is not a valid one. */
export function halfInfo(rec: StoredLike): HalfInfo | string {
  if (rec.topic !== HALF_TOPIC) return `not a half message (topic ${rec.topic})`;
  const p = propsOf(rec);
  const realTopic = p.get(MessageProperty.REAL_TOPIC);
  const qid = Number(p.get(MessageProperty.REAL_QID));
  const transactionId = p.get(MessageProperty.UNIQ_KEY);
  if (!realTopic || !Number.isInteger(qid) || qid < 0 || !transactionId) {
    return 'the half message has no REAL_TOPIC, REAL_QID or UNIQ_KEY';
  }
  const times = Number(p.get(MessageProperty.TRANSACTION_CHECK_TIMES) ?? '0');
  const immunity = Number(p.get(MessageProperty.CHECK_IMMUNITY_TIME_IN_SECONDS));
  return {
    realTopic,
    realQueueId: qid,
    transactionId,
    producerGroup: p.get(MessageProperty.PGROUP),
    checkTimes: Number.isSafeInteger(times) && times > 0 ? times : 0,
    immunityMs: Number.isFinite(immunity) && immunity > 0 ? immunity * 1000 : undefined,
  };
}

/** The committed message of a half (see the table). */
export function committedOf(rec: DecodedRecord, info: HalfInfo): AppendMessage {
  const props = decodeProperties(rec.properties);
  props.delete(MessageProperty.REAL_TOPIC);
  props.delete(MessageProperty.REAL_QID);
  props.delete(MessageProperty.TRANSACTION_CHECK_TIMES);
  return {
    topic: info.realTopic,
    queueId: info.realQueueId,
    body: rec.body,
    properties: encodeProperties(props),
    flag: rec.flag,
    sysFlag: withTransactionType(rec.sysFlag, SysFlag.TRANSACTION_COMMIT_TYPE),
    bornTimestamp: rec.bornTimestamp,
    bornHost: rec.bornHost,
    reconsumeTimes: rec.reconsumeTimes,
    preparedTransactionOffset: rec.physicalOffset,
  };
}

/** A half appended again by a check, with one more check counted. */
export function rePutOf(rec: DecodedRecord, checkTimes: number): AppendMessage {
  const props = decodeProperties(rec.properties);
  props.set(MessageProperty.TRANSACTION_CHECK_TIMES, String(checkTimes));
  return {
    topic: HALF_TOPIC,
    queueId: 0,
    body: rec.body,
    properties: encodeProperties(props),
    flag: rec.flag,
    sysFlag: rec.sysFlag,
    bornTimestamp: rec.bornTimestamp,
    bornHost: rec.bornHost,
    reconsumeTimes: rec.reconsumeTimes,
  };
}

/** A half given up after transactionCheckMax checks, kept for an operator. */
export function checkMaxOf(rec: DecodedRecord): AppendMessage {
  return {
    ...rePutOf(
      rec,
      Number(decodeProperties(rec.properties).get(MessageProperty.TRANSACTION_CHECK_TIMES) ?? 0),
    ),
    topic: CHECK_MAX_TOPIC,
  };
}

/** The op record resolving the half at `halfQueueOffset` of transaction `transactionId`. */
export function opOf(halfQueueOffset: number, transactionId: string): AppendMessage {
  return {
    topic: OP_TOPIC,
    queueId: 0,
    body: Buffer.from(String(halfQueueOffset)),
    properties: encodeProperties(
      new Map([
        [MessageProperty.TAGS, OP_TAG],
        [OP_TRANSACTION_ID, transactionId],
      ]),
    ),
  };
}

/** The half offsets and transaction id an op record resolves; undefined for a record that is not one. */
export function decodeOp(
  rec: StoredLike,
): { halfOffsets: number[]; transactionId: string | undefined } | undefined {
  const p = propsOf(rec);
  if (p.get(MessageProperty.TAGS) !== OP_TAG) return undefined;
  const halfOffsets = Buffer.from(rec.body)
    .toString('latin1')
    .split(',')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isSafeInteger(n) && n >= 0);
  return { halfOffsets, transactionId: p.get(OP_TRANSACTION_ID) };
}
