/**
 * A consumer's subscriptions: the TAG expression parsed once, the SubscriptionData heartbeats carry
 * (tagsSet plus the tags' Java hash codes, which the broker filters by), and the client-side
 * re-check of a message's tag — the broker compares hashes only, so a colliding tag ("Aa" and
 * "BB" share one) gets through and must be dropped here.
 */
import { TsmqError } from '../../common/errors.js';
import { javaStringHashCode } from '../../common/java-hash.js';
import {
  compileSql92,
  MAX_TOPIC_BYTES,
  parseTagExpression,
  SUB_ALL,
  type TagSubscription,
} from '../../message/index.js';
import type { SubscriptionData } from '../../protocol/index.js';
import type { MessageExt } from '../message.js';

const NAME_CHARS = /^[%|a-zA-Z0-9_-]+$/;
/** RocketMQ's limit on a group name (Validators.CHARACTER_MAX_LENGTH). */
/**
 * Longest consumer group name: RocketMQ allows 255 characters, but a group's %RETRY% and %DLQ%
 * topics must fit a topic's 127 bytes, so tsmq stops at 120.
 */
const GROUP_MAX_CHARS = 120;

export type ExpressionType = 'TAG' | 'SQL92';

/**
 * What a consumer selects of a topic: a TAG expression ("*", "A || B"; the broker filters by tag
 * hash and the client re-checks the tag), or a SQL92 expression over the message properties
 * (`a > 5 AND region = 'eu'`; the broker filters, ../../message/sql92/). A plain string is a TAG
 * expression.
 */
export interface MessageSelector {
  readonly type: ExpressionType;
  readonly expression: string;
}

export const MessageSelector = {
  bySql: (expression: string): MessageSelector => ({ type: 'SQL92', expression }),
  byTag: (expression: string): MessageSelector => ({ type: 'TAG', expression }),
};

export interface Subscription {
  readonly topic: string;
  /** The expression as the user gave it, trimmed ("*" for everything). */
  readonly expression: string;
  readonly expressionType: ExpressionType;
  /** The TAG filter the client re-checks; everything for a SQL92 subscription (the broker filters). */
  readonly filter: TagSubscription;
  /** When the subscription was made; brokers keep the newest (subVersion). */
  readonly version: number;
}

export function validateTopic(topic: string): void {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new TsmqError('TOPIC_EMPTY', 'the topic is empty');
  }
  if (Buffer.byteLength(topic, 'utf8') > MAX_TOPIC_BYTES) {
    throw new TsmqError('TOPIC_TOO_LONG', `the topic ${topic} is longer than ${MAX_TOPIC_BYTES} bytes`);
  }
  if (!NAME_CHARS.test(topic)) {
    throw new TsmqError('TOPIC_INVALID', `the topic ${topic} has characters outside [%|a-zA-Z0-9_-]`);
  }
}

export function validateGroup(group: string): void {
  if (typeof group !== 'string' || group.length === 0 || group.length > GROUP_MAX_CHARS) {
    throw new TsmqError('ARGUMENT_INVALID', `a consumer group needs 1 to ${GROUP_MAX_CHARS} characters`);
  }
  if (!NAME_CHARS.test(group)) {
    throw new TsmqError('ARGUMENT_INVALID', `the group ${group} has characters outside [%|a-zA-Z0-9_-]`);
  }
}

/**
 * Parses a selector for `topic`: an expression naming no tag ("||"), or a SQL92 expression that
 * does not compile (the message says where), is SUBSCRIPTION_INVALID.
 */
export function makeSubscription(
  topic: string,
  selector: string | MessageSelector | undefined,
  nowMs: number,
): Subscription {
  validateTopic(topic);
  if (selector !== undefined && typeof selector === 'object' && selector !== null) {
    if (selector.type === 'SQL92') {
      const text = typeof selector.expression === 'string' ? selector.expression.trim() : '';
      const compiled = compileSql92(text);
      if (!compiled.ok) {
        throw new TsmqError(
          'SUBSCRIPTION_INVALID',
          `the SQL92 expression of topic ${topic} does not parse: ${compiled.message}`,
        );
      }
      return { topic, expression: text, expressionType: 'SQL92', filter: { all: true }, version: nowMs };
    }
    if (selector.type !== 'TAG') {
      throw new TsmqError(
        'SUBSCRIPTION_INVALID',
        `a selector's type is TAG or SQL92, not ${String(selector.type)}`,
      );
    }
    selector = selector.expression;
  }
  const expression = selector;
  if (expression !== undefined && typeof expression !== 'string') {
    throw new TsmqError('SUBSCRIPTION_INVALID', 'a subscription expression must be a string');
  }
  const filter = parseTagExpression(expression);
  if (!filter) {
    throw new TsmqError(
      'SUBSCRIPTION_INVALID',
      `the expression ${JSON.stringify(expression)} of topic ${topic} names no tag; use "*" or "A || B"`,
    );
  }
  const trimmed = (expression ?? '').trim();
  return { topic, expression: filter.all ? SUB_ALL : trimmed, expressionType: 'TAG', filter, version: nowMs };
}

/** The SubscriptionData a heartbeat carries for one subscription. */
export function subscriptionData(s: Subscription): SubscriptionData {
  const tags = s.filter.all ? [] : [...s.filter.tags];
  return {
    topic: s.topic,
    subString: s.expression,
    tagsSet: tags,
    codeSet: tags.map(javaStringHashCode),
    subVersion: s.version,
    expressionType: s.expressionType,
  };
}

/** The client-side tag check (RocketMQ's processPullResult): the tag string itself must match. */
export function matchesTag(filter: TagSubscription, msg: MessageExt): boolean {
  return filter.all || (msg.tags !== undefined && filter.tags.has(msg.tags));
}
