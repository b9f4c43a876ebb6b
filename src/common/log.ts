/** The process logger: JSON lines (pino). Components take a child logger with their name. */
import { pino } from 'pino';

export type Logger = pino.Logger;

export function createLogger(name = 'tsmq', level = process.env.TSMQ_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}
