/** The broker's command registry: request code → processor, one processor per file. */
import type { BrokerProcessor } from './context.js';
import { getAllTopicConfig } from './get-all-topic-config.js';
import { sendBatchMessage } from './send-batch-message.js';
import { sendMessage } from './send-message.js';
import { sendMessageV2 } from './send-message-v2.js';
import { updateAndCreateTopic } from './update-and-create-topic.js';

export const BROKER_PROCESSORS: readonly BrokerProcessor[] = [
  sendMessage,
  sendMessageV2,
  sendBatchMessage,
  updateAndCreateTopic,
  getAllTopicConfig,
];
