/**
 * The optional native CRC-32 addon (native/crc32.c, built by `npm install` / `npm run build:native`
 * into build/Release/tsmq_native.node). `native` is undefined when the addon is missing, fails to
 * load, or TSMQ_NATIVE=0: callers then use zlib.crc32 / crc32Range. Loading never throws.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeCrc {
  /**
   * CRC-32 (IEEE, as zlib.crc32) of buf[start, end) continued from `initial` (0 to start, else the
   * unsigned result of an earlier call); the unsigned result. Throws RangeError on bad bounds.
   */
  crc32(buf: Uint8Array, start: number, end: number, initial: number): number;
  /**
   * For each of jobs[0, n), `(pos << 1) | recordCrc`: what record.ts `fillRecordCrcs(arena, pos,
   * recordCrc)` does, in order. Throws an Error naming the job and position at the first record
   * that is not a whole written record inside `arena` (the jobs before it are done).
   */
  fillRecordCrcs(arena: Uint8Array, jobs: Int32Array, n: number): void;
  /** Whether crc32 uses the PCLMULQDQ folding code on this CPU (else slicing-by-8 tables). */
  readonly simd: boolean;
}

/** The directory holding package.json, walking up from this file (dist/src/common or src/common). */
function packageRoot(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

function load(): { native: NativeCrc | undefined; status: string } {
  if (process.env.TSMQ_NATIVE === '0') return { native: undefined, status: 'disabled by TSMQ_NATIVE=0' };
  try {
    const root = packageRoot();
    if (root === undefined)
      return { native: undefined, status: 'not built: no package.json above the loader' };
    const file = path.join(root, 'build', 'Release', 'tsmq_native.node');
    if (!fs.existsSync(file)) {
      return { native: undefined, status: `not built: ${path.relative(root, file)} is missing` };
    }
    const mod = createRequire(import.meta.url)(file) as Partial<NativeCrc>;
    if (typeof mod.crc32 !== 'function' || typeof mod.fillRecordCrcs !== 'function') {
      return { native: undefined, status: `not built: ${file} is not the CRC addon` };
    }
    const n = mod as NativeCrc;
    return { native: n, status: `native CRC-32 (${n.simd ? 'pclmul' : 'table'})` };
  } catch (e) {
    const reason = e instanceof Error ? e.message.split('\n')[0] : String(e);
    return { native: undefined, status: `not built: ${reason}` };
  }
}

const loaded = load();

/** The native CRC functions, or undefined (see the file header). */
export const native: NativeCrc | undefined = loaded.native;

/** One line saying which CRC-32 tsmq uses: "native CRC-32 (pclmul)", "... (table)", "not built: …". */
export function nativeStatus(): string {
  return loaded.status;
}
