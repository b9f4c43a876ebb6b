import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { ClientInstance, NamesrvClient, parseNamesrvAddr } from '../../src/client/index.js';
import { isTsmqError } from '../../src/common/errors.js';
import { createResponse, RequestCode, ResponseCode, SerializeType } from '../../src/protocol/index.js';
import { RemotingClient, RemotingServer } from '../../src/remoting/index.js';
import { startNameServer } from '../../test-support/namesrv-fixtures.js';

/** An address nothing listens on: a port bound and released. */
async function deadAddr(): Promise<string> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return `127.0.0.1:${port}`;
}

test('name server lists: ";" or "," separated, blanks dropped, empty refused', () => {
  assert.deepEqual(parseNamesrvAddr('a:1; b:2,c:3;'), ['a:1', 'b:2', 'c:3']);
  assert.deepEqual(parseNamesrvAddr(['x:1', ' y:2 ']), ['x:1', 'y:2']);
  assert.throws(
    () => parseNamesrvAddr(' ; '),
    (e) => isTsmqError(e, 'ARGUMENT_INVALID'),
  );
});

test('clients start at a random name server and move round-robin past a dead one', async () => {
  const live = await startNameServer();
  const dead = await deadAddr();
  const remoting = new RemotingClient({ connectTimeoutMs: 500 });
  try {
    const starts = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const client = new NamesrvClient(remoting, [dead, live.addr]);
      starts.add(client.current());
      // TBW102 is not registered here: the answer is "no route", which is an answer, not a failure.
      assert.equal(await client.routeOf('NoSuchTopic'), undefined);
      assert.equal(client.current(), live.addr, 'the client stays on the server that answered');
    }
    assert.deepEqual([...starts].sort(), [dead, live.addr].sort(), 'every client started at the same server');
  } finally {
    remoting.close();
    await live.ns.close();
  }
});

test('when every name server is down the error says so and names them', async () => {
  const a = await deadAddr();
  const b = await deadAddr();
  const remoting = new RemotingClient({ connectTimeoutMs: 500 });
  try {
    const client = new NamesrvClient(remoting, `${a};${b}`);
    await assert.rejects(client.clusterInfo(), (e: unknown) => {
      assert.ok(isTsmqError(e, 'NAMESRV_UNAVAILABLE'));
      assert.match((e as Error).message, new RegExp(`${a}.*${b}`));
      return true;
    });
  } finally {
    remoting.close();
  }
});

test('SDK requests use binary (ROCKETMQ) headers by default and JSON on request; answers follow', async () => {
  const seen: number[] = [];
  const server = new RemotingServer({ host: '127.0.0.1', port: 0 });
  server.registerProcessor(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER, (req) => {
    seen.push(req.serializeType);
    return createResponse(
      req,
      ResponseCode.SUCCESS,
      undefined,
      undefined,
      Buffer.from('{"topicList":["T"]}'),
    );
  });
  const { port } = await server.listen();
  const binary = new ClientInstance({ namesrvAddr: `127.0.0.1:${port}` });
  const json = new ClientInstance({ namesrvAddr: `127.0.0.1:${port}`, serializeType: 'JSON' });
  try {
    assert.deepEqual(await binary.namesrv.topicList(), ['T']);
    assert.deepEqual(await json.namesrv.topicList(), ['T']);
    assert.deepEqual(seen, [SerializeType.ROCKETMQ, SerializeType.JSON]);
  } finally {
    binary.close();
    json.close();
    await server.close();
  }
});
