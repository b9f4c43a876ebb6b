/**
 * The store's public entry. Everything outside src/store imports from here, never from the
 * files inside (a lint check keeps it so).
 */
export { Checkpoint, type CheckpointState } from './checkpoint.js';
export { CommitLog, type FlushMode, segmentFileName } from './commit-log.js';
export { ConsumeQueue, CQ_UNIT_BYTES, unitAt } from './consume-queue.js';
export { ConsumeQueueStore } from './consume-queue-store.js';
export { type DispatchedMessage, tagsCodeOf } from './dispatcher.js';
export { IndexService } from './index-service.js';
export { type DiskUsage, type FileIo, nodeFileIo } from './io.js';
export { JsonFile, PeriodicJsonFile } from './json-store.js';
export {
  defaultStoreOptions,
  type GetMessageOptions,
  type GetMessageResult,
  type GetMessageStatus,
  MessageStore,
  type MessageStoreOptions,
  type PutResult,
  type RecoveryReport,
  type StorePositions,
} from './message-store.js';
export { defaultRetentionOptions, type RetentionOptions } from './retention.js';
