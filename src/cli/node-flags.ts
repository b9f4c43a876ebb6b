/**
 * Node/V8 flags for tsmq's long-running processes: the name server and broker (`npm start` passes
 * them; run `node --initial-old-space-size=64 …/tsmq broker -c broker.conf` in production, as
 * RocketMQ's runbroker.sh passes its JVM heap options), the benchmark's consumer process, and
 * `npm run bench:store` (package.json), so the store is measured as the broker runs it (ASYNC
 * appends: 448k–465k msgs/s with the flag, 424k–447k without, five alternating pairs).
 *
 * --initial-old-space-size=64 (MiB): V8 starts with a small old-generation limit and grows it from
 * the live heap, which for a broker is only ~10 MB; so under steady traffic it ran a full
 * mark-compact for about every 12 MB promoted, about once a second at 5,000 msgs/s, each with
 * 2–5 ms of pauses (incremental steps and the final atomic pause). Those pauses set the tail of
 * end-to-end latency: p99 5.5–6.0 ms without the flag, 1.6–2.0 ms with it on broker and consumer
 * (2026-11-26, 2 cores; 11–13 mark-compacts in the broker per 15 s run without, 1–2 with). The
 * limit is a threshold, not a reservation: the heap may hold up to that much garbage before the
 * first full collection, and V8 sizes later limits as usual.
 *
 * Not allowed in NODE_OPTIONS, so it has to be on the command line.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=64'];
