/**
 * The transactional producer (RocketMQ's TransactionMQProducer): a message that becomes visible
 * only if the sender's local transaction commits.
 *
 *   const p = new TransactionProducer({ group: 'orders-tx', namesrvAddr, checker: async (msg) =>
 *     (await db.orderExists(msg.keys[0])) ? 'COMMIT' : 'ROLLBACK' });
 *   await p.start();
 *   const r = await p.sendInTransaction({ topic: 'Orders', body, keys: [id] }, async () => {
 *     await db.insertOrder(id);             // the local transaction
 *     return 'COMMIT';
 *   });                                     // r.state: 'COMMIT', the message is now visible
 *
 * sendInTransaction:
 *   1. sends a half message (TRANSACTION_PREPARED, TRAN_MSG, PGROUP = the group); the broker keeps
 *      it invisible (a failed send rejects and runs nothing);
 *   2. runs `executeLocal(msg, sendResult)`; its answer is the state ('COMMIT', 'ROLLBACK' or
 *      'UNKNOWN'); a throw counts as 'UNKNOWN' and is reported in the result's `error` (not
 *      rethrown), so the caller always learns the transaction id its checker will be asked about;
 *   3. sends END_TRANSACTION with the state to the half's broker (commit: the broker stores the
 *      message at its real queue exactly once; rollback: it is dropped; unknown: nothing yet),
 *      trying up to 5 times 300 ms apart; if that fails the broker's checks settle it.
 *
 * Checks: a half unresolved transactionTimeOut (6 s) after it was sent is checked with a live
 * producer of the same group (any member, e.g. a restarted process) every
 * transactionCheckInterval, up to transactionCheckMax (15) times: the broker sends
 * CHECK_TRANSACTION_STATE with the message, `checker(msg)` answers the state, and it goes back as
 * END_TRANSACTION (fromTransactionCheck). A checker that throws or answers 'UNKNOWN' leaves the
 * transaction to the next check. Delay levels and timers cannot be combined with a transaction
 * (ARGUMENT_INVALID), nor can batches.
 */
import { TsmqError } from '../common/errors.js';
import { decodeOffsetMsgId, SysFlag } from '../message/index.js';
import { createRequest, type RemotingCommand, RequestCode, ResponseCode } from '../protocol/index.js';
import type { RemotingChannel } from '../remoting/index.js';
import { decodeMessages, type Message, type MessageExt } from './message.js';
import { Producer, type ProducerOptions, type SendOptions } from './producer.js';
import type { SendResult } from './send-api.js';

export type LocalTransactionState = 'COMMIT' | 'ROLLBACK' | 'UNKNOWN';

/**
 * Answers a broker's question about a transaction it has not seen ended. (Promise-typed only, so
 * that `async () => 'COMMIT'` infers the literal; a plain function works the same at run time.)
 */
export type TransactionChecker = (msg: MessageExt) => Promise<LocalTransactionState>;

/** The local transaction, run between the half message and its end (Promise-typed: see above). */
export type LocalTransaction = (msg: Message, sent: SendResult) => Promise<LocalTransactionState>;

export interface TransactionProducerOptions extends ProducerOptions {
  checker: TransactionChecker;
}

export interface TransactionSendResult extends SendResult {
  /** The transaction id (the message's id); checks name it. */
  transactionId: string;
  /** What was sent as END_TRANSACTION. */
  state: LocalTransactionState;
  /** What the local transaction threw, if it did (the state is then 'UNKNOWN'). */
  error?: unknown;
  /** Whether the broker acknowledged the end (false: the checks will settle it). */
  endAcknowledged: boolean;
}

/** END_TRANSACTION attempts before the checks are left to settle a transaction. */
const END_ATTEMPTS = 5;
const END_RETRY_MS = 300;

/** How often a transactional producer re-reads the cluster's brokers, ms. */
const LEARN_BROKERS_MS = 30_000;

const STATES: ReadonlySet<string> = new Set(['COMMIT', 'ROLLBACK', 'UNKNOWN']);
const WIRE_STATE: Record<LocalTransactionState, number> = {
  COMMIT: SysFlag.TRANSACTION_COMMIT_TYPE,
  ROLLBACK: SysFlag.TRANSACTION_ROLLBACK_TYPE,
  UNKNOWN: SysFlag.TRANSACTION_NOT_TYPE,
};

export class TransactionProducer extends Producer {
  private readonly checker: TransactionChecker;
  private learnTimer: NodeJS.Timeout | undefined;

  constructor(opts: TransactionProducerOptions) {
    super(opts);
    if (typeof opts.checker !== 'function') {
      throw new TsmqError('ARGUMENT_INVALID', 'a TransactionProducer needs a checker function');
    }
    this.checker = opts.checker;
    this.instance.remoting.registerProcessor(RequestCode.CHECK_TRANSACTION_STATE, (req, channel) => {
      void this.answerCheck(req, channel);
      return undefined;
    });
  }

  /**
   * Starts as a Producer, and first learns every broker of the cluster so its heartbeats reach
   * them all: a broker holding this group's unresolved halves can then check them with this
   * process even before it sends (a restarted producer). Re-learnt every 30 s.
   */
  override async start(): Promise<void> {
    await this.instance.learnAllBrokers();
    await super.start();
    this.learnTimer = setInterval(() => {
      void this.instance.learnAllBrokers();
    }, LEARN_BROKERS_MS);
    this.learnTimer.unref();
  }

  override async shutdown(): Promise<void> {
    clearInterval(this.learnTimer);
    await super.shutdown();
  }

  /** Sends `msg` as part of a transaction (see the file header). */
  async sendInTransaction(
    msg: Message,
    executeLocal: LocalTransaction,
    opts: Omit<SendOptions, 'msgId'> = {},
  ): Promise<TransactionSendResult> {
    if (typeof executeLocal !== 'function') {
      throw new TsmqError('ARGUMENT_INVALID', 'sendInTransaction needs the local transaction as a function');
    }
    if ((msg?.delayLevel ?? 0) > 0 || msg?.deliverAt !== undefined || msg?.delayMs !== undefined) {
      throw new TsmqError(
        'ARGUMENT_INVALID',
        'a transactional message cannot also be delayed or timed (delayLevel, deliverAt, delayMs)',
      );
    }
    const sent = await this.sendPrepared(msg, opts, true);
    let state: LocalTransactionState = 'UNKNOWN';
    let error: unknown;
    try {
      const r = await executeLocal(msg, sent);
      if (STATES.has(r)) state = r;
      else error = new TsmqError('ARGUMENT_INVALID', `the local transaction returned ${String(r)}`);
    } catch (e) {
      error = e;
    }
    const endAcknowledged = await this.endTransaction(sent, state);
    return {
      ...sent,
      transactionId: sent.msgId,
      state,
      endAcknowledged,
      ...(error !== undefined && { error }),
    };
  }

  /**
   * Sends END_TRANSACTION to the half's broker; a refusal or a failed connection is tried again
   * (END_ATTEMPTS times, END_RETRY_MS apart: a broker restarting), then left to the checks.
   */
  private async endTransaction(sent: SendResult, state: LocalTransactionState): Promise<boolean> {
    for (let i = 1; i <= END_ATTEMPTS; i++) {
      if (await this.endOnce(sent, state, i === END_ATTEMPTS)) return true;
      if (i < END_ATTEMPTS) await new Promise((r) => setTimeout(r, END_RETRY_MS));
    }
    return false;
  }

  private async endOnce(sent: SendResult, state: LocalTransactionState, last: boolean): Promise<boolean> {
    const addr = this.instance.masterAddr(sent.messageQueue.brokerName);
    if (!addr) return false;
    try {
      const res = await this.instance.invoke(
        addr,
        endRequest({
          producerGroup: this.group,
          tranStateTableOffset: sent.queueOffset,
          commitLogOffset: decodeOffsetMsgId(sent.offsetMsgId).physicalOffset,
          state,
          fromCheck: false,
          msgId: sent.offsetMsgId,
          transactionId: sent.msgId,
        }),
      );
      if (res.code !== ResponseCode.SUCCESS) {
        if (!last) return false;
        this.instance.logger.warn(
          { transactionId: sent.msgId, code: res.code, remark: res.remark },
          'END_TRANSACTION refused; the broker will check the transaction',
        );
        return false;
      }
      return true;
    } catch (e) {
      if (!last) return false;
      this.instance.logger.warn(
        { transactionId: sent.msgId, err: (e as Error).message },
        'END_TRANSACTION failed; the broker will check the transaction',
      );
      return false;
    }
  }

  private async answerCheck(req: RemotingCommand, channel: RemotingChannel): Promise<void> {
    const f = req.extFields ?? {};
    const [msg] = (() => {
      try {
        return decodeMessages(req.body, '');
      } catch {
        return [];
      }
    })();
    const tranStateTableOffset = Number(f.tranStateTableOffset);
    const commitLogOffset = Number(f.commitLogOffset);
    if (!msg || !Number.isSafeInteger(tranStateTableOffset) || !Number.isSafeInteger(commitLogOffset)) {
      this.instance.logger.warn({ header: f }, 'a transaction check without a message or offsets; ignored');
      return;
    }
    let state: LocalTransactionState = 'UNKNOWN';
    try {
      const r = await this.checker(msg);
      if (STATES.has(r)) state = r;
    } catch (e) {
      this.instance.logger.warn(
        { transactionId: f.transactionId, err: (e as Error).message },
        'the transaction checker threw; the broker will ask again',
      );
    }
    try {
      await channel.invoke(
        endRequest({
          producerGroup: msg.properties.get('PGROUP') ?? this.group,
          tranStateTableOffset,
          commitLogOffset,
          state,
          fromCheck: true,
          msgId: f.msgId ?? '',
          transactionId: f.transactionId ?? msg.msgId,
        }),
        this.instance.requestTimeoutMs,
      );
    } catch (e) {
      this.instance.logger.warn(
        { transactionId: f.transactionId, err: (e as Error).message },
        'answering a transaction check failed; the broker will ask again',
      );
    }
  }
}

function endRequest(h: {
  producerGroup: string;
  tranStateTableOffset: number;
  commitLogOffset: number;
  state: LocalTransactionState;
  fromCheck: boolean;
  msgId: string;
  transactionId: string;
}): RemotingCommand {
  return createRequest(RequestCode.END_TRANSACTION, {
    producerGroup: h.producerGroup,
    tranStateTableOffset: String(h.tranStateTableOffset),
    commitLogOffset: String(h.commitLogOffset),
    commitOrRollback: String(WIRE_STATE[h.state]),
    fromTransactionCheck: String(h.fromCheck),
    msgId: h.msgId,
    transactionId: h.transactionId,
  });
}
