/**
 * UPDATE_BROKER_CONFIG (25) and GET_BROKER_CONFIG (26). Bodies are Java properties text
 * (`key=value` lines), as RocketMQ's. What may change at run time is the rate limits of
 * ../flow-control.ts (`rateLimit.topic.<topic>` and `rateLimit.client.<host>` =
 * `<msgs/s>,<bytes/s>`, "0,0" or empty to remove); any other key is refused with SYSTEM_ERROR
 * naming it, and nothing of that request is applied. GET_BROKER_CONFIG answers every broker.conf
 * key with its value, then the rate limits in force.
 */
import { createResponse, RequestCode, ResponseCode } from '../../protocol/index.js';
import {
  parseRateRule,
  RATE_LIMIT_CLIENT_KEY,
  RATE_LIMIT_TOPIC_KEY,
  type RateRule,
} from '../flow-control.js';
import type { BrokerProcessor } from './context.js';

/** Java properties text → key/value pairs (comments and blank lines skipped; `=` or `:` separates). */
export function parsePropertiesText(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    const i = line.search(/[=:]/);
    if (i <= 0) out.push([line, '']);
    else out.push([line.slice(0, i).trim(), line.slice(i + 1).trim()]);
  }
  return out;
}

export const updateBrokerConfig: BrokerProcessor = {
  code: RequestCode.UPDATE_BROKER_CONFIG,
  async handle(ctx, request, channel) {
    const pairs = parsePropertiesText(request.body?.toString('utf8') ?? '');
    if (pairs.length === 0)
      return createResponse(request, ResponseCode.SYSTEM_ERROR, 'the body holds no key=value line');
    const changes: Array<{ kind: 'topic' | 'client'; name: string; rule: RateRule | undefined }> = [];
    for (const [key, value] of pairs) {
      const kind = key.startsWith(RATE_LIMIT_TOPIC_KEY)
        ? 'topic'
        : key.startsWith(RATE_LIMIT_CLIENT_KEY)
          ? 'client'
          : undefined;
      const name =
        kind === 'topic' ? key.slice(RATE_LIMIT_TOPIC_KEY.length) : key.slice(RATE_LIMIT_CLIENT_KEY.length);
      if (!kind || name === '') {
        return createResponse(
          request,
          ResponseCode.SYSTEM_ERROR,
          `${key} cannot be changed at run time (only ${RATE_LIMIT_TOPIC_KEY}<topic> and ${RATE_LIMIT_CLIENT_KEY}<host>); nothing was changed`,
        );
      }
      const rule = parseRateRule(value);
      if (typeof rule === 'string') {
        return createResponse(request, ResponseCode.SYSTEM_ERROR, `${key}: ${rule}; nothing was changed`);
      }
      changes.push({ kind, name, rule });
    }
    for (const c of changes) await ctx.rateLimits.set(c.kind, c.name, c.rule);
    ctx.logger.info({ changes, from: channel.remoteAddress }, 'rate limits changed');
    return createResponse(request, ResponseCode.SUCCESS);
  },
};

export const getBrokerConfig: BrokerProcessor = {
  code: RequestCode.GET_BROKER_CONFIG,
  handle(ctx, request) {
    const lines = Object.entries(ctx.config).map(([k, v]) => `${k}=${String(v)}`);
    const limits = ctx.rateLimits.snapshot();
    for (const [t, r] of Object.entries(limits.topics))
      lines.push(`${RATE_LIMIT_TOPIC_KEY}${t}=${r.msgsPerSec},${r.bytesPerSec}`);
    for (const [h, r] of Object.entries(limits.clients))
      lines.push(`${RATE_LIMIT_CLIENT_KEY}${h}=${r.msgsPerSec},${r.bytesPerSec}`);
    const res = createResponse(request, ResponseCode.SUCCESS);
    res.body = Buffer.from(`${lines.join('\n')}\n`, 'utf8');
    return res;
  },
};
