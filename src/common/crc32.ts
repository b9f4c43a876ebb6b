/**
 * CRC-32 (IEEE 802.3, the zlib/Java polynomial) in plain JavaScript for short byte ranges.
 * zlib.crc32 is faster per byte but a native call costs ~200 ns, which dominates for the
 * ~100-byte regions the record CRC covers; this "slicing by 4" loop has no call or allocation
 * overhead and can continue a CRC across several ranges. Results equal zlib.crc32.
 */
const T = (() => {
  const t = new Int32Array(4 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 4; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/** CRC-32 of buf[start, end), continuing from `crc` (the unsigned result of an earlier call). */
export function crc32Range(buf: Uint8Array, start: number, end: number, crc = 0): number {
  let c = ~crc;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    c ^= buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
    c = T[768 + (c & 0xff)]! ^ T[512 + ((c >>> 8) & 0xff)]! ^ T[256 + ((c >>> 16) & 0xff)]! ^ T[c >>> 24]!;
  }
  for (; i < end; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
