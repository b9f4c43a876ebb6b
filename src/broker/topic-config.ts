/**
 * The broker's topic configurations, persisted in <storeRoot>/config/topics.json in RocketMQ's
 * shape, so an operator's tools read it unchanged:
 *
 *   { "topicConfigTable": { "<name>": { topicName, readQueueNums, writeQueueNums, perm,
 *                                         topicFilterType, topicSysFlag, order } },
 *     "dataVersion": { "timestamp": <ms>, "counter": <n> } }
 *
 * Every change bumps the data version (the name server compares versions to spot changes) and is
 * written atomically (JsonFile: temp file + fsync + rename), so a crash leaves the old or the new
 * table. Changes are made in memory first and the write is awaited by the caller that made them.
 *
 * Auto-creation on send follows RocketMQ's rule:
 *
 *   autoCreateTopicEnable | default topic (TBW102) | result
 *   ----------------------+------------------------+---------------------------------------------
 *   false                 | any                    | no topic (TOPIC_NOT_EXIST)
 *   true                  | missing                | no topic
 *   true                  | lacks INHERIT perm     | no topic
 *   true                  | inheritable            | queues = min(requested, default's write
 *                         |                        | queues), perm = default's perm minus INHERIT
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../common/clock.js';
import { type DataVersion, Perm, TOPIC_CONFIG_DEFAULTS, type TopicConfig } from '../namesrv/index.js';
import { JsonFile } from '../store/index.js';

/** The producer's default topic, template of auto-created topics (RocketMQ's TopicValidator). */
export const AUTO_CREATE_TOPIC_KEY_TOPIC = 'TBW102';
export const SELF_TEST_TOPIC = 'SELF_TEST_TOPIC';

interface TopicsFile {
  topicConfigTable: Record<string, TopicConfig>;
  dataVersion: DataVersion;
}

export interface TopicConfigManagerOptions {
  storePathRootDir: string;
  clock: Clock;
  autoCreateTopicEnable: boolean;
  defaultTopicQueueNums: number;
  brokerClusterName: string;
  brokerName: string;
}

/** Topic names RocketMQ accepts: `[%|a-zA-Z0-9_-]`, 1..127 characters. */
export function validateTopicName(topic: string): string | undefined {
  if (topic.length === 0) return 'the topic is empty';
  if (topic.length > 127) return `the topic is ${topic.length} characters long; the limit is 127`;
  if (!/^[%|a-zA-Z0-9_-]+$/.test(topic))
    return `the topic[${topic}] contains characters outside [%|a-zA-Z0-9_-]`;
  return undefined;
}

export function topicConfig(topicName: string, over: Partial<TopicConfig> = {}): TopicConfig {
  return { topicName, ...TOPIC_CONFIG_DEFAULTS, ...over };
}

export class TopicConfigManager {
  private readonly table = new Map<string, TopicConfig>();
  private version: DataVersion;
  private readonly file: JsonFile<TopicsFile | undefined>;

  private constructor(private readonly opts: TopicConfigManagerOptions) {
    this.file = new JsonFile(path.join(opts.storePathRootDir, 'config', 'topics.json'));
    this.version = { timestamp: opts.clock.now(), counter: 0 };
  }

  /** Loads topics.json (if any), adds the system topics and writes the file back if they changed it. */
  static async open(opts: TopicConfigManagerOptions): Promise<TopicConfigManager> {
    await fs.mkdir(path.join(opts.storePathRootDir, 'config'), { recursive: true });
    const m = new TopicConfigManager(opts);
    const stored = await m.file.read(undefined);
    if (stored) {
      for (const [name, tc] of Object.entries(stored.topicConfigTable ?? {})) {
        m.table.set(name, topicConfig(name, tc));
      }
      if (stored.dataVersion) m.version = { ...stored.dataVersion };
    }
    let changed = false;
    const ensure = (tc: TopicConfig) => {
      if (!m.table.has(tc.topicName)) {
        m.table.set(tc.topicName, tc);
        changed = true;
      }
    };
    ensure(topicConfig(SELF_TEST_TOPIC, { readQueueNums: 1, writeQueueNums: 1 }));
    if (opts.autoCreateTopicEnable) {
      const n = opts.defaultTopicQueueNums;
      ensure(
        topicConfig(AUTO_CREATE_TOPIC_KEY_TOPIC, {
          readQueueNums: n,
          writeQueueNums: n,
          perm: Perm.INHERIT | Perm.READ | Perm.WRITE,
        }),
      );
    }
    // The cluster's and the broker's own names are topics, so tools can route to them.
    ensure(
      topicConfig(opts.brokerClusterName, {
        readQueueNums: 16,
        writeQueueNums: 16,
        perm: Perm.READ | Perm.WRITE,
      }),
    );
    ensure(
      topicConfig(opts.brokerName, { readQueueNums: 1, writeQueueNums: 1, perm: Perm.READ | Perm.WRITE }),
    );
    if (changed || !stored) {
      m.bump();
      await m.persist();
    }
    return m;
  }

  get(topic: string): TopicConfig | undefined {
    return this.table.get(topic);
  }

  all(): TopicConfig[] {
    return [...this.table.values()];
  }

  dataVersion(): DataVersion {
    return { ...this.version };
  }

  /** Topics a producer may not send to: the template topic and the cluster's own name. */
  isReservedForSend(topic: string): boolean {
    return topic === AUTO_CREATE_TOPIC_KEY_TOPIC || topic === this.opts.brokerClusterName;
  }

  /** Creates or replaces a topic; resolves once the table is durable. */
  async upsert(tc: TopicConfig): Promise<TopicConfig> {
    const full = topicConfig(tc.topicName, tc);
    this.table.set(full.topicName, full);
    this.bump();
    await this.persist();
    return full;
  }

  /** Deletes a topic; false if it did not exist. */
  async delete(topic: string): Promise<boolean> {
    if (!this.table.delete(topic)) return false;
    this.bump();
    await this.persist();
    return true;
  }

  /**
   * The topic a send asks for, created from the default topic when the rule in the header allows
   * it (see the table above). Returns undefined when the topic neither exists nor may be created.
   */
  async createOnSend(
    topic: string,
    defaultTopic: string,
    requestedQueueNums: number,
  ): Promise<{ config: TopicConfig; created: boolean } | undefined> {
    const existing = this.table.get(topic);
    if (existing) return { config: existing, created: false };
    if (!this.opts.autoCreateTopicEnable) return undefined;
    const template = this.table.get(defaultTopic);
    if (!template || (template.perm & Perm.INHERIT) === 0) return undefined;
    const queues = Math.max(
      1,
      Math.min(requestedQueueNums > 0 ? requestedQueueNums : 1, template.writeQueueNums),
    );
    const config = topicConfig(topic, {
      readQueueNums: queues,
      writeQueueNums: queues,
      perm: template.perm & ~Perm.INHERIT,
      topicFilterType: template.topicFilterType,
    });
    // Another send may have created it while we looked; the table is only touched synchronously.
    const raced = this.table.get(topic);
    if (raced) return { config: raced, created: false };
    return { config: await this.upsert(config), created: true };
  }

  private bump(): void {
    this.version = {
      timestamp: Math.max(this.opts.clock.now(), this.version.timestamp),
      counter: this.version.counter + 1,
    };
  }

  private persist(): Promise<void> {
    return this.file.write({
      topicConfigTable: Object.fromEntries([...this.table].map(([k, v]) => [k, { ...v }])),
      dataVersion: this.dataVersion(),
    });
  }
}
