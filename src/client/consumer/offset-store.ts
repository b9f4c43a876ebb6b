/**
 * Where a consumer keeps how far it got in each queue. Both stores hold offsets in memory, updated
 * as messages are consumed, and persist them in the background (every
 * persistConsumerOffsetIntervalMs, on queue removal and at shutdown):
 *
 *   store                  model         persisted to                          read at queue start
 *   ---------------------- ------------- ------------------------------------- --------------------
 *   RemoteOffsetStore      CLUSTERING    the broker (UPDATE_CONSUMER_OFFSET)   QUERY_CONSUMER_OFFSET
 *   LocalFileOffsetStore   BROADCASTING  a JSON file per client id and group   the file, at load()
 *                                        (./local-offset-store.ts)
 *
 * An offset is the next message to consume: everything below it has been handled.
 */
import type { Logger } from '../../common/log.js';
import { ResponseCode } from '../../protocol/index.js';
import { isBrokerResponseError } from '../errors.js';
import { type MessageQueue, mqKey } from '../message.js';
import type { ConsumerApi } from './pull-api.js';

export interface OffsetStore {
  /** Reads what was persisted before (the local file); the remote store has nothing to load. */
  load(): Promise<void>;
  /** Sets the offset in memory; with increaseOnly it never moves back. */
  update(mq: MessageQueue, offset: number, increaseOnly: boolean): void;
  /** The offset in memory, if any. */
  readMemory(mq: MessageQueue): number | undefined;
  /** The persisted offset (broker or file); undefined when there is none. Throws when unreachable. */
  readStored(mq: MessageQueue): Promise<number | undefined>;
  /** Persists the in-memory offsets of these queues; tries each, then throws the first failure. */
  persist(mqs: readonly MessageQueue[]): Promise<void>;
  /** Forgets a queue's in-memory offset (it was persisted; the queue went to another member). */
  remove(mq: MessageQueue): void;
  /** Releases what load() took. */
  close(): Promise<void>;
}

interface Entry {
  mq: MessageQueue;
  offset: number;
}

/** Offsets in memory, shared by both stores. */
export class OffsetTable {
  private readonly entries = new Map<string, Entry>();

  update(mq: MessageQueue, offset: number, increaseOnly: boolean): boolean {
    const key = mqKey(mq);
    const e = this.entries.get(key);
    if (!e) {
      this.entries.set(key, { mq, offset });
      return true;
    }
    if (increaseOnly && offset <= e.offset) return false;
    if (e.offset === offset) return false;
    e.offset = offset;
    return true;
  }

  get(mq: MessageQueue): number | undefined {
    return this.entries.get(mqKey(mq))?.offset;
  }

  delete(mq: MessageQueue): void {
    this.entries.delete(mqKey(mq));
  }

  all(): Entry[] {
    return [...this.entries.values()].map((e) => ({ mq: e.mq, offset: e.offset }));
  }
}

/**
 * How an orderly consumer fences its commits: the lock version each queue's commit carries
 * (undefined: the queue is not held, so nothing is committed), and what to do when the broker
 * refuses one as stale.
 */
export interface OffsetFence {
  versionOf(mq: MessageQueue): number | undefined;
  refused(mq: MessageQueue): void;
}

/** CLUSTERING: offsets belong to the group and live on the broker of each queue. */
export class RemoteOffsetStore implements OffsetStore {
  private readonly table = new OffsetTable();
  /** Set by an orderly consumer. */
  fence: OffsetFence | undefined;

  constructor(
    private readonly api: ConsumerApi,
    private readonly group: string,
    private readonly logger: Logger,
  ) {}

  async load(): Promise<void> {}

  update(mq: MessageQueue, offset: number, increaseOnly: boolean): void {
    this.table.update(mq, offset, increaseOnly);
  }

  readMemory(mq: MessageQueue): number | undefined {
    return this.table.get(mq);
  }

  readStored(mq: MessageQueue): Promise<number | undefined> {
    return this.api.queryConsumerOffset(this.group, mq);
  }

  async persist(mqs: readonly MessageQueue[]): Promise<void> {
    const results = await Promise.allSettled(
      mqs.map(async (mq) => {
        const offset = this.table.get(mq);
        if (offset === undefined) return;
        const version = this.fence?.versionOf(mq);
        if (this.fence && version === undefined) return;
        try {
          await this.api.updateConsumerOffset(this.group, mq, offset, version);
        } catch (e) {
          if (this.fence && isBrokerResponseError(e) && e.responseCode === ResponseCode.NO_PERMISSION) {
            this.fence.refused(mq);
          }
          throw e;
        }
        this.logger.debug({ group: this.group, queue: mqKey(mq), offset }, 'offset persisted');
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  remove(mq: MessageQueue): void {
    this.table.delete(mq);
  }

  async close(): Promise<void> {}
}
