import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isTsmqError } from '../../src/common/errors.js';
import { decodeRecord } from '../../src/message/index.js';
import { MessageStore, type MessageStoreOptions } from '../../src/store/index.js';
import { consumeQueueUnits, smallStoreOptions, tempDirsOfFile } from '../../test-support/store-fixtures.js';

const newDir = tempDirsOfFile();

// More index entries than the default small store: these tests append thousands of unique keys.
const small: Partial<MessageStoreOptions> = { ...smallStoreOptions, indexMaxEntries: 2000 };

function msg(i: number) {
  return {
    topic: 'CrcTopic',
    queueId: i % 4,
    body: Buffer.from(`body-${i}-${'x'.repeat((i * 37) % 900)}`),
    properties: `TAGS\u0001t${i % 3}\u0002UNIQ_KEY\u0001U${i}\u0002`,
  };
}

/** Decodes every record of `buf` (log bytes from `start`), CRCs checked; returns how many. */
function checkAll(buf: Buffer, start: number): number {
  let pos = 0;
  let n = 0;
  while (pos < buf.length) {
    const r = decodeRecord(buf, pos, { requireRecordCrc: true, expectedPhysicalOffset: start + pos });
    if (r.kind === 'blank') {
      pos += r.size;
      continue;
    }
    assert.equal(r.kind, 'record', `at log offset ${start + pos}: ${JSON.stringify(r)}`);
    if (r.kind !== 'record') break;
    pos += r.record.totalSize;
    n++;
  }
  return n;
}

for (const crcThread of [true, false]) {
  test(`appended bytes carry valid CRCs the moment they count as written (crcThread ${crcThread})`, async () => {
    const store = await MessageStore.open({ rootDir: newDir(), ...small, crcThread });
    try {
      const log = store.commitLog;
      // With the thread on, let it start first (batches go to it once it runs).
      let warmup = 0;
      const deadline = Date.now() + 10_000;
      while (crcThread && log.crcThread() === undefined && Date.now() < deadline) {
        await Promise.all(Array.from({ length: 40 }, () => store.put(msg(warmup++))));
      }
      assert.equal(log.crcThread() !== undefined, crcThread);
      let seen = log.writtenOffset();
      let checked = 0;
      const onWritten = log.onWritten;
      // Every time the written offset moves, what it newly covers must already be whole records
      // with correct CRCs: that is all a reader or the dispatcher can see.
      log.onWritten = (written) => {
        const chunks: Buffer[] = [];
        for (let at = seen; at < written; ) {
          const v = log.sequentialView(at, written - at);
          assert.ok(v, `written bytes at ${at} are cached`);
          chunks.push(Buffer.from(v));
          at += v.length;
        }
        checked += checkAll(Buffer.concat(chunks), seen);
        seen = written;
        onWritten(written);
      };
      const n = 3000;
      const results = await Promise.all(Array.from({ length: n }, (_, i) => store.put(msg(i))));
      assert.equal(checked, n);
      // (The thread takes batches once it runs; until then the main thread checksums them.)
      // And on disk.
      const end = log.writtenOffset();
      let onDisk = 0;
      for (const seg of log.segmentList()) {
        const to = Math.min(end, seg.base + seg.capacity);
        if (to > seg.base) onDisk += checkAll(await log.readFromDisk(seg.base, to - seg.base), seg.base);
      }
      assert.equal(onDisk, warmup + n);
      assert.equal(results.at(-1)!.physicalOffset + results.at(-1)!.size, end);
    } finally {
      await store.close();
    }
  });
}

test('a CRC thread that dies fails the appends waiting on it and every later one (STORE_IO_ERROR)', async () => {
  const dir = newDir();
  const store = await MessageStore.open({ rootDir: dir, ...small });
  // Batches of a few records are checksummed on the main thread; larger ones start the CRC
  // thread and go to it once it runs.
  await Promise.all(Array.from({ length: 100 }, (_, i) => store.put(msg(i))));
  const deadline = Date.now() + 10_000;
  while (store.commitLog.crcThread() === undefined && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  const thread = store.commitLog.crcThread();
  assert.ok(thread, 'the CRC thread started with the first large batch');
  const pending = Array.from({ length: 100 }, (_, i) => store.put(msg(i + 100)));
  await thread.terminate();
  const settled = await Promise.allSettled(pending);
  // Appends whose batch was checksummed and written before the thread died succeed; the rest fail.
  const failed = settled.filter((r) => r.status === 'rejected');
  for (const r of failed) assert.ok(isTsmqError(r.reason, 'STORE_IO_ERROR'), String(r.reason));
  const later = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => store.put(msg(i + 200))));
  for (const r of later) {
    assert.ok(r.status === 'rejected' && isTsmqError(r.reason, 'STORE_IO_ERROR'), String(r.status));
  }
  await store.close();
  // Nothing half-checksummed was left behind: a reopened store recovers every written record.
  const again = await MessageStore.open({ rootDir: dir, ...small });
  try {
    const written = settled.length - failed.length + 100;
    assert.equal(
      again.maxOffsetInQueue('CrcTopic', 0) +
        again.maxOffsetInQueue('CrcTopic', 1) +
        again.maxOffsetInQueue('CrcTopic', 2) +
        again.maxOffsetInQueue('CrcTopic', 3),
      written,
    );
    await again.put(msg(100));
  } finally {
    await again.close();
  }
});

/**
 * Messages of every shape the dispatcher treats differently: several topics (one of them a
 * delivery-time topic), tags, KEYS with several keys, non-ASCII values, no properties at all,
 * IPv6 born hosts, transaction halves.
 */
function varied(i: number) {
  const topic = ['HintA', 'HintB', 'SCHEDULE_TOPIC_XXXX', 'HintA'][i % 4]!;
  const props: string[] = [];
  if (i % 5 !== 0) props.push(`TAGS\u0001${i % 7 === 0 ? 'ünï' : `t${i % 3}`}`);
  if (i % 3 === 0) props.push(`KEYS\u0001k${i} shared${i % 2}`);
  if (i % 11 !== 0) props.push(`UNIQ_KEY\u0001U${i}${i % 13 === 0 ? 'ß' : ''}`);
  if (topic === 'SCHEDULE_TOPIC_XXXX') props.push(`TIMER_OUT_MS\u0001${1_800_000_000_000 + i}`);
  return {
    topic,
    queueId: i % 3,
    body: Buffer.from(`body-${i}-${'y'.repeat((i * 53) % 700)}`),
    properties: props.length > 0 ? `${props.join('\u0002')}\u0002` : undefined,
    bornHost: i % 6 === 0 ? { address: '::1', port: 4000 + i } : { address: '10.0.0.7', port: 5000 },
    // Every 17th a prepared transaction half (no consume-queue unit), every 19th a rolled-back one.
    sysFlag: i % 17 === 0 ? 0x4 : i % 19 === 0 ? 0xc : 0,
  };
}

test('consume queues and index built from the CRC thread dispatch hints match those rebuilt from the log', async () => {
  const dir = newDir();
  let store = await MessageStore.open({ rootDir: dir, ...small, segmentBytes: 256 * 1024 });
  const snapshot = async (s: MessageStore) => {
    const units = await consumeQueueUnits(s);
    const found: Record<string, number[]> = {};
    for (const topic of ['HintA', 'HintB', 'SCHEDULE_TOPIC_XXXX']) {
      for (const k of ['shared0', 'shared1', 'k3', 'k999', 'U1', 'U26ß', 'U2000', 'U1999']) {
        found[`${topic}#${k}`] = (await s.queryMessages(topic, k, 5000))
          .map((r) => r.physicalOffset)
          .sort((a, b) => a - b);
      }
    }
    return { units, found };
  };
  try {
    const deadline = Date.now() + 10_000;
    let i = 0;
    while (store.commitLog.crcThread() === undefined && Date.now() < deadline) {
      await Promise.all(Array.from({ length: 40 }, () => store.put(varied(i++))));
    }
    assert.ok(store.commitLog.crcThread(), 'the CRC thread runs');
    const before = store.commitLog.dispatchHintsUsed;
    // Large batches (the thread takes batches of 32 records or more), rolling several segments;
    // counted from wherever the warm-up ended (on a loaded machine it can run long).
    for (const end = i + 2400; i < end; ) {
      await Promise.all(Array.from({ length: 400 }, () => store.put(varied(i++))));
    }
    await store.waitDispatched();
    assert.ok(
      store.commitLog.dispatchHintsUsed - before > 1000,
      `dispatched from hints: ${store.commitLog.dispatchHintsUsed - before}`,
    );
    const fromHints = await snapshot(store);
    assert.ok(fromHints.found['HintA#shared0']!.length > 50);
    assert.ok(Object.keys(fromHints.units).includes('SCHEDULE_TOPIC_XXXX/0'));
    await store.close();
    fs.rmSync(path.join(dir, 'consumequeue'), { recursive: true });
    fs.rmSync(path.join(dir, 'index'), { recursive: true });
    store = await MessageStore.open({ rootDir: dir, ...small, segmentBytes: 256 * 1024 });
    assert.ok(store.recovery.rebuiltConsumeQueues && store.recovery.rebuiltIndex);
    assert.deepEqual(await snapshot(store), fromHints);
  } finally {
    await store.close();
  }
});
