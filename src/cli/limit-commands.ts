/**
 * `tsmq limit set|clear|list`: send rate limits per topic or per client host, on every master
 * (or one broker with -b), applied at once and kept across restarts (../broker/flow-control.ts).
 * A send over a limit is answered FLOW_CONTROL; producers back off and retry.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { TsmqError } from '../common/errors.js';
import { clientCommand, withAdmin } from './admin-commands.js';
import { print, table } from './output.js';

interface LimitFlags {
  namesrv: string;
  json?: boolean;
  topic?: string;
  client?: string;
  cluster?: string;
  broker?: string;
  msgs?: number;
  bytes?: number;
}

function rate(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number ≥ 0');
  return n;
}

function target(o: LimitFlags): { kind: 'topic' | 'client'; name: string } {
  if ((o.topic === undefined) === (o.client === undefined)) {
    throw new TsmqError('ARGUMENT_INVALID', 'give exactly one of --topic and --client');
  }
  return o.topic !== undefined ? { kind: 'topic', name: o.topic } : { kind: 'client', name: o.client! };
}

const scope = (cmd: Command) =>
  cmd
    .option('-t, --topic <topic>', 'limit this topic')
    .option('--client <host>', 'limit this client host (its IP address)')
    .option('-c, --cluster <name>', 'only the masters of this cluster')
    .option('-b, --broker <addr>', 'only this broker (host:port)');

export function addLimitCommands(program: Command): void {
  const limit = program.command('limit').description('send rate limits (FLOW_CONTROL) per topic or client');
  clientCommand(scope(limit.command('set').description('set a limit (0 = no limit on that measure)')))
    .option('--msgs <n>', 'messages per second', rate, 0)
    .option('--bytes <n>', 'body bytes per second', rate, 0)
    .action((o: LimitFlags) =>
      withAdmin(o, async (admin) => {
        const { kind, name } = target(o);
        const rule = { msgsPerSec: o.msgs ?? 0, bytesPerSec: o.bytes ?? 0 };
        if (rule.msgsPerSec === 0 && rule.bytesPerSec === 0) {
          throw new TsmqError(
            'ARGUMENT_INVALID',
            'give --msgs or --bytes (use `tsmq limit clear` to remove a limit)',
          );
        }
        const addrs = await admin.setRateLimit(kind, name, rule, {
          ...(o.cluster !== undefined && { cluster: o.cluster }),
          ...(o.broker !== undefined && { brokerAddr: o.broker }),
        });
        print(
          o.json,
          { kind, name, ...rule, brokers: addrs },
          () => `limited ${kind} ${name} on ${addrs.join(', ')}`,
        );
      }),
    );
  clientCommand(scope(limit.command('clear').description('remove a limit'))).action((o: LimitFlags) =>
    withAdmin(o, async (admin) => {
      const { kind, name } = target(o);
      const addrs = await admin.setRateLimit(kind, name, undefined, {
        ...(o.cluster !== undefined && { cluster: o.cluster }),
        ...(o.broker !== undefined && { brokerAddr: o.broker }),
      });
      print(
        o.json,
        { kind, name, brokers: addrs },
        () => `cleared the limit of ${kind} ${name} on ${addrs.join(', ')}`,
      );
    }),
  );
  clientCommand(limit.command('list').description('the limits in force on each master'))
    .option('-c, --cluster <name>', 'only the masters of this cluster')
    .action((o: LimitFlags) =>
      withAdmin(o, async (admin) => {
        const rows: Array<{
          broker: string;
          kind: string;
          name: string;
          msgsPerSec: number;
          bytesPerSec: number;
        }> = [];
        for (const addr of await admin.masterAddrs(o.cluster)) {
          for (const [k, v] of await admin.brokerConfig(addr)) {
            const m = /^rateLimit\.(topic|client)\.(.+)$/.exec(k);
            if (!m) continue;
            const [msgs, bytes] = v.split(',').map(Number);
            rows.push({
              broker: addr,
              kind: m[1]!,
              name: m[2]!,
              msgsPerSec: msgs ?? 0,
              bytesPerSec: bytes ?? 0,
            });
          }
        }
        print(o.json, rows, () =>
          rows.length === 0
            ? 'no rate limits'
            : table(
                ['BROKER', 'KIND', 'NAME', 'MSGS/S', 'BYTES/S'],
                rows.map((r) => [r.broker, r.kind, r.name, r.msgsPerSec || '-', r.bytesPerSec || '-']),
              ),
        );
      }),
    );
}
