/*
 * tsmq_native: CRC-32 for the commit log, as a Node-API addon (C, <node_api.h> only).
 *
 * What it computes
 *   CRC-32 with the IEEE 802.3 polynomial
 *     P(x) = x^32 + x^26 + x^23 + x^22 + x^16 + x^12 + x^11 + x^10 + x^8 + x^7 + x^5 + x^4
 *            + x^2 + x + 1
 *   in the reflected convention (0xEDB88320), initial value and final XOR 0xFFFFFFFF: the CRC of
 *   zlib.crc32, Java's CRC32 and RocketMQ. Exports:
 *     crc32(buf, start, end, initial)  CRC of buf[start, end) continued from `initial` (0 to
 *                                      start): equals zlib.crc32(buf.subarray(start, end), initial).
 *     fillRecordCrcs(arena, jobs, n)   the batch form of fillRecordCrcs in src/message/record.ts.
 *     simd                             true when crc32 uses the PCLMULQDQ path on this CPU.
 *
 * The record layout it relies on (see the header of src/message/record.ts; big-endian ints):
 *   pos+0   TOTALSIZE (int32)      pos+8  BODYCRC (int32, written here)
 *   pos+36  SYSFLAG (int32): 0x10 BORNHOST_V6, 0x20 STOREHOST_V6, each moving BODYLEN by +12
 *   pos+84  BODYLEN (int32) with IPv4 hosts (BODYLEN_AT in record.ts), body right after it
 *   pos+size-11  the 10 ASCII digits of the record-CRC property `__CRC32#` (RECORD_CRC_PROPERTY;
 *                the record ends with `__CRC32#` \1 dddddddddd \2). The record CRC is the CRC of
 *                [pos, bodyAt) continued over [bodyEnd, pos+size-11), written zero-padded.
 *   A job is (pos << 1) | recordCrc, as an int32.
 *
 * How it is computed
 *   Polynomials are kept bit-reflected: in a w-bit value, bit i is the coefficient of x^(w-1-i),
 *   so the first message bit (bit 0 of the first byte) is the highest power. Processing data D
 *   from state s means s' = (s * x^|D| + D * x^32) mod P, and crc = ~s'.
 *
 *   Inputs under 32 bytes, tails under 16 bytes, and CPUs without PCLMULQDQ (including non-x86):
 *   "slicing by 8", eight 256-entry tables, T[0] being the classic byte table
 *   (T[0][b] = (b * x^32) mod P, reflected) and T[k][b] = T[0][b] advanced by k more zero bytes
 *   (the same byte k positions further from the end of an 8-byte step).
 *
 *   From 32 bytes on (x86 with PCLMULQDQ; measured faster than the tables from there, e.g. 24 ns
 *   instead of 46 for the 88-byte header a record CRC covers): "folding". A 128-bit block loaded
 *   little-endian is the polynomial X = H * x^64 + L, H being its low 64 bits and L its high
 *   64 bits (each reflected).
 *   Moving X forward by D bits of data without changing its remainder:
 *     X * x^D = H * x^(64+D) + L * x^D  ==  H * (x^(64+D) mod P) + L * (x^D mod P)   (mod P)
 *   and the right side, under 96 bits, is XORed into the block D bits later. The carry-less
 *   product of two reflected 64-bit values, read as a reflected 128-bit value, is the product
 *   times x (bit 127, the x^0 place, is always 0), so the constants are taken one degree
 *   lower: H is multiplied by (x^(63+D) mod P) and L by (x^(D-1) mod P), each a reflected
 *   32-bit remainder placed in the high half of a 64-bit operand (bit 63-j holds x^j).
 *   Four accumulators advance by D = 512 bits per 64-byte step (inputs of 64 bytes or more);
 *   they are then combined (D = 128), further 16-byte blocks folded in (D = 128; under 64 bytes
 *   this is all there is, from the first block), and the last 128-bit accumulator is
 *   reduced by running its 16 bytes through the table code from state 0 (which computes exactly
 *   (X * x^32) mod P), after which the table code continues over the tail.
 *   The initial state enters by XOR into the first 32 data bits: s * x^n = (s * x^(n-32)) * x^32.
 *   All constants (tables, x^n mod P) are computed from the polynomial when the library loads,
 *   which also checks the folding code against the tables and falls back to them on a mismatch
 *   (`simd` is then false; test/common/native-crc.test.ts fails on a PCLMULQDQ CPU).
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define TSMQ_X86 1
#include <immintrin.h>
#endif

/* P(x) without its x^32 term, reflected. */
#define POLY_REFLECTED 0xEDB88320u

static uint32_t table[8][256];
static int use_simd;

/* x^n mod P, reflected (bit 31 - j holds x^j). */
static uint32_t xpow_mod(uint32_t n) {
  uint32_t r = 0x80000000u; /* x^0 */
  while (n-- > 0) r = (r & 1) ? (r >> 1) ^ POLY_REFLECTED : r >> 1; /* r * x */
  return r;
}

static uint32_t crc_table_raw(uint32_t s, const uint8_t *p, size_t n) {
  while (n >= 8) {
    uint32_t a, b;
    memcpy(&a, p, 4);
    memcpy(&b, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    a = __builtin_bswap32(a);
    b = __builtin_bswap32(b);
#endif
    a ^= s;
    s = table[7][a & 0xff] ^ table[6][(a >> 8) & 0xff] ^ table[5][(a >> 16) & 0xff] ^
        table[4][a >> 24] ^ table[3][b & 0xff] ^ table[2][(b >> 8) & 0xff] ^
        table[1][(b >> 16) & 0xff] ^ table[0][b >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) s = table[0][(s ^ *p++) & 0xff] ^ (s >> 8);
  return s;
}

#ifdef TSMQ_X86
/* Folding constants: {for H (low qword), for L (high qword)} per distance. */
static uint64_t k512[2], k128[2];
/* Below this many bytes the table code wins (measured: equal at 16, folding ahead from 32). */
#define SIMD_MIN_BYTES 32

__attribute__((target("pclmul,sse4.1"))) static inline __m128i fold(__m128i x, __m128i k, __m128i next) {
  __m128i h = _mm_clmulepi64_si128(x, k, 0x00); /* low qword of x times low qword of k */
  __m128i l = _mm_clmulepi64_si128(x, k, 0x11); /* high times high */
  return _mm_xor_si128(_mm_xor_si128(h, l), next);
}

/* The raw state after data p[0, n), n >= 16, from raw state s. */
__attribute__((target("pclmul,sse4.1"))) static uint32_t crc_fold_raw(uint32_t s, const uint8_t *p,
                                                                       size_t n) {
  const __m128i K128 = _mm_set_epi64x((long long)k128[1], (long long)k128[0]);
  __m128i x3;
  if (n >= 64) {
    const __m128i K512 = _mm_set_epi64x((long long)k512[1], (long long)k512[0]);
    __m128i x0 = _mm_loadu_si128((const __m128i *)p);
    __m128i x1 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 32));
    x3 = _mm_loadu_si128((const __m128i *)(p + 48));
    x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)s));
    p += 64;
    n -= 64;
    while (n >= 64) {
      x0 = fold(x0, K512, _mm_loadu_si128((const __m128i *)p));
      x1 = fold(x1, K512, _mm_loadu_si128((const __m128i *)(p + 16)));
      x2 = fold(x2, K512, _mm_loadu_si128((const __m128i *)(p + 32)));
      x3 = fold(x3, K512, _mm_loadu_si128((const __m128i *)(p + 48)));
      p += 64;
      n -= 64;
    }
    x1 = fold(x0, K128, x1);
    x2 = fold(x1, K128, x2);
    x3 = fold(x2, K128, x3);
  } else {
    x3 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_cvtsi32_si128((int)s));
    p += 16;
    n -= 16;
  }
  while (n >= 16) {
    x3 = fold(x3, K128, _mm_loadu_si128((const __m128i *)p));
    p += 16;
    n -= 16;
  }
  uint8_t last[16];
  _mm_storeu_si128((__m128i *)last, x3);
  return crc_table_raw(crc_table_raw(0, last, 16), p, n);
}
#endif

/* CRC-32 of p[0, n) continued from crc (0 to start). */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n) {
  uint32_t s = ~crc;
#ifdef TSMQ_X86
  if (use_simd && n >= SIMD_MIN_BYTES) return ~crc_fold_raw(s, p, n);
#endif
  return ~crc_table_raw(s, p, n);
}

__attribute__((constructor)) static void crc_init(void) {
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t c = b;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY_REFLECTED : c >> 1;
    table[0][b] = c;
  }
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t c = table[0][b];
    for (int k = 1; k < 8; k++) {
      c = table[0][c & 0xff] ^ (c >> 8);
      table[k][b] = c;
    }
  }
#ifdef TSMQ_X86
  /* x^j at bit 31 - j of a reflected remainder goes to bit 63 - j of the 64-bit operand. */
  k512[0] = (uint64_t)xpow_mod(64 + 512 - 1) << 32;
  k512[1] = (uint64_t)xpow_mod(512 - 1) << 32;
  k128[0] = (uint64_t)xpow_mod(64 + 128 - 1) << 32;
  k128[1] = (uint64_t)xpow_mod(128 - 1) << 32;
  __builtin_cpu_init();
  use_simd = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
  /* Self-check against the table code; any mismatch disables the folding path. */
  if (use_simd) {
    uint8_t probe[300];
    for (int i = 0; i < 300; i++) probe[i] = (uint8_t)(i * 131 + 7);
    for (size_t n = 16; n <= 300; n += 13) {
      if (crc_fold_raw(0x12345678u, probe, n) != crc_table_raw(0x12345678u, probe, n)) use_simd = 0;
    }
  }
#else
  (void)xpow_mod;
#endif
}

/* ------------------------------------------------------------------------------------------ */
/* Node-API glue                                                                               */
/* ------------------------------------------------------------------------------------------ */

#define CHECK(call)                                                                           \
  do {                                                                                        \
    if ((call) != napi_ok) {                                                                  \
      napi_throw_error(env, NULL, "tsmq_native: Node-API call failed: " #call);              \
      return NULL;                                                                            \
    }                                                                                         \
  } while (0)

/* The bytes of a Uint8Array (any backing store, any byteOffset); 0 and a thrown error if not. */
static int get_bytes(napi_env env, napi_value v, const char *what, uint8_t **data, size_t *len) {
  napi_typedarray_type type;
  void *p = NULL;
  /* napi_invalid_arg when v is not a typed array. */
  if (napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a Uint8Array", what);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  *data = (uint8_t *)p;
  if (*data == NULL && *len > 0) {
    napi_throw_error(env, NULL, "tsmq_native: typed array without data");
    return 0;
  }
  return 1;
}

/* An integer argument in [0, max]; 0 and a thrown RangeError if not. */
static int get_index(napi_env env, napi_value v, const char *what, double max, size_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a number", what);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  if (!(d >= 0 && d <= max) || d != (double)(uint64_t)d) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s is %.17g; it must be an integer in [0, %.17g]", what, d, max);
    napi_throw_range_error(env, NULL, msg);
    return 0;
  }
  *out = (size_t)d;
  return 1;
}

/* crc32(buf, start, end, initial = 0): number */
static napi_value js_crc32(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "crc32(buf, start, end, initial): too few arguments");
    return NULL;
  }
  uint8_t *data;
  size_t len, start, end;
  if (!get_bytes(env, argv[0], "buf", &data, &len)) return NULL;
  if (!get_index(env, argv[2], "end", (double)len, &end)) return NULL;
  if (!get_index(env, argv[1], "start", (double)end, &start)) return NULL;
  uint32_t initial = 0;
  napi_valuetype t = napi_undefined;
  if (argc >= 4) CHECK(napi_typeof(env, argv[3], &t));
  if (t != napi_undefined) {
    /* As zlib.crc32: an integer in [0, 2^32), else an error (not a silent wrap-around). */
    size_t v;
    if (!get_index(env, argv[3], "initial", 4294967295.0, &v)) return NULL;
    initial = (uint32_t)v;
  }
  napi_value result;
  CHECK(napi_create_uint32(env, crc32_update(initial, data + start, end - start), &result));
  return result;
}

static uint32_t get_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* BODYLEN's offset in a record with IPv4 hosts (record.ts BODYLEN_AT), and the sysFlag bits. */
#define BODYLEN_AT 84
#define SYSFLAG_AT 36
#define BORNHOST_V6 0x10
#define STOREHOST_V6 0x20
/* The record CRC's 10 digits start this many bytes before the record's end. */
#define CRC_DIGITS_FROM_END 11

/*
 * Fills one record's CRCs; 0 on success, else writes why into `why`. Every access is checked
 * against `len` first (64-bit arithmetic: positions and sizes come from untrusted bytes).
 */
static int fill_one(uint8_t *arena, size_t len, uint64_t pos, int record_crc, char *why, size_t whylen) {
  if (pos + SYSFLAG_AT + 4 > len) {
    snprintf(why, whylen, "no record header at position %llu (arena of %llu bytes)", (unsigned long long)pos,
             (unsigned long long)len);
    return 1;
  }
  const uint8_t *r = arena + pos;
  int32_t size = (int32_t)get_be32(r);
  uint32_t sys_flag = get_be32(r + SYSFLAG_AT);
  uint64_t body_len_at =
      pos + BODYLEN_AT + ((sys_flag & BORNHOST_V6) ? 12 : 0) + ((sys_flag & STOREHOST_V6) ? 12 : 0);
  uint64_t rec_end = pos + (uint64_t)(size > 0 ? size : 0);
  if (size <= 0 || rec_end > len || body_len_at + 4 > rec_end) {
    snprintf(why, whylen, "not a written record at position %llu (TOTALSIZE %d, arena of %llu bytes)",
             (unsigned long long)pos, (int)size, (unsigned long long)len);
    return 1;
  }
  int32_t body_len = (int32_t)get_be32(arena + body_len_at);
  uint64_t body_at = body_len_at + 4;
  uint64_t body_end = body_at + (uint64_t)(body_len > 0 ? body_len : 0);
  if (body_len < 0 || body_end > rec_end) {
    snprintf(why, whylen, "not a written record at position %llu (TOTALSIZE %d, BODYLEN %d)",
             (unsigned long long)pos, (int)size, (int)body_len);
    return 1;
  }
  put_be32(arena + pos + 8, crc32_update(0, arena + body_at, (size_t)(body_end - body_at)) & 0x7fffffffu);
  if (record_crc) {
    /* size >= BODYLEN_AT + 4 here, so the digits lie inside the record. */
    uint64_t digits_at = rec_end - CRC_DIGITS_FROM_END;
    uint32_t c = crc32_update(0, arena + pos, (size_t)(body_at - pos));
    if (digits_at > body_end) c = crc32_update(c, arena + body_end, (size_t)(digits_at - body_end));
    uint8_t *d = arena + digits_at;
    for (int i = 9; i >= 0; i--) {
      d[i] = (uint8_t)('0' + c % 10);
      c /= 10;
    }
  }
  return 0;
}

/* fillRecordCrcs(arena, jobs, n): undefined */
static napi_value js_fill_record_crcs(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "fillRecordCrcs(arena, jobs, n): too few arguments");
    return NULL;
  }
  uint8_t *arena;
  size_t len;
  if (!get_bytes(env, argv[0], "arena", &arena, &len)) return NULL;
  napi_typedarray_type type = napi_uint8_array;
  size_t njobs = 0;
  void *jp = NULL;
  if (napi_get_typedarray_info(env, argv[1], &type, &njobs, &jp, NULL, NULL) != napi_ok ||
      type != napi_int32_array) {
    napi_throw_type_error(env, NULL, "jobs must be an Int32Array");
    return NULL;
  }
  size_t n;
  if (!get_index(env, argv[2], "n", (double)njobs, &n)) return NULL;
  const int32_t *jobs = (const int32_t *)jp;
  char why[200];
  for (size_t i = 0; i < n; i++) {
    uint32_t job = (uint32_t)jobs[i];
    if (fill_one(arena, len, job >> 1, (int)(job & 1), why, sizeof why)) {
      char msg[260];
      snprintf(msg, sizeof msg, "fillRecordCrcs: job %llu: %s", (unsigned long long)i, why);
      napi_throw_error(env, "ERR_TSMQ_BAD_RECORD_JOB", msg);
      return NULL;
    }
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn, simd;
  if (napi_create_function(env, "crc32", NAPI_AUTO_LENGTH, js_crc32, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "crc32", fn) != napi_ok ||
      napi_create_function(env, "fillRecordCrcs", NAPI_AUTO_LENGTH, js_fill_record_crcs, NULL, &fn) !=
          napi_ok ||
      napi_set_named_property(env, exports, "fillRecordCrcs", fn) != napi_ok ||
      napi_get_boolean(env, use_simd != 0, &simd) != napi_ok ||
      napi_set_named_property(env, exports, "simd", simd) != napi_ok) {
    napi_throw_error(env, NULL, "tsmq_native: cannot set up the exports");
    return NULL;
  }
  return exports;
}
