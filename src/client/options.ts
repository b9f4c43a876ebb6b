/** Option checks shared by the SDK's producers and consumers: a bad value fails with ARGUMENT_INVALID. */
import { TsmqError } from '../common/errors.js';

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
