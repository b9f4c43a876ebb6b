/**
 * The message format, shared by everyone who touches a message: the record layout the commit log
 * stores and a PULL_MESSAGE body carries (record.ts, with its properties and host codecs), message
 * ids (offsetMsgId and UNIQ_KEY), the batch body of SEND_BATCH_MESSAGE and tag expressions. The
 * store writes it, the broker serves it, and the client decodes it — so it depends on nothing but
 * common. Import from here, not from the files beside it.
 */
export {
  type BatchDecodeResult,
  type BatchInnerMessage,
  batchInnerBytes,
  decodeBatchBody,
  encodeBatchBody,
  writeBatchInner,
} from './batch-codec.js';
export {
  DLQ_QUEUE_NUMS,
  DLQ_TOPIC_PREFIX,
  dlqTopicOf,
  groupOfTopic,
  isDlqTopic,
  isRetryTopic,
  RETRY_DROPPED_PROPERTIES,
  RETRY_TOPIC_PREFIX,
  retryTopicOf,
} from './group-topics.js';
export { createOffsetMsgId, decodeOffsetMsgId } from './message-id.js';
export * from './record.js';
export {
  compileSql92,
  SQL92_MAX_DEPTH,
  SQL92_MAX_LENGTH,
  SQL92_MAX_TREE_DEPTH,
  type SqlCompileResult,
  type SqlFilter,
} from './sql92/index.js';
export { matchesTagsCode, parseTagExpression, SUB_ALL, type TagSubscription } from './subscription.js';
export * from './transaction-records.js';
export { createUniqId } from './uniq-id.js';
