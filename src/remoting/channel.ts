/**
 * One remoting connection, either side: frames in and out, requests matched to responses by
 * opaque, timeouts, a bound on calls in flight, and requests from the peer handed to a handler.
 * The server and the client both build on it, so a broker can call a client back on the same
 * connection (NOTIFY_CONSUMER_IDS_CHANGED, CHECK_TRANSACTION_STATE) exactly as a client calls it.
 *
 * Any frame that does not decode (too large, inconsistent lengths, bad header) closes the
 * connection: the stream can no longer be trusted to be in step. Calls still waiting then fail
 * with CONNECTION_CLOSED, and the peer's other connections are not affected.
 */
import type net from 'node:net';
import { isTsmqError, TsmqError } from '../common/errors.js';
import {
  createResponse,
  encodeCommand,
  FrameDecoder,
  isOneway,
  isResponse,
  nextOpaque,
  type RemotingCommand,
  ResponseCode,
  type SerializeTypeCode,
} from '../protocol/index.js';

export interface ChannelOptions {
  /** Largest frame accepted from the peer. */
  maxFrameBytes: number;
  /** Calls (requests awaiting a response) this side may have in flight on the connection. */
  maxInFlight: number;
  /** Close the connection after this long without any traffic (0: never). */
  idleTimeoutMs: number;
  /**
   * Header encoding of the requests this side sends (responses always use the request's). Unset:
   * each request's own. A client sets ROCKETMQ (binary) to spare both ends the JSON.
   */
  requestSerializeType?: SerializeTypeCode;
}

/** Handles a request from the peer; the returned command (if any) is sent back as the response. */
export type RequestHandler = (
  request: RemotingCommand,
  channel: RemotingChannel,
) => Promise<RemotingCommand | undefined> | RemotingCommand | undefined;

/** The answer to a request code nobody registered a handler for (the connection stays). */
export function unsupportedCode(request: RemotingCommand, who: string): RemotingCommand {
  return createResponse(
    request,
    ResponseCode.REQUEST_CODE_NOT_SUPPORTED,
    `request code ${request.code} is not supported${who}`,
  );
}

/** The answer when a handler throws: SYSTEM_ERROR with the error's message (and catalogue name). */
export function handlerFailed(request: RemotingCommand, e: unknown): RemotingCommand {
  const message = e instanceof Error ? e.message : String(e);
  const remark = isTsmqError(e) ? `${message} [${e.codeName}]` : message;
  return createResponse(request, ResponseCode.SYSTEM_ERROR, remark);
}

interface Pending {
  resolve: (cmd: RemotingCommand) => void;
  reject: (e: unknown) => void;
  /** When the call times out, on the performance.now() clock. */
  deadlineMs: number;
  code: number;
  timeoutMs: number;
}

export class RemotingChannel {
  private readonly decoder: FrameDecoder;
  private readonly pending = new Map<number, Pending>();
  private closedError: TsmqError | undefined;
  private readonly closeListeners: Array<(why: string) => void> = [];
  /** "host:port" of the peer. */
  readonly remoteAddress: string;

  constructor(
    readonly socket: net.Socket,
    private readonly opts: ChannelOptions,
    private readonly onRequest: RequestHandler,
  ) {
    this.remoteAddress = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.decoder = new FrameDecoder({ maxFrameBytes: opts.maxFrameBytes });
    socket.setNoDelay(true);
    if (opts.idleTimeoutMs > 0) {
      socket.setTimeout(opts.idleTimeoutMs, () => this.close(`idle for ${opts.idleTimeoutMs} ms`));
    }
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.close(`socket error: ${e.message}`));
    socket.on('close', () => this.close('closed by the peer'));
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  inFlight(): number {
    return this.pending.size;
  }

  onClose(listener: (why: string) => void): void {
    if (this.closedError) listener(this.closedError.message);
    else this.closeListeners.push(listener);
  }

  private onData(chunk: Buffer): void {
    let commands: RemotingCommand[];
    try {
      commands = this.decoder.push(chunk);
    } catch (e) {
      this.close(`undecodable frame from ${this.remoteAddress}: ${(e as Error).message}`);
      return;
    }
    for (const cmd of commands) {
      if (isResponse(cmd)) {
        const p = this.pending.get(cmd.opaque);
        if (!p) continue; // late response to a call that timed out
        this.pending.delete(cmd.opaque);
        if (this.pending.size === 0) this.disarm();
        p.resolve(cmd);
      } else {
        this.handle(cmd);
      }
    }
  }

  private handle(request: RemotingCommand): void {
    // The handler is expected to turn failures into responses; a throw here is a bug upstream
    // and must not take the connection down, so it only goes unanswered. (Not an async function:
    // one promise and one turn of the queue less on every request.)
    let result: ReturnType<RequestHandler>;
    try {
      result = this.onRequest(request, this);
    } catch {
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (response) => this.respond(request, response),
        () => undefined,
      );
    } else {
      this.respond(request, result);
    }
  }

  private respond(request: RemotingCommand, response: RemotingCommand | undefined): void {
    if (response && !isOneway(request) && !this.closed) this.write(response);
  }

  /** Sends a request and resolves with the peer's response. */
  invoke(request: RemotingCommand, timeoutMs: number): Promise<RemotingCommand> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.pending.size >= this.opts.maxInFlight) {
      return Promise.reject(
        new TsmqError(
          'TOO_MANY_IN_FLIGHT',
          `${this.pending.size} calls are in flight to ${this.remoteAddress} (limit ${this.opts.maxInFlight})`,
        ),
      );
    }
    const opaque = nextOpaque();
    const cmd: RemotingCommand = {
      ...request,
      opaque,
      flag: request.flag & ~0b11,
      serializeType: this.opts.requestSerializeType ?? request.serializeType,
    };
    return new Promise<RemotingCommand>((resolve, reject) => {
      const deadlineMs = performance.now() + timeoutMs;
      this.pending.set(opaque, { resolve, reject, deadlineMs, code: request.code, timeoutMs });
      if (this.timer === undefined || deadlineMs < this.timerDeadlineMs) this.arm(deadlineMs);
      this.write(cmd);
    });
  }

  // Timeouts. One timer per connection, armed for the earliest deadline of the calls in flight,
  // instead of a timer per call: setTimeout and clearTimeout cost a producer about 8 % of its
  // instructions per send. The timer is re-armed only for a call due before it (rare: calls mostly
  // share one timeout, so each new one is due later); when it fires it fails every call past its
  // deadline and re-arms for the next. It is unref'd (the open socket keeps the process alive while
  // calls wait) and cleared when no call is in flight.
  private timer: NodeJS.Timeout | undefined;
  private timerDeadlineMs = 0;

  private arm(deadlineMs: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerDeadlineMs = deadlineMs;
    this.timer = setTimeout(this.expire, Math.max(1, Math.ceil(deadlineMs - performance.now())));
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly expire = (): void => {
    this.timer = undefined;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [opaque, p] of this.pending) {
      if (p.deadlineMs <= now) {
        this.pending.delete(opaque);
        p.reject(
          new TsmqError(
            'REMOTING_TIMEOUT',
            `no response from ${this.remoteAddress} to request code ${p.code} within ${p.timeoutMs} ms`,
          ),
        );
      } else if (p.deadlineMs < next) {
        next = p.deadlineMs;
      }
    }
    if (next !== Number.POSITIVE_INFINITY) this.arm(next);
  };

  /** Sends a request that expects no response. */
  invokeOneway(request: RemotingCommand): void {
    if (this.closedError) throw this.closedError;
    this.write({
      ...request,
      opaque: nextOpaque(),
      flag: (request.flag & ~0b01) | 0b10,
      serializeType: this.opts.requestSerializeType ?? request.serializeType,
    });
  }

  /**
   * Writes one command (a response, or a prepared request). Commands written in one run of JS
   * (a callback and the promise jobs it sets off) leave together: the socket is corked at the
   * first and uncorked on the next tick, so a burst of responses costs one writev system call
   * instead of one each. (Uncorking in setImmediate coalesced more but added a loop turn of
   * latency; the next tick measured best, about 1.4x the sends/s of a write per command.)
   */
  write(cmd: RemotingCommand): void {
    if (this.closedError) return;
    const parts = encodeCommand(cmd);
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    for (const p of parts) this.socket.write(p);
  }

  private corked = false;

  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  /** Closes the connection; every call in flight fails with CONNECTION_CLOSED. */
  close(why = 'closed'): void {
    if (this.closedError) return;
    this.closedError = new TsmqError(
      'CONNECTION_CLOSED',
      `connection to ${this.remoteAddress} closed: ${why}`,
    );
    this.disarm();
    for (const [opaque, p] of this.pending) {
      this.pending.delete(opaque);
      p.reject(this.closedError);
    }
    this.socket.destroy();
    for (const l of this.closeListeners.splice(0)) l(why);
  }
}
