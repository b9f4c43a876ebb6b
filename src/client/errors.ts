/**
 * The SDK's error types. Every failure is a TsmqError with a catalogued code (docs/errors.md);
 * a broker's error answer is a BrokerResponseError that also carries the broker's response code
 * (RocketMQ's numbers, `ResponseCode` in src/protocol) and its remark, so callers can tell a
 * TOPIC_NOT_EXIST from a SYSTEM_BUSY without parsing text.
 */
import { TsmqError } from '../common/errors.js';
import { type RemotingCommand, responseCodeName } from '../protocol/index.js';

export class BrokerResponseError extends TsmqError {
  readonly responseCode: number;
  readonly remark: string | undefined;
  readonly addr: string;

  constructor(addr: string, response: RemotingCommand, what: string) {
    const name = responseCodeName(response.code) ?? `code ${response.code}`;
    super(
      'BROKER_ERROR',
      `${what} at ${addr} failed: ${name}${response.remark ? ` (${response.remark})` : ''}`,
    );
    this.name = 'BrokerResponseError';
    this.responseCode = response.code;
    this.remark = response.remark;
    this.addr = addr;
  }
}

export function isBrokerResponseError(e: unknown, code?: number): e is BrokerResponseError {
  return e instanceof BrokerResponseError && (code === undefined || e.responseCode === code);
}
