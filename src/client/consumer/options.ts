/** Option checks shared by the consumers: a bad value fails the constructor with ARGUMENT_INVALID. */
import { TsmqError } from '../../common/errors.js';

/** `value` if given (an integer in [min, max]), else `dflt`. */
export function intOption(
  name: string,
  value: number | undefined,
  dflt: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return dflt;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new TsmqError('ARGUMENT_INVALID', `${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
  return value;
}

export function oneOf<T extends string>(
  name: string,
  value: T | undefined,
  dflt: T,
  allowed: readonly T[],
): T {
  if (value === undefined) return dflt;
  if (!allowed.includes(value)) {
    throw new TsmqError(
      'ARGUMENT_INVALID',
      `${name} must be one of ${allowed.join(', ')}, got ${String(value)}`,
    );
  }
  return value;
}

export const MESSAGE_MODELS = ['CLUSTERING', 'BROADCASTING'] as const;
export const CONSUME_FROM = ['LAST_OFFSET', 'FIRST_OFFSET', 'TIMESTAMP'] as const;

/** Limits of the consumer options, with their units. */
export const LIMITS = {
  batchMax: 1024,
  pullsInFlightMax: 16,
  concurrencyMax: 1000,
  thresholdCountMax: 65_535,
  /** pullThresholdSizeForQueue, MiB. */
  thresholdMiBMax: 1024,
  spanMax: 65_535,
  /** One hour, for every interval and timeout option. */
  intervalMsMax: 3_600_000,
} as const;
