/**
 * CRC-32 (IEEE 802.3, the zlib/Java polynomial) in plain JavaScript for short byte ranges.
 * zlib.crc32 is faster per byte but a native call costs ~200 ns, which dominates for the
 * ~100-byte regions the record CRC covers; this "slicing by 8" loop has no call or allocation
 * overhead and can continue a CRC across several ranges. Results equal zlib.crc32.
 */
import { keptDataViewOf } from './bytes.js';

const T = (() => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/** CRC-32 of buf[start, end), continuing from `crc` (the unsigned result of an earlier call). */
export function crc32Range(buf: Uint8Array, start: number, end: number, crc = 0): number {
  // Words are read through a DataView (one load per 4 bytes instead of four) when one is at hand:
  // the writer's arena has one; making one for each record a reader checks would cost more.
  const view = keptDataViewOf(buf);
  let c = ~crc;
  let i = start;
  // Eight bytes a step: table k maps a byte k positions before the end of the step.
  for (; i + 8 <= end; i += 8) {
    let d: number;
    if (view !== undefined) {
      c ^= view.getInt32(i, true);
      d = view.getInt32(i + 4, true);
    } else {
      c ^= buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
      d = buf[i + 4]! | (buf[i + 5]! << 8) | (buf[i + 6]! << 16) | (buf[i + 7]! << 24);
    }
    c =
      T[1792 + (c & 0xff)]! ^
      T[1536 + ((c >>> 8) & 0xff)]! ^
      T[1280 + ((c >>> 16) & 0xff)]! ^
      T[1024 + (c >>> 24)]! ^
      T[768 + (d & 0xff)]! ^
      T[512 + ((d >>> 8) & 0xff)]! ^
      T[256 + ((d >>> 16) & 0xff)]! ^
      T[d >>> 24]!;
  }
  for (; i < end; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
