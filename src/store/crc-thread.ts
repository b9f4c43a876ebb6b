/**
 * The CRC thread: a worker thread that checksums sealed commit-log batches before they are
 * written, so that the main thread does not (with the native addon, src/common/native.ts, ~0.16 µs
 * per 1 KiB record; with zlib and JavaScript, ~0.7 µs), and
 * works out each record's dispatch hint (see DISPATCH_HINT_FIELDS in record.ts) while the record's
 * bytes are at hand, so that the dispatcher on the main thread need not scan the properties.
 *
 * The commit log's arenas are SharedArrayBuffers. The main thread encodes each record into one
 * with BODYCRC 0 and the record CRC's digits unfilled (`prepareRecord` with `deferCrcs`); when a
 * batch is sealed no more bytes of its range are written, and before writing it the commit log
 * posts this thread a job:
 *
 *   main -> thread   { id, mem: SharedArrayBuffer, jobs: Int32Array, n }
 *                    jobs[0..n): the records of the batch, each `2 * position in mem + recordCrc`
 *   thread -> main   { id, hints: Float64Array, topics: string[] }
 *                                      every record's CRCs are filled in; hints holds n dispatch
 *                                      hints, their topics are in `topics` (hints' buffer is
 *                                      transferred)
 *                    { id, error: string }  they are not (the batch must not be written)
 *
 * The thread writes only the CRC fields of those records; the main thread does not touch the
 * batch's range until the answer arrives (message passing orders the two threads' accesses), then
 * writes it to the file. Nothing reads a record before then: readers see only written bytes.
 */
import { parentPort } from 'node:worker_threads';
import {
  DISPATCH_HINT_FIELDS,
  fillRecordCrcsOf,
  newDispatchInfo,
  writeDispatchHint,
} from '../message/index.js';

export interface CrcJob {
  id: number;
  mem: SharedArrayBuffer;
  jobs: Int32Array;
  n: number;
}

export interface CrcAnswer {
  id: number;
  hints?: Float64Array;
  topics?: string[];
  error?: string;
}

const port = parentPort;
if (port) {
  const scratch = newDispatchInfo();
  port.on('message', (job: CrcJob) => {
    const answer: CrcAnswer = { id: job.id };
    try {
      // A SharedArrayBuffer arrives as a new object with every message (over the same memory),
      // so there is no view to keep from one job to the next.
      const mem = Buffer.from(job.mem);
      const jobs = job.jobs;
      const n = job.n;
      fillRecordCrcsOf(mem, jobs, n);
      const hints = new Float64Array(n * DISPATCH_HINT_FIELDS);
      const topics: string[] = [];
      for (let i = 0; i < n; i++) writeDispatchHint(hints, i, topics, mem, jobs[i]! >>> 1, scratch);
      answer.hints = hints;
      answer.topics = topics;
    } catch (e) {
      answer.error = e instanceof Error ? e.message : String(e);
    }
    port.postMessage(answer, answer.hints ? [answer.hints.buffer as ArrayBuffer] : []);
  });
}
