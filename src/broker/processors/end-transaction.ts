/**
 * END_TRANSACTION (37), usually one-way: a transactional producer commits or rolls back the half
 * message it sent (or answers a CHECK_TRANSACTION_STATE). Header (EndTransactionRequestHeader):
 * producerGroup, tranStateTableOffset (the half's queue offset), commitLogOffset (its commit-log
 * offset), commitOrRollback (8 commit, 12 rollback, 0 unknown), fromTransactionCheck, msgId,
 * transactionId. The work is ../transaction/transaction-service.ts's.
 *
 *   case                                                   answer
 *   ------------------------------------------------------ -------------------------------------
 *   commitOrRollback 0 (unknown)                           SUCCESS, nothing changes (checks go on)
 *   commitOrRollback not 0, 8 or 12                        SYSTEM_ERROR
 *   no half there, another group's, another queue offset   SYSTEM_ERROR naming which
 *   committed / rolled back / already resolved             SUCCESS (remark says which)
 *   store failure                                          as a send's (send-common.ts)
 */
import { SysFlag } from '../../message/index.js';
import { createResponse, int, RequestCode, ResponseCode, str } from '../../protocol/index.js';
import type { BrokerProcessor } from './context.js';
import { parseOr, storeUnavailable } from './offset-header.js';
import { storeFailure } from './send-common.js';

export const endTransaction: BrokerProcessor = {
  code: RequestCode.END_TRANSACTION,
  async handle(ctx, request) {
    const p = parseOr(request, (f) => ({
      producerGroup: str(f, 'producerGroup'),
      tranStateTableOffset: int(f, 'tranStateTableOffset'),
      commitLogOffset: int(f, 'commitLogOffset'),
      commitOrRollback: int(f, 'commitOrRollback'),
      fromTransactionCheck: f?.fromTransactionCheck === 'true',
    }));
    if (!p.ok) return p.response;
    const h = p.header;
    const tx = ctx.transactions();
    if (!tx) return storeUnavailable(request);
    if (h.commitOrRollback === SysFlag.TRANSACTION_NOT_TYPE) {
      ctx.logger.debug(
        {
          producerGroup: h.producerGroup,
          commitLogOffset: h.commitLogOffset,
          fromCheck: h.fromTransactionCheck,
        },
        'a producer does not know its transaction state yet; the checks go on',
      );
      return createResponse(request, ResponseCode.SUCCESS, 'state unknown: the broker will check again');
    }
    if (
      h.commitOrRollback !== SysFlag.TRANSACTION_COMMIT_TYPE &&
      h.commitOrRollback !== SysFlag.TRANSACTION_ROLLBACK_TYPE
    ) {
      return createResponse(
        request,
        ResponseCode.SYSTEM_ERROR,
        `commitOrRollback is ${h.commitOrRollback}; expected 8 (commit), 12 (rollback) or 0 (unknown)`,
      );
    }
    try {
      const r = await tx.end(
        h.commitOrRollback === SysFlag.TRANSACTION_COMMIT_TYPE ? 'COMMIT' : 'ROLLBACK',
        h,
      );
      if (!r.ok) {
        ctx.logger.warn({ producerGroup: h.producerGroup, reason: r.reason }, 'END_TRANSACTION refused');
        return createResponse(request, ResponseCode.SYSTEM_ERROR, r.reason);
      }
      if (r.outcome === 'committed') ctx.stats.onPut(1);
      return createResponse(request, ResponseCode.SUCCESS, r.outcome);
    } catch (e) {
      return storeFailure(ctx, request, e);
    }
  },
};
