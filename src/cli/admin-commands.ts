/**
 * The admin commands (mqadmin's everyday subset): `tsmq cluster list`, `tsmq topic
 * create|update|delete|list|route`, `tsmq group list`, `tsmq lag GROUP`, `tsmq offset reset`. Each talks to the name servers given by --namesrv (or
 * $NAMESRV_ADDR, or 127.0.0.1:9876) and then to the brokers.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { Admin } from '../client/index.js';
import { NAMESRV_DEFAULT, positiveInt } from './options.js';
import { print, table } from './output.js';

interface ClientFlags {
  namesrv: string;
  json?: boolean;
}

/** Adds --namesrv and --json to a client command. */
export function clientCommand(cmd: Command): Command {
  return cmd
    .option('-n, --namesrv <addrs>', 'name servers, host:port;host:port', NAMESRV_DEFAULT)
    .option('--json', 'print JSON instead of text');
}

/** Runs `fn` with an Admin on the given name servers, closing it afterwards. */
export async function withAdmin<T>(flags: ClientFlags, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin({ namesrvAddr: flags.namesrv });
  try {
    return await fn(admin);
  } finally {
    admin.close();
  }
}

function perm(v: string): number {
  const n = Number(v);
  if (![2, 4, 6].includes(n))
    throw new InvalidArgumentError('expected 2 (write), 4 (read) or 6 (read and write)');
  return n;
}

interface TopicFlags extends ClientFlags {
  readQueues: number;
  writeQueues: number;
  perm: number;
  cluster?: string;
  broker?: string;
  order?: boolean;
}

export function addAdminCommands(program: Command): void {
  const cluster = program.command('cluster').description('the brokers of the cluster');
  clientCommand(cluster.command('list').description('list clusters and their brokers'))
    .option('-c, --cluster <name>', 'only this cluster')
    .action((o: ClientFlags & { cluster?: string }) =>
      withAdmin(o, async (admin) => {
        const rows = await admin.brokers(o.cluster);
        print(o.json, rows, () =>
          rows.length === 0
            ? 'no brokers are registered'
            : table(
                ['CLUSTER', 'BROKER', 'ID', 'ADDRESS'],
                rows.map((r) => [r.cluster, r.brokerName, r.brokerId, r.addr]),
              ),
        );
      }),
    );

  const topic = program.command('topic').description('create, update, delete and list topics');
  for (const verb of ['create', 'update'] as const) {
    clientCommand(
      topic
        .command(`${verb} <topic>`)
        .description(
          verb === 'create'
            ? 'create a topic on every master of a cluster (or on one broker)'
            : 'change a topic’s queue counts or permissions (same options as create)',
        ),
    )
      .option('-r, --read-queues <n>', 'read queue count per broker', positiveInt, 8)
      .option('-w, --write-queues <n>', 'write queue count per broker', positiveInt, 8)
      .option('-p, --perm <perm>', 'permission: 2 write, 4 read, 6 both', perm, 6)
      .option('-c, --cluster <name>', 'on every master of this cluster (default: all clusters)')
      .option('-b, --broker <addr>', 'on this broker only (host:port)')
      .option('-o, --order', 'mark the topic as ordered')
      .action((name: string, o: TopicFlags) =>
        withAdmin(o, async (admin) => {
          const addrs = await admin.createTopic({
            topic: name,
            readQueueNums: o.readQueues,
            writeQueueNums: o.writeQueues,
            perm: o.perm,
            ...(o.cluster !== undefined && { cluster: o.cluster }),
            ...(o.broker !== undefined && { brokerAddr: o.broker }),
            ...(o.order !== undefined && { order: o.order }),
          });
          print(
            o.json,
            { topic: name, brokers: addrs },
            () => `${verb}d topic ${name} on ${addrs.join(', ')}`,
          );
        }),
      );
  }

  clientCommand(topic.command('delete <topic>').description('delete a topic, its messages and offsets'))
    .option('-c, --cluster <name>', 'only in this cluster')
    .action((name: string, o: ClientFlags & { cluster?: string }) =>
      withAdmin(o, async (admin) => {
        const addrs = await admin.deleteTopic(name, o.cluster);
        print(o.json, { topic: name, brokers: addrs }, () =>
          addrs.length === 0
            ? `topic ${name} had no broker; removed from the name servers`
            : `deleted topic ${name} from ${addrs.join(', ')} and the name servers`,
        );
      }),
    );

  clientCommand(topic.command('list').description('list every topic the name servers know')).action(
    (o: ClientFlags) =>
      withAdmin(o, async (admin) => {
        const topics = await admin.topicList();
        print(o.json, topics, () => topics.join('\n'));
      }),
  );

  clientCommand(topic.command('route <topic>').description('show which brokers serve a topic')).action(
    (name: string, o: ClientFlags) =>
      withAdmin(o, async (admin) => {
        const route = await admin.topicRoute(name);
        print(o.json, route, () =>
          table(
            ['BROKER', 'READ QUEUES', 'WRITE QUEUES', 'PERM', 'ADDRESSES'],
            route.queueDatas.map((q) => [
              q.brokerName,
              q.readQueueNums,
              q.writeQueueNums,
              q.perm,
              Object.values(
                route.brokerDatas.find((b) => b.brokerName === q.brokerName)?.brokerAddrs ?? {},
              ).join(' '),
            ]),
          ),
        );
      }),
  );

  const group = program.command('group').description('consumer groups');
  clientCommand(group.command('list').description('list the subscription groups and their live members'))
    .option('-c, --cluster <name>', 'only this cluster')
    .action((o: ClientFlags & { cluster?: string }) =>
      withAdmin(o, async (admin) => {
        const rows = await admin.consumerGroups(o.cluster);
        print(o.json, rows, () =>
          table(
            ['GROUP', 'MEMBERS', 'CONSUME', 'BROADCAST', 'MAX RETRIES', 'BROKERS'],
            rows.map((r) => [
              r.group,
              r.members.length,
              r.consumeEnable ? 'yes' : 'no',
              r.consumeBroadcastEnable ? 'yes' : 'no',
              r.retryMaxTimes,
              r.brokers.join(' '),
            ]),
          ),
        );
      }),
    );

  clientCommand(
    program.command('lag <group>').description('a consumer group’s backlog per queue and in total'),
  )
    .option('-t, --topic <topic>', 'only this topic')
    .option('-c, --cluster <name>', 'only this cluster')
    .action((name: string, o: ClientFlags & { topic?: string; cluster?: string }) =>
      withAdmin(o, async (admin) => {
        const lag = await admin.consumeLag(name, o.topic, o.cluster);
        print(o.json, lag, () =>
          lag.queues.length === 0
            ? `group ${name} has no offsets${o.topic ? ` for topic ${o.topic}` : ''}`
            : `${table(
                ['TOPIC', 'BROKER', 'QUEUE', 'BROKER OFFSET', 'CONSUMER OFFSET', 'LAG', 'LAST STORED'],
                lag.queues.map((q) => [
                  q.queue.topic,
                  q.queue.brokerName,
                  q.queue.queueId,
                  q.brokerOffset,
                  q.consumerOffset,
                  q.lag,
                  q.lastTimestamp > 0 ? new Date(q.lastTimestamp).toISOString() : '-',
                ]),
              )}\ntotal lag: ${lag.totalLag}`,
        );
      }),
    );

  const offset = program.command('offset').description('consumer offsets');
  clientCommand(
    offset
      .command('reset <group> <topic>')
      .description('move a group back (or forward) to a time, the earliest or the latest message'),
  )
    .requiredOption(
      '--to <where>',
      'earliest, latest, epoch ms or an ISO time (e.g. 2026-11-26T10:00:00Z)',
      resetTarget,
    )
    .option('--no-force', 'only move queues back, never forward')
    .action(
      (
        group: string,
        topicName: string,
        o: ClientFlags & { to: number | 'earliest' | 'latest'; force: boolean },
      ) =>
        withAdmin(o, async (admin) => {
          const rows = await admin.resetOffset(group, topicName, o.to, o.force);
          print(
            o.json,
            rows,
            () =>
              `${table(
                ['TOPIC', 'BROKER', 'QUEUE', 'NEW OFFSET'],
                rows.map((r) => [r.queue.topic, r.queue.brokerName, r.queue.queueId, r.offset]),
              )}\nreset group ${group} on ${topicName} to ${typeof o.to === 'number' ? new Date(o.to).toISOString() : o.to}`,
          );
        }),
    );
}

function resetTarget(v: string): number | 'earliest' | 'latest' {
  if (v === 'earliest' || v === 'latest') return v;
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n))
    throw new InvalidArgumentError('expected earliest, latest, epoch ms or an ISO time');
  return n;
}
