/**
 * The `tsmq` client commands as a person runs them: child processes against `tsmq start` (itself
 * a child process on free ports with a temp data dir).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { RoleProcess } from '../../test-support/cluster.js';

const main = path.resolve(import.meta.dirname, '../../src/cli/main.js');
let server: RoleProcess;
let dir: string;
let namesrv: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function tsmq(args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [main, ...args, '-n', namesrv],
      { timeout: 30_000, env: { ...process.env, TSMQ_LOG_LEVEL: 'error' } },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

async function ok(args: string[], input?: string): Promise<string> {
  const r = await tsmq(args, input);
  assert.equal(r.code, 0, `tsmq ${args.join(' ')} failed:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmq-cli-'));
  server = new RoleProcess(['start', '--data', dir, '--namesrv-port', '0', '--broker-port', '0']);
  const m = await server.waitFor(/tsmq is running: name server ([\d.]+:\d+)/, 'tsmq start');
  namesrv = m[1]!;
});

after(async () => {
  await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('topic create, list, route, update and delete', async () => {
  assert.match(await ok(['topic', 'create', 'CliTopic', '-r', '4', '-w', '4']), /created topic CliTopic on /);
  assert.ok((await ok(['topic', 'list'])).split('\n').includes('CliTopic'));
  const route = JSON.parse(await ok(['topic', 'route', 'CliTopic', '--json']));
  assert.equal(route.queueDatas[0].writeQueueNums, 4);
  await ok(['topic', 'update', 'CliTopic', '-r', '2', '-w', '2']);
  const updated = JSON.parse(await ok(['topic', 'route', 'CliTopic', '--json']));
  assert.equal(updated.queueDatas[0].writeQueueNums, 2);
  assert.match(await ok(['topic', 'delete', 'CliTopic']), /deleted topic CliTopic/);
  const gone = await tsmq(['topic', 'route', 'CliTopic']);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /no route for topic CliTopic.*NO_ROUTE 1400/);
});

test('send, consume, query by key and by both ids, lag and group list', async () => {
  await ok(['topic', 'create', 'Shop', '-r', '2', '-w', '2']);
  const sent = JSON.parse(
    await ok([
      'send',
      '-t',
      'Shop',
      '-b',
      'order paid',
      '--tags',
      'paid',
      '-k',
      'order-7',
      '--prop',
      'region=eu',
      '--json',
    ]),
  );
  assert.equal(sent.status, 'SEND_OK');
  const lines = await ok(['send', '-t', 'Shop', '--tags', 'other'], 'line one\nline two\n');
  assert.equal(lines.trim().split('\n').length, 2);

  const got = (await ok(['consume', '-t', 'Shop', '-g', 'cli-g', '-c', '3', '--json']))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(got.map((m) => m.body).sort(), ['line one', 'line two', 'order paid']);
  const paid = got.find((m) => m.body === 'order paid');
  assert.equal(paid.tags, 'paid');
  assert.equal(paid.properties.region, 'eu');

  const byKey = JSON.parse(await ok(['query', '-t', 'Shop', '-k', 'order-7', '--json']));
  assert.equal(byKey.length, 1);
  assert.equal(byKey[0].msgId, sent.msgId);
  const byOffsetId = JSON.parse(await ok(['query', '-i', sent.offsetMsgId, '--json']));
  assert.equal(byOffsetId[0].body, 'order paid');
  const byMsgId = JSON.parse(await ok(['query', '-t', 'Shop', '-i', sent.msgId, '--json']));
  assert.equal(byMsgId[0].offsetMsgId, sent.offsetMsgId);

  // A filtered consumer in another group sees only its tag.
  const filtered = await ok(['consume', '-t', 'Shop', '-g', 'cli-paid', '-s', 'paid', '-c', '1', '--json']);
  assert.equal(JSON.parse(filtered.trim()).body, 'order paid');
  // A SQL92 filter on the user property it was sent with.
  const bySql = await ok([
    'consume',
    '-t',
    'Shop',
    '-g',
    'cli-sql',
    '--sql',
    "region = 'eu'",
    '-c',
    '1',
    '--json',
  ]);
  assert.equal(JSON.parse(bySql.trim()).body, 'order paid');

  await ok(['send', '-t', 'Shop', '-b', 'late', '-c', '3']);
  const lag = JSON.parse(await ok(['lag', 'cli-g', '--json']));
  assert.equal(lag.totalLag, 3);
  // Backtrack: the group goes back to the earliest message, so everything is lag again.
  const reset = JSON.parse(await ok(['offset', 'reset', 'cli-g', 'Shop', '--to', 'earliest', '--json']));
  assert.ok(reset.every((r: { offset: number }) => r.offset === 0));
  assert.equal(JSON.parse(await ok(['lag', 'cli-g', '--json'])).totalLag, 6);
  const groups = JSON.parse(await ok(['group', 'list', '--json']));
  assert.ok(groups.some((g: { group: string }) => g.group === 'cli-g'));
});

test('errors a person understands, with exit code 1', async () => {
  const noTopic = await tsmq(['consume', '-t', 'NoSuchTopic', '-c', '1']);
  assert.equal(noTopic.code, 1);
  assert.match(noTopic.stderr, /no route for topic NoSuchTopic/);
  const badName = await tsmq(['topic', 'create', 'bad topic']);
  assert.equal(badName.code, 1);
  assert.match(badName.stderr, /characters outside/);
  const both = await tsmq(['query', '-t', 'Shop']);
  assert.equal(both.code, 1);
  assert.match(both.stderr, /exactly one of --key and --id/);
  const badId = await tsmq(['query', '-i', 'nothex']);
  assert.equal(badId.code, 1);
  assert.match(badId.stderr, /give the topic|invalid message id|MESSAGE_NOT_FOUND/);
  const badCount = await tsmq(['send', '-t', 'Shop', '-b', 'x', '-c', 'many']);
  assert.equal(badCount.code, 1);
  assert.match(badCount.stderr, /positive integer/);
});
