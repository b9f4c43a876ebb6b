/** The broker's public entry: the Broker role, its config and the embedding API. */
export { Broker, type BrokerOptions } from './broker.js';
export {
  ClientGroups,
  type ClientGroupsOptions,
  type ConsumerGroupInfo,
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
  AUTO_CREATE_TOPIC_KEY_TOPIC,
  SELF_TEST_TOPIC,
  TopicConfigManager,
  topicConfig,
  validateTopicName,
} from './topic-config.js';
