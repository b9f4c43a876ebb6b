/** Option parsers and shared options of the `tsmq` commands. */
import { InvalidArgumentError } from 'commander';

export function port(v: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!(n >= 0 && n <= 65535))
    throw new InvalidArgumentError('expected a port number in [0, 65535] (0: any free port)');
  return n;
}

export function positiveInt(v: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!(n >= 1 && Number.isSafeInteger(n))) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

export function nonNegativeInt(v: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('expected an integer ≥ 0');
  return n;
}

/** The name servers a client command talks to: --namesrv, else $NAMESRV_ADDR, else the local default. */
export const NAMESRV_DEFAULT = process.env.NAMESRV_ADDR ?? '127.0.0.1:9876';
