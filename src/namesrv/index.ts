/**
 * The name server's public entry: the NameServer role, its route tables, and the wire formats a
 * broker needs to register with it (headers and bodies). Import from here, not the files beside it.
 */

export {
  type BrokerData,
  byBrokerName,
  type ClusterInfo,
  encodeJsonBody,
  type QueueData,
  type TopicList,
  type TopicRouteData,
} from '../protocol/index.js';
export {
  type BrokerIdentityHeader,
  type DeleteTopicRequestHeader,
  encodeBrokerIdentityHeader,
  encodeRegisterBrokerHeader,
  type GetRouteInfoRequestHeader,
  parseBrokerIdentityHeader,
  parseDeleteTopicHeader,
  parseGetRouteInfoHeader,
  parseRegisterBrokerHeader,
  type RegisterBrokerRequestHeader,
  ZONE_NAME_FIELD,
} from './headers.js';
export {
  DEFAULT_NAMESRV_PORT,
  DEFAULT_SCAN_INTERVAL_MS,
  NameServer,
  type NameServerOptions,
} from './name-server.js';
export type { Parsed } from './parsed.js';
export { noRouteRemark } from './processors/get-route-info-by-topic.js';
export { NAMESRV_PROCESSORS } from './processors/registry.js';
export {
  bodyCrc32,
  type DataVersion,
  dataVersionEquals,
  decodeDataVersion,
  decodeRegisterBrokerBody,
  emptyDataVersion,
  encodeDataVersion,
  encodeRegisterBrokerBody,
  encodeTopicConfigLine,
  Perm,
  REGISTER_BODY_INFLATED_BYTES_MAX,
  type RegisterBrokerBody,
  TOPIC_CONFIG_DEFAULTS,
  TOPIC_FILTER_TYPES,
  type TopicConfig,
  type TopicFilterType,
} from './register-body.js';
export {
  type BrokerRegistration,
  DEFAULT_BROKER_EXPIRY_MS,
  type LiveBroker,
  MASTER_ID,
  type RegisterResult,
  RouteInfoManager,
  type RouteInfoOptions,
} from './route-info.js';
