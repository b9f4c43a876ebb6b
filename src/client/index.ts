/**
 * The tsmq client SDK: producers, consumers and the admin API, speaking RocketMQ's remoting
 * protocol. It imports nothing of the broker or the store, so an application can use it alone.
 * Import from here, not from the files beside it.
 */

export {
  Admin,
  type BrokerRow,
  type GroupLag,
  type GroupRow,
  type QueryOptions,
  type TopicSpec,
} from './admin.js';
export { AUTO_BATCH_DEFAULTS, type AutoBatchOptions } from './auto-batch.js';
export {
  ClientInstance,
  type ClientOptions,
  type ConsumerMember,
  type ProducerMember,
} from './client-instance.js';
export {
  allocateAveragely,
  allocateAveragelyByCircle,
  allocateConsistentHash,
  consistentHashStrategy,
} from './consumer/allocate.js';
export {
  type ConsumeFailurePolicy,
  deadLetter,
  localRedelivery,
  type RetryBackoff,
  sendBack,
} from './consumer/consume-failure.js';
export { LitePullConsumer, type LitePullConsumerOptions } from './consumer/lite-pull-consumer.js';
export type { OffsetFence, OffsetStore } from './consumer/offset-store.js';
export type { OrderlyConsumeResult, OrderlyMessageHandler } from './consumer/orderly-service.js';
export { ConsumerApi, type PullResult, type PullStatus, PullSysFlag } from './consumer/pull-api.js';
export {
  DEFAULT_PULLS_IN_FLIGHT,
  PushConsumer,
  type PushConsumerOptions,
  type PushConsumerStats,
  type QueueStats,
} from './consumer/push-consumer.js';
export { type ExpressionType, MessageSelector } from './consumer/subscription.js';
export type {
  AllocateContext,
  AllocateStrategy,
  AllocateStrategyName,
  ConsumeContext,
  ConsumeFromWhere,
  ConsumeResult,
  MessageHandler,
  MessageModel,
} from './consumer/types.js';
export { type DeadLetter, deadLetterToMessage, TOOLS_CONSUMER_GROUP } from './dead-letters.js';
export { BrokerResponseError, isBrokerResponseError } from './errors.js';
export type { HalfMessage } from './half-messages.js';
export { type LatencyFaultOptions, LatencyFaultTolerance } from './latency-fault.js';
export {
  compareQueues,
  decodeMessages,
  type Message,
  type MessageExt,
  type MessageQueue,
  mqKey,
} from './message.js';
export { NamesrvClient, parseNamesrvAddr } from './namesrv-client.js';
export { PRODUCER_LIMITS, Producer, type ProducerOptions, type SendOptions } from './producer.js';
export {
  type MessageQueueSelector,
  queueForShardingKey,
  RoundRobinSelector,
  selectByShardingKey,
} from './queue-selector.js';
export {
  type BatchSendResult,
  isRetryableSendError,
  RETRYABLE_RESPONSE_CODES,
  type SendResult,
  type SendStatus,
} from './send-api.js';
export {
  type LocalTransaction,
  type LocalTransactionState,
  type TransactionChecker,
  TransactionProducer,
  type TransactionProducerOptions,
  type TransactionSendResult,
} from './transaction-producer.js';
