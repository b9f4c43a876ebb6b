/**
 * Child process of the crash tests: appends the crash workload to a store as fast as it can with
 * a bounded number of appends in flight, and prints `ack <seq> <physicalOffset> <queueOffset>` for
 * every acknowledged append. The parent SIGKILLs it at a random moment.
 *
 * argv: rootDir flushMode firstSeq segmentBytes
 */
import { MessageStore } from '../src/store/index.js';
import { crashMessage, crashStoreOptions } from './crash-workload.js';

const [rootDir, flushMode, firstSeqArg, segmentBytesArg] = process.argv.slice(2);
if (!rootDir || (flushMode !== 'SYNC' && flushMode !== 'ASYNC')) {
  console.error('usage: crash-child rootDir SYNC|ASYNC firstSeq segmentBytes');
  process.exit(2);
}

const store = await MessageStore.open({
  rootDir,
  flushMode,
  segmentBytes: Number(segmentBytesArg ?? 1 << 20),
  ...crashStoreOptions,
});
process.stdout.write(`ready ${store.recovery.end}\n`);

let seq = Number(firstSeqArg ?? 0);
let inFlight = 0;
const MAX_IN_FLIGHT = 48;
let out = '';
let flushScheduled = false;

function report(line: string): void {
  out += line;
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(() => {
      flushScheduled = false;
      const chunk = out;
      out = '';
      process.stdout.write(chunk);
    });
  }
}

function pump(): void {
  while (inFlight < MAX_IN_FLIGHT) {
    const s = seq++;
    const m = crashMessage(s);
    inFlight++;
    store.put({ topic: m.topic, queueId: m.queueId, body: m.body, properties: m.properties }).then(
      (r) => {
        inFlight--;
        report(`ack ${s} ${r.physicalOffset} ${r.queueOffset}\n`);
        pump();
      },
      (e: unknown) => {
        process.stderr.write(`append ${s} failed: ${String(e)}\n`);
        process.exit(3);
      },
    );
  }
}
pump();
