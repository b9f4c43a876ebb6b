/**
 * The CRC thread: a worker thread that checksums sealed commit-log batches before they are
 * written, so that the main thread does not (crc32 of a 1 KiB body alone costs ~0.4 µs).
 *
 * The commit log's arenas are SharedArrayBuffers. The main thread encodes each record into one
 * with BODYCRC 0 and the record CRC's digits unfilled (`prepareRecord` with `deferCrcs`); when a
 * batch is sealed no more bytes of its range are written, and before writing it the commit log
 * posts this thread a job:
 *
 *   main -> thread   { id, mem: SharedArrayBuffer, jobs: Int32Array, n }
 *                    jobs[0..n): the records of the batch, each `2 * position in mem + recordCrc`
 *   thread -> main   { id }                 every record's CRCs are filled in
 *                    { id, error: string }  they are not (the batch must not be written)
 *
 * The thread writes only the CRC fields of those records; the main thread does not touch the
 * batch's range until the answer arrives (message passing orders the two threads' accesses), then
 * writes it to the file. Nothing reads a record before then: readers see only written bytes.
 */
import { parentPort } from 'node:worker_threads';
import { fillRecordCrcs } from '../message/index.js';

export interface CrcJob {
  id: number;
  mem: SharedArrayBuffer;
  jobs: Int32Array;
  n: number;
}

export interface CrcAnswer {
  id: number;
  error?: string;
}

const port = parentPort;
if (port) {
  let lastMem: SharedArrayBuffer | undefined;
  let lastBuf: Buffer = Buffer.alloc(0);
  port.on('message', (job: CrcJob) => {
    const answer: CrcAnswer = { id: job.id };
    try {
      if (job.mem !== lastMem) {
        lastMem = job.mem;
        lastBuf = Buffer.from(job.mem);
      }
      const jobs = job.jobs;
      for (let i = 0; i < job.n; i++) {
        const j = jobs[i]!;
        fillRecordCrcs(lastBuf, j >>> 1, (j & 1) === 1);
      }
    } catch (e) {
      answer.error = e instanceof Error ? e.message : String(e);
    }
    port.postMessage(answer);
  });
}
