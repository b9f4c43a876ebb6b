/**
 * Delay levels: RocketMQ's `messageDelayLevel` broker.conf value, a space-separated list of
 * durations, level 1 first: "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h" (the
 * default, 18 levels). Each duration is a whole number followed by a unit:
 *
 *   unit   ms   s      m       h          d
 *   factor 1    1,000  60,000  3,600,000  86,400,000
 *
 * RocketMQ itself knows s, m, h and d; ms is tsmq's addition so tests can use short levels
 * ("100ms 200ms 500ms"). Levels need not grow (RocketMQ does not require it either).
 */

/** RocketMQ's default levels (MessageStoreConfig.messageDelayLevel). */
export const DEFAULT_MESSAGE_DELAY_LEVEL = '1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h';

/** Most levels accepted; each level is one queue of SCHEDULE_TOPIC_XXXX with its own loop. */
export const DELAY_LEVELS_MAX = 64;
/** Longest delay of one level: 365 days. */
export const DELAY_LEVEL_MS_MAX = 365 * 86_400_000;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const TOKEN = /^(\d{1,12})(ms|s|m|h|d)$/;

/**
 * The delays of `text`, level 1 first, in ms. Returns a sentence saying what is wrong instead
 * when the text does not parse (an unknown unit, a zero, too many levels, ...).
 */
export function parseDelayLevels(text: string): number[] | string {
  const tokens = text
    .trim()
    .split(/\s+/)
    .filter((t) => t.length > 0);
  if (tokens.length === 0) return 'messageDelayLevel holds no level';
  if (tokens.length > DELAY_LEVELS_MAX) {
    return `messageDelayLevel holds ${tokens.length} levels; at most ${DELAY_LEVELS_MAX} are allowed`;
  }
  const out: number[] = [];
  for (const [i, t] of tokens.entries()) {
    const m = TOKEN.exec(t);
    if (!m) {
      return `messageDelayLevel level ${i + 1} is ${JSON.stringify(t)}: expected a whole number and a unit (ms, s, m, h, d), e.g. 5s`;
    }
    const ms = Number(m[1]) * UNIT_MS[m[2]!]!;
    if (ms <= 0 || ms > DELAY_LEVEL_MS_MAX) {
      return `messageDelayLevel level ${i + 1} is ${t}: a level must be longer than 0 and at most 365d`;
    }
    out.push(ms);
  }
  return out;
}
