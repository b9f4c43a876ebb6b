/** The name server's command registry: request code → handler, one handler per file. */
import type { NamesrvProcessor } from './context.js';
import { deleteTopic } from './delete-topic.js';
import { getAllTopicList } from './get-all-topic-list.js';
import { getBrokerClusterInfo } from './get-broker-cluster-info.js';
import { getRouteInfoByTopic } from './get-route-info-by-topic.js';
import { queryDataVersion } from './query-data-version.js';
import { registerBroker } from './register-broker.js';
import { unregisterBroker } from './unregister-broker.js';

export const NAMESRV_PROCESSORS: readonly NamesrvProcessor[] = [
  registerBroker,
  unregisterBroker,
  getRouteInfoByTopic,
  getBrokerClusterInfo,
  getAllTopicList,
  deleteTopic,
  queryDataVersion,
];
