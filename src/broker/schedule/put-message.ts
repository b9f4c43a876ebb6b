/**
 * The broker's one door for storing a message the way its sender meant it: now, after a delay
 * level, or at a timer's time. Every put of a message on behalf of a client goes through
 * `MessagePutService.put` — the send processors, and the retry path of CONSUMER_SEND_MSG_BACK
 * (../processors/consumer-send-msg-back.ts), which stores to `%RETRY%<group>` with
 * `put(msg, { delayLevel: 3 + reconsumeTimes })`. Deliveries of due messages go through
 * `putNow`, which stores as given.
 *
 * What a put stores (`planPut`, first matching row wins; RocketMQ's HookUtils order):
 *
 *   message                                          stored to                         answer
 *   ------------------------------------------------ --------------------------------- -------------------
 *   transaction half (PREPARED sysFlag)              RMQ_SYS_TRANS_HALF_TOPIC queue 0  (halves never wait)
 *                                                    (../transaction/half-message.ts)
 *   ROLLBACK sysFlag                                 its topic and queue, as is (never
 *                                                    dispatched to a consume queue)
 *   delay level (option, else DELAY) not a whole     -                                 DELAY_LEVEL_INVALID
 *     number ≥ 0
 *   delay level L ≥ 1                                SCHEDULE_TOPIC_XXXX, queue        -
 *                                                    min(L, levels) − 1; timer
 *                                                    properties dropped
 *   a timer property, timerEnable = false            -                                 TIMER_MESSAGE_INVALID
 *   TIMER_DELAY_SEC, else TIMER_DELAY_MS, else       -                                 TIMER_MESSAGE_INVALID
 *     TIMER_DELIVER_MS, not a whole number
 *   delivery time more than timerMaxDelaySec ago     -                                 TIMER_MESSAGE_INVALID
 *     (seconds given for ms, a zero)
 *   delivery time ≤ now                              its topic and queue, now (the
 *                                                    timer properties stay)
 *   delivery time − now > timerMaxDelaySec           -                                 TIMER_MESSAGE_INVALID
 *   delivery time in the future                      rmq_sys_wheel_timer, queue 0
 *   anything else (DELAY 0 or absent)                its topic and queue, now
 *
 * A message moved to the schedule or the timer topic keeps its real topic and queue in REAL_TOPIC
 * and REAL_QID and its delivery time (ms since the epoch) in TIMER_OUT_MS; the store's dispatcher
 * copies TIMER_OUT_MS into the consume-queue unit's tagsCode for these two topics, where RocketMQ
 * keeps the deliver-at time of SCHEDULE_TOPIC_XXXX, so the delivery loops see when a message is
 * due without reading it. At delivery, `restoreRealMessage` undoes the move: same body, flag,
 * sysFlag, born time and host, reconsume times and properties — among them UNIQ_KEY, so consumers
 * see the message id the producer got — minus DELAY, REAL_TOPIC, REAL_QID and TIMER_OUT_MS.
 */

import type { Clock } from '../../common/clock.js';
import { TsmqError } from '../../common/errors.js';
import {
  type AppendMessage,
  type DecodedRecord,
  decodeProperties,
  encodeProperties,
  MessageProperty,
  NAME_VALUE_SEPARATOR,
  SysFlag,
  toHalf,
  transactionType,
} from '../../message/index.js';
import type { MessageStore, PutResult } from '../../store/index.js';

/** Where delay-level messages wait: queue L − 1 holds level L (RocketMQ's name). */
export const SCHEDULE_TOPIC = 'SCHEDULE_TOPIC_XXXX';
/** Where timer messages wait, all in queue 0 (RocketMQ 5's name). */
export const TIMER_TOPIC = 'rmq_sys_wheel_timer';

export interface PutPolicy {
  /** Delay of each level, level 1 first, ms. */
  readonly delayLevelsMs: readonly number[];
  readonly timerEnable: boolean;
  /** Longest timer delay accepted, ms. */
  readonly timerMaxDelayMs: number;
}

export interface PutOptions {
  /**
   * The delay level to apply instead of the message's DELAY property (0: none). For callers that
   * decide the delay themselves, like the retry of a consumer's failed message.
   */
  delayLevel?: number;
}

export type PutPlan =
  | { route: 'now'; msg: AppendMessage }
  | { route: 'half'; msg: AppendMessage }
  | { route: 'delay'; msg: AppendMessage; level: number; deliverAtMs: number }
  | { route: 'timer'; msg: AppendMessage; deliverAtMs: number };

export interface BrokerPutResult {
  /** What the store answered for the stored message (in the schedule or timer topic if delayed). */
  put: PutResult;
  plan: PutPlan;
}

const WHOLE = /^-?\d{1,16}$/;

function wholeNumber(v: string): number | undefined {
  const t = v.trim();
  if (!WHOLE.test(t)) return undefined;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The delay level a message asks for; throws DELAY_LEVEL_INVALID on text that is not one. */
export function delayLevelOf(props: Map<string, string>, option: number | undefined): number {
  if (option !== undefined) {
    if (!Number.isSafeInteger(option) || option < 0) {
      throw new TsmqError(
        'DELAY_LEVEL_INVALID',
        `the delay level is ${option}; it must be a whole number ≥ 0`,
      );
    }
    return option;
  }
  const raw = props.get(MessageProperty.DELAY);
  if (raw === undefined || raw === '') return 0;
  const n = wholeNumber(raw);
  if (n === undefined || n < 0) {
    throw new TsmqError(
      'DELAY_LEVEL_INVALID',
      `the DELAY property is ${JSON.stringify(raw.slice(0, 32))}; a delay level is a whole number ≥ 0 (0: no delay)`,
    );
  }
  return n;
}

const TIMER_KEYS = [
  MessageProperty.TIMER_DELAY_SEC,
  MessageProperty.TIMER_DELAY_MS,
  MessageProperty.TIMER_DELIVER_MS,
] as const;

/**
 * The delivery time a timer message asks for (ms since the epoch), undefined when it has no timer
 * property. Throws TIMER_MESSAGE_INVALID on a value that is not a whole number.
 */
export function timerDeliverAtOf(props: Map<string, string>, nowMs: number): number | undefined {
  for (const key of TIMER_KEYS) {
    const raw = props.get(key);
    if (raw === undefined) continue;
    const n = wholeNumber(raw);
    if (n === undefined) {
      throw new TsmqError(
        'TIMER_MESSAGE_INVALID',
        `${key} is ${JSON.stringify(raw.slice(0, 32))}, not a whole number`,
      );
    }
    if (key === MessageProperty.TIMER_DELAY_SEC) return nowMs + n * 1000;
    if (key === MessageProperty.TIMER_DELAY_MS) return nowMs + n;
    return n;
  }
  return undefined;
}

/**
 * False when the properties surely hold neither DELAY nor a timer key: an entry with one of those
 * keys has the key followed by \u0001 somewhere in the text. Most messages are told apart by
 * these scans instead of a decoded map.
 */
function mayWait(properties: string | undefined): boolean {
  if (properties === undefined) return false;
  return (
    properties.includes(`${MessageProperty.DELAY}${NAME_VALUE_SEPARATOR}`) ||
    properties.includes(`${MessageProperty.TIMER_DELAY_SEC}${NAME_VALUE_SEPARATOR}`) ||
    properties.includes(`${MessageProperty.TIMER_DELAY_MS}${NAME_VALUE_SEPARATOR}`) ||
    properties.includes(`${MessageProperty.TIMER_DELIVER_MS}${NAME_VALUE_SEPARATOR}`)
  );
}

/** Decides where a message goes (see the table in the file header). Pure; throws catalogued errors. */
export function planPut(msg: AppendMessage, policy: PutPolicy, nowMs: number, opts?: PutOptions): PutPlan {
  const tran = transactionType(msg.sysFlag ?? 0);
  if (tran === SysFlag.TRANSACTION_PREPARED_TYPE) return { route: 'half', msg: toHalf(msg) };
  if (tran !== SysFlag.TRANSACTION_NOT_TYPE && tran !== SysFlag.TRANSACTION_COMMIT_TYPE) {
    return { route: 'now', msg };
  }
  if (opts?.delayLevel === undefined && !mayWait(msg.properties)) return { route: 'now', msg };
  const props = decodeProperties(msg.properties ?? '');
  const level = delayLevelOf(props, opts?.delayLevel);
  if (level > 0) {
    const levels = policy.delayLevelsMs.length;
    const clamped = Math.min(level, levels);
    const deliverAtMs = nowMs + policy.delayLevelsMs[clamped - 1]!;
    for (const key of TIMER_KEYS) props.delete(key);
    props.set(MessageProperty.DELAY, String(clamped));
    moveTo(props, msg, deliverAtMs);
    return {
      route: 'delay',
      level: clamped,
      deliverAtMs,
      msg: { ...msg, topic: SCHEDULE_TOPIC, queueId: clamped - 1, properties: encodeProperties(props) },
    };
  }
  if (msg.topic === TIMER_TOPIC || !TIMER_KEYS.some((k) => props.has(k))) return { route: 'now', msg };
  if (!policy.timerEnable) {
    throw new TsmqError(
      'TIMER_MESSAGE_INVALID',
      'timer messages are not enabled on this broker (timerEnable=false)',
    );
  }
  const deliverAtMs = timerDeliverAtOf(props, nowMs)!;
  if (nowMs - deliverAtMs > policy.timerMaxDelayMs) {
    throw new TsmqError(
      'TIMER_MESSAGE_INVALID',
      `the timer was due ${nowMs - deliverAtMs} ms ago, further back than the broker's limit of ${policy.timerMaxDelayMs} ms (timerMaxDelaySec=${policy.timerMaxDelayMs / 1000}); TIMER_DELIVER_MS is ms since the epoch, not seconds`,
    );
  }
  if (deliverAtMs <= nowMs) return { route: 'now', msg };
  if (deliverAtMs - nowMs > policy.timerMaxDelayMs) {
    throw new TsmqError(
      'TIMER_MESSAGE_INVALID',
      `the timer is due in ${deliverAtMs - nowMs} ms, beyond the broker's limit of ${policy.timerMaxDelayMs} ms (timerMaxDelaySec=${policy.timerMaxDelayMs / 1000})`,
    );
  }
  moveTo(props, msg, deliverAtMs);
  return {
    route: 'timer',
    deliverAtMs,
    msg: { ...msg, topic: TIMER_TOPIC, queueId: 0, properties: encodeProperties(props) },
  };
}

function moveTo(props: Map<string, string>, msg: AppendMessage, deliverAtMs: number): void {
  props.set(MessageProperty.REAL_TOPIC, msg.topic);
  props.set(MessageProperty.REAL_QID, String(msg.queueId));
  props.set(MessageProperty.TIMER_OUT_MS, String(deliverAtMs));
}

/**
 * The message a waiting record (schedule or timer topic) stands for, to store at its real topic
 * and queue; a sentence saying why when the record does not carry them.
 */
export function restoreRealMessage(rec: DecodedRecord): AppendMessage | string {
  const props = decodeProperties(rec.properties);
  const topic = props.get(MessageProperty.REAL_TOPIC);
  const qid = wholeNumber(props.get(MessageProperty.REAL_QID) ?? '');
  if (!topic || qid === undefined || qid < 0 || qid > 0xffff) {
    return `the record at commit-log offset ${rec.physicalOffset} (topic ${rec.topic}) has no valid REAL_TOPIC / REAL_QID`;
  }
  props.delete(MessageProperty.DELAY);
  props.delete(MessageProperty.REAL_TOPIC);
  props.delete(MessageProperty.REAL_QID);
  props.delete(MessageProperty.TIMER_OUT_MS);
  return {
    topic,
    queueId: qid,
    body: rec.body,
    properties: encodeProperties(props),
    flag: rec.flag,
    sysFlag: rec.sysFlag,
    bornTimestamp: rec.bornTimestamp,
    bornHost: rec.bornHost,
    reconsumeTimes: rec.reconsumeTimes,
    preparedTransactionOffset: rec.preparedTransactionOffset,
  };
}

export interface MessagePutDeps {
  /** The open store, or undefined while the broker starts or closes. */
  store(): MessageStore | undefined;
  policy: PutPolicy;
  clock: Clock;
}

/** The broker-level put entry (see the file header). */
export class MessagePutService {
  constructor(private readonly deps: MessagePutDeps) {}

  get policy(): PutPolicy {
    return this.deps.policy;
  }

  private store(): MessageStore {
    const s = this.deps.store();
    if (!s) throw new TsmqError('STORE_CLOSED', 'the store is not open (the broker is starting or closing)');
    return s;
  }

  /**
   * Stores a message as its sender meant it: now, after its delay level, or at its timer's time.
   * Throws (or rejects with) the store's errors and DELAY_LEVEL_INVALID / TIMER_MESSAGE_INVALID.
   */
  async put(msg: AppendMessage, opts?: PutOptions): Promise<BrokerPutResult> {
    const plan = planPut(msg, this.deps.policy, this.deps.clock.now(), opts);
    const put = await this.store().put(plan.msg);
    return { put, plan };
  }

  /** Stores a message exactly as given: the delivery of a due message to its real queue. */
  putNow(msg: AppendMessage): Promise<PutResult> {
    try {
      return this.store().put(msg);
    } catch (e) {
      return Promise.reject(e);
    }
  }
}
