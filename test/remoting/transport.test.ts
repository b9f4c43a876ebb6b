import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { isTsmqError } from '../../src/common/errors.js';
import {
  createRequest,
  createResponse,
  encodeCommandToBuffer,
  FrameDecoder,
  type RemotingCommand,
  RequestCode,
  ResponseCode,
} from '../../src/protocol/index.js';
import { RemotingClient, RemotingServer } from '../../src/remoting/index.js';
import { waitUntil } from '../../test-support/store-fixtures.js';

const ECHO = 9001;
const SLOW = 9002;
const THROWS = 9003;

let server: RemotingServer;
let addr: string;
const onewaySeen: string[] = [];

before(async () => {
  server = new RemotingServer({ host: '127.0.0.1', port: 0, maxRequestsInProgress: 50 });
  server.registerProcessor(ECHO, (req) =>
    createResponse(req, ResponseCode.SUCCESS, 'echo', req.extFields, req.body),
  );
  server.registerProcessor(SLOW, async (req) => {
    await new Promise((r) => setTimeout(r, Number(req.extFields?.ms ?? 100)));
    return createResponse(req, ResponseCode.SUCCESS);
  });
  server.registerProcessor(THROWS, () => {
    throw new Error('handler exploded');
  });
  server.registerProcessor(RequestCode.HEART_BEAT, (req) => {
    onewaySeen.push(req.extFields?.who ?? '');
    return createResponse(req, ResponseCode.SUCCESS);
  });
  const { port } = await server.listen();
  addr = `127.0.0.1:${port}`;
});

after(async () => {
  await server.close();
});

test('request and response over a real socket, body and extFields intact', async () => {
  const client = new RemotingClient();
  try {
    const body = Buffer.from('héllo body');
    const res = await client.invoke(addr, createRequest(ECHO, { a: '1', ключ: 'значение' }, body));
    assert.equal(res.code, ResponseCode.SUCCESS);
    assert.equal(res.remark, 'echo');
    assert.deepEqual(res.extFields, { a: '1', ключ: 'значение' });
    assert.ok(res.body?.equals(body));
  } finally {
    client.close();
  }
});

test('1,000 concurrent calls on one connection are matched to their responses', async () => {
  const client = new RemotingClient();
  try {
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => client.invoke(addr, createRequest(ECHO, { i: String(i) }))),
    );
    for (const [i, r] of results.entries()) assert.equal(r.extFields?.i, String(i));
  } finally {
    client.close();
  }
});

test('unknown codes, throwing handlers and overload get response codes; the connection stays', async () => {
  const client = new RemotingClient();
  try {
    const unknown = await client.invoke(addr, createRequest(4242));
    assert.equal(unknown.code, ResponseCode.REQUEST_CODE_NOT_SUPPORTED);
    assert.match(unknown.remark ?? '', /4242/);
    const thrown = await client.invoke(addr, createRequest(THROWS));
    assert.equal(thrown.code, ResponseCode.SYSTEM_ERROR);
    assert.match(thrown.remark ?? '', /exploded/);
    const burst = await Promise.all(
      Array.from({ length: 80 }, () => client.invoke(addr, createRequest(SLOW, { ms: '1000' }))),
    );
    const busy = burst.filter((r) => r.code === ResponseCode.SYSTEM_BUSY).length;
    assert.equal(busy, 30, 'the 30 requests over the limit of 50 in progress are refused');
    assert.equal((await client.invoke(addr, createRequest(ECHO))).code, ResponseCode.SUCCESS);
  } finally {
    client.close();
  }
});

test('calls with different timeouts on one connection each fail at their own deadline; answered ones do not', async () => {
  const client = new RemotingClient();
  try {
    await client.invoke(addr, createRequest(ECHO)); // connected
    const started = Date.now();
    const answered = client.invoke(addr, createRequest(SLOW, { ms: '300' }), 5000);
    const late = client.invoke(addr, createRequest(SLOW, { ms: '3000' }), 600);
    const early = client.invoke(addr, createRequest(SLOW, { ms: '3000' }), 100); // due before the others
    const timedOut = (e: unknown) => isTsmqError(e, 'REMOTING_TIMEOUT');
    await assert.rejects(early, timedOut);
    const earlyMs = Date.now() - started;
    assert.ok(earlyMs >= 95 && earlyMs < 300, `the 100 ms call failed after ${earlyMs} ms`);
    assert.equal((await answered).code, ResponseCode.SUCCESS);
    await assert.rejects(late, timedOut);
    const lateMs = Date.now() - started;
    assert.ok(lateMs >= 595 && lateMs < 1500, `the 600 ms call failed after ${lateMs} ms`);
  } finally {
    client.close();
  }
});

test('a call without a response times out; a closed connection fails calls in flight', async () => {
  const client = new RemotingClient();
  try {
    await assert.rejects(client.invoke(addr, createRequest(SLOW, { ms: '500' }), 50), (e) =>
      isTsmqError(e, 'REMOTING_TIMEOUT'),
    );
    const ch = await client.channel(addr);
    const call = client.invoke(addr, createRequest(SLOW, { ms: '500' }), 5000);
    ch.close('test');
    await assert.rejects(call, (e) => isTsmqError(e, 'CONNECTION_CLOSED'));
    // The client reconnects on the next call.
    assert.equal((await client.invoke(addr, createRequest(ECHO))).code, ResponseCode.SUCCESS);
  } finally {
    client.close();
  }
});

test('one-way calls get no response and arrive', async () => {
  const client = new RemotingClient();
  try {
    await client.invokeOneway(addr, createRequest(RequestCode.HEART_BEAT, { who: 'oneway-1' }));
    await waitUntil(() => onewaySeen.includes('oneway-1'), 5000, 'the one-way request');
  } finally {
    client.close();
  }
});

test('calls over the in-flight limit are refused at once', async () => {
  const client = new RemotingClient({ maxInFlight: 3 });
  try {
    const calls = Array.from({ length: 5 }, () => client.invoke(addr, createRequest(SLOW, { ms: '100' })));
    const settled = await Promise.allSettled(calls);
    const refused = settled.filter(
      (s) => s.status === 'rejected' && isTsmqError(s.reason, 'TOO_MANY_IN_FLIGHT'),
    );
    assert.equal(refused.length, 2);
  } finally {
    client.close();
  }
});

test('connecting to a closed port fails with CONNECT_FAILED', async () => {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const client = new RemotingClient({ connectTimeoutMs: 1000 });
  try {
    await assert.rejects(client.invoke(`127.0.0.1:${port}`, createRequest(ECHO)), (e) =>
      isTsmqError(e, 'CONNECT_FAILED'),
    );
    await assert.rejects(client.invoke('not-an-address', createRequest(ECHO)), (e) =>
      isTsmqError(e, 'CONNECT_FAILED'),
    );
  } finally {
    client.close();
  }
});

test('malformed frames close only the offending connection', async () => {
  const client = new RemotingClient();
  try {
    assert.equal((await client.invoke(addr, createRequest(ECHO))).code, ResponseCode.SUCCESS);
    const attacks: Buffer[] = [
      Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3]), // length far over the frame limit
      Buffer.from([0, 0, 0, 2, 0, 0]), // length shorter than the header-length field
      Buffer.concat([Buffer.from([0, 0, 0, 12, 0, 0, 0, 8]), Buffer.from('{not json')]), // bad header
      Buffer.concat([Buffer.from([0, 0, 0, 8, 9, 0, 0, 0]), Buffer.alloc(4)]), // unknown serialize type
    ];
    for (const bytes of attacks) {
      const raw = net.connect({ host: '127.0.0.1', port: Number(addr.split(':')[1]) });
      await new Promise<void>((r) => raw.once('connect', () => r()));
      const closed = new Promise<void>((r) => raw.once('close', () => r()));
      raw.write(bytes);
      await closed;
    }
    // Everyone else is still served, on the same connection as before.
    assert.equal((await client.invoke(addr, createRequest(ECHO))).code, ResponseCode.SUCCESS);
  } finally {
    client.close();
  }
});

test('the server calls a client back on its connection', async () => {
  const client = new RemotingClient();
  try {
    client.registerProcessor(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, (req) =>
      createResponse(req, ResponseCode.SUCCESS, `got ${req.extFields?.consumerGroup}`),
    );
    await client.invoke(addr, createRequest(ECHO));
    const ch = [...server.connections()].at(-1)!;
    const res = await ch.invoke(
      createRequest(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, { consumerGroup: 'g1' }),
      2000,
    );
    assert.equal(res.remark, 'got g1');
  } finally {
    client.close();
  }
});

test('an idle connection is closed by the server', async () => {
  const idle = new RemotingServer({ host: '127.0.0.1', port: 0, idleTimeoutMs: 100 });
  idle.registerProcessor(ECHO, (req) => createResponse(req, ResponseCode.SUCCESS));
  const { port } = await idle.listen();
  const client = new RemotingClient();
  try {
    const ch = await client.channel(`127.0.0.1:${port}`);
    await waitUntil(() => ch.closed, 5000, 'the idle connection to close');
    assert.equal((await client.invoke(`127.0.0.1:${port}`, createRequest(ECHO))).code, ResponseCode.SUCCESS);
  } finally {
    client.close();
    await idle.close();
  }
});

test('frames written in one chunk or byte by byte are served alike', async () => {
  const raw = net.connect({ host: '127.0.0.1', port: Number(addr.split(':')[1]) });
  await new Promise<void>((r) => raw.once('connect', () => r()));
  const got: Buffer[] = [];
  raw.on('data', (d: Buffer) => got.push(d));
  const frame = encodeCommandToBuffer({ ...createRequest(ECHO, { x: 'y' }), opaque: 77 });
  for (const b of frame) {
    raw.write(Buffer.from([b]));
    await new Promise((r) => setImmediate(r));
  }
  const decoder = new FrameDecoder();
  const responses: RemotingCommand[] = [];
  await waitUntil(
    () => {
      responses.push(...decoder.push(Buffer.concat(got.splice(0))));
      return responses.length > 0;
    },
    5000,
    'a response',
  );
  raw.destroy();
  assert.equal(responses[0]!.opaque, 77);
  assert.equal(responses[0]!.code, ResponseCode.SUCCESS);
  assert.deepEqual(responses[0]!.extFields, { x: 'y' });
});
