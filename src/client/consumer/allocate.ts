/**
 * Queue allocation strategies: which queues of a topic one member of a CLUSTERING group consumes.
 * Each is a pure function of (sorted queues, sorted client ids, this client's id), so every member
 * computes the same split without talking to the others, and together they assign each queue to
 * exactly one member. With n queues and k members (client index i in the sorted ids):
 *
 *   strategy            member i gets                                     when a member joins
 *   ------------------- ------------------------------------------------- ---------------------------
 *   AVERAGE             a contiguous page: floor(n/k) queues, one more    most queues shift pages
 *                       for the first n mod k members
 *   AVERAGE_BY_CIRCLE   queues i, i + k, i + 2k, …                        most queues move
 *   CONSISTENT_HASH     queues whose hash falls on its arcs of a ring of  only the queues the new
 *                       k × virtualNodes points (MD5, first 8 bytes)      member's arcs take, ~n/(k+1)
 *
 * The averaging strategies are balanced within one queue; consistent hashing trades balance for
 * stability. A member missing from the id list gets nothing.
 */
import { createHash } from 'node:crypto';
import { TsmqError } from '../../common/errors.js';
import { compareQueues, type MessageQueue, mqKey } from '../message.js';
import type { AllocateContext, AllocateStrategy, AllocateStrategyName } from './types.js';

function sortedInputs(ctx: AllocateContext): { queues: MessageQueue[]; ids: string[]; index: number } {
  const queues = [...ctx.queues].sort(compareQueues);
  const ids = [...new Set(ctx.clientIds)].sort();
  return { queues, ids, index: ids.indexOf(ctx.currentClientId) };
}

/** RocketMQ's AllocateMessageQueueAveragely: contiguous pages in client-id order. */
export const allocateAveragely: AllocateStrategy = (ctx) => {
  const { queues, ids, index } = sortedInputs(ctx);
  if (index < 0 || queues.length === 0) return [];
  const n = queues.length;
  const k = ids.length;
  const base = Math.floor(n / k);
  const extra = n % k;
  const start = index * base + Math.min(index, extra);
  const count = base + (index < extra ? 1 : 0);
  return queues.slice(start, start + count);
};

/** RocketMQ's AllocateMessageQueueAveragelyByCircle: dealt like cards, one per member in turn. */
export const allocateAveragelyByCircle: AllocateStrategy = (ctx) => {
  const { queues, ids, index } = sortedInputs(ctx);
  if (index < 0) return [];
  return queues.filter((_, j) => j % ids.length === index);
};

export const DEFAULT_VIRTUAL_NODES = 10;

/** The first 8 bytes of the MD5 of `key`, as an unsigned 64-bit ring position. */
export function ringHash(key: string): bigint {
  return createHash('md5').update(key, 'utf8').digest().readBigUInt64BE(0);
}

interface RingNode {
  hash: bigint;
  clientId: string;
}

function buildRing(ids: readonly string[], virtualNodes: number): RingNode[] {
  const ring: RingNode[] = [];
  for (const clientId of ids) {
    for (let v = 0; v < virtualNodes; v++) ring.push({ hash: ringHash(`${clientId}#${v}`), clientId });
  }
  // Ties (two nodes on one point) break by client id, so every member builds the same ring.
  return ring.sort((a, b) =>
    a.hash < b.hash
      ? -1
      : a.hash > b.hash
        ? 1
        : a.clientId < b.clientId
          ? -1
          : a.clientId > b.clientId
            ? 1
            : 0,
  );
}

/** The first node at or after `h`, wrapping around the ring. */
function ownerOf(ring: readonly RingNode[], h: bigint): string {
  let lo = 0;
  let hi = ring.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ring[mid]!.hash < h) lo = mid + 1;
    else hi = mid;
  }
  return ring[lo === ring.length ? 0 : lo]!.clientId;
}

/** RocketMQ's AllocateMessageQueueConsistentHash, with `virtualNodes` points per member. */
export function consistentHashStrategy(virtualNodes = DEFAULT_VIRTUAL_NODES): AllocateStrategy {
  if (!Number.isInteger(virtualNodes) || virtualNodes < 1) {
    throw new TsmqError('ARGUMENT_INVALID', `virtualNodes must be a positive integer, got ${virtualNodes}`);
  }
  return (ctx) => {
    const { queues, ids, index } = sortedInputs(ctx);
    if (index < 0) return [];
    const ring = buildRing(ids, virtualNodes);
    return queues.filter((q) => ownerOf(ring, ringHash(mqKey(q))) === ctx.currentClientId);
  };
}

export const allocateConsistentHash: AllocateStrategy = consistentHashStrategy();

export function allocateStrategy(s: AllocateStrategyName | AllocateStrategy | undefined): AllocateStrategy {
  if (typeof s === 'function') return s;
  switch (s ?? 'AVERAGE') {
    case 'AVERAGE':
      return allocateAveragely;
    case 'AVERAGE_BY_CIRCLE':
      return allocateAveragelyByCircle;
    case 'CONSISTENT_HASH':
      return allocateConsistentHash;
    default:
      throw new TsmqError('ARGUMENT_INVALID', `unknown allocation strategy ${String(s)}`);
  }
}
