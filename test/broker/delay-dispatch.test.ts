/**
 * The store's dispatcher writes the delivery time (TIMER_OUT_MS) into the consume-queue tagsCode
 * of the schedule and timer topics — also when it re-dispatches the log after a crash — and the
 * tag hash everywhere else.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { javaStringHashCode } from '../../src/common/java-hash.js';
import { encodeProperties } from '../../src/message/index.js';
import { MessageStore, unitAt } from '../../src/store/index.js';

async function tagsCodes(store: MessageStore, topic: string, queueId: number, n: number): Promise<number[]> {
  const buf = await store.consumeQueues.get(topic, queueId)!.readUnits(0, n);
  return Array.from({ length: buf.length / 20 }, (_, i) => unitAt(buf, i).tagsCode);
}

test('SCHEDULE_TOPIC_XXXX and rmq_sys_wheel_timer units hold the delivery time, also after a crash re-dispatch', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmq-delay-dispatch-'));
  try {
    let store = await MessageStore.open({ rootDir: dir, segmentBytes: 1024 * 1024 });
    const at = 1_800_000_000_123;
    const put = (topic: string, props: Record<string, string>) =>
      store.put({ topic, queueId: 1, body: Buffer.from('x'), properties: encodeProperties(props) });
    await put('SCHEDULE_TOPIC_XXXX', { TAGS: 'A', TIMER_OUT_MS: String(at), REAL_TOPIC: 'T', REAL_QID: '0' });
    const plain = await put('SCHEDULE_TOPIC_XXXX', { TAGS: 'A' }); // no time: its store time
    await put('SCHEDULE_TOPIC_XXXX', { TIMER_OUT_MS: 'soon' }); // not a time: its store time
    await put('rmq_sys_wheel_timer', { TIMER_OUT_MS: String(at + 1) });
    await put('Ordinary', { TAGS: 'A', TIMER_OUT_MS: String(at) });
    await store.waitDispatched();
    const check = async (s: MessageStore) => {
      const codes = await tagsCodes(s, 'SCHEDULE_TOPIC_XXXX', 1, 3);
      assert.equal(codes[0], at);
      assert.equal(codes[1], plain.storeTimestamp);
      assert.ok(Math.abs(codes[2]! - plain.storeTimestamp) < 60_000);
      assert.deepEqual(await tagsCodes(s, 'rmq_sys_wheel_timer', 1, 1), [at + 1]);
      assert.deepEqual(await tagsCodes(s, 'Ordinary', 1, 1), [javaStringHashCode('A')]);
    };
    await check(store);
    // A crash that loses the consume queues: the log is re-dispatched, with the same units.
    await store.abandon();
    fs.rmSync(path.join(dir, 'consumequeue'), { recursive: true, force: true });
    store = await MessageStore.open({ rootDir: dir, segmentBytes: 1024 * 1024 });
    assert.equal(store.recovery.rebuiltConsumeQueues, true);
    await check(store);
    await store.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
