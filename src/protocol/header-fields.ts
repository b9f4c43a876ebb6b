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

/** An integer field (Java int or long); longs beyond 2^53 are rejected rather than rounded. */
export function int(f: Fields, name: string): number {
  const v = str(f, name).trim();
  const n = /^-?\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new HeaderError(`the custom field <${name}> is not a number: ${v}`);
  return n;
}

export function optInt(f: Fields, name: string): number | undefined {
  return f?.[name] === undefined ? undefined : int(f, name);
}
