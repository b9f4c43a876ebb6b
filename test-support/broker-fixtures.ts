/** Helpers for the broker tests: producers' requests built as a Java producer builds them. */

import { javaStringHashCode } from '../src/common/java-hash.js';
import { encodeProperties } from '../src/message/index.js';
import {
  createRequest,
  encodeSendHeader,
  type RemotingCommand,
  RequestCode,
  type SendMessageRequestHeader,
} from '../src/protocol/index.js';

export interface SendSpec {
  topic: string;
  body: Buffer;
  queueId?: number;
  tags?: string;
  keys?: string;
  uniqKey?: string;
  extraProperties?: Record<string, string>;
  defaultTopicQueueNums?: number;
  flag?: number;
}

export function sendHeader(s: SendSpec): SendMessageRequestHeader {
  const props: Record<string, string> = { ...s.extraProperties };
  if (s.keys !== undefined) props.KEYS = s.keys;
  if (s.tags !== undefined) props.TAGS = s.tags;
  if (s.uniqKey !== undefined) props.UNIQ_KEY = s.uniqKey;
  props.WAIT = 'true';
  return {
    producerGroup: 'PG_TEST',
    topic: s.topic,
    defaultTopic: 'TBW102',
    defaultTopicQueueNums: s.defaultTopicQueueNums ?? 4,
    queueId: s.queueId ?? 0,
    sysFlag: 0,
    bornTimestamp: 1_700_000_000_123,
    flag: s.flag ?? 0,
    properties: encodeProperties(props),
    reconsumeTimes: 0,
    unitMode: false,
    batch: false,
  };
}

export function sendV2(s: SendSpec): RemotingCommand {
  return createRequest(RequestCode.SEND_MESSAGE_V2, encodeSendHeader(sendHeader(s), true), s.body);
}

export function sendV1(s: SendSpec): RemotingCommand {
  return createRequest(RequestCode.SEND_MESSAGE, encodeSendHeader(sendHeader(s), false), s.body);
}

/** A unique-enough client message id, 32 hex digits like a Java client's. */
export function fakeUniqKey(n: number): string {
  return `7F0000010001ABCD0000${n.toString(16).toUpperCase().padStart(12, '0')}`;
}

export interface PullSpec {
  topic: string;
  queueId: number;
  queueOffset: number;
  consumerGroup?: string;
  maxMsgNums?: number;
  /** PullSysFlag bits: COMMIT_OFFSET 1, SUSPEND 2, SUBSCRIPTION 4. Default: SUBSCRIPTION. */
  sysFlag?: number;
  commitOffset?: number;
  suspendTimeoutMillis?: number;
  subscription?: string;
  /** 'TAG' (default) or 'SQL92'. */
  expressionType?: string;
}

/** A PULL_MESSAGE request with every field a Java push consumer sends. */
export function pullRequest(s: PullSpec): RemotingCommand {
  return createRequest(RequestCode.PULL_MESSAGE, {
    consumerGroup: s.consumerGroup ?? 'CG_TEST',
    topic: s.topic,
    queueId: String(s.queueId),
    queueOffset: String(s.queueOffset),
    maxMsgNums: String(s.maxMsgNums ?? 32),
    sysFlag: String(s.sysFlag ?? 4),
    commitOffset: String(s.commitOffset ?? 0),
    suspendTimeoutMillis: String(s.suspendTimeoutMillis ?? 15_000),
    subscription: s.subscription ?? '*',
    subVersion: String(Date.now()),
    expressionType: s.expressionType ?? 'TAG',
  });
}

/** A request whose header is the given fields, values stringified. */
export function headerRequest(code: number, fields: Record<string, string | number>): RemotingCommand {
  return createRequest(code, Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, String(v)])));
}

/** Polls `check` until it returns true or `timeoutMs` passes (then throws). */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface HeartbeatSpec {
  clientId: string;
  group: string;
  topic: string;
  /** Tag expression; "*" by default. */
  tags?: string;
  messageModel?: 'CLUSTERING' | 'BROADCASTING';
}

/** A HEART_BEAT request of one consumer in one group subscribed to one topic, as a Java client sends it. */
export function consumerHeartbeat(s: HeartbeatSpec): RemotingCommand {
  const tags = s.tags ?? '*';
  const tagList = tags === '*' ? [] : tags.split('||').map((t) => t.trim());
  const body = {
    clientID: s.clientId,
    producerDataSet: [{ groupName: 'CLIENT_INNER_PRODUCER' }],
    consumerDataSet: [
      {
        groupName: s.group,
        consumeType: 'CONSUME_PASSIVELY',
        messageModel: s.messageModel ?? 'CLUSTERING',
        consumeFromWhere: 'CONSUME_FROM_LAST_OFFSET',
        subscriptionDataSet: [
          {
            classFilterMode: false,
            topic: s.topic,
            subString: tags,
            tagsSet: tagList,
            codeSet: tagList.map(javaStringHashCode),
            subVersion: Date.now(),
            expressionType: 'TAG',
          },
        ],
        unitMode: false,
      },
    ],
  };
  return createRequest(RequestCode.HEART_BEAT, {}, Buffer.from(JSON.stringify(body)));
}
