/**
 * Talking to name servers from a client: start at a random one of the configured addresses, keep
 * using it while it answers, and move round-robin to the next on a connection failure or timeout
 * (RocketMQ's NettyRemotingClient does the same). An error *answer* (TOPIC_NOT_EXIST) is an
 * answer: it does not move to the next server.
 */
import { TsmqError } from '../common/errors.js';
import {
  type ClusterInfo,
  createRequest,
  parseFastjson,
  type RemotingCommand,
  RequestCode,
  ResponseCode,
  type TopicRouteData,
} from '../protocol/index.js';
import type { RemotingClient } from '../remoting/index.js';
import { BrokerResponseError } from './errors.js';

/** Splits "a:9876;b:9876" (RocketMQ's separator; commas accepted too) into addresses. */
export function parseNamesrvAddr(addr: string | readonly string[]): string[] {
  const list = (typeof addr === 'string' ? addr.split(/[;,]/) : [...addr])
    .map((a) => a.trim())
    .filter(Boolean);
  if (list.length === 0)
    throw new TsmqError('ARGUMENT_INVALID', 'no name server address given (namesrvAddr)');
  return list;
}

export class NamesrvClient {
  readonly addrs: readonly string[];
  private index: number;

  constructor(
    private readonly remoting: RemotingClient,
    addr: string | readonly string[],
    private readonly timeoutMs = 3000,
  ) {
    this.addrs = parseNamesrvAddr(addr);
    this.index = Math.floor(Math.random() * this.addrs.length);
  }

  /** The server in use now (for logs and tests). */
  current(): string {
    return this.addrs[this.index % this.addrs.length]!;
  }

  /** Sends to the current name server, moving on to the next after a transport failure. */
  async invoke(request: RemotingCommand, timeoutMs = this.timeoutMs): Promise<RemotingCommand> {
    let last: unknown;
    for (let i = 0; i < this.addrs.length; i++) {
      const addr = this.current();
      try {
        return await this.remoting.invoke(addr, { ...request }, timeoutMs);
      } catch (e) {
        last = e;
        this.index = (this.index + 1) % this.addrs.length;
      }
    }
    throw new TsmqError(
      'NAMESRV_UNAVAILABLE',
      `no name server answered (${this.addrs.join(', ')}): ${(last as Error)?.message ?? 'unknown error'}`,
      { cause: last },
    );
  }

  /** The topic's route, or undefined when no name server knows the topic. */
  async routeOf(topic: string): Promise<TopicRouteData | undefined> {
    const res = await this.invoke(createRequest(RequestCode.GET_ROUTEINFO_BY_TOPIC, { topic }));
    if (res.code === ResponseCode.TOPIC_NOT_EXIST) return undefined;
    if (res.code !== ResponseCode.SUCCESS) throw new BrokerResponseError(this.current(), res, 'route query');
    return parseJsonBody<TopicRouteData>(res.body, 'TopicRouteData');
  }

  async clusterInfo(): Promise<ClusterInfo> {
    const res = await this.invoke(createRequest(RequestCode.GET_BROKER_CLUSTER_INFO));
    if (res.code !== ResponseCode.SUCCESS)
      throw new BrokerResponseError(this.current(), res, 'cluster query');
    return parseJsonBody<ClusterInfo>(res.body, 'ClusterInfo');
  }

  async topicList(): Promise<string[]> {
    const res = await this.invoke(createRequest(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER));
    if (res.code !== ResponseCode.SUCCESS) throw new BrokerResponseError(this.current(), res, 'topic list');
    return parseJsonBody<{ topicList: string[] }>(res.body, 'TopicList').topicList ?? [];
  }
}

/** Parses a JSON body (standard JSON, or fastjson's bare integer keys from older servers). */
export function parseJsonBody<T>(body: Buffer | undefined, what: string): T {
  if (!body || body.length === 0) throw new TsmqError('HEADER_INVALID', `the ${what} answer has no body`);
  try {
    return parseFastjson(body.toString('utf8')) as T;
  } catch (e) {
    throw new TsmqError('HEADER_INVALID', `the ${what} answer is not JSON: ${(e as Error).message}`);
  }
}
