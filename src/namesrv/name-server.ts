/**
 * The name server process role: a remoting server with the name server's processors, a timer
 * that drives the broker expiry step, and removal of a broker the moment its connection closes.
 * Name servers know nothing of each other; every broker registers with each of them.
 */
import { type Clock, systemClock } from '../common/clock.js';
import { createLogger, type Logger } from '../common/log.js';
import { RemotingChannel, RemotingServer } from '../remoting/index.js';
import type { NamesrvContext } from './processors/context.js';
import { NAMESRV_PROCESSORS } from './processors/registry.js';
import { DEFAULT_BROKER_EXPIRY_MS, type LiveBroker, RouteInfoManager } from './route-info.js';

/** RocketMQ's scanNotActiveBrokerInterval. */
export const DEFAULT_SCAN_INTERVAL_MS = 5_000;
/** RocketMQ's name server port. */
export const DEFAULT_NAMESRV_PORT = 9876;

export interface NameServerOptions {
  /** Address to listen on; all interfaces by default. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** A broker that has not registered for longer than this is dropped (default 120 s). */
  brokerExpiryMs?: number;
  /** How often the expiry step runs (default 5 s). */
  scanIntervalMs?: number;
  clock?: Clock;
  logger?: Logger;
  /** See RouteInfoOptions.deleteTopicWithBrokerRegistration. */
  deleteTopicWithBrokerRegistration?: boolean;
  /** Close a connection after this long without traffic (default 120 s, as RocketMQ). */
  idleTimeoutMs?: number;
}

export class NameServer {
  readonly routes: RouteInfoManager;
  private readonly server: RemotingServer;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly scanIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private listening: { host: string; port: number } | undefined;

  constructor(opts: NameServerOptions) {
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger ?? createLogger('namesrv');
    this.scanIntervalMs = opts.scanIntervalMs ?? DEFAULT_SCAN_INTERVAL_MS;
    if (!(Number.isFinite(this.scanIntervalMs) && this.scanIntervalMs > 0)) {
      throw new RangeError(`scanIntervalMs must be a positive number of ms, got ${opts.scanIntervalMs}`);
    }
    this.routes = new RouteInfoManager({
      clock: this.clock,
      brokerExpiryMs: opts.brokerExpiryMs ?? DEFAULT_BROKER_EXPIRY_MS,
      deleteTopicWithBrokerRegistration: opts.deleteTopicWithBrokerRegistration ?? false,
      logger: this.logger,
    });
    this.server = new RemotingServer({
      host: opts.host ?? '0.0.0.0',
      port: opts.port,
      ...(opts.idleTimeoutMs !== undefined && { idleTimeoutMs: opts.idleTimeoutMs }),
    });
    const ctx: NamesrvContext = { routes: this.routes, logger: this.logger };
    for (const p of NAMESRV_PROCESSORS) {
      this.server.registerProcessor(p.code, (request, channel) => p.handle(ctx, request, channel));
    }
    this.server.onChannelClose((channel) => {
      this.routes.removeByChannel(channel);
    });
  }

  /** Listens and starts the expiry timer; resolves with the address actually bound. */
  async start(): Promise<{ host: string; port: number }> {
    if (this.listening) return this.listening;
    this.listening = await this.server.listen();
    this.timer = setInterval(() => this.scanNotActiveBrokers(), this.scanIntervalMs);
    this.timer.unref();
    const { host, port } = this.listening;
    this.logger.info({ host, port }, `name server listening on ${host}:${port}`);
    return this.listening;
  }

  /**
   * The expiry step the timer runs: drops brokers silent for longer than their timeout and closes
   * their connections (unless another live broker still registers over the same connection).
   */
  scanNotActiveBrokers(nowMs = this.clock.now()): LiveBroker[] {
    const expired = this.routes.scanNotActiveBrokers(nowMs);
    if (expired.length === 0) return expired;
    const stillUsed = new Set(this.routes.liveBrokers().map((b) => b.channel));
    for (const b of expired) {
      if (b.channel instanceof RemotingChannel && !stillUsed.has(b.channel)) {
        b.channel.close(`broker ${b.brokerAddr} expired`);
      }
    }
    return expired;
  }

  /** Stops the timer, closes every connection and stops listening. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.server.close();
    if (this.listening) this.logger.info(this.listening, 'name server closed');
    this.listening = undefined;
  }
}
