/**
 * Which queue a message goes to.
 *
 * Plain sends go round-robin over the topic's write queues (sorted: broker name, then queue id),
 * from a random start per topic so that many producers do not all begin on queue 0. A retry
 * prefers a queue on another broker than the one that just failed (RocketMQ's
 * selectOneMessageQueue(lastBrokerName)); if every queue is on that broker, it takes the next one.
 * The counter moves by one per choice, so consecutive choices visit every queue.
 *
 * Ordered sends pick with a selector and keep that queue for every retry — moving a message to
 * another queue would let a later message of its key overtake it. The sharding-key selector is
 * RocketMQ's SelectMessageQueueByHash: queues[|javaHash(key) % n|].
 */
import { javaStringHashCode } from '../common/java-hash.js';
import type { Message, MessageQueue } from './message.js';

/** Picks the queue of an ordered send from the topic's write queues (sorted). */
export type MessageQueueSelector = (queues: readonly MessageQueue[], msg: Message) => MessageQueue;

/** queues[|javaStringHashCode(key) % n|]: one key, one queue, while the queue count stays. */
export function queueForShardingKey(queues: readonly MessageQueue[], key: string): MessageQueue {
  if (queues.length === 0) throw new RangeError('no queue to choose from');
  return queues[Math.abs(javaStringHashCode(key) % queues.length)]!;
}

/** A selector for `send(msg, { selector })` that hashes a key, as sendOrderly does. */
export function selectByShardingKey(key: string): MessageQueueSelector {
  return (queues) => queueForShardingKey(queues, key);
}

/** Most topics whose round-robin position is remembered; the oldest is forgotten past it. */
export const ROUND_ROBIN_TOPICS_MAX = 10_000;

/** Round-robin positions per topic. */
export class RoundRobinSelector {
  private readonly next = new Map<string, number>();

  constructor(private readonly random: (n: number) => number = (n) => Math.floor(Math.random() * n)) {}

  /** The next queue of `topic`, avoiding `avoidBroker` (the broker that just failed) if possible. */
  select(topic: string, queues: readonly MessageQueue[], avoidBroker?: string): MessageQueue {
    if (queues.length === 0) throw new RangeError(`no queue of ${topic} to choose from`);
    if (avoidBroker !== undefined) {
      for (let i = 0; i < queues.length; i++) {
        const q = queues[this.advance(topic, queues.length)]!;
        if (q.brokerName !== avoidBroker) return q;
      }
    }
    return queues[this.advance(topic, queues.length)]!;
  }

  /** The position to use now (then moves on by one). */
  private advance(topic: string, n: number): number {
    let at = this.next.get(topic);
    if (at === undefined) {
      at = this.random(0x7fffffff);
      if (this.next.size >= ROUND_ROBIN_TOPICS_MAX) {
        this.next.delete(this.next.keys().next().value!);
      }
    }
    this.next.set(topic, (at + 1) & 0x7fffffff);
    return at % n;
  }
}
