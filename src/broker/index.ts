/** The broker's public entry: the Broker role, its config, the embedding API and its codecs. */
export { type BatchInnerMessage, decodeBatchBody, encodeBatchBody } from './batch-codec.js';
export { Broker, type BrokerOptions } from './broker.js';
export {
  ClientGroups,
  type ClientGroupsOptions,
  type ConsumerData,
  type ConsumerGroupInfo,
  type HeartbeatData,
  parseHeartbeatData,
  type SubscriptionData,
} from './client-groups.js';
export {
  type BrokerConfig,
  BrokerConfigError,
  DEFAULT_BROKER_PORT,
  defaultBrokerConfig,
  type FlushDiskType,
  nameServerAddresses,
  type ParsedBrokerConf,
  parseBrokerConf,
  resolveBrokerConfig,
} from './config.js';
export { type Embedded, type EmbeddedOptions, startEmbedded } from './embedded.js';
export { BROKER_PROCESSORS } from './processors/registry.js';
export {
  encodeSendHeader,
  encodeSendResponseHeader,
  parseSendHeader,
  type SendMessageRequestHeader,
  type SendMessageResponseHeader,
} from './send-headers.js';
export {
  AUTO_CREATE_TOPIC_KEY_TOPIC,
  SELF_TEST_TOPIC,
  TopicConfigManager,
  topicConfig,
  validateTopicName,
} from './topic-config.js';
