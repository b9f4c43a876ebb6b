/**
 * Java's value model, as RocketMQ's filter evaluates it: a value is NULL, a Boolean, a String, an
 * Integer (32-bit), a Long (64-bit, kept as a bigint) or a Double. Message properties are always
 * Strings; numbers come from literals. Comparing two values of different types converts one side
 * (ComparisonExpression.__compare, with string conversion on, as SelectorParser.parse turns it on):
 *
 *   left \ right | Integer      Long         Double       String            Boolean
 *   Integer      | =            left→Long    left→Double  right→Integer*    -1
 *   Long         | right→Long   =            left→Double  right→Long*       -1
 *   Double       | right→Double right→Double =            right→Double*     -1
 *   String       | left→Int*    left→Long*   left→Double* =                 left→Boolean
 *   Boolean      | -1           -1           -1           error (Java bug)  =
 *
 * `*` a string that does not parse is an error, and any error makes the whole filter not match
 * (the broker catches it). `-1` means "less than", so `=` is false but `<` is true.
 */

export class JInt {
  constructor(readonly v: number) {}
}
export class JDouble {
  constructor(readonly v: number) {}
}
/** A Java value: null, Boolean, String, Integer, Long (bigint), Double. */
export type JValue = null | boolean | string | JInt | bigint | JDouble;

/** Thrown while evaluating when RocketMQ's Java code would throw; the filter then does not match. */
export class EvalFault extends Error {}

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;
const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;

/** Integer.valueOf: optional sign and ASCII digits, within 32 bits. */
export function parseJavaInt(s: string): JInt {
  if (!/^[+-]?\d+$/.test(s)) throw new EvalFault(`not an int: ${s}`);
  const v = Number(s);
  if (v < INT_MIN || v > INT_MAX) throw new EvalFault(`int out of range: ${s}`);
  return new JInt(v === 0 ? 0 : v);
}

/** Long.valueOf: optional sign and ASCII digits, within 64 bits. */
export function parseJavaLong(s: string): bigint {
  if (!/^[+-]?\d+$/.test(s)) throw new EvalFault(`not a long: ${s}`);
  const v = BigInt(s);
  if (v < LONG_MIN || v > LONG_MAX) throw new EvalFault(`long out of range: ${s}`);
  return v;
}

const DOUBLE_RE = /^[+-]?(?:NaN|Infinity|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fFdD]?)$/;

/** Double.valueOf: Java trims characters up to U+0020, then a decimal form (no hex floats here). */
export function parseJavaDouble(s: string): JDouble {
  let a = 0;
  let b = s.length;
  while (a < b && s.charCodeAt(a) <= 0x20) a++;
  while (b > a && s.charCodeAt(b - 1) <= 0x20) b--;
  const t = s.slice(a, b);
  if (!DOUBLE_RE.test(t)) throw new EvalFault(`not a double: ${s}`);
  const body = /[fFdD]$/.test(t) && !t.endsWith('Infinity') ? t.slice(0, -1) : t;
  return new JDouble(Number(body));
}

/** Double.compare: NaN above everything and equal to itself; -0.0 below 0.0. */
function compareDouble(a: number, b: number): number {
  if (a < b) return -1;
  if (a > b) return 1;
  if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : 1;
  if (Number.isNaN(b)) return -1;
  if (a === 0 && b === 0) {
    const na = Object.is(a, -0);
    const nb = Object.is(b, -0);
    return na === nb ? 0 : na ? -1 : 1;
  }
  return 0;
}

function sign(x: number): number {
  return x < 0 ? -1 : x > 0 ? 1 : 0;
}

/** Both values non-null and of one type: Java's compareTo. */
function compareSame(l: Exclude<JValue, null>, r: Exclude<JValue, null>): number {
  if (typeof l === 'string') return l < (r as string) ? -1 : l > (r as string) ? 1 : 0;
  if (typeof l === 'boolean') return l === r ? 0 : l ? 1 : -1;
  if (typeof l === 'bigint') return l < (r as bigint) ? -1 : l > (r as bigint) ? 1 : 0;
  if (l instanceof JInt) return sign(l.v - (r as JInt).v);
  return compareDouble(l.v, (r as JDouble).v);
}

function toDouble(v: JInt | bigint): JDouble {
  return new JDouble(typeof v === 'bigint' ? Number(v) : v.v);
}

/** ComparisonExpression.__compare with string conversion on: the table in this file's header. */
export function javaCompare(l: Exclude<JValue, null>, r: Exclude<JValue, null>): number {
  if (typeof l === 'string') {
    if (typeof r === 'string') return compareSame(l, r);
    if (typeof r === 'boolean') return compareSame(l.toLowerCase() === 'true', r);
    if (r instanceof JInt) return compareSame(parseJavaInt(l), r);
    if (typeof r === 'bigint') return compareSame(parseJavaLong(l), r);
    return compareSame(parseJavaDouble(l), r);
  }
  if (typeof l === 'boolean') {
    if (typeof r === 'boolean') return compareSame(l, r);
    // RocketMQ casts the Boolean to String here and throws ClassCastException.
    if (typeof r === 'string') throw new EvalFault('boolean compared with string');
    return -1;
  }
  if (typeof r === 'boolean') return -1;
  if (l instanceof JInt) {
    if (r instanceof JInt) return compareSame(l, r);
    if (typeof r === 'bigint') return compareSame(BigInt(l.v), r);
    if (r instanceof JDouble) return compareSame(toDouble(l), r);
    return compareSame(l, parseJavaInt(r));
  }
  if (typeof l === 'bigint') {
    if (typeof r === 'bigint') return compareSame(l, r);
    if (r instanceof JInt) return compareSame(l, BigInt(r.v));
    if (r instanceof JDouble) return compareSame(toDouble(l), r);
    return compareSame(l, parseJavaLong(r));
  }
  if (r instanceof JDouble) return compareSame(l, r);
  if (typeof r === 'string') return compareSame(l, parseJavaDouble(r));
  return compareSame(l, toDouble(r));
}

/** Object.equals between two non-null values (same type and same value). */
export function javaEquals(l: Exclude<JValue, null>, r: Exclude<JValue, null>): boolean {
  if (typeof l !== 'object' || typeof r !== 'object') return l === r;
  if (l instanceof JInt) return r instanceof JInt && l.v === r.v;
  return r instanceof JDouble && compareDouble(l.v, r.v) === 0;
}

/** UnaryExpression's negate: numbers flip sign (Java wraps on overflow), anything else is NULL. */
export function javaNegate(v: JValue): JValue {
  if (v instanceof JInt) return new JInt(v.v === INT_MIN ? INT_MIN : -v.v === 0 ? 0 : -v.v);
  if (typeof v === 'bigint') return v === LONG_MIN ? LONG_MIN : -v;
  if (v instanceof JDouble) return new JDouble(-v.v);
  return null;
}
