/**
 * A consumer's tag subscription, as RocketMQ's FilterAPI builds SubscriptionData from the
 * expression: "*" (or empty) takes everything; otherwise "TagA || TagB" is split on "||", each tag
 * trimmed, blanks dropped, and the broker keeps the tags' Java hash codes (codeSet). The consume
 * queue stores each message's tag hash as its tagsCode, so the broker filters without reading the
 * log; hash collisions let a few foreign messages through, and the client re-checks the tag
 * strings (RocketMQ's design: docs/cn/Design_Filter.md).
 */
import { javaStringHashCode } from '../common/java-hash.js';

export const SUB_ALL = '*';

export type TagSubscription =
  | { readonly all: true }
  | { readonly all: false; readonly tags: ReadonlySet<string>; readonly codes: ReadonlySet<number> };

/** Parses a TAG expression; undefined when it names no tag at all (SUBSCRIPTION_PARSE_FAILED). */
export function parseTagExpression(expression: string | undefined): TagSubscription | undefined {
  const e = (expression ?? '').trim();
  if (e === '' || e === SUB_ALL) return { all: true };
  const tags = new Set<string>();
  for (const part of e.split('||')) {
    const t = part.trim();
    if (t.length > 0) tags.add(t);
  }
  if (tags.size === 0) return undefined;
  return { all: false, tags, codes: new Set([...tags].map(javaStringHashCode)) };
}

/** Whether a consume-queue unit's tagsCode may match (ExpressionMessageFilter.isMatchedByConsumeQueue). */
export function matchesTagsCode(sub: TagSubscription, tagsCode: number): boolean {
  return sub.all || sub.codes.has(tagsCode);
}
