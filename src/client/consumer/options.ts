/** The consumers' option values and limits; the checks are ../options.ts. */
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
