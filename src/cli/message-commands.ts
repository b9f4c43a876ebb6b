/**
 * The message commands: `tsmq send` (one message, or one per stdin line), `tsmq consume` (a push
 * consumer printing what it gets) and `tsmq query --key|--id` (the index).
 */
import readline from 'node:readline';
import { type Command, InvalidArgumentError } from 'commander';
import {
  localRedelivery,
  type Message,
  type MessageExt,
  MessageSelector,
  Producer,
  PushConsumer,
} from '../client/index.js';
import { TsmqError } from '../common/errors.js';
import { clientCommand, withAdmin } from './admin-commands.js';
import { positiveInt } from './options.js';
import { print, table } from './output.js';

interface Flags {
  namesrv: string;
  json?: boolean;
}

/** A time given as epoch ms or anything Date.parse reads ("2026-11-26T10:00:00Z"). */
export function timeArg(v: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('expected epoch milliseconds or an ISO date-time');
  return n;
}

function property(v: string, prev: Record<string, string> = {}): Record<string, string> {
  const i = v.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError('expected name=value');
  return { ...prev, [v.slice(0, i)]: v.slice(i + 1) };
}

function describe(m: MessageExt): Record<string, unknown> {
  return {
    topic: m.topic,
    msgId: m.msgId,
    offsetMsgId: m.offsetMsgId,
    brokerName: m.brokerName,
    queueId: m.queueId,
    queueOffset: m.queueOffset,
    tags: m.tags,
    keys: m.keys,
    bornTimestamp: m.bornTimestamp,
    storeTimestamp: m.storeTimestamp,
    reconsumeTimes: m.reconsumeTimes,
    properties: Object.fromEntries(m.properties),
    body: m.body.toString('utf8'),
  };
}

function line(m: MessageExt): string {
  const where = `${m.brokerName}/${m.queueId}@${m.queueOffset}`;
  const tags = m.tags ? ` tags=${m.tags}` : '';
  const keys = m.keys.length > 0 ? ` keys=${m.keys.join(',')}` : '';
  return `${where} ${m.msgId}${tags}${keys} ${JSON.stringify(m.body.toString('utf8'))}`;
}

interface SendFlags extends Flags {
  topic: string;
  body?: string;
  tags?: string;
  keys?: string;
  prop?: Record<string, string>;
  group: string;
  shardingKey?: string;
  delayLevel?: number;
  count: number;
}

interface ConsumeFlags extends Flags {
  topic: string;
  group: string;
  expression: string;
  sql?: string;
  from: 'first' | 'last' | 'timestamp';
  timestamp?: number;
  count?: number;
  idle?: number;
  broadcast?: boolean;
}

function fromArg(v: string): 'first' | 'last' | 'timestamp' {
  if (v !== 'first' && v !== 'last' && v !== 'timestamp') {
    throw new InvalidArgumentError('expected first, last or timestamp');
  }
  return v;
}

export function addMessageCommands(program: Command): void {
  clientCommand(
    program
      .command('send')
      .description('send a message (with --body), or one message per line of stdin')
      .requiredOption('-t, --topic <topic>', 'topic')
      .option('-b, --body <text>', 'message body (default: read lines from stdin)')
      .option('--tags <tag>', 'the message tag')
      .option('-k, --keys <keys>', 'index keys, comma-separated')
      .option('--prop <name=value>', 'a user property (repeatable)', property)
      .option('-g, --group <group>', 'producer group', 'tsmq-cli-producer')
      .option('--sharding-key <key>', 'send in order: one key, one queue')
      .option('--delay-level <n>', 'delay level (1..18)', positiveInt)
      .option('-c, --count <n>', 'send --body this many times', positiveInt, 1),
  ).action(async (o: SendFlags) => {
    const producer = new Producer({ group: o.group, namesrvAddr: o.namesrv });
    await producer.start();
    try {
      const one = async (body: string) => {
        const msg: Message = {
          topic: o.topic,
          body,
          ...(o.tags !== undefined && { tags: o.tags }),
          ...(o.keys !== undefined && { keys: o.keys.split(',') }),
          ...(o.prop !== undefined && { properties: o.prop }),
          ...(o.delayLevel !== undefined && { delayLevel: o.delayLevel }),
        };
        const r =
          o.shardingKey !== undefined
            ? await producer.sendOrderly(msg, o.shardingKey)
            : await producer.send(msg);
        const { brokerName, queueId } = r.messageQueue;
        print(
          o.json,
          r,
          () =>
            `${r.status} msgId=${r.msgId} offsetMsgId=${r.offsetMsgId} queue=${brokerName}/${queueId}@${r.queueOffset}`,
        );
      };
      if (o.body !== undefined) {
        for (let i = 0; i < o.count; i++) await one(o.body);
      } else {
        for await (const text of readline.createInterface({ input: process.stdin })) {
          if (text.length > 0) await one(text);
        }
      }
    } finally {
      await producer.shutdown();
    }
  });

  clientCommand(
    program
      .command('consume')
      .description('consume a topic and print each message (Ctrl-C to stop)')
      .requiredOption('-t, --topic <topic>', 'topic')
      .option('-g, --group <group>', 'consumer group (offsets are kept per group)', 'tsmq-cli-consumer')
      .option('-s, --expression <tags>', 'tag filter: * or "TagA || TagB"', '*')
      .option('--sql <expression>', 'SQL92 filter on properties, e.g. "amount > 50 AND region = \'eu\'"')
      .option('--from <where>', 'where a new group starts: first, last or timestamp', fromArg, 'first')
      .option('--timestamp <time>', 'with --from timestamp: epoch ms or ISO time', timeArg)
      .option('-c, --count <n>', 'stop after this many messages', positiveInt)
      .option('--idle <ms>', 'stop after this long without a message', positiveInt)
      .option('--broadcast', 'broadcasting: offsets kept locally, every consumer gets everything'),
  ).action(async (o: ConsumeFlags) => {
    // An unknown topic is an error a person should see at once, not a consumer waiting forever.
    await withAdmin(o, (admin) => admin.topicRoute(o.topic));
    const consumer = new PushConsumer({
      group: o.group,
      namesrvAddr: o.namesrv,
      messageModel: o.broadcast ? 'BROADCASTING' : 'CLUSTERING',
      consumeFromWhere: o.from === 'first' ? 'FIRST_OFFSET' : o.from === 'last' ? 'LAST_OFFSET' : 'TIMESTAMP',
      ...(o.timestamp !== undefined && { consumeTimestamp: o.timestamp }),
      consumeConcurrency: 1,
      // Messages handed back past --count stay with this process (not the retry topic), so the
      // group's offset stops before them and the next run starts there.
      failurePolicy: localRedelivery,
    });
    let seen = 0;
    let lastAt = Date.now();
    let done!: () => void;
    const finished = new Promise<void>((resolve) => {
      done = resolve;
    });
    consumer
      .subscribe(o.topic, o.sql !== undefined ? MessageSelector.bySql(o.sql) : o.expression)
      .onMessage(async (msgs) => {
        // Past --count, hand messages back unprinted so the group's offset never passes them.
        if (o.count !== undefined && seen >= o.count) return 'RETRY_LATER';
        for (const m of msgs) {
          seen++;
          print(o.json, describe(m), () => line(m));
        }
        lastAt = Date.now();
        if (o.count !== undefined && seen >= o.count) done();
      });
    await consumer.start();
    const idle =
      o.idle === undefined
        ? undefined
        : setInterval(() => {
            if (Date.now() - lastAt >= o.idle!) done();
          }, 50);
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    await finished;
    if (idle) clearInterval(idle);
    await consumer.shutdown();
  });

  clientCommand(
    program
      .command('query')
      .description('find messages by key (--key) or by id (--id: a msgId or an offsetMsgId)')
      .option('-t, --topic <topic>', 'topic (required with --key, and for a msgId)')
      .option('-k, --key <key>', 'a key the messages were sent with')
      .option('-i, --id <id>', 'a message id')
      .option('--begin <time>', 'stored at or after (epoch ms or ISO time)', timeArg)
      .option('--end <time>', 'stored before (epoch ms or ISO time)', timeArg)
      .option('--max <n>', 'most messages per broker', positiveInt, 64),
  ).action(
    (o: Flags & { topic?: string; key?: string; id?: string; begin?: number; end?: number; max: number }) =>
      withAdmin(o, async (admin) => {
        if ((o.key === undefined) === (o.id === undefined)) {
          throw new TsmqError('ARGUMENT_INVALID', 'give exactly one of --key and --id');
        }
        let found: MessageExt[];
        if (o.key !== undefined) {
          if (o.topic === undefined) throw new TsmqError('ARGUMENT_INVALID', '--key needs --topic');
          found = await admin.queryByKey(o.topic, o.key, {
            maxNum: o.max,
            ...(o.begin !== undefined && { beginMs: o.begin }),
            ...(o.end !== undefined && { endMs: o.end }),
          });
        } else {
          found = [await admin.viewMessage(o.topic, o.id!)];
        }
        print(o.json, found.map(describe), () =>
          found.length === 0
            ? 'no message found'
            : table(
                ['QUEUE', 'MSG ID', 'STORED', 'TAGS', 'KEYS', 'BODY'],
                found.map((m) => [
                  `${m.brokerName}/${m.queueId}@${m.queueOffset}`,
                  m.msgId,
                  new Date(m.storeTimestamp).toISOString(),
                  m.tags ?? '',
                  m.keys.join(','),
                  JSON.stringify(m.body.toString('utf8').slice(0, 60)),
                ]),
              ),
        );
      }),
  );
}
