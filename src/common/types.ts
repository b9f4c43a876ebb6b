/**
 * Branded number types: different quantities, different types. Offsets are plain JS numbers
 * (safe up to 2^53 bytes = 8 PiB of commit log), branded so they cannot be mixed up.
 */
declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A byte position in the commit log (global across segments). */
export type PhysicalOffset = Brand<number, 'PhysicalOffset'>;
/** A logical position in one consume queue: the n-th message of that queue. */
export type QueueOffset = Brand<number, 'QueueOffset'>;
/** Milliseconds since the Unix epoch. */
export type EpochMs = Brand<number, 'EpochMs'>;

export const physicalOffset = (n: number) => n as PhysicalOffset;
export const queueOffset = (n: number) => n as QueueOffset;
export const epochMs = (n: number) => n as EpochMs;

/** A host address as RocketMQ stores it: IPv4 or IPv6 plus a port. */
export interface HostAddress {
  readonly address: string;
  readonly port: number;
}
