/**
 * Queue locks for orderly consumption (RocketMQ's RebalanceLockManager), with fencing.
 *
 * An orderly consumer must hold a queue's lock before it pulls: per consumer group and queue, one
 * client at a time. A lock lasts `lockMaxLiveMs` (RocketMQ: 60 s) from its last renewal; after
 * that any client of the group may take it. LOCK_BATCH_MQ grants, renews or refuses per queue;
 * UNLOCK_BATCH_MQ releases the caller's own locks (other clients' locks are left alone).
 *
 * Fencing (tsmq's addition): every grant carries a lock version, a number that grows each time a
 * queue changes hands and stays the same while one holder renews. A consumer that paused past its
 * lease (GC, SIGSTOP, a laptop lid) still believes it holds the queue; when it wakes, its offset
 * commits carry the old version, and `checkVersion` refuses them once another client holds the
 * queue — a paused process cannot overwrite its successor's progress. Versions start from the
 * broker's boot time × 1024, so they also grow across restarts (locks themselves are not
 * persisted: after a restart holders re-lock, as in RocketMQ).
 */
import type { Clock } from '../common/clock.js';
import type { MessageQueue } from '../protocol/index.js';

export const DEFAULT_LOCK_MAX_LIVE_MS = 60_000;

interface LockEntry {
  clientId: string;
  lastUpdateMs: number;
  version: number;
}

export interface LockGrant {
  queue: MessageQueue;
  lockVersion: number;
}

export type VersionCheck = { ok: true } | { ok: false; reason: string };

function queueKey(q: MessageQueue): string {
  return `${q.topic}\u0001${q.brokerName}\u0001${q.queueId}`;
}

export class QueueLockManager {
  /** group → queue key → lock. */
  private readonly locks = new Map<string, Map<string, LockEntry>>();
  private nextVersion: number;

  constructor(
    private readonly clock: Clock,
    private readonly lockMaxLiveMs = DEFAULT_LOCK_MAX_LIVE_MS,
  ) {
    this.nextVersion = clock.now() * 1024;
  }

  private expired(e: LockEntry, now: number): boolean {
    return now - e.lastUpdateMs > this.lockMaxLiveMs;
  }

  /** Grants or renews each queue the client may hold; returns those it holds now. */
  tryLockBatch(group: string, clientId: string, queues: readonly MessageQueue[]): LockGrant[] {
    const now = this.clock.now();
    let table = this.locks.get(group);
    if (!table) {
      table = new Map();
      this.locks.set(group, table);
    }
    const granted: LockGrant[] = [];
    for (const q of queues) {
      const key = queueKey(q);
      const e = table.get(key);
      if (e && e.clientId === clientId) {
        e.lastUpdateMs = now;
      } else if (!e || this.expired(e, now)) {
        table.set(key, { clientId, lastUpdateMs: now, version: ++this.nextVersion });
      } else {
        continue;
      }
      granted.push({ queue: q, lockVersion: table.get(key)!.version });
    }
    return granted;
  }

  /** Releases the queues this client holds; returns how many it held. */
  unlockBatch(group: string, clientId: string, queues: readonly MessageQueue[]): number {
    const table = this.locks.get(group);
    if (!table) return 0;
    let released = 0;
    for (const q of queues) {
      const key = queueKey(q);
      if (table.get(key)?.clientId === clientId) {
        // The entry stays as a free lock with its version: the next holder gets a newer one.
        table.delete(key);
        released++;
      }
    }
    if (table.size === 0) this.locks.delete(group);
    return released;
  }

  /** The live holder of a queue, if any. */
  holder(group: string, q: MessageQueue): { clientId: string; lockVersion: number } | undefined {
    const e = this.locks.get(group)?.get(queueKey(q));
    if (!e || this.expired(e, this.clock.now())) return undefined;
    return { clientId: e.clientId, lockVersion: e.version };
  }

  /**
   * Whether an action fenced by `lockVersion` may proceed: yes unless another grant replaced it.
   * A lock that expired without a successor still accepts its holder's version (nobody else has
   * made progress on the queue); once anyone holds a newer grant, the old version is refused.
   */
  checkVersion(group: string, q: MessageQueue, lockVersion: number): VersionCheck {
    const e = this.locks.get(group)?.get(queueKey(q));
    if (!e || e.version === lockVersion) return { ok: true };
    return {
      ok: false,
      reason:
        `stale lock version ${lockVersion} for ${q.topic}/${q.brokerName}/${q.queueId} of group ${group}: ` +
        `the queue was locked again (version ${e.version}, client ${e.clientId})`,
    };
  }
}
