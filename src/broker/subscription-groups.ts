/**
 * Consumer groups' configs (RocketMQ's SubscriptionGroupManager): whether a group may consume at
 * all, by broadcast, how many retry queues it gets, whether its members hear of each other. Kept
 * in memory, looked up by name on every pull (one Map lookup), and persisted in
 * <storeRoot>/config/subscriptionGroup.json in RocketMQ's shape, so its tools read it unchanged:
 *
 *   { "dataVersion": { "counter": 3, "timestamp": <ms> },
 *     "subscriptionGroupTable": { "<group>": { groupName, consumeEnable, consumeFromMinEnable,
 *         consumeBroadcastEnable, consumeMessageOrderly, retryQueueNums, retryMaxTimes, brokerId,
 *         whichBrokerWhenConsumeSlowly, notifyConsumerIdsChangedEnable } } }
 *
 * Writes go through JsonFile (temp file + fsync + rename), so a crash leaves the old or the new
 * table. Admin changes (create, update, delete) resolve once durable; a group created on the fly
 * by a pull or heartbeat is written in the background (the pull does not wait for a disk write).
 * A file that does not parse, or holds a config of the wrong shape, stops the broker from
 * starting: dropping a group with consumeEnable=false would silently let it consume again.
 *
 * Lookup with creation (findOrCreate), as RocketMQ's findSubscriptionGroupConfig:
 *
 *   group known | autoCreateSubscriptionGroup | name starts CID_RMQ_SYS_ | name valid | result
 *   ------------+-----------------------------+--------------------------+------------+-----------
 *   yes         | any                         | any                      | any        | its config
 *   no          | true                        | any                      | yes        | created
 *   no          | false                       | yes                      | yes        | created
 *   no          | otherwise                   |                          |            | undefined
 *
 * The built-in groups RocketMQ's tools use (TOOLS_CONSUMER, FILTERSRV_CONSUMER, SELF_TEST_C_GROUP)
 * exist from the start, so mqadmin can read messages from a broker that does not auto-create.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import type { DataVersion } from '../namesrv/index.js';
import {
  AdminBodyError,
  type SubscriptionGroupConfig,
  type SubscriptionGroupWrapper,
  subscriptionGroupConfig,
  subscriptionGroupWrapperFrom,
  validateGroupName,
} from '../protocol/index.js';
import { JsonFile } from '../store/index.js';
import { BrokerConfigError } from './config.js';

/** Groups that exist on every broker (RocketMQ's MixAll tool, filter-server and self-test groups). */
export const BUILT_IN_GROUPS: readonly string[] = [
  'TOOLS_CONSUMER',
  'FILTERSRV_CONSUMER',
  'SELF_TEST_C_GROUP',
];
/** System consumer groups, created on demand even without autoCreateSubscriptionGroup. */
export const SYSTEM_GROUP_PREFIX = 'CID_RMQ_SYS_';

export interface SubscriptionGroupManagerOptions {
  storePathRootDir: string;
  clock: Clock;
  autoCreateSubscriptionGroup: boolean;
  logger: Logger;
}

export class SubscriptionGroupManager {
  private readonly table = new Map<string, SubscriptionGroupConfig>();
  private version: DataVersion;
  private readonly file: JsonFile<unknown>;
  private lastWrite: Promise<void> = Promise.resolve();

  private constructor(private readonly opts: SubscriptionGroupManagerOptions) {
    this.file = new JsonFile(path.join(opts.storePathRootDir, 'config', 'subscriptionGroup.json'));
    this.version = { timestamp: opts.clock.now(), counter: 0 };
  }

  /** Loads subscriptionGroup.json (if any), adds the built-in groups, writes the file if that changed it. */
  static async open(opts: SubscriptionGroupManagerOptions): Promise<SubscriptionGroupManager> {
    await fs.mkdir(path.join(opts.storePathRootDir, 'config'), { recursive: true });
    const m = new SubscriptionGroupManager(opts);
    let stored: unknown;
    try {
      stored = await m.file.read(undefined);
      if (stored !== undefined) {
        const w = subscriptionGroupWrapperFrom(stored);
        for (const c of Object.values(w.subscriptionGroupTable)) m.table.set(c.groupName, c);
        m.version = { ...w.dataVersion };
      }
    } catch (e) {
      const why = e instanceof AdminBodyError ? e.message : (e as Error).message;
      throw new BrokerConfigError(`the subscription group file ${m.file.path} is invalid: ${why}`);
    }
    let changed = stored === undefined;
    for (const name of BUILT_IN_GROUPS) {
      if (!m.table.has(name)) {
        m.table.set(name, subscriptionGroupConfig(name));
        changed = true;
      }
    }
    if (changed) {
      m.bump();
      await m.persist();
    }
    return m;
  }

  /** The group's config, or undefined; never creates one. */
  get(group: string): SubscriptionGroupConfig | undefined {
    return this.table.get(group);
  }

  /**
   * The group's config, created with the defaults when the rule in the header allows it (written
   * in the background). Undefined when the group is unknown and may not be created.
   */
  findOrCreate(group: string): SubscriptionGroupConfig | undefined {
    const found = this.table.get(group);
    if (found) return found;
    const allowed = this.opts.autoCreateSubscriptionGroup || group.startsWith(SYSTEM_GROUP_PREFIX);
    if (!allowed || validateGroupName(group) !== undefined) return undefined;
    const created = subscriptionGroupConfig(group);
    this.table.set(group, created);
    this.bump();
    this.opts.logger.info({ group: created }, `subscription group ${group} auto-created`);
    void this.persist().catch(() => {});
    return created;
  }

  all(): SubscriptionGroupConfig[] {
    return [...this.table.values()];
  }

  dataVersion(): DataVersion {
    return { ...this.version };
  }

  /** The whole table in the file's shape (GET_ALL_SUBSCRIPTIONGROUP_CONFIG's body). */
  wrapper(): SubscriptionGroupWrapper {
    return {
      subscriptionGroupTable: Object.fromEntries([...this.table].map(([k, v]) => [k, { ...v }])),
      dataVersion: { timestamp: this.version.timestamp, counter: this.version.counter },
    };
  }

  /** Creates or replaces a group's config; resolves once the table is durable. True if it was new. */
  async upsert(config: SubscriptionGroupConfig): Promise<boolean> {
    const created = !this.table.has(config.groupName);
    this.table.set(config.groupName, { ...config });
    this.bump();
    await this.persist();
    return created;
  }

  /** Deletes a group's config; false if there was none. Resolves once the table is durable. */
  async delete(group: string): Promise<boolean> {
    if (!this.table.delete(group)) return false;
    this.bump();
    await this.persist();
    return true;
  }

  /** Waits for the last write (close calls it before the process may exit). */
  async close(): Promise<void> {
    await this.lastWrite.catch(() => {});
  }

  private bump(): void {
    this.version = {
      timestamp: Math.max(this.opts.clock.now(), this.version.timestamp),
      counter: this.version.counter + 1,
    };
  }

  private persist(): Promise<void> {
    const write = this.file.write(this.wrapper());
    this.lastWrite = write.catch((e: unknown) => {
      this.opts.logger.error({ err: e, path: this.file.path }, 'writing subscription groups failed');
    });
    return write;
  }
}
