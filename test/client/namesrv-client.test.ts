import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { NamesrvClient, parseNamesrvAddr } from '../../src/client/index.js';
import { isTsmqError } from '../../src/common/errors.js';
import { RemotingClient } from '../../src/remoting/index.js';
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
