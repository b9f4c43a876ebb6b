/**
 * DELETE_TOPIC_IN_BROKER (215), admin. Header (DeleteTopicRequestHeader): topic.
 *
 * In order: the topic config goes (topics.json, durable before the answer), then its messages (the
 * store drops its consume queues and writes a tombstone, so no replay of the log brings them back;
 * the bytes stay in the commit log until retention), then every group's committed offsets for it
 * (consumerOffset.json, with the next flush). The name servers get a new registration without the
 * topic at once. They keep routes they were told of until DELETE_TOPIC_IN_NAMESRV (216) — what
 * mqadmin deleteTopic sends next — unless they run with deleteTopicWithBrokerRegistration.
 *
 *   topic                                                   answer
 *   ------------------------------------------------------- ---------------------------------------
 *   header field missing, name invalid                      SYSTEM_ERROR 1
 *   system topic: TBW102, SCHEDULE_TOPIC_XXXX, BenchmarkTest,
 *     RMQ_SYS_TRANS_HALF_TOPIC, RMQ_SYS_TRACE_TOPIC,
 *     RMQ_SYS_TRANS_OP_HALF_TOPIC, TRANS_CHECK_MAX_TIME_TOPIC,
 *     SELF_TEST_TOPIC, OFFSET_MOVED_EVENT, rmq_sys_*, the
 *     cluster's name, this broker's name                    SYSTEM_ERROR 1 "... conflict with system topic"
 *   store not open                                          SERVICE_NOT_AVAILABLE 14
 *   anything else, existing or not                          SUCCESS (deleting is idempotent)
 *
 * The system list is RocketMQ's TopicValidator set plus the two names its TopicConfigManager adds.
 * `%RETRY%` and `%DLQ%` topics may be deleted, as in RocketMQ. Deletions on one broker run one at a
 * time (RocketMQ's is synchronized too): the store's deletion of a topic must not overlap another.
 */
import { createResponse, RequestCode, ResponseCode, str } from '../../protocol/index.js';
import { AUTO_CREATE_TOPIC_KEY_TOPIC, SELF_TEST_TOPIC, validateTopicName } from '../topic-config.js';
import type { BrokerContext, BrokerProcessor } from './context.js';
import { parseOr, storeUnavailable } from './offset-header.js';

const SYSTEM_TOPICS: ReadonlySet<string> = new Set([
  AUTO_CREATE_TOPIC_KEY_TOPIC,
  'SCHEDULE_TOPIC_XXXX',
  'BenchmarkTest',
  'RMQ_SYS_TRANS_HALF_TOPIC',
  'RMQ_SYS_TRACE_TOPIC',
  'RMQ_SYS_TRANS_OP_HALF_TOPIC',
  'TRANS_CHECK_MAX_TIME_TOPIC',
  SELF_TEST_TOPIC,
  'OFFSET_MOVED_EVENT',
]);
const SYSTEM_TOPIC_PREFIX = 'rmq_sys_';

/** RocketMQ's TopicValidator.isSystemTopic, with this broker's cluster and broker names. */
export function isSystemTopic(ctx: BrokerContext, topic: string): boolean {
  return (
    SYSTEM_TOPICS.has(topic) ||
    topic.startsWith(SYSTEM_TOPIC_PREFIX) ||
    topic === ctx.config.brokerClusterName ||
    topic === ctx.config.brokerName
  );
}

/** The deletion running on each broker (keyed by its topic table), so the next waits for it. */
const running = new WeakMap<object, Promise<unknown>>();

function serialized<T>(key: object, job: () => Promise<T>): Promise<T> {
  const previous = running.get(key) ?? Promise.resolve();
  const next = previous.then(job, job);
  running.set(
    key,
    next.catch(() => {}),
  );
  return next;
}

export const deleteTopicInBroker: BrokerProcessor = {
  code: RequestCode.DELETE_TOPIC_IN_BROKER,
  async handle(ctx, request, channel) {
    const p = parseOr(request, (f) => ({ topic: str(f, 'topic') }));
    if (!p.ok) return p.response;
    const { topic } = p.header;
    const invalid = validateTopicName(topic);
    if (invalid) return createResponse(request, ResponseCode.SYSTEM_ERROR, invalid);
    if (isSystemTopic(ctx, topic)) {
      return createResponse(
        request,
        ResponseCode.SYSTEM_ERROR,
        `The topic[${topic}] is conflict with system topic.`,
      );
    }
    const store = ctx.store();
    if (!store) return storeUnavailable(request);
    const { hadConfig, groups } = await serialized(ctx.topics, async () => {
      const hadConfig = await ctx.topics.delete(topic);
      await store.deleteTopic(topic);
      return { hadConfig, groups: ctx.offsets.removeTopic(topic) };
    });
    ctx.logger.info(
      { topic, hadConfig, offsetGroupsRemoved: groups, from: channel.remoteAddress },
      `topic ${topic} deleted`,
    );
    ctx.topicsChanged();
    return createResponse(request, ResponseCode.SUCCESS);
  },
};
