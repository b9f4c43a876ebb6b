/**
 * Repeated warnings, thinned. The first warning of a kind (a key: what failed, and where) is logged
 * at once; later ones of that kind at most once per interval, carrying how many were held back
 * meanwhile. A broker answering SYSTEM_BUSY to thousands of sends in flight then costs the log a
 * line every few seconds instead of one per failed attempt (each failure still reaches its caller:
 * only the log is thinned).
 */
import { isTsmqError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { isBrokerResponseError } from './errors.js';

/**
 * The kind of a failure, for WarnThrottle keys: a broker's response code, a tsmq error's code, or
 * 'other' (connection and timeout errors that carry neither).
 */
function failureKind(e: unknown): string {
  return isBrokerResponseError(e) ? `code ${e.responseCode}` : isTsmqError(e) ? e.codeName : 'other';
}

export class WarnThrottle {
  private readonly kinds = new Map<string, { nextAtMs: number; held: number }>();

  constructor(
    private readonly intervalMs = 5_000,
    /** Kinds remembered at most; past it they are forgotten (and their next warning logged). */
    private readonly maxKinds = 1024,
  ) {}

  /**
   * Whether to log a warning of `kind` now. If so, `held` is how many of that kind were skipped
   * since the last one logged; undefined: skip this one (it is counted).
   */
  take(kind: string, nowMs: number): { held: number } | undefined {
    const k = this.kinds.get(kind);
    if (k === undefined) {
      if (this.kinds.size >= this.maxKinds) this.kinds.clear();
      this.kinds.set(kind, { nextAtMs: nowMs + this.intervalMs, held: 0 });
      return { held: 0 };
    }
    if (nowMs < k.nextAtMs) {
      k.held++;
      return undefined;
    }
    const held = k.held;
    k.held = 0;
    k.nextAtMs = nowMs + this.intervalMs;
    return { held };
  }

  /**
   * Logs `msg` (warn) with `fields`, the error's message and how many alike were held back, unless
   * a failure of the same kind at `brokerName` was logged within the interval.
   */
  warnFailure(
    logger: Logger,
    brokerName: string,
    e: unknown,
    fields: Record<string, unknown>,
    msg: string,
  ): void {
    const logged = this.take(`${brokerName}\u0000${failureKind(e)}`, Date.now());
    if (logged === undefined) return;
    logger.warn(
      {
        ...fields,
        err: e instanceof Error ? e.message : String(e),
        ...(logged.held > 0 && { alikeNotLogged: logged.held }),
      },
      msg,
    );
  }
}
