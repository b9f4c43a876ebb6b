/** The broker's command registry: request code → processor, one processor per file (or a few closely related). */

import { getBrokerConfig, updateBrokerConfig } from './broker-config.js';
import { checkClientConfig } from './check-client-config.js';
import { queryTopicConsumeByWho } from './consume-by-who.js';
import { getConsumeStats } from './consume-stats.js';
import { getConsumerConnectionList } from './consumer-connection.js';
import { consumerSendMsgBack } from './consumer-send-msg-back.js';
import type { BrokerProcessor } from './context.js';
import { deleteTopicInBroker } from './delete-topic.js';
import { endTransaction } from './end-transaction.js';
import { getAllConsumerOffset } from './get-all-consumer-offset.js';
import { getAllDelayOffset } from './get-all-delay-offset.js';
import { getAllTopicConfig } from './get-all-topic-config.js';
import { getConsumerListByGroup } from './get-consumer-list-by-group.js';
import { getTopicConfig } from './get-topic-config.js';
import { heartBeat } from './heart-beat.js';
import { pullMessage } from './pull-message.js';
import { queryConsumerOffset } from './query-consumer-offset.js';
import { queryMessage, viewMessageById } from './query-message.js';
import { lockBatchMq, unlockBatchMq } from './queue-locks.js';
import {
  getEarliestMsgStoretime,
  getMaxOffset,
  getMinOffset,
  searchOffsetByTimestamp,
} from './queue-offsets.js';
import { invokeBrokerToResetOffset } from './reset-offset.js';
import { getBrokerRuntimeInfo } from './runtime-info.js';
import { sendBatchMessage } from './send-batch-message.js';
import { sendMessage } from './send-message.js';
import { sendMessageV2 } from './send-message-v2.js';
import {
  deleteSubscriptionGroup,
  getAllSubscriptionGroupConfig,
  getSubscriptionGroupConfig,
  updateAndCreateSubscriptionGroup,
} from './subscription-group.js';
import { getTopicStatsInfo } from './topic-stats.js';
import { unregisterClient } from './unregister-client.js';
import { updateAndCreateTopic } from './update-and-create-topic.js';
import { updateConsumerOffset } from './update-consumer-offset.js';

export const BROKER_PROCESSORS: readonly BrokerProcessor[] = [
  // messages
  sendMessage,
  sendMessageV2,
  sendBatchMessage,
  pullMessage,
  consumerSendMsgBack,
  endTransaction,
  lockBatchMq,
  unlockBatchMq,
  invokeBrokerToResetOffset,
  queryMessage,
  viewMessageById,
  // offsets
  queryConsumerOffset,
  updateConsumerOffset,
  getAllConsumerOffset,
  getAllDelayOffset,
  searchOffsetByTimestamp,
  getMaxOffset,
  getMinOffset,
  getEarliestMsgStoretime,
  // topics
  updateAndCreateTopic,
  getAllTopicConfig,
  getTopicConfig,
  deleteTopicInBroker,
  getTopicStatsInfo,
  // clients and groups
  heartBeat,
  checkClientConfig,
  unregisterClient,
  getConsumerListByGroup,
  getConsumerConnectionList,
  updateAndCreateSubscriptionGroup,
  getAllSubscriptionGroupConfig,
  deleteSubscriptionGroup,
  getSubscriptionGroupConfig,
  getConsumeStats,
  queryTopicConsumeByWho,
  // broker
  getBrokerRuntimeInfo,
  updateBrokerConfig,
  getBrokerConfig,
];
