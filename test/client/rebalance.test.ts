import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type AllocateStrategy,
  allocateAveragely,
  allocateAveragelyByCircle,
  allocateConsistentHash,
  consistentHashStrategy,
  type MessageQueue,
  mqKey,
} from '../../src/client/index.js';
import { type Rng, seeded } from '../../test-support/prng.js';

const GROUP = 'G';

function queues(n: number, brokers = ['broker-a', 'broker-b'], topic = 'T'): MessageQueue[] {
  const out: MessageQueue[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ topic, brokerName: brokers[i % brokers.length]!, queueId: Math.floor(i / brokers.length) });
  }
  return out;
}

function clientIds(rng: Rng, k: number): string[] {
  const ids = new Set<string>();
  while (ids.size < k)
    ids.add(`10.0.${rng.int(0, 255)}.${rng.int(0, 255)}@${rng.int(1, 99_999)}#${ids.size}`);
  return [...ids];
}

function shuffled<T>(rng: Rng, xs: readonly T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Every member's share, each member computing from its own (differently ordered) view. */
function allocateAll(
  rng: Rng,
  strategy: AllocateStrategy,
  mqs: readonly MessageQueue[],
  ids: readonly string[],
): Map<string, MessageQueue[]> {
  const out = new Map<string, MessageQueue[]>();
  for (const id of ids) {
    out.set(
      id,
      strategy({
        group: GROUP,
        currentClientId: id,
        queues: shuffled(rng, mqs),
        clientIds: shuffled(rng, ids),
      }),
    );
  }
  return out;
}

function owners(shares: Map<string, MessageQueue[]>): Map<string, string> {
  const owner = new Map<string, string>();
  for (const [id, mqs] of shares) {
    for (const q of mqs) {
      assert.equal(owner.get(mqKey(q)), undefined, `queue ${mqKey(q)} given twice`);
      owner.set(mqKey(q), id);
    }
  }
  return owner;
}

const STRATEGIES: Array<[string, AllocateStrategy, boolean]> = [
  ['AVERAGE', allocateAveragely, true],
  ['AVERAGE_BY_CIRCLE', allocateAveragelyByCircle, true],
  ['CONSISTENT_HASH', allocateConsistentHash, false],
];

describe('allocation strategies: shared properties', () => {
  STRATEGIES.forEach(([name, strategy, balanced], salt) => {
    seeded(`${name}: every queue to exactly one member, the same on every member`, 0x100 + salt, (rng) => {
      for (let round = 0; round < 150; round++) {
        const n = rng.int(0, 40);
        const k = rng.int(1, 10);
        const mqs = queues(n);
        const ids = clientIds(rng, k);
        const shares = allocateAll(rng, strategy, mqs, ids);
        const owner = owners(shares);
        assert.equal(owner.size, n, `n=${n} k=${k}: every queue assigned`);
        // Deterministic: a second computation with other input orders gives the same split.
        assert.deepEqual(owners(allocateAll(rng, strategy, mqs, ids)), owner);
        if (balanced) {
          const sizes = [...shares.values()].map((s) => s.length);
          assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `n=${n} k=${k}: sizes ${sizes}`);
        }
      }
    });

    test(`${name}: a client missing from the member list gets nothing`, () => {
      const got = strategy({
        group: GROUP,
        currentClientId: 'stranger',
        queues: queues(8),
        clientIds: ['a', 'b'],
      });
      assert.deepEqual(got, []);
    });
  });
});

describe('AVERAGE', () => {
  test('contiguous pages in client-id order; the first n mod k members get one more', () => {
    const mqs = queues(10, ['broker-a']);
    const ids = ['c', 'a', 'b'];
    const share = (id: string) =>
      allocateAveragely({ group: GROUP, currentClientId: id, queues: mqs, clientIds: ids }).map(
        (q) => q.queueId,
      );
    assert.deepEqual(share('a'), [0, 1, 2, 3]);
    assert.deepEqual(share('b'), [4, 5, 6]);
    assert.deepEqual(share('c'), [7, 8, 9]);
  });

  test('fewer queues than members: one each for the first members, none for the rest', () => {
    const mqs = queues(2, ['broker-a']);
    const share = (id: string) =>
      allocateAveragely({ group: GROUP, currentClientId: id, queues: mqs, clientIds: ['a', 'b', 'c'] });
    assert.deepEqual(
      share('a').map((q) => q.queueId),
      [0],
    );
    assert.deepEqual(
      share('b').map((q) => q.queueId),
      [1],
    );
    assert.deepEqual(share('c'), []);
  });

  test('queues sort by broker name, then queue id', () => {
    const mqs = queues(4); // a/0, b/0, a/1, b/1
    const got = allocateAveragely({ group: GROUP, currentClientId: 'x', queues: mqs, clientIds: ['x', 'y'] });
    assert.deepEqual(
      got.map((q) => `${q.brokerName}/${q.queueId}`),
      ['broker-a/0', 'broker-a/1'],
    );
  });
});

describe('AVERAGE_BY_CIRCLE', () => {
  test('queues dealt in turn: member i gets i, i + k, i + 2k', () => {
    const mqs = queues(7, ['broker-a']);
    const share = (id: string) =>
      allocateAveragelyByCircle({
        group: GROUP,
        currentClientId: id,
        queues: mqs,
        clientIds: ['b', 'a'],
      }).map((q) => q.queueId);
    assert.deepEqual(share('a'), [0, 2, 4, 6]);
    assert.deepEqual(share('b'), [1, 3, 5]);
  });
});

describe('CONSISTENT_HASH', () => {
  seeded(
    'a member joining takes ~1/(k+1) of the queues, all from others; nothing else moves',
    0x200,
    (rng) => {
      const n = 1000;
      const mqs = queues(n, ['broker-a', 'broker-b', 'broker-c', 'broker-d']);
      for (const k of [1, 3, 4, 7]) {
        const ids = clientIds(rng, k + 1);
        const before = owners(allocateAll(rng, allocateConsistentHash, mqs, ids.slice(0, k)));
        const after = owners(allocateAll(rng, allocateConsistentHash, mqs, ids));
        const joiner = ids[k]!;
        let moved = 0;
        for (const [q, owner] of after) {
          if (before.get(q) !== owner) {
            moved++;
            assert.equal(owner, joiner, `queue ${q} moved between old members`);
          }
        }
        const expected = n / (k + 1);
        assert.ok(moved > 0, `k=${k}: the new member got nothing`);
        assert.ok(moved < expected * 2, `k=${k}: ${moved} queues moved, expected about ${expected}`);
        // AVERAGE, for contrast, moves far more on the same join (its pages shift).
        if (k >= 3) {
          const avgBefore = owners(allocateAll(rng, allocateAveragely, mqs, ids.slice(0, k)));
          const avgAfter = owners(allocateAll(rng, allocateAveragely, mqs, ids));
          const avgMoved = [...avgAfter].filter(([q, o]) => avgBefore.get(q) !== o).length;
          assert.ok(avgMoved > moved, `k=${k}: AVERAGE moved ${avgMoved}, CONSISTENT_HASH ${moved}`);
        }
      }
    },
  );

  seeded('a member leaving hands over only its own queues', 0x201, (rng) => {
    const mqs = queues(200);
    const ids = clientIds(rng, 5);
    const before = owners(allocateAll(rng, allocateConsistentHash, mqs, ids));
    const leaver = ids[2]!;
    const after = owners(
      allocateAll(
        rng,
        allocateConsistentHash,
        mqs,
        ids.filter((id) => id !== leaver),
      ),
    );
    for (const [q, owner] of before) {
      if (owner !== leaver) assert.equal(after.get(q), owner, `queue ${q} of a staying member moved`);
    }
  });

  test('more virtual nodes spread queues more evenly', () => {
    const mqs = queues(2000, ['broker-a']);
    const ids = ['10.0.0.1@1', '10.0.0.2@1', '10.0.0.3@1', '10.0.0.4@1'];
    const spread = (vnodes: number) => {
      const s = consistentHashStrategy(vnodes);
      const sizes = ids.map(
        (id) => s({ group: GROUP, currentClientId: id, queues: mqs, clientIds: ids }).length,
      );
      assert.equal(
        sizes.reduce((a, b) => a + b, 0),
        mqs.length,
      );
      return Math.max(...sizes) - Math.min(...sizes);
    };
    assert.ok(spread(200) < spread(1), `spread with 200 vnodes ${spread(200)}, with 1 ${spread(1)}`);
  });

  test('virtualNodes must be a positive integer', () => {
    assert.throws(() => consistentHashStrategy(0), { codeName: 'ARGUMENT_INVALID' });
  });
});
