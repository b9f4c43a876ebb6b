/**
 * HEART_BEAT's body: RocketMQ's HeartbeatData as JSON — the client id, its producer groups and its
 * consumer groups with their subscriptions:
 *
 *   {"clientID":"10.0.0.5@12345","producerDataSet":[{"groupName":"pg"}],
 *    "consumerDataSet":[{"groupName":"cg","consumeType":"CONSUME_PASSIVELY",
 *      "messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","unitMode":false,
 *      "subscriptionDataSet":[{"topic":"T","subString":"TagA || TagB","tagsSet":["TagA","TagB"],
 *        "codeSet":[2598969,2598970],"subVersion":1732600000000,"expressionType":"TAG"}]}]}
 *
 * codeSet holds the tags' Java String.hashCode values. The broker parses it (lenient about
 * missing optional fields, as fastjson is); clients encode it with encodeHeartbeatData.
 */
/** RocketMQ's SubscriptionData as a heartbeat carries it. */
export interface SubscriptionData {
  topic: string;
  subString: string;
  tagsSet: string[];
  codeSet: number[];
  subVersion: number;
  expressionType: string;
}

export interface ConsumerData {
  groupName: string;
  consumeType: string;
  messageModel: string;
  consumeFromWhere: string;
  subscriptionDataSet: SubscriptionData[];
  unitMode: boolean;
}

export interface HeartbeatData {
  clientID: string;
  producerDataSet: { groupName: string }[];
  consumerDataSet: ConsumerData[];
}

/** Thrown by parseHeartbeatData for a body that is not a HeartbeatData. */
export class HeartbeatFormatError extends Error {}

function asString(v: unknown, what: string, dflt?: string): string {
  if (v === undefined || v === null) {
    if (dflt !== undefined) return dflt;
    throw new HeartbeatFormatError(`${what} is missing`);
  }
  if (typeof v !== 'string') throw new HeartbeatFormatError(`${what} is not a string`);
  return v;
}

function asArray(v: unknown, what: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new HeartbeatFormatError(`${what} is not an array`);
  return v;
}

function asObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new HeartbeatFormatError(`${what} is not an object`);
  }
  return v as Record<string, unknown>;
}

function parseSubscription(v: unknown, what: string): SubscriptionData {
  const o = asObject(v, what);
  const codeSet = asArray(o.codeSet, `${what}.codeSet`).map((c) => {
    if (typeof c !== 'number' || !Number.isInteger(c)) {
      throw new HeartbeatFormatError(`${what}.codeSet holds a non-integer`);
    }
    return c;
  });
  const subVersion = o.subVersion ?? 0;
  if (typeof subVersion !== 'number') throw new HeartbeatFormatError(`${what}.subVersion is not a number`);
  return {
    topic: asString(o.topic, `${what}.topic`),
    subString: asString(o.subString, `${what}.subString`, '*'),
    tagsSet: asArray(o.tagsSet, `${what}.tagsSet`).map((t) => asString(t, `${what}.tagsSet[]`)),
    codeSet,
    subVersion,
    expressionType: asString(o.expressionType, `${what}.expressionType`, 'TAG'),
  };
}

/** Decodes a HEART_BEAT body (JSON HeartbeatData); throws HeartbeatFormatError when it does not fit. */
export function parseHeartbeatData(body: Buffer | undefined): HeartbeatData {
  if (!body || body.length === 0) throw new HeartbeatFormatError('the heartbeat has no body');
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new HeartbeatFormatError(`the heartbeat body is not JSON: ${(e as Error).message}`);
  }
  const o = asObject(json, 'HeartbeatData');
  return {
    clientID: asString(o.clientID, 'clientID'),
    producerDataSet: asArray(o.producerDataSet, 'producerDataSet').map((p, i) => ({
      groupName: asString(asObject(p, `producerDataSet[${i}]`).groupName, `producerDataSet[${i}].groupName`),
    })),
    consumerDataSet: asArray(o.consumerDataSet, 'consumerDataSet').map((c, i) => {
      const w = `consumerDataSet[${i}]`;
      const co = asObject(c, w);
      return {
        groupName: asString(co.groupName, `${w}.groupName`),
        consumeType: asString(co.consumeType, `${w}.consumeType`, 'CONSUME_PASSIVELY'),
        messageModel: asString(co.messageModel, `${w}.messageModel`, 'CLUSTERING'),
        consumeFromWhere: asString(co.consumeFromWhere, `${w}.consumeFromWhere`, 'CONSUME_FROM_LAST_OFFSET'),
        subscriptionDataSet: asArray(co.subscriptionDataSet, `${w}.subscriptionDataSet`).map((s, j) =>
          parseSubscription(s, `${w}.subscriptionDataSet[${j}]`),
        ),
        unitMode: co.unitMode === true,
      };
    }),
  };
}

/** Encodes a HeartbeatData as the JSON body of HEART_BEAT. */
export function encodeHeartbeatData(data: HeartbeatData): Buffer {
  return Buffer.from(JSON.stringify(data), 'utf8');
}
