/**
 * The dead-letter commands: `tsmq dlq list GROUP` shows what the group gave up on (the messages of
 * %DLQ%GROUP, with the topic each was sent to), and `tsmq dlq resend GROUP --id ID… | --all` sends
 * them back to that topic with their body, tags, keys, properties and message id, so the group
 * (or anyone on the topic) consumes them again. The DLQ keeps its copies (../client/dead-letters.ts).
 */
import type { Command } from 'commander';
import { type DeadLetter, deadLetterToMessage, Producer } from '../client/index.js';
import { TsmqError } from '../common/errors.js';
import { clientCommand, withAdmin } from './admin-commands.js';
import { positiveInt } from './options.js';
import { print, table } from './output.js';

interface DlqFlags {
  namesrv: string;
  json?: boolean;
  max: number;
}

function describe(d: DeadLetter): Record<string, unknown> {
  const m = d.msg;
  return {
    msgId: d.originMsgId,
    originTopic: d.originTopic,
    dlq: `${m.brokerName}/${m.queueId}@${m.queueOffset}`,
    tags: m.tags,
    keys: m.keys,
    reconsumeTimes: m.reconsumeTimes,
    bornTimestamp: m.bornTimestamp,
    storeTimestamp: m.storeTimestamp,
    body: m.body.toString('utf8'),
  };
}

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, ...v.split(',').filter((s) => s.length > 0)];
}

export function addDlqCommands(program: Command): void {
  const dlq = program.command('dlq').description("a consumer group's dead-letter queue");
  clientCommand(dlq.command('list <group>').description('list the messages the group gave up on'))
    .option('--max <n>', 'most messages to list', positiveInt, 1000)
    .action((group: string, o: DlqFlags) =>
      withAdmin(o, async (admin) => {
        const found = await admin.deadLetters(group, o.max);
        print(o.json, found.map(describe), () =>
          found.length === 0
            ? `the dead-letter queue of ${group} is empty`
            : table(
                ['MSG ID', 'TOPIC', 'DLQ QUEUE', 'RECONSUMED', 'STORED', 'TAGS', 'BODY'],
                found.map((d) => [
                  d.originMsgId,
                  d.originTopic,
                  `${d.msg.brokerName}/${d.msg.queueId}@${d.msg.queueOffset}`,
                  d.msg.reconsumeTimes,
                  new Date(d.msg.storeTimestamp).toISOString(),
                  d.msg.tags ?? '',
                  JSON.stringify(d.msg.body.toString('utf8').slice(0, 60)),
                ]),
              ),
        );
      }),
    );

  clientCommand(
    dlq
      .command('resend <group>')
      .description('send dead letters back to the topic they came from (same id, body, tags, keys)')
      .option('-i, --id <ids>', 'message ids to resend, comma-separated (repeatable)', collect)
      .option('--all', 'resend every message of the dead-letter queue')
      .option('--max <n>', 'most messages to read from the dead-letter queue', positiveInt, 1000)
      .option('-g, --group-producer <group>', 'producer group of the re-sends', 'tsmq-cli-dlq-resend'),
  ).action(async (group: string, o: DlqFlags & { id?: string[]; all?: boolean; groupProducer: string }) => {
    if ((o.id === undefined) === (o.all === undefined)) {
      throw new TsmqError('ARGUMENT_INVALID', 'give --id (one or more message ids) or --all');
    }
    const found = await withAdmin(o, (admin) => admin.deadLetters(group, o.max));
    if (o.all && found.length >= o.max) {
      console.error(
        `tsmq: read the first ${o.max} dead letters only; resend again with a larger --max for the rest`,
      );
    }
    const wanted = o.id ? new Set(o.id) : undefined;
    const chosen = wanted ? found.filter((d) => wanted.has(d.originMsgId) || wanted.has(d.msg.msgId)) : found;
    if (wanted) {
      const seen = new Set(chosen.flatMap((d) => [d.originMsgId, d.msg.msgId]));
      const missing = [...wanted].filter((id) => !seen.has(id));
      if (missing.length > 0) {
        throw new TsmqError(
          'MESSAGE_NOT_FOUND',
          `not in the dead-letter queue of ${group}: ${missing.join(', ')}`,
        );
      }
    }
    // One re-send per message id (a message that died twice has two copies), every one checked
    // before the first is sent.
    const byId = new Map(chosen.map((d) => [d.originMsgId, d]));
    const sends = [...byId.values()].map((d) => ({ d, msg: deadLetterToMessage(d) }));
    const producer = new Producer({ group: o.groupProducer, namesrvAddr: o.namesrv });
    await producer.start();
    try {
      const rows: { msgId: string; topic: string; status: string; queue: string }[] = [];
      for (const { d, msg } of sends) {
        const r = await producer.send(
          msg,
          /^[0-9A-Za-z_-]{1,128}$/.test(d.originMsgId) ? { msgId: d.originMsgId } : {},
        );
        rows.push({
          msgId: r.msgId,
          topic: d.originTopic,
          status: r.status,
          queue: `${r.messageQueue.brokerName}/${r.messageQueue.queueId}@${r.queueOffset}`,
        });
      }
      print(o.json, rows, () =>
        rows.length === 0
          ? `the dead-letter queue of ${group} is empty; nothing resent`
          : table(
              ['MSG ID', 'TOPIC', 'STATUS', 'QUEUE'],
              rows.map((r) => [r.msgId, r.topic, r.status, r.queue]),
            ),
      );
    } finally {
      await producer.shutdown();
    }
  });
}
