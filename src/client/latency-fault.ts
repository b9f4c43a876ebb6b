/**
 * Latency fault avoidance (RocketMQ's MQFaultStrategy and LatencyFaultTolerance): the producer
 * remembers how each broker's last send went and skips a broker for a while after a slow or
 * failed one, so one sick broker does not slow every send of the cluster.
 *
 *   the last send to a broker took (or failed)   the broker is skipped for
 *   ------------------------------------------   --------------------------
 *   < 550 ms                                      0
 *   ≥ 550 ms                                      2 s
 *   ≥ 1,800 ms                                    5 s
 *   ≥ 3,000 ms                                    6 s
 *   ≥ 5,000 ms                                    10 s
 *   ≥ 15,000 ms, or failed (no answer, refused,   30 s
 *     closed, busy)
 *
 * (RocketMQ's tables: latencyMax {50, 100, 550, 1800, 3000, 5000, 15000} ms → notAvailable
 * {0, 0, 2, 5, 6, 10, 30} s.) When every broker of a topic is being skipped, the queues are used
 * anyway (a send must go somewhere); a broker is used again as soon as its time is up, and one
 * good send clears it.
 */

export const LATENCY_MAX_MS: readonly number[] = [50, 100, 550, 1800, 3000, 5000, 15000];
export const NOT_AVAILABLE_MS: readonly number[] = [0, 0, 2000, 5000, 6000, 10000, 30000];
/** The latency a failed send counts as (the last row). */
export const FAILED_SEND_LATENCY_MS = 30_000;

export interface LatencyFaultOptions {
  /** Default true. */
  enable?: boolean;
  /** Latency thresholds, ascending, ms. */
  latencyMaxMs?: readonly number[];
  /** How long to skip a broker at each threshold, ms (same length). */
  notAvailableMs?: readonly number[];
}

export class LatencyFaultTolerance {
  readonly enabled: boolean;
  private readonly latencyMax: readonly number[];
  private readonly notAvailable: readonly number[];
  private readonly availableAt = new Map<string, number>();

  constructor(o: LatencyFaultOptions = {}) {
    this.enabled = o.enable !== false;
    this.latencyMax = o.latencyMaxMs ?? LATENCY_MAX_MS;
    this.notAvailable = o.notAvailableMs ?? NOT_AVAILABLE_MS;
    if (this.latencyMax.length !== this.notAvailable.length) {
      throw new RangeError('latencyMaxMs and notAvailableMs must have the same length');
    }
  }

  /** Records how a send to `broker` went: its latency, or `failed`. */
  update(broker: string, latencyMs: number, failed: boolean, now = Date.now()): void {
    if (!this.enabled) return;
    const latency = failed ? Math.max(latencyMs, FAILED_SEND_LATENCY_MS) : latencyMs;
    let skip = 0;
    for (let i = this.latencyMax.length - 1; i >= 0; i--) {
      if (latency >= this.latencyMax[i]!) {
        skip = this.notAvailable[i]!;
        break;
      }
    }
    if (skip > 0) this.availableAt.set(broker, now + skip);
    else this.availableAt.delete(broker);
  }

  isAvailable(broker: string, now = Date.now()): boolean {
    const at = this.availableAt.get(broker);
    if (at === undefined) return true;
    if (now >= at) {
      this.availableAt.delete(broker);
      return true;
    }
    return false;
  }

  /** The queues of available brokers, or all of them when none is. */
  filter<Q extends { brokerName: string }>(queues: readonly Q[], now = Date.now()): readonly Q[] {
    if (!this.enabled || this.availableAt.size === 0) return queues;
    const ok = queues.filter((q) => this.isAvailable(q.brokerName, now));
    return ok.length > 0 ? ok : queues;
  }
}
