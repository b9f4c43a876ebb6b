/**
 * The remoting client: one connection per remote address, opened on first use and reopened after
 * it closes; calls with timeouts, one-way calls, and handlers for requests the server sends back
 * on the same connection (NOTIFY_CONSUMER_IDS_CHANGED, CHECK_TRANSACTION_STATE).
 */
import net from 'node:net';
import { TsmqError } from '../common/errors.js';
import type { RemotingCommand } from '../protocol/index.js';
import {
  type ChannelOptions,
  handlerFailed,
  RemotingChannel,
  type RequestHandler,
  unsupportedCode,
} from './channel.js';

export interface RemotingClientOptions extends ChannelOptions {
  connectTimeoutMs: number;
  /** Timeout of a call that names none (RocketMQ's mqClientApiTimeout). */
  defaultTimeoutMs: number;
}

export const defaultClientOptions: RemotingClientOptions = {
  maxFrameBytes: 16 * 1024 * 1024,
  maxInFlight: 65_535,
  idleTimeoutMs: 0,
  connectTimeoutMs: 3000,
  defaultTimeoutMs: 3000,
};

/** Splits "host:port" (or "[v6]:port"). */
export function parseAddress(addr: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(addr.trim());
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port < 1 || port > 65535) {
    throw new TsmqError('CONNECT_FAILED', `invalid address ${JSON.stringify(addr)}: expected host:port`);
  }
  return { host: m[1]!, port };
}

export class RemotingClient {
  private readonly opts: RemotingClientOptions;
  private readonly channels = new Map<string, RemotingChannel>();
  private readonly connecting = new Map<string, Promise<RemotingChannel>>();
  private readonly processors = new Map<number, RequestHandler>();
  private closed = false;

  constructor(options: Partial<RemotingClientOptions> = {}) {
    this.opts = { ...defaultClientOptions, ...options };
  }

  /** Handles requests the server sends on a connection of this client. */
  registerProcessor(code: number, handler: RequestHandler): void {
    this.processors.set(code, handler);
  }

  invoke(
    addr: string,
    request: RemotingCommand,
    timeoutMs = this.opts.defaultTimeoutMs,
  ): Promise<RemotingCommand> {
    // An open connection takes the call at once, without a wrapping promise per call.
    const open = this.closed ? undefined : this.channels.get(addr);
    if (open !== undefined && !open.closed) return open.invoke(request, timeoutMs);
    return this.connectAndInvoke(addr, request, timeoutMs);
  }

  private async connectAndInvoke(
    addr: string,
    request: RemotingCommand,
    timeoutMs: number,
  ): Promise<RemotingCommand> {
    const started = Date.now();
    const channel = await this.channel(addr, timeoutMs);
    const left = Math.max(1, timeoutMs - (Date.now() - started));
    return channel.invoke(request, left);
  }

  async invokeOneway(addr: string, request: RemotingCommand): Promise<void> {
    const channel = await this.channel(addr, this.opts.connectTimeoutMs);
    channel.invokeOneway(request);
  }

  /** The open connection to `addr`, connecting first if needed. */
  async channel(addr: string, timeoutMs = this.opts.connectTimeoutMs): Promise<RemotingChannel> {
    if (this.closed) throw new TsmqError('CONNECTION_CLOSED', 'the client is closed');
    const open = this.channels.get(addr);
    if (open && !open.closed) return open;
    let pending = this.connecting.get(addr);
    if (!pending) {
      pending = this.connect(addr, Math.min(timeoutMs, this.opts.connectTimeoutMs)).finally(() => {
        this.connecting.delete(addr);
      });
      this.connecting.set(addr, pending);
    }
    return pending;
  }

  private connect(addr: string, timeoutMs: number): Promise<RemotingChannel> {
    const { host, port } = parseAddress(addr);
    return new Promise<RemotingChannel>((resolve, reject) => {
      const socket = net.connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new TsmqError('CONNECT_FAILED', `connecting to ${addr} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(new TsmqError('CONNECT_FAILED', `cannot connect to ${addr}: ${e.message}`, { cause: e }));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        const channel = new RemotingChannel(socket, this.opts, (req, ch) => this.dispatch(req, ch));
        this.channels.set(addr, channel);
        channel.onClose(() => {
          if (this.channels.get(addr) === channel) this.channels.delete(addr);
        });
        if (this.closed) channel.close('client closed');
        resolve(channel);
      });
    });
  }

  private async dispatch(
    request: RemotingCommand,
    channel: RemotingChannel,
  ): Promise<RemotingCommand | undefined> {
    const handler = this.processors.get(request.code);
    if (!handler) return unsupportedCode(request, ' by this client');
    try {
      return await handler(request, channel);
    } catch (e) {
      return handlerFailed(request, e);
    }
  }

  close(): void {
    this.closed = true;
    for (const ch of this.channels.values()) ch.close('client closed');
    this.channels.clear();
  }
}
