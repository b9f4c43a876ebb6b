/**
 * The remoting server: accepts connections, decodes frames, and dispatches each request to the
 * processor registered for its code. The command registry is data: code → handler.
 *
 *   unknown request code           → REQUEST_CODE_NOT_SUPPORTED, connection kept
 *   handler throws                 → SYSTEM_ERROR with the error's message, connection kept
 *   too many requests in progress  → SYSTEM_BUSY at once, connection kept
 *     on one connection
 *   undecodable frame              → that connection is closed; every other one goes on
 *   no traffic for idleTimeoutMs   → that connection is closed
 */
import net from 'node:net';
import { createResponse, type RemotingCommand, ResponseCode } from '../protocol/index.js';
import {
  type ChannelOptions,
  handlerFailed,
  RemotingChannel,
  type RequestHandler,
  unsupportedCode,
} from './channel.js';

export interface RemotingServerOptions extends ChannelOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Requests one connection may have in progress at once; more get SYSTEM_BUSY. */
  maxRequestsInProgress: number;
}

export const defaultServerOptions: Omit<RemotingServerOptions, 'port'> = {
  host: '0.0.0.0',
  maxFrameBytes: 16 * 1024 * 1024,
  maxInFlight: 1024,
  idleTimeoutMs: 120_000,
  maxRequestsInProgress: 1024,
};

export class RemotingServer {
  private readonly server: net.Server;
  private readonly processors = new Map<number, RequestHandler>();
  private readonly channels = new Set<RemotingChannel>();
  private readonly inProgress = new WeakMap<RemotingChannel, number>();
  private readonly opts: RemotingServerOptions;
  private readonly closeListeners: Array<(channel: RemotingChannel, why: string) => void> = [];
  private readonly openListeners: Array<(channel: RemotingChannel) => void> = [];

  constructor(options: Partial<RemotingServerOptions> & { port: number }) {
    this.opts = { ...defaultServerOptions, ...options };
    this.server = net.createServer((socket) => this.accept(socket));
  }

  /** Registers the handler of one request code (one handler per code). */
  registerProcessor(code: number, handler: RequestHandler): void {
    this.processors.set(code, handler);
  }

  /** Called for every connection that closes (e.g. to forget a client's registrations). */
  onChannelClose(listener: (channel: RemotingChannel, why: string) => void): void {
    this.closeListeners.push(listener);
  }

  onChannelOpen(listener: (channel: RemotingChannel) => void): void {
    this.openListeners.push(listener);
  }

  connections(): ReadonlySet<RemotingChannel> {
    return this.channels;
  }

  async listen(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const addr = this.server.address() as net.AddressInfo;
    return { host: addr.address, port: addr.port };
  }

  private accept(socket: net.Socket): void {
    const channel = new RemotingChannel(socket, this.opts, (req, ch) => this.dispatch(req, ch));
    this.channels.add(channel);
    channel.onClose((why) => {
      this.channels.delete(channel);
      for (const l of this.closeListeners) l(channel, why);
    });
    for (const l of this.openListeners) l(channel);
  }

  private dispatch(request: RemotingCommand, channel: RemotingChannel): ReturnType<RequestHandler> {
    const handler = this.processors.get(request.code);
    if (!handler) return unsupportedCode(request, '');
    const busy = this.inProgress.get(channel) ?? 0;
    if (busy >= this.opts.maxRequestsInProgress) {
      return createResponse(
        request,
        ResponseCode.SYSTEM_BUSY,
        `[OVERLOAD] ${busy} requests of this connection are in progress (limit ${this.opts.maxRequestsInProgress}); retry later`,
      );
    }
    let result: ReturnType<RequestHandler>;
    try {
      result = handler(request, channel);
    } catch (e) {
      return handlerFailed(request, e);
    }
    // Only work that is still running counts against the limit.
    if (!(result instanceof Promise)) return result;
    this.inProgress.set(channel, busy + 1);
    const done = () => this.inProgress.set(channel, (this.inProgress.get(channel) ?? 1) - 1);
    return result.then(
      (response) => {
        done();
        return response;
      },
      (e: unknown) => {
        done();
        return handlerFailed(request, e);
      },
    );
  }

  /** Stops accepting connections and closes the open ones. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const ch of [...this.channels]) ch.close('server shutting down');
    await closed;
  }
}
