/**
 * The producer's attempts: brokers that refuse connections, answer with retryable or final codes,
 * or never answer — scripted fake brokers registered with a real name server — and a real
 * two-broker cluster that loses a broker while the producer sends.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { Broker } from '../../src/broker/index.js';
import {
  BrokerResponseError,
  Producer,
  type ProducerOptions,
  type SendResult,
} from '../../src/client/index.js';
import { isTsmqError, type TsmqError } from '../../src/common/errors.js';
import { javaStringHashCode } from '../../src/common/java-hash.js';
import type { Logger } from '../../src/common/log.js';
import { decodeBatchBody, decodeProperties, MessageProperty } from '../../src/message/index.js';
import { NameServer } from '../../src/namesrv/index.js';
import {
  createRequest,
  createResponse,
  type RemotingCommand,
  RequestCode,
  ResponseCode,
} from '../../src/protocol/index.js';
import { RemotingClient, RemotingServer } from '../../src/remoting/index.js';
import { waitFor } from '../../test-support/broker-fixtures.js';
import {
  quietLogger,
  type RunningNameServer,
  registerRequest,
  startNameServer,
  topic,
} from '../../test-support/namesrv-fixtures.js';

/** A logger whose warnings land in `lines`, so tests can see failed attempts. */
function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'warn' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { logger, lines };
}

function failedAttempts(lines: Array<Record<string, unknown>>): Array<Record<string, unknown>> {
  return lines.filter((l) => l.msg === 'send attempt failed');
}

type Answer = (req: RemotingCommand, n: number) => RemotingCommand | Promise<RemotingCommand>;

/** Answers a send as a broker that stored it in the queue the request names. */
function stored(req: RemotingCommand, n: number, code: number = ResponseCode.SUCCESS): RemotingCommand {
  return createResponse(req, code, undefined, {
    msgId: `7F00000100002A9F${n.toString(16).toUpperCase().padStart(16, '0')}`,
    queueId: req.extFields!.e!,
    queueOffset: String(n),
  });
}

/** Answers a SEND_BATCH_MESSAGE as a broker that stored all of it: one offsetMsgId per message. */
function storedBatch(req: RemotingCommand, n: number): RemotingCommand {
  const decoded = decodeBatchBody(req.body!);
  assert.ok(decoded.ok);
  const ids = decoded.messages.map(
    (_, i) => `7F00000100002A9F${(n * 1000 + i).toString(16).toUpperCase().padStart(16, '0')}`,
  );
  return createResponse(req, ResponseCode.SUCCESS, undefined, {
    msgId: ids.join(','),
    queueId: req.extFields!.e!,
    queueOffset: String(n * 1000),
  });
}

/** A broker that answers sends as its script says and records each send request. */
class FakeBroker {
  readonly sends: RemotingCommand[] = [];
  private server: RemotingServer | undefined;
  addr = '';

  constructor(
    readonly brokerName: string,
    public answer: Answer,
  ) {}

  async start(): Promise<this> {
    const server = new RemotingServer({ host: '127.0.0.1', port: 0 });
    const onSend = (req: RemotingCommand) => {
      this.sends.push(req);
      return this.answer(req, this.sends.length - 1);
    };
    server.registerProcessor(RequestCode.SEND_MESSAGE_V2, onSend);
    server.registerProcessor(RequestCode.SEND_BATCH_MESSAGE, onSend);
    server.registerProcessor(RequestCode.HEART_BEAT, (req) => createResponse(req, ResponseCode.SUCCESS));
    server.registerProcessor(RequestCode.UNREGISTER_CLIENT, (req) =>
      createResponse(req, ResponseCode.SUCCESS),
    );
    const { port } = await server.listen();
    this.server = server;
    this.addr = `127.0.0.1:${port}`;
    return this;
  }

  /** Queue ids of the send requests so far. */
  queueIds(): number[] {
    return this.sends.map((r) => Number(r.extFields!.e));
  }

  async close(): Promise<void> {
    await this.server?.close();
  }
}

/** An address where nothing listens (a port bound, then released). */
async function deadAddress(): Promise<string> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return `127.0.0.1:${port}`;
}

async function failure(p: Promise<unknown>): Promise<TsmqError> {
  const e = await p.then(
    () => assert.fail('expected the send to fail'),
    (err: unknown) => err,
  );
  assert.ok(isTsmqError(e), `expected a TsmqError, got ${e}`);
  return e;
}

describe('producer retries against scripted brokers', () => {
  let ns: RunningNameServer;
  /** Keeps the fake brokers' registrations alive (the name server drops them when it closes). */
  let registrar: RemotingClient;
  const brokers: FakeBroker[] = [];
  const producers: Producer[] = [];
  const busy = (req: RemotingCommand) =>
    createResponse(req, ResponseCode.SYSTEM_BUSY, '[PC_SYNCHRONIZED]broker busy');

  /** Starts a fake broker and registers it with these topics (4 queues each). */
  async function fake(brokerName: string, topics: string[], answer: Answer): Promise<FakeBroker> {
    const b = await new FakeBroker(brokerName, answer).start();
    brokers.push(b);
    await register(brokerName, b.addr, topics);
    return b;
  }

  async function register(brokerName: string, brokerAddr: string, topics: string[]): Promise<void> {
    const res = await registrar.invoke(
      ns.addr,
      registerRequest({ brokerName, brokerAddr, topics: topics.map((t) => topic(t)) }),
    );
    assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
  }

  async function producer(over: Partial<ProducerOptions> = {}): Promise<Producer> {
    const p = new Producer({
      group: `PG_RETRY_${producers.length}`,
      namesrvAddr: ns.addr,
      logger: quietLogger(),
      ...over,
    });
    producers.push(p);
    await p.start();
    return p;
  }

  before(async () => {
    ns = await startNameServer();
    registrar = new RemotingClient();
  });
  after(async () => {
    for (const p of producers) await p.shutdown();
    registrar.close();
    for (const b of brokers) await b.close();
    await ns.ns.close();
  });

  test('a broker that refuses connections is tried, and every send succeeds on the other broker', async () => {
    const live = await fake('broker-live', ['RtDead'], (req, n) => stored(req, n));
    await register('broker-dead', await deadAddress(), ['RtDead']);
    const { logger, lines } = capturingLogger();
    const p = await producer({ logger });
    const results: SendResult[] = [];
    // Round-robin moves one queue per choice over 8 queues (4 dead, 4 live), so 8 sends must
    // meet the dead broker at least once.
    for (let i = 0; i < 8; i++) results.push(await p.send({ topic: 'RtDead', body: `m${i}` }));
    assert.ok(results.every((r) => r.status === 'SEND_OK' && r.messageQueue.brokerName === 'broker-live'));
    assert.equal(live.sends.length, 8);
    const failed = failedAttempts(lines);
    assert.ok(failed.length >= 1, 'the dead broker was tried');
    assert.ok(failed.every((l) => l.brokerName === 'broker-dead' && /connect/.test(String(l.err))));
  });

  test('a retry prefers another broker than the one that just failed', async () => {
    const a = await fake('broker-busy', ['RtAvoid'], busy);
    const b = await fake('broker-ok', ['RtAvoid'], (req, n) => stored(req, n));
    const p = await producer({ retryTimesWhenSendFailed: 1 });
    // With one retry only, a send that started on the busy broker succeeds only if its retry
    // went to the other broker.
    for (let i = 0; i < 8; i++) {
      const r = await p.send({ topic: 'RtAvoid', body: `m${i}` });
      assert.equal(r.messageQueue.brokerName, 'broker-ok');
    }
    assert.equal(b.sends.length, 8);
    assert.ok(a.sends.length >= 1 && a.sends.length <= 8, `busy broker saw ${a.sends.length}`);
  });

  test('autoBatch: a batch is one request, retried as a whole on the other broker; each send gets its own result', async () => {
    const a = await fake('broker-busy-ab', ['RtAuto'], busy);
    const b = await fake('broker-ok-ab', ['RtAuto'], storedBatch);
    const p = await producer({ retryTimesWhenSendFailed: 1, autoBatch: { maxDelayMs: 20 } });
    // Round-robin moves one queue per batch over 8 queues (4 busy, 4 fine): 8 batches meet the
    // busy broker at least once.
    for (let round = 0; round < 8; round++) {
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => p.send({ topic: 'RtAuto', body: `r${round}m${i}` })),
      );
      const first = results[0]!;
      assert.equal(first.messageQueue.brokerName, 'broker-ok-ab');
      for (const [i, r] of results.entries()) {
        assert.deepEqual(r.messageQueue, first.messageQueue);
        assert.equal(r.queueOffset, first.queueOffset + i);
        assert.equal(
          r.offsetMsgId.slice(-16),
          (first.queueOffset + i).toString(16).toUpperCase().padStart(16, '0'),
        );
      }
      assert.equal(new Set(results.map((r) => r.msgId)).size, 10);
      // The request the good broker stored carried these 10, with their own ids.
      const req = b.sends.at(-1)!;
      const inner = decodeBatchBody(req.body!);
      assert.ok(inner.ok);
      assert.deepEqual(
        inner.messages.map((m) => decodeProperties(m.properties).get(MessageProperty.UNIQ_KEY)),
        results.map((r) => r.msgId),
      );
    }
    assert.equal(b.sends.length, 8, 'one request per batch on the good broker');
    assert.ok(a.sends.length >= 1, 'the busy broker was tried');
    assert.ok(
      [...a.sends, ...b.sends].every((r) => r.code === RequestCode.SEND_BATCH_MESSAGE),
      'only batch requests',
    );
  });

  test('every attempt failing → SEND_FAILED whose cause is the last BrokerResponseError', async () => {
    const only = await fake('broker-always-busy', ['RtBusy'], busy);
    const p = await producer();
    const e = await failure(p.send({ topic: 'RtBusy', body: 'x' }));
    assert.equal(e.codeName, 'SEND_FAILED');
    assert.match(e.message, /after 3 attempt\(s\)/);
    assert.ok(e.cause instanceof BrokerResponseError);
    assert.equal(e.cause.responseCode, ResponseCode.SYSTEM_BUSY);
    assert.equal(only.sends.length, 3, '1 + retryTimesWhenSendFailed (2) attempts');
    // The same message id on every attempt.
    const ids = only.sends.map((r) => decodeProperties(r.extFields!.i!).get('UNIQ_KEY'));
    assert.equal(new Set(ids).size, 1);

    const once = await producer({ retryTimesWhenSendFailed: 0 });
    await failure(once.send({ topic: 'RtBusy', body: 'x' }));
    assert.equal(only.sends.length, 4);
  });

  test('every attempt refused → SEND_FAILED whose cause is the connection failure', async () => {
    await register('broker-gone', await deadAddress(), ['RtGone']);
    const p = await producer();
    const e = await failure(p.send({ topic: 'RtGone', body: 'x' }));
    assert.equal(e.codeName, 'SEND_FAILED');
    assert.ok(isTsmqError(e.cause, 'CONNECT_FAILED'), String(e.cause));
    const batch = await failure(p.sendBatch([{ topic: 'RtGone', body: 'x' }]));
    assert.equal(batch.codeName, 'SEND_FAILED');
    const oneway = await failure(p.sendOneway({ topic: 'RtGone', body: 'x' }));
    assert.equal(oneway.codeName, 'SEND_FAILED');
  });

  test('a broker that never answers: the attempts share sendTimeoutMs, then SEND_FAILED (timeout)', async () => {
    const silent = await fake('broker-silent', ['RtSilent'], () => new Promise<RemotingCommand>(() => {}));
    const p = await producer({ sendTimeoutMs: 300 });
    const started = Date.now();
    const e = await failure(p.send({ topic: 'RtSilent', body: 'x' }));
    const elapsed = Date.now() - started;
    assert.equal(e.codeName, 'SEND_FAILED');
    assert.ok(isTsmqError(e.cause, 'REMOTING_TIMEOUT'), String(e.cause));
    assert.match(e.message, /send timeout ran out/);
    assert.ok(elapsed >= 290 && elapsed < 2_000, `took ${elapsed} ms`);
    assert.equal(silent.sends.length, 1, 'the first attempt used up the time');
  });

  test('MESSAGE_ILLEGAL is final: one attempt, BrokerResponseError', async () => {
    const strict = await fake('broker-strict', ['RtIllegal'], (req) =>
      createResponse(req, ResponseCode.MESSAGE_ILLEGAL, 'the message is illegal'),
    );
    const p = await producer();
    const e = await failure(p.send({ topic: 'RtIllegal', body: 'x' }));
    assert.ok(e instanceof BrokerResponseError);
    assert.equal(e.responseCode, ResponseCode.MESSAGE_ILLEGAL);
    assert.equal(strict.sends.length, 1);
  });

  test('stored-but answers map to RocketMQ statuses and are not retried', async () => {
    let code: number = ResponseCode.FLUSH_DISK_TIMEOUT;
    const slow = await fake('broker-slow-disk', ['RtStatus'], (req, n) => stored(req, n, code));
    const p = await producer();
    const statuses: string[] = [];
    for (const c of [
      ResponseCode.FLUSH_DISK_TIMEOUT,
      ResponseCode.SLAVE_NOT_AVAILABLE,
      ResponseCode.FLUSH_SLAVE_TIMEOUT,
      ResponseCode.SUCCESS,
    ]) {
      code = c;
      statuses.push((await p.send({ topic: 'RtStatus', body: 'x' })).status);
    }
    assert.deepEqual(statuses, [
      'FLUSH_DISK_TIMEOUT',
      'SLAVE_NOT_AVAILABLE',
      'FLUSH_SLAVE_TIMEOUT',
      'SEND_OK',
    ]);
    assert.equal(slow.sends.length, 4);
  });

  test('ordered sends retry on the same queue, never another', async () => {
    let failuresLeft = 2;
    const flaky = await fake('broker-flaky', ['RtOrder'], (req, n) => {
      if (failuresLeft > 0) {
        failuresLeft--;
        return busy(req);
      }
      return stored(req, n);
    });
    const steady = await fake('broker-steady', ['RtOrder'], (req, n) => stored(req, n));
    const p = await producer();
    const r = await p.send(
      { topic: 'RtOrder', body: 'x' },
      { queue: { topic: 'RtOrder', brokerName: 'broker-flaky', queueId: 2 } },
    );
    assert.equal(r.status, 'SEND_OK');
    assert.deepEqual(r.messageQueue, { topic: 'RtOrder', brokerName: 'broker-flaky', queueId: 2 });
    assert.deepEqual(flaky.queueIds(), [2, 2, 2]);
    assert.equal(steady.sends.length, 0);

    // A sharding key whose queue is on the flaky broker: queues sorted are flaky 0-3, steady 0-3.
    const key = Array.from({ length: 100 }, (_, i) => `key-${i}`).find(
      (k) => Math.abs(javaStringHashCode(k) % 8) === 1,
    )!;
    failuresLeft = 2;
    const o = await p.sendOrderly({ topic: 'RtOrder', body: 'y' }, key);
    assert.deepEqual(o.messageQueue, { topic: 'RtOrder', brokerName: 'broker-flaky', queueId: 1 });
    assert.deepEqual(flaky.queueIds().slice(3), [1, 1, 1]);
    assert.equal(steady.sends.length, 0);

    // All attempts failing on the fixed queue: SEND_FAILED, still nothing on the other broker.
    failuresLeft = 3;
    const e = await failure(p.sendOrderly({ topic: 'RtOrder', body: 'z' }, key));
    assert.equal(e.codeName, 'SEND_FAILED');
    assert.equal(steady.sends.length, 0);
  });
});

describe('producer against two real brokers, one of which goes away', () => {
  let namesrv: NameServer;
  let namesrvAddr = '';
  let dir = '';
  const brokers: Broker[] = [];
  const admin = new RemotingClient();

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsmq-producer-'));
    namesrv = new NameServer({ host: '127.0.0.1', port: 0, logger: quietLogger() });
    namesrvAddr = `127.0.0.1:${(await namesrv.start()).port}`;
    for (const name of ['broker-a', 'broker-b']) {
      const b = new Broker(
        {
          brokerName: name,
          listenHost: '127.0.0.1',
          listenPort: 0,
          storePathRootDir: path.join(dir, name),
          namesrvAddr,
        },
        { logger: quietLogger() },
      );
      await b.start();
      brokers.push(b);
      const res = await admin.invoke(
        b.address,
        createRequest(RequestCode.UPDATE_AND_CREATE_TOPIC, {
          topic: 'TwoBrokers',
          readQueueNums: '4',
          writeQueueNums: '4',
          perm: '6',
        }),
      );
      assert.equal(res.code, ResponseCode.SUCCESS, res.remark);
      await b.registerNow();
    }
  });
  after(async () => {
    admin.close();
    for (const b of brokers) await b.close();
    await namesrv.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('sends spread over both, heartbeat both; after one closes every send still succeeds', async () => {
    const { logger, lines } = capturingLogger();
    const p = new Producer({ group: 'PG_TWO', namesrvAddr, logger });
    await p.start();
    try {
      const before: SendResult[] = [];
      for (let i = 0; i < 8; i++) before.push(await p.send({ topic: 'TwoBrokers', body: `a${i}` }));
      assert.deepEqual([...new Set(before.map((r) => r.messageQueue.brokerName))].sort(), [
        'broker-a',
        'broker-b',
      ]);
      // Both brokers appeared in the route: both got this producer's heartbeat.
      for (const b of brokers) {
        await waitFor(
          () => (b.clients.producerGroup('PG_TWO')?.size ?? 0) === 1,
          5_000,
          `heartbeat at ${b.config.brokerName}`,
        );
      }

      await brokers[1]!.close();
      const afterClose: SendResult[] = [];
      for (let i = 0; i < 12; i++) afterClose.push(await p.send({ topic: 'TwoBrokers', body: `b${i}` }));
      assert.ok(afterClose.every((r) => r.status === 'SEND_OK' && r.messageQueue.brokerName === 'broker-a'));
      // The producer's route still named broker-b, so an attempt went there and was retried.
      const failed = failedAttempts(lines);
      assert.ok(failed.length >= 1, 'a send met the closed broker');
      assert.ok(failed.every((l) => l.brokerName === 'broker-b'));
    } finally {
      await p.shutdown();
    }
  });
});
