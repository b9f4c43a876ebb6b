/**
 * Reading RocketMQ custom headers (extFields: every value a string). A missing or malformed
 * required field is answered as RocketMQ answers a header that does not decode: SYSTEM_ERROR with
 * "the custom field <name> is null" (or "... is not a number").
 */
export type Fields = Readonly<Record<string, string>> | undefined;

export class HeaderError extends Error {}

export function str(f: Fields, name: string): string {
  const v = f?.[name];
  if (v === undefined) throw new HeaderError(`the custom field <${name}> is null`);
  return v;
}

export function optStr(f: Fields, name: string): string | undefined {
  return f?.[name];
}

const DECIMAL = /^-?\d+$/;

/**
 * `text` read as a plain decimal integer ([-]digits, nothing else), else NaN: the same as
 * `/^-?\d+$/.test(text) ? Number(text) : NaN`, with up to 15 digits (every int, every long up to
 * 10^15) read by a loop instead of the pattern.
 */
export function decimal(text: string): number {
  const len = text.length;
  const negative = len > 0 && text.charCodeAt(0) === 45; // '-'
  let i = negative ? 1 : 0;
  if (len > i && len - i <= 15) {
    let v = 0;
    for (; i < len; i++) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return Number.NaN;
      v = v * 10 + d;
    }
    return negative ? -v : v;
  }
  return DECIMAL.test(text) ? Number(text) : Number.NaN;
}

/** An integer field (Java int or long); longs beyond 2^53 are rejected rather than rounded. */
export function int(f: Fields, name: string): number {
  const v = str(f, name).trim();
  const n = decimal(v);
  if (!Number.isSafeInteger(n)) throw new HeaderError(`the custom field <${name}> is not a number: ${v}`);
  return n;
}

export function optInt(f: Fields, name: string): number | undefined {
  return f?.[name] === undefined ? undefined : int(f, name);
}
