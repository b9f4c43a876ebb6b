/**
 * GET_BROKER_RUNTIME_INFO (28), admin: the broker's vital signs as RocketMQ's KVTable
 * {"table":{key: value}}, every value a string, with RocketMQ's keys and formats (mqadmin
 * clusterList and brokerStatus, the dashboard and the exporters read them):
 *
 *   key                                   value
 *   ------------------------------------- -----------------------------------------------------------
 *   brokerVersionDesc                     "tsmq <version>"
 *   bootTimestamp                         ms since the epoch when the broker started
 *   runtime                               "[ 0 days, 1 hours, 2 minutes, 3 seconds ]"
 *   msgPutTotalTodayNow                   messages stored by sends since the broker started
 *   msgPutTotalTodayMorning               … as of local midnight today (0 if it started today)
 *   msgPutTotalYesterdayMorning           … as of local midnight yesterday
 *   msgGetTotalTodayNow, …TodayMorning,   messages returned by pulls, likewise
 *     …YesterdayMorning
 *   putTps, getTransferedTps              messages per second over 10 s, 60 s and 600 s: "12.00 3.50 0.35"
 *   commitLogMinOffset, commitLogMaxOffset  first and one-past-last written byte of the commit log
 *   dispatchBehindBytes                   written bytes not yet in consume queues and index
 *   remainHowManyDataToFlush              appended bytes not yet fdatasync'ed, e.g. "1.5 KiB"
 *   earliestMessageTimeStamp              store time of the oldest kept message (absent if none)
 *   commitLogDiskRatio                    used fraction of the store's file system, e.g. "0.4512"
 *   commitLogDirCapacity                  "Total : 100.0 GiB, Free : 55.1 GiB."
 *   pullRequestsHeld                      long-polling pulls waiting for messages now (tsmq's own key)
 *   memoryRss, memoryHeapUsed,            the process's memory in bytes: resident set, V8 heap in use,
 *     memoryExternal                        memory outside the heap (Buffers) — tsmq's own keys
 *   scheduleMessageOffset_<level>         "<next offset to deliver>,<queue end>" of each delay level's
 *                                         queue in SCHEDULE_TOPIC_XXXX (RocketMQ's key and format)
 *   timerOffsetBehind                     timer-topic messages not yet in the timer wheel (RocketMQ 5)
 *   timerReadBehind                       seconds the timer dequeue trails the clock (RocketMQ 5)
 *   timerPending, timerHeld               timers waiting, and those held in memory — tsmq's own keys
 *
 * Keys RocketMQ sends that tsmq leaves out because it has nothing true to put there: the thread
 * pools' queue sizes, capacities and head wait times (no thread pools: one event loop),
 * pageCacheLockTimeMills (appends take no lock across I/O), put latency distributions and
 * percentiles (not measured), brokerVersion (no RocketMQ version ordinal), and the transaction
 * keys (not implemented yet).
 */
import { createResponse, encodeKVTable, RequestCode, ResponseCode } from '../../protocol/index.js';
import type { MessageStore } from '../../store/index.js';
import type { BrokerProcessor } from './context.js';
import { storeUnavailable } from './offset-header.js';

/** tsmq's version, as package.json has it (a test keeps the two in step). */
export const TSMQ_VERSION = '0.1.0';

/** RocketMQ's MixAll.humanReadableByteCount(bytes, false): "512 B", "1.5 KiB", "2.0 GiB". */
export function humanReadableBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const exp = Math.min(6, Math.floor(Math.log(bytes) / Math.log(1024)));
  return `${(bytes / 1024 ** exp).toFixed(1)} ${'KMGTPE'[exp - 1]}iB`;
}

/** RocketMQ's runtime format: "[ d days, h hours, m minutes, s seconds ]". */
export function formatRuntime(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(s / 86_400);
  const hours = Math.floor((s % 86_400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  return `[ ${days} days, ${hours} hours, ${minutes} minutes, ${s % 60} seconds ]`;
}

async function earliestMessageTime(store: MessageStore): Promise<number | undefined> {
  const { minOffset, writtenOffset } = store.positions();
  if (writtenOffset <= minOffset) return undefined;
  try {
    return (await store.getMessageByPhysicalOffset(minOffset)).storeTimestamp;
  } catch {
    return undefined;
  }
}

function memoryKeys(): Record<string, string> {
  const m = process.memoryUsage();
  return { memoryRss: String(m.rss), memoryHeapUsed: String(m.heapUsed), memoryExternal: String(m.external) };
}

export const getBrokerRuntimeInfo: BrokerProcessor = {
  code: RequestCode.GET_BROKER_RUNTIME_INFO,
  async handle(ctx, request) {
    const store = ctx.store();
    if (!store) return storeUnavailable(request);
    const now = ctx.clock.now();
    const stats = ctx.stats;
    const puts = stats.puts();
    const gets = stats.gets();
    const pos = store.positions();
    const table: Record<string, string> = {
      brokerVersionDesc: `tsmq ${TSMQ_VERSION}`,
      bootTimestamp: String(stats.bootTimestamp),
      runtime: formatRuntime(now - stats.bootTimestamp),
      msgPutTotalTodayNow: String(puts.todayNow),
      msgPutTotalTodayMorning: String(puts.todayMorning),
      msgPutTotalYesterdayMorning: String(puts.yesterdayMorning),
      msgGetTotalTodayNow: String(gets.todayNow),
      msgGetTotalTodayMorning: String(gets.todayMorning),
      msgGetTotalYesterdayMorning: String(gets.yesterdayMorning),
      putTps: stats.putTps(),
      getTransferedTps: stats.getTransferedTps(),
      commitLogMinOffset: String(pos.minOffset),
      commitLogMaxOffset: String(pos.writtenOffset),
      dispatchBehindBytes: String(Math.max(0, pos.writtenOffset - pos.dispatchedOffset)),
      remainHowManyDataToFlush: humanReadableBytes(Math.max(0, pos.appendedOffset - pos.flushedOffset)),
      pullRequestsHeld: String(ctx.pullHold.size),
      ...memoryKeys(),
    };
    for (const p of ctx.schedule()?.progress() ?? []) {
      table[`scheduleMessageOffset_${p.level}`] = `${p.deliverOffset},${p.maxOffset}`;
    }
    const timer = ctx.timer()?.stats();
    if (timer) {
      const precisionMs = ctx.timer()!.store.precisionMs;
      table.timerOffsetBehind = String(timer.enqueueBehind);
      table.timerReadBehind = String(Math.max(0, Math.floor((now - timer.doneSlot * precisionMs) / 1000)));
      table.timerPending = String(timer.pending);
      table.timerHeld = String(timer.held);
    }
    const earliest = await earliestMessageTime(store);
    if (earliest !== undefined) table.earliestMessageTimeStamp = String(earliest);
    try {
      const disk = await store.opts.io.diskUsage(store.opts.rootDir);
      if (disk.totalBytes > 0) {
        const used = (disk.totalBytes - disk.freeBytes) / disk.totalBytes;
        table.commitLogDiskRatio = String(Math.round(used * 10_000) / 10_000);
        table.commitLogDirCapacity = `Total : ${humanReadableBytes(disk.totalBytes)}, Free : ${humanReadableBytes(disk.freeBytes)}.`;
      }
    } catch (e) {
      ctx.logger.warn({ err: (e as Error).message }, 'reading disk usage for runtime info failed');
    }
    return createResponse(request, ResponseCode.SUCCESS, undefined, undefined, encodeKVTable({ table }));
  },
};
