import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ManualClock } from '../../src/common/clock.js';
import { isTsmqError } from '../../src/common/errors.js';
import { javaStringHashCode } from '../../src/common/java-hash.js';
import { decodeRecords, getProperty } from '../../src/message/index.js';
import { MessageStore, segmentFileName } from '../../src/store/index.js';
import {
  consumeQueueUnits,
  FaultyIo,
  smallStoreOptions,
  tempDirsOfFile,
  waitUntil,
} from '../../test-support/store-fixtures.js';

const newDir = tempDirsOfFile();

const small = smallStoreOptions;

function msg(i: number, extra = '') {
  return {
    topic: `Topic${i % 2}`,
    queueId: i % 3,
    body: Buffer.from(`body-${i}-${'x'.repeat(i % 700)}`),
    properties: `TAGS\u0001tag${i % 4}\u0002KEYS\u0001key${i} shared\u0002UNIQ_KEY\u0001U${i}\u0002${extra}`,
  };
}

async function readAll(store: MessageStore, topic: string, queueId: number) {
  const out: Array<{ q: number; body: string; raw: Buffer }> = [];
  let off = store.minOffsetInQueue(topic, queueId);
  while (off < store.dispatchedMaxOffsetInQueue(topic, queueId)) {
    const r = await store.getMessages(topic, queueId, off, { maxCount: 16 });
    assert.equal(r.status, 'FOUND');
    r.records.forEach((raw, i) => {
      const [rec] = decodeRecords(raw);
      out.push({ q: r.queueOffsets[i]!, body: rec!.body.toString(), raw });
    });
    off = r.nextBeginOffset;
  }
  return out;
}

test('put and get round trip across queues, with statuses of RocketMQ', async () => {
  const store = await MessageStore.open({ rootDir: newDir(), ...small });
  try {
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => store.put(msg(i))));
    // Offsets are dense and in call order.
    for (let i = 1; i < results.length; i++) {
      assert.ok(results[i]!.physicalOffset > results[i - 1]!.physicalOffset);
    }
    assert.match(results[0]!.offsetMsgId, /^[0-9A-F]{32}$/);
    await store.waitDispatched();
    const q0 = await readAll(store, 'Topic0', 0);
    const expected = Array.from({ length: 60 }, (_, i) => i).filter((i) => i % 2 === 0 && i % 3 === 0);
    assert.deepEqual(
      q0.map((m) => m.body),
      expected.map((i) => msg(i).body.toString()),
    );
    assert.deepEqual(
      q0.map((m) => m.q),
      expected.map((_, k) => k),
    );
    const max = store.maxOffsetInQueue('Topic0', 0);
    assert.equal((await store.getMessages('Topic0', 0, max, { maxCount: 4 })).status, 'OFFSET_OVERFLOW_ONE');
    assert.equal(
      (await store.getMessages('Topic0', 0, max + 5, { maxCount: 4 })).status,
      'OFFSET_OVERFLOW_BADLY',
    );
    assert.equal((await store.getMessages('Nope', 0, 0, { maxCount: 4 })).status, 'NO_MATCHED_LOGIC_QUEUE');
    // maxBytes stops a batch early but always returns at least one message.
    const one = await store.getMessages('Topic0', 0, 0, { maxCount: 10, maxBytes: 1 });
    assert.equal(one.records.length, 1);
    assert.equal(one.nextBeginOffset, 1);
    // Tag filter by hash code, as the broker applies subscriptions.
    const tag2 = javaStringHashCode('tag2');
    const filtered = await store.getMessages('Topic0', 0, 0, {
      maxCount: 100,
      tagsCodeFilter: (c) => c === tag2,
    });
    for (const raw of filtered.records)
      assert.equal(getProperty(decodeRecords(raw)[0]!.properties, 'TAGS'), 'tag2');
    assert.ok(filtered.records.length > 0);
  } finally {
    await store.close();
  }
});

test('appends of one event-loop turn are encoded into one buffer and written with one write call', async () => {
  const io = new FaultyIo();
  const store = await MessageStore.open({ rootDir: newDir(), ...small, segmentBytes: 1 << 20, io });
  try {
    const before = [...io.writesByPath]
      .filter(([p]) => p.includes('commitlog'))
      .reduce((a, [, n]) => a + n, 0);
    const puts = Array.from({ length: 200 }, (_, i) =>
      store.put({ topic: 'Batch', queueId: 0, body: Buffer.from(`m${i}`) }),
    );
    await Promise.all(puts);
    const after = [...io.writesByPath]
      .filter(([p]) => p.includes('commitlog'))
      .reduce((a, [, n]) => a + n, 0);
    assert.equal(after - before, 1, 'one write call for 200 appends of one turn');
    const p = store.positions();
    assert.equal(p.writtenOffset, p.appendedOffset);
  } finally {
    await store.close();
  }
});

test('write arenas are reused once out of the tail cache, unless a reader was given a view of them', async () => {
  // 4 MiB arenas, a 1 MiB tail cache: about 14 MiB of appends go through several arenas.
  const store = await MessageStore.open({
    rootDir: newDir(),
    ...small,
    segmentBytes: 1 << 24,
    tailCacheBytes: 1 << 20,
  });
  try {
    const body = (i: number) => Buffer.alloc(4000, i & 0xff);
    const put = async (from: number, to: number) => {
      for (let i = from; i < to; i += 500) {
        const n = Math.min(500, to - i);
        await Promise.all(
          Array.from({ length: n }, (_, k) => store.put({ topic: 'Arena', queueId: 0, body: body(i + k) })),
        );
      }
    };
    await put(0, 100);
    await store.waitDispatched();
    // A reader holds views of the first records (zero-copy, from the tail cache).
    const held = await store.getMessages('Arena', 0, 0, { maxCount: 50 });
    assert.equal(held.records.length, 50);
    const copies = held.records.map((r) => Buffer.from(r));
    await put(100, 3600);
    await store.waitDispatched();
    assert.ok(store.commitLog.arenasReused > 0, 'arenas no reader saw were reused');
    // The held views still show their own records: their arena was never reused.
    for (let k = 0; k < copies.length; k++)
      assert.ok(held.records[k]!.equals(copies[k]!), `held record ${k}`);
    // Everything reads back intact (from disk, CRCs checked), from reused arenas too.
    let n = 0;
    for (let off = 0; off < 3600; ) {
      const r = await store.getMessages('Arena', 0, off, { maxCount: 32 });
      assert.equal(r.status, 'FOUND');
      for (const rec of decodeRecords(Buffer.concat(r.records))) {
        assert.equal(rec.queueOffset, n);
        assert.ok(rec.body.equals(body(n)), `message ${n}`);
        n++;
      }
      off = r.nextBeginOffset;
    }
    assert.equal(n, 3600);
  } finally {
    await store.close();
  }
});

test('SYNC flush: appends resolve only after an fdatasync, and one fdatasync serves many', async () => {
  const io = new FaultyIo();
  const store = await MessageStore.open({
    rootDir: newDir(),
    ...small,
    segmentBytes: 1 << 20,
    flushMode: 'SYNC',
    io,
  });
  try {
    let release!: () => void;
    let held = false;
    io.beforeFdatasync = (p) => {
      if (!p.includes('commitlog') || held) return;
      held = true;
      return new Promise<void>((r) => {
        release = r;
      });
    };
    const syncsBefore = io.counts.fdatasync;
    let resolved = 0;
    const puts = Array.from({ length: 100 }, (_, i) =>
      store.put({ topic: 'Sync', queueId: 0, body: Buffer.from(`m${i}`) }).then((r) => {
        resolved++;
        return r;
      }),
    );
    // Wait until the write happened and the fdatasync is held.
    const deadline = Date.now() + 5000;
    while (!held && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    assert.ok(held, 'an fdatasync was started');
    const p = store.positions();
    assert.equal(p.writtenOffset, p.appendedOffset, 'written');
    assert.ok(p.flushedOffset < p.writtenOffset, 'not yet flushed');
    assert.equal(resolved, 0, 'no SYNC append resolves before its bytes are durable');
    release();
    await Promise.all(puts);
    const commitLogSyncs = io.counts.fdatasync - syncsBefore;
    assert.ok(commitLogSyncs <= 3, `one group commit, not one fdatasync per append (saw ${commitLogSyncs})`);
    const q = store.positions();
    assert.ok(q.flushedOffset === q.writtenOffset && q.writtenOffset === q.appendedOffset);
  } finally {
    await store.close();
  }
});

test('a failing write or fdatasync fails the affected appends and stops later ones', async () => {
  for (const op of ['write', 'fdatasync'] as const) {
    const io = new FaultyIo();
    const dir = newDir();
    const store = await MessageStore.open({ rootDir: dir, ...small, flushMode: 'SYNC', io });
    const ok = await store.put({ topic: 'F', queueId: 0, body: Buffer.from('before') });
    io.failNext(op, 'commitlog');
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => store.put({ topic: 'F', queueId: 0, body: Buffer.from(`x${i}`) })),
    );
    for (const r of results) {
      assert.equal(r.status, 'rejected', `${op}: no silent success`);
      assert.ok(isTsmqError((r as PromiseRejectedResult).reason, 'STORE_IO_ERROR'), `${op}: STORE_IO_ERROR`);
    }
    await assert.rejects(store.put({ topic: 'F', queueId: 0, body: Buffer.from('after') }), (e) =>
      isTsmqError(e, 'STORE_IO_ERROR'),
    );
    await store.close();
    // After a restart the store recovers and the acknowledged message is there.
    const again = await MessageStore.open({ rootDir: dir, ...small, flushMode: 'SYNC' });
    const rec = await again.getMessageByPhysicalOffset(ok.physicalOffset);
    assert.equal(rec.body.toString(), 'before');
    await again.put({ topic: 'F', queueId: 0, body: Buffer.from('later') });
    await again.close();
  }
});

test('bad input gets typed errors and nothing is written', async () => {
  const store = await MessageStore.open({ rootDir: newDir(), ...small, maxMessageBytes: 1024 });
  try {
    const before = store.positions().appendedOffset;
    const cases: Array<[string, Parameters<MessageStore['put']>[0]]> = [
      ['MESSAGE_TOO_LARGE', { topic: 'T', queueId: 0, body: Buffer.alloc(1025) }],
      ['MESSAGE_BODY_EMPTY', { topic: 'T', queueId: 0, body: Buffer.alloc(0) }],
      ['TOPIC_EMPTY', { topic: '', queueId: 0, body: Buffer.from('x') }],
      ['TOPIC_TOO_LONG', { topic: 'a'.repeat(128), queueId: 0, body: Buffer.from('x') }],
      ['TOPIC_INVALID', { topic: 'a b', queueId: 0, body: Buffer.from('x') }],
      [
        'PROPERTIES_TOO_LARGE',
        { topic: 'T', queueId: 0, body: Buffer.from('x'), properties: `K\u0001${'v'.repeat(40000)}\u0002` },
      ],
      ['QUEUE_ID_INVALID', { topic: 'T', queueId: -1, body: Buffer.from('x') }],
    ];
    for (const [code, m] of cases) {
      await assert.rejects(store.put(m), (e) => isTsmqError(e) && e.codeName === code, code);
    }
    // A bad message in a batch rejects the whole batch.
    await assert.rejects(
      store.putBatch([
        { topic: 'T', queueId: 0, body: Buffer.from('fine') },
        { topic: '', queueId: 0, body: Buffer.from('x') },
      ]),
      (e) => isTsmqError(e, 'TOPIC_EMPTY'),
    );
    assert.equal(store.positions().appendedOffset, before, 'nothing written');
  } finally {
    await store.close();
  }
});

test('rolls across many small segments with blank records; reads cross a roll', async () => {
  const dir = newDir();
  let store = await MessageStore.open({ rootDir: dir, ...small, segmentBytes: 8 * 1024 });
  const bodies: string[] = [];
  for (let i = 0; i < 300; i++) {
    const b = `m${i}-${'y'.repeat((i * 37) % 900)}`;
    bodies.push(b);
    await store.put({ topic: 'Roll', queueId: 0, body: Buffer.from(b) });
  }
  await store.waitDispatched();
  const segs = fs.readdirSync(path.join(dir, 'commitlog')).sort();
  assert.ok(segs.length > 10, `expected many segments, got ${segs.length}`);
  segs.forEach((name, i) => {
    assert.equal(name, segmentFileName(i * 8 * 1024));
    // Full segments have their full size; the active one ends where the log ends.
    const size = fs.statSync(path.join(dir, 'commitlog', name)).size;
    if (i < segs.length - 1) assert.equal(size, 8 * 1024);
    else assert.equal(i * 8 * 1024 + size, store.positions().writtenOffset);
  });
  // The end of every full segment is a blank record: [remaining length][0xCBD43194].
  const first = fs.readFileSync(path.join(dir, 'commitlog', segs[0]!));
  let pos = 0;
  while (first.readInt32BE(4 + pos) !== (0xcbd43194 | 0)) pos += first.readInt32BE(pos);
  assert.equal(pos + first.readInt32BE(pos), 8 * 1024);
  assert.deepEqual(
    (await readAll(store, 'Roll', 0)).map((m) => m.body),
    bodies,
  );
  await store.close();
  store = await MessageStore.open({ rootDir: dir, ...small, segmentBytes: 8 * 1024 });
  assert.equal(store.recovery.crashed, false);
  assert.deepEqual(
    (await readAll(store, 'Roll', 0)).map((m) => m.body),
    bodies,
  );
  await store.close();
});

test('consume queues and index deleted and rebuilt from the commit log match the originals', async () => {
  const dir = newDir();
  let store = await MessageStore.open({ rootDir: dir, ...small });
  for (let i = 0; i < 400; i++) await store.put(msg(i));
  await store.waitDispatched();
  const snapshot = async (s: MessageStore) => {
    const units = await consumeQueueUnits(s);
    const keys: Record<string, number[]> = {};
    for (const k of ['key7', 'key399', 'shared', 'U123']) {
      keys[k] = (await s.queryMessages('Topic1', k, 1000)).map((r) => r.physicalOffset).sort((a, b) => a - b);
    }
    return { units, keys };
  };
  const original = await snapshot(store);
  assert.equal(original.keys.shared!.length, 200);
  await store.close();
  fs.rmSync(path.join(dir, 'consumequeue'), { recursive: true });
  fs.rmSync(path.join(dir, 'index'), { recursive: true });
  store = await MessageStore.open({ rootDir: dir, ...small });
  assert.ok(store.recovery.rebuiltConsumeQueues);
  assert.ok(store.recovery.rebuiltIndex);
  assert.deepEqual(await snapshot(store), original);
  // And appends continue with the right queue offsets.
  const r = await store.put(msg(400));
  // Messages i < 400 with i % 2 == 0 and i % 3 == 1 (i = 4, 10, ..., 394) went to Topic0/1 before.
  assert.equal(r.queueOffset, 66);
  await store.close();
});

test('query by key, by unique key within a time range, and by offsetMsgId', async () => {
  const clock = new ManualClock(1_700_000_000_000);
  const store = await MessageStore.open({ rootDir: newDir(), ...small, clock });
  try {
    const a = await store.put({
      topic: 'Q',
      queueId: 0,
      body: Buffer.from('a'),
      properties: 'KEYS\u0001order-1 cust-9\u0002UNIQ_KEY\u0001ID-A\u0002',
    });
    clock.advance(60_000);
    const b = await store.put({
      topic: 'Q',
      queueId: 1,
      body: Buffer.from('b'),
      properties: 'KEYS\u0001order-2 cust-9\u0002UNIQ_KEY\u0001ID-B\u0002',
    });
    await store.put({
      topic: 'Other',
      queueId: 0,
      body: Buffer.from('c'),
      properties: 'KEYS\u0001cust-9\u0002',
    });
    await store.waitDispatched();
    assert.deepEqual(
      (await store.queryMessages('Q', 'order-1', 10)).map((r) => r.body.toString()),
      ['a'],
    );
    assert.deepEqual(
      (await store.queryMessages('Q', 'cust-9', 10)).map((r) => r.body.toString()),
      ['b', 'a'],
    );
    assert.deepEqual(
      (await store.queryMessages('Q', 'cust-9', 10, a.storeTimestamp + 1, b.storeTimestamp)).map((r) =>
        r.body.toString(),
      ),
      ['b'],
    );
    assert.deepEqual(
      (await store.queryMessages('Q', 'ID-B', 10)).map((r) => r.body.toString()),
      ['b'],
    );
    assert.deepEqual(await store.queryMessages('Q', 'nope', 10), []);
    assert.equal((await store.getMessageByOffsetMsgId(b.offsetMsgId)).body.toString(), 'b');
    await assert.rejects(store.getMessageByOffsetMsgId('zz'), (e) => isTsmqError(e, 'INVALID_MESSAGE_ID'));
    // Offset by time (binary search over the consume queue) and earliest store time.
    assert.equal(await store.offsetForTimestamp('Q', 0, a.storeTimestamp), 0);
    assert.equal(await store.offsetForTimestamp('Q', 0, a.storeTimestamp + 1), 1);
    assert.equal(await store.earliestMessageTime('Q', 1), b.storeTimestamp);
  } finally {
    await store.close();
  }
});

test('a corrupt byte inside a record is reported at read time, not served', async () => {
  const dir = newDir();
  const store = await MessageStore.open({ rootDir: dir, ...small, tailCacheBytes: 0 });
  const rs = [];
  for (let i = 0; i < 10; i++)
    rs.push(await store.put({ topic: 'C', queueId: 0, body: Buffer.from(`payload-${i}-xxxxxxxx`) }));
  await store.waitDispatched();
  // Flip a body byte of message 5 on disk.
  const seg = path.join(dir, 'commitlog', segmentFileName(0));
  const fd = fs.openSync(seg, 'r+');
  const at = rs[5]!.physicalOffset + rs[5]!.size - 12;
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, at);
  b[0] = b[0]! ^ 0xff;
  fs.writeSync(fd, b, 0, 1, at);
  fs.closeSync(fd);
  const head = await store.getMessages('C', 0, 0, { maxCount: 10 });
  assert.equal(head.records.length, 5, 'stops before the corrupt record');
  assert.equal(head.nextBeginOffset, 5);
  await assert.rejects(store.getMessages('C', 0, 5, { maxCount: 10 }), (e) =>
    isTsmqError(e, 'CORRUPT_RECORD'),
  );
  await assert.rejects(store.getMessageByPhysicalOffset(rs[5]!.physicalOffset), (e) =>
    isTsmqError(e, 'CORRUPT_RECORD'),
  );
  const tail = await store.getMessages('C', 0, 6, { maxCount: 10 });
  assert.equal(tail.records.length, 4);
  await store.close();
});

test('a torn or corrupt tail is truncated by crash recovery; consume queues follow', async () => {
  for (const damage of ['torn', 'flip'] as const) {
    const dir = newDir();
    let store = await MessageStore.open({ rootDir: dir, ...small, checkpointIntervalMs: 3_600_000 });
    const rs = [];
    for (let i = 0; i < 10; i++)
      rs.push(
        await store.put({ topic: 'Tail', queueId: 0, body: Buffer.from(`record-${i}-${'z'.repeat(100)}`) }),
      );
    await store.commitLog.flushAll();
    await store.waitDispatched();
    await store.runCheckpoint();
    for (let i = 10; i < 20; i++)
      rs.push(
        await store.put({ topic: 'Tail', queueId: 0, body: Buffer.from(`record-${i}-${'z'.repeat(100)}`) }),
      );
    await store.waitDispatched();
    // Crash: the last records past the checkpoint were only partly written.
    await store.abandon();
    const seg = path.join(dir, 'commitlog', segmentFileName(0));
    const fd = fs.openSync(seg, 'r+');
    const last = rs[19]!;
    if (damage === 'torn') {
      fs.writeSync(fd, Buffer.alloc(last.size - 30), 0, last.size - 30, last.physicalOffset + 30);
    } else {
      fs.writeSync(fd, Buffer.from([0x55]), 0, 1, last.physicalOffset + last.size - 5);
    }
    fs.closeSync(fd);
    store = await MessageStore.open({ rootDir: dir, ...small });
    assert.ok(store.recovery.crashed);
    assert.equal(store.recovery.end, last.physicalOffset, `${damage}: log cut before the damaged record`);
    assert.equal(store.maxOffsetInQueue('Tail', 0), 19);
    const all = await readAll(store, 'Tail', 0);
    assert.equal(all.length, 19);
    const r = await store.put({ topic: 'Tail', queueId: 0, body: Buffer.from('after-recovery') });
    assert.equal(r.queueOffset, 19);
    assert.equal(r.physicalOffset, last.physicalOffset);
    await store.close();
  }
});

test('a clean restart does not scan the log', async () => {
  const dir = newDir();
  let store = await MessageStore.open({ rootDir: dir, ...small });
  for (let i = 0; i < 50; i++) await store.put(msg(i));
  const end = store.positions().appendedOffset;
  await store.close();
  assert.ok(!fs.existsSync(path.join(dir, 'abort')));
  store = await MessageStore.open({ rootDir: dir, ...small });
  assert.equal(store.recovery.crashed, false);
  assert.equal(store.recovery.recordsValidated, 0);
  assert.equal(store.recovery.end, end);
  await assert.rejects(MessageStore.open({ rootDir: dir, ...small }), (e) => isTsmqError(e, 'STORE_LOCKED'));
  await store.close();
});

test('retention deletes expired segments by store time; consume-queue min offsets follow', async () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 12));
  const io = new FaultyIo();
  io.usage = { totalBytes: 1000, freeBytes: 900 };
  const dir = newDir();
  const store = await MessageStore.open({
    rootDir: dir,
    ...small,
    segmentBytes: 4 * 1024,
    clock,
    io,
    cleanIntervalMs: 3_600_000,
    retention: {
      fileReservedTimeHours: 72,
      deleteWhen: '99',
      diskMaxUsedSpaceRatio: 75,
      diskSpaceCleanForciblyRatio: 85,
      diskSpaceWarningLevelRatio: 90,
      deleteFilesBatchMax: 100,
    },
  });
  try {
    const old = [];
    for (let i = 0; i < 40; i++)
      old.push(await store.put({ topic: 'R', queueId: 0, body: Buffer.alloc(500, 1) }));
    clock.advance(73 * 3600_000);
    const fresh = [];
    for (let i = 0; i < 40; i++)
      fresh.push(await store.put({ topic: 'R', queueId: 0, body: Buffer.alloc(500, 2) }));
    await store.commitLog.flushAll();
    await store.waitDispatched();
    await store.runCheckpoint();
    const segsBefore = store.commitLog.segmentList().length;
    // Not the hour, disk fine, no request: nothing happens.
    assert.equal((await store.retention.step()).deletedSegments, 0);
    // A manual request deletes exactly the segments whose successor started over 72 h ago.
    store.retention.requestDelete();
    const round = await store.retention.step();
    assert.equal(round.reason, 'manual');
    assert.ok(round.deletedSegments > 0);
    const min = store.commitLog.minOffset();
    assert.ok(min <= fresh[0]!.physicalOffset, 'no fresh message deleted');
    assert.ok(min > old[0]!.physicalOffset);
    assert.equal(store.commitLog.segmentList().length, segsBefore - round.deletedSegments);
    const firstKept = old.findIndex((r) => r.physicalOffset >= min);
    assert.equal(store.minOffsetInQueue('R', 0), firstKept === -1 ? 40 : firstKept);
    const tooSmall = await store.getMessages('R', 0, 0, { maxCount: 1 });
    assert.equal(tooSmall.status, 'OFFSET_TOO_SMALL');
    assert.equal(tooSmall.nextBeginOffset, store.minOffsetInQueue('R', 0));
    // Disk above 90 %: appends refused with DISK_FULL; below again: accepted.
    io.usage = { totalBytes: 1000, freeBytes: 50 };
    await store.retention.step();
    await assert.rejects(store.put({ topic: 'R', queueId: 0, body: Buffer.from('x') }), (e) =>
      isTsmqError(e, 'DISK_FULL'),
    );
    io.usage = { totalBytes: 1000, freeBytes: 900 };
    await store.retention.step();
    await store.put({ topic: 'R', queueId: 0, body: Buffer.from('x') });
  } finally {
    await store.close();
  }
});

test('disk above the forcible ratio deletes oldest segments even when not expired', async () => {
  const io = new FaultyIo();
  io.usage = { totalBytes: 1000, freeBytes: 900 };
  const store = await MessageStore.open({
    rootDir: newDir(),
    ...small,
    segmentBytes: 4 * 1024,
    io,
    cleanIntervalMs: 3_600_000,
  });
  try {
    for (let i = 0; i < 40; i++) await store.put({ topic: 'R', queueId: 0, body: Buffer.alloc(500, 1) });
    await store.commitLog.flushAll();
    await store.waitDispatched();
    await store.runCheckpoint();
    io.usage = { totalBytes: 1000, freeBytes: 100 };
    const round = await store.retention.step();
    assert.equal(round.reason, 'forced');
    assert.ok(round.deletedSegments > 0);
    assert.ok(store.commitLog.segmentList().length >= 1);
    assert.ok(store.minOffsetInQueue('R', 0) > 0);
  } finally {
    await store.close();
  }
});

test('SYNC flush: a message sent with WAIT=false resolves once written and still becomes visible', async () => {
  const store = await MessageStore.open({ rootDir: newDir(), ...small, flushMode: 'SYNC' });
  try {
    const r = await store.put({
      topic: 'NoWait',
      queueId: 0,
      body: Buffer.from('x'),
      properties: 'WAIT\u0001false\u0002',
    });
    // Nothing else forces a flush here: the store must flush (and dispatch) on its own.
    await waitUntil(
      async () => (await store.getMessages('NoWait', 0, r.queueOffset, { maxCount: 1 })).status === 'FOUND',
      5000,
      'the message to become visible',
    );
    assert.ok(store.positions().flushedOffset >= r.physicalOffset + r.size);
  } finally {
    await store.close();
  }
});

test('crash recovery validates a dirty log larger than its read chunks, records straddling them', async () => {
  const dir = newDir();
  const opts = { ...small, segmentBytes: 16 * 1024 * 1024, checkpointIntervalMs: 3_600_000 };
  let store = await MessageStore.open({ rootDir: dir, ...opts });
  const sizes: number[] = [];
  let total = 0;
  for (let i = 0; total < 9 * 1024 * 1024; i++) {
    // One body of exactly 4 MiB: its record is larger than a 4 MiB scan chunk.
    const n = i === 5 ? 4 * 1024 * 1024 : 1000 + ((i * 7919) % 60_000);
    sizes.push(n);
    total += n;
    await store.put({ topic: 'Big', queueId: 0, body: Buffer.alloc(n, i % 251) });
  }
  await store.waitDispatched();
  await store.abandon();
  store = await MessageStore.open({ rootDir: dir, ...opts });
  assert.ok(store.recovery.crashed);
  assert.equal(store.recovery.recordsValidated, sizes.length);
  assert.equal(store.maxOffsetInQueue('Big', 0), sizes.length);
  for (let q = 0; q < sizes.length; q++) {
    const r = await store.getMessages('Big', 0, q, { maxCount: 1 });
    const [rec] = decodeRecords(r.records[0]!);
    assert.equal(rec!.body.length, sizes[q]);
    assert.equal(rec!.body[0], q % 251);
  }
  await store.close();
});

test('records written under a larger maxMessageBytes survive a crash and a restart with a smaller one', async () => {
  const dir = newDir();
  let store = await MessageStore.open({
    rootDir: dir,
    ...small,
    segmentBytes: 16 << 20,
    maxMessageBytes: 8 << 20,
    flushMode: 'SYNC',
  });
  const big = await store.put({ topic: 'Big', queueId: 0, body: Buffer.alloc(5 << 20, 7) });
  await store.waitDispatched();
  assert.equal(
    (await store.getMessages('Big', 0, 0, { maxCount: 1 })).records.length,
    1,
    'a 5 MiB record is dispatched',
  );
  await store.abandon();
  store = await MessageStore.open({
    rootDir: dir,
    ...small,
    segmentBytes: 16 << 20,
    maxMessageBytes: 1 << 20,
  });
  assert.equal(store.recovery.end, big.physicalOffset + big.size, 'nothing cut');
  assert.equal((await store.getMessageByPhysicalOffset(big.physicalOffset)).body.length, 5 << 20);
  await assert.rejects(store.put({ topic: 'Big', queueId: 0, body: Buffer.alloc(2 << 20) }), (e) =>
    isTsmqError(e, 'MESSAGE_TOO_LARGE'),
  );
  await store.close();
});

test('deleting a topic whose messages are not yet dispatched does not resurrect them', async () => {
  const dir = newDir();
  let store = await MessageStore.open({ rootDir: dir, ...small, flushMode: 'SYNC' });
  for (let i = 0; i < 3; i++) void store.put({ topic: 'Gone', queueId: 0, body: Buffer.from(`old${i}`) });
  await store.waitDispatched();
  for (let i = 3; i < 6; i++) void store.put({ topic: 'Gone', queueId: 0, body: Buffer.from(`old${i}`) });
  const deleting = store.deleteTopic('Gone');
  // A message that arrives while the deletion runs belongs to the new topic.
  const r = await store.put({ topic: 'Gone', queueId: 0, body: Buffer.from('new') });
  await deleting;
  assert.equal(r.queueOffset, 0);
  await store.put({ topic: 'Other', queueId: 0, body: Buffer.from('other') });
  await store.waitDispatched();
  const read = async (s: MessageStore) => (await readAll(s, 'Gone', 0)).map((m) => m.body);
  assert.deepEqual(await read(store), ['new']);
  assert.equal(store.dispatcher.blockedReason(), undefined);
  assert.equal((await store.getMessages('Other', 0, 0, { maxCount: 1 })).status, 'FOUND');
  await store.abandon();
  store = await MessageStore.open({ rootDir: dir, ...small, flushMode: 'SYNC' });
  assert.deepEqual(await read(store), ['new']);
  await store.close();
});

test('a failing checkpoint write is survived and retried; close still works', async () => {
  const io = new FaultyIo();
  const dir = newDir();
  const store = await MessageStore.open({ rootDir: dir, ...small, checkpointIntervalMs: 10, io });
  await store.put({ topic: 'Cp', queueId: 0, body: Buffer.from('x') });
  io.failNext('fdatasync', 'checkpoint', 'ENOSPC');
  await waitUntil(() => store.checkpointFailures > 0, 5000, 'a failed checkpoint');
  await waitUntil(() => store.lastCheckpointError === undefined, 5000, 'a later checkpoint to succeed');
  await store.close();
  const again = await MessageStore.open({ rootDir: dir, ...small });
  assert.equal(again.recovery.crashed, false);
  await again.close();
});

test('appends are refused with STORE_BUSY while too many bytes wait to be written', async () => {
  const store = await MessageStore.open({ rootDir: newDir(), ...small, maxUnwrittenBytes: 8 * 1024 });
  try {
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, () => store.put({ topic: 'Busy', queueId: 0, body: Buffer.alloc(1000) })),
    );
    const busy = results.filter((r) => r.status === 'rejected' && isTsmqError(r.reason, 'STORE_BUSY'));
    const ok = results.filter((r) => r.status === 'fulfilled');
    assert.ok(busy.length > 0, 'some appends refused');
    assert.ok(ok.length >= 8, 'the first ones accepted');
    assert.equal(ok.length + busy.length, 50);
    // Once written, appends are accepted again.
    await store.put({ topic: 'Busy', queueId: 0, body: Buffer.alloc(1000) });
  } finally {
    await store.close();
  }
});

test('close releases everything even when its final flush fails, and the next open recovers', async () => {
  const io = new FaultyIo();
  const dir = newDir();
  const store = await MessageStore.open({ rootDir: dir, ...small, io, checkpointIntervalMs: 3_600_000 });
  const r = await store.put({ topic: 'Cl', queueId: 0, body: Buffer.from('kept') });
  await store.waitDispatched();
  io.failNext('fdatasync', 'checkpoint');
  await assert.rejects(store.close());
  assert.ok(fs.existsSync(path.join(dir, 'abort')), 'not a clean shutdown');
  const again = await MessageStore.open({ rootDir: dir, ...small });
  assert.ok(again.recovery.crashed);
  assert.equal((await again.getMessageByPhysicalOffset(r.physicalOffset)).body.toString(), 'kept');
  await again.close();
});
