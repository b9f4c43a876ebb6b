/**
 * Seeded fuzzing of the SQL92 filter: random text, token soups and mutated valid expressions must
 * compile to ok or ok:false without throwing or hanging, and random well-typed trees, printed with
 * random spacing, case and parentheses, must compile and match exactly as a small reference
 * evaluator written here from RocketMQ's rules says. Replay a failure with TSMQ_SEED=<n>.
 */
import assert from 'node:assert/strict';
import { compileSql92 } from '../../src/message/index.js';
import { type Rng, seeded } from '../../test-support/prng.js';

type Props = Record<string, string | undefined>;
const NAMES = ['a', 'b', 'c', 'price', '$x', 'k_1'];
const VALUES = [
  undefined,
  '5',
  '10',
  '-3',
  'abc',
  '',
  '2.5',
  "it's",
  '3000000000',
  ' 7',
  'TRUE',
  'NaN',
  '1e1',
];

function randomProps(rng: Rng): Props {
  const p: Props = {};
  for (const n of NAMES) p[n] = rng.pick(VALUES);
  return p;
}

// ---- A well-typed tree, its printer and a reference evaluator -----------------------------------

type NumLit = { t: 'int'; v: number } | { t: 'long'; v: bigint } | { t: 'double'; v: number };
type Cond =
  | { k: 'cmp'; p: string; op: '>' | '>=' | '<' | '<='; n: NumLit }
  | { k: 'eqStr'; p: string; ne: boolean; s: string }
  | { k: 'eqNum'; p: string; ne: boolean; n: NumLit }
  | { k: 'isNull'; p: string; not: boolean }
  | { k: 'between'; p: string; not: boolean; lo: number; hi: number }
  | { k: 'in'; p: string; not: boolean; list: string[] }
  | { k: 'str'; p: string; op: 'CONTAINS' | 'STARTSWITH' | 'ENDSWITH'; not: boolean; s: string }
  | { k: 'lit'; v: boolean }
  | { k: 'and' | 'or'; l: Cond; r: Cond }
  | { k: 'not'; e: Cond };

const STRINGS = ['abc', 'a', '', "it's", '5', 'TRUE', 'x y', "''"];

function randomNum(rng: Rng): NumLit {
  const r = rng.next();
  if (r < 0.7) return { t: 'int', v: rng.int(-12, 12) };
  if (r < 0.8) return { t: 'long', v: rng.pick([3000000000n, 2n ** 40n, 9223372036854775807n]) };
  return { t: 'double', v: rng.pick([2.5, 0.5, 7.25, 1e3, 3]) };
}

function randomCond(rng: Rng, depth: number): Cond {
  if (depth > 0 && rng.bool(0.45)) {
    const r = rng.next();
    if (r < 0.4) return { k: 'and', l: randomCond(rng, depth - 1), r: randomCond(rng, depth - 1) };
    if (r < 0.8) return { k: 'or', l: randomCond(rng, depth - 1), r: randomCond(rng, depth - 1) };
    return { k: 'not', e: randomCond(rng, depth - 1) };
  }
  const p = rng.pick(NAMES);
  switch (rng.int(0, 7)) {
    case 0:
      return { k: 'cmp', p, op: rng.pick(['>', '>=', '<', '<='] as const), n: randomNum(rng) };
    case 1:
      return { k: 'eqStr', p, ne: rng.bool(), s: rng.pick(STRINGS) };
    case 2:
      return { k: 'eqNum', p, ne: rng.bool(), n: randomNum(rng) };
    case 3:
      return { k: 'isNull', p, not: rng.bool() };
    case 4: {
      const lo = rng.int(-10, 10);
      return { k: 'between', p, not: rng.bool(), lo, hi: lo + rng.int(0, 10) };
    }
    case 5:
      return {
        k: 'in',
        p,
        not: rng.bool(),
        list: STRINGS.filter(() => rng.bool(0.4)).concat(rng.pick(STRINGS)),
      };
    case 6:
      return {
        k: 'str',
        p,
        op: rng.pick(['CONTAINS', 'STARTSWITH', 'ENDSWITH'] as const),
        not: rng.bool(),
        s: rng.pick(STRINGS),
      };
    default:
      return { k: 'lit', v: rng.bool() };
  }
}

function printer(rng: Rng) {
  const kw = (w: string) =>
    rng.bool(0.3)
      ? [...w].map((ch) => (rng.bool() ? ch.toLowerCase() : ch)).join('')
      : rng.bool()
        ? w
        : w.toLowerCase();
  const sp = () => rng.pick([' ', ' ', '  ', '\t', '\n', ' /* c */ ', ' -- c\n']);
  const str = (s: string) => `'${s.replaceAll("'", "''")}'`;
  const num = (n: NumLit) => {
    if (n.t === 'long') return rng.bool() ? `${n.v}` : `${n.v}L`;
    if (n.t === 'int') return `${n.v}`;
    return rng.pick([
      String(n.v).includes('.') || String(n.v).includes('e') ? String(n.v) : `${n.v}.0`,
      n.v.toExponential(),
    ]);
  };
  const print = (c: Cond): string => {
    const s = printBare(c);
    return rng.bool(0.2) ? `(${sp()}${s}${sp()})` : s;
  };
  const printBare = (c: Cond): string => {
    switch (c.k) {
      case 'cmp':
        return `${c.p}${sp()}${c.op}${sp()}${num(c.n)}`;
      case 'eqStr':
        return `${c.p}${sp()}${c.ne ? '<>' : '='}${sp()}${str(c.s)}`;
      case 'eqNum':
        return `${c.p}${sp()}${c.ne ? '<>' : '='}${sp()}${num(c.n)}`;
      case 'isNull':
        return `${c.p}${sp()}${kw('IS')}${sp()}${c.not ? `${kw('NOT')}${sp()}` : ''}${kw('NULL')}`;
      case 'between':
        return `${c.p}${sp()}${c.not ? `${kw('NOT')}${sp()}` : ''}${kw('BETWEEN')}${sp()}${c.lo}${sp()}${kw('AND')}${sp()}${c.hi}`;
      case 'in':
        return `${c.p}${sp()}${c.not ? `${kw('NOT')}${sp()}` : ''}${kw('IN')}${sp()}(${c.list.map(str).join(`,${sp()}`)})`;
      case 'str':
        return `${c.p}${sp()}${c.not ? `${kw('NOT')}${sp()}` : ''}${kw(c.op)}${sp()}${str(c.s)}`;
      case 'lit':
        return kw(c.v ? 'TRUE' : 'FALSE');
      case 'and':
      case 'or':
        // Parenthesise both sides: the tree fixes the grouping, the printer must keep it.
        return `(${print(c.l)})${sp()}${kw(c.k.toUpperCase())}${sp()}(${print(c.r)})`;
      case 'not':
        return `${kw('NOT')}${sp()}(${print(c.e)})`;
    }
  };
  return print;
}

/** Where RocketMQ's Java code throws; the broker then does not deliver the message. */
class Fault extends Error {}

const javaInt = (s: string): number => {
  if (!/^[+-]?[0-9]+$/.test(s)) throw new Fault();
  const v = Number(s);
  if (v < -(2 ** 31) || v > 2 ** 31 - 1) throw new Fault();
  return v;
};
const javaLong = (s: string): bigint => {
  if (!/^[+-]?[0-9]+$/.test(s)) throw new Fault();
  const v = BigInt(s);
  if (v < -(2n ** 63n) || v > 2n ** 63n - 1n) throw new Fault();
  return v;
};
const javaDouble = (s: string): number => {
  // Java's String.trim drops characters up to U+0020 at both ends.
  let a = 0;
  let b = s.length;
  while (a < b && s.charCodeAt(a) <= 32) a++;
  while (b > a && s.charCodeAt(b - 1) <= 32) b--;
  const t = s.slice(a, b);
  if (t === 'NaN' || t === '+NaN' || t === '-NaN') return Number.NaN;
  if (!/^[+-]?(Infinity|([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[fFdD]?)$/.test(t)) throw new Fault();
  return Number(t.replace(/[fFdD]$/, ''));
};
/** The sign of value - literal, the way Java compares after converting the string to the literal's type. */
function compareTo(value: string, n: NumLit): number {
  if (n.t === 'int') return Math.sign(javaInt(value) - n.v);
  if (n.t === 'long') {
    const v = javaLong(value);
    return v < n.v ? -1 : v > n.v ? 1 : 0;
  }
  const v = javaDouble(value);
  if (Number.isNaN(v)) return 1;
  return v < n.v ? -1 : v > n.v ? 1 : 0;
}

type Tri = boolean | null;
function ref(c: Cond, p: Props): Tri {
  switch (c.k) {
    case 'cmp': {
      const v = p[c.p];
      if (v === undefined) return null;
      const s = compareTo(v, c.n);
      return c.op === '>' ? s > 0 : c.op === '>=' ? s >= 0 : c.op === '<' ? s < 0 : s <= 0;
    }
    case 'eqStr':
    case 'eqNum': {
      const v = p[c.p];
      if (v === undefined) return null;
      const eq = c.k === 'eqStr' ? v === c.s : compareTo(v, c.n) === 0;
      return eq !== c.ne;
    }
    case 'isNull':
      return (p[c.p] === undefined) !== c.not;
    case 'between': {
      const v = p[c.p];
      if (v === undefined) return null;
      const x = javaInt(v);
      return c.not ? x < c.lo || x > c.hi : x >= c.lo && x <= c.hi;
    }
    case 'in': {
      const v = p[c.p];
      if (v === undefined) return null;
      return c.list.includes(v) !== c.not;
    }
    case 'str': {
      const v = p[c.p];
      if (v === undefined || c.s === '') return false;
      const hit =
        c.op === 'CONTAINS' ? v.includes(c.s) : c.op === 'STARTSWITH' ? v.startsWith(c.s) : v.endsWith(c.s);
      return hit !== c.not;
    }
    case 'lit':
      return c.v;
    case 'and': {
      const l = ref(c.l, p);
      if (l === false) return false;
      const r = ref(c.r, p);
      if (r === false) return false;
      return l === null || r === null ? null : true;
    }
    case 'or': {
      const l = ref(c.l, p);
      if (l === true) return true;
      const r = ref(c.r, p);
      if (r === true) return true;
      return l === null || r === null ? null : false;
    }
    case 'not': {
      const v = ref(c.e, p);
      return v === null ? null : !v;
    }
  }
}

function refMatches(c: Cond, p: Props): boolean {
  try {
    return ref(c, p) === true;
  } catch (e) {
    if (e instanceof Fault) return false;
    throw e;
  }
}

// ---- The fuzz tests --------------------------------------------------------------------------

/** Compiles and, when it compiles, evaluates against random properties; nothing may throw. */
function mustNotThrow(rng: Rng, src: string): boolean {
  const r = compileSql92(src);
  if (r.ok) {
    for (let i = 0; i < 3; i++) {
      const p = randomProps(rng);
      r.filter.matches((n) => p[n]);
    }
  } else {
    assert.ok(Number.isInteger(r.position) && r.position >= 0 && r.position <= src.length, r.message);
    assert.ok(r.message.includes(`position ${r.position}`), r.message);
  }
  return r.ok;
}

seeded('random valid trees: printed, reparsed and evaluated like the reference', 1, (rng) => {
  for (let i = 0; i < 2500; i++) {
    const tree = randomCond(rng, rng.int(0, 5));
    const src = printer(rng)(tree);
    const r = compileSql92(src);
    if (!r.ok) assert.fail(`${JSON.stringify(src)} did not compile: ${r.message}`);
    for (let j = 0; j < 6; j++) {
      const p = randomProps(rng);
      const want = refMatches(tree, p);
      assert.equal(
        r.filter.matches((n) => p[n]),
        want,
        `${JSON.stringify(src)} with ${JSON.stringify(p)}`,
      );
    }
  }
});

seeded('random text never throws: ok or ok:false with a position', 2, (rng) => {
  const alphabet = "abAZ_$09 .'()=<>!,+-*/\t\n\\é\u0000";
  for (let i = 0; i < 3000; i++) {
    const n = rng.int(0, 40);
    let s = '';
    for (let j = 0; j < n; j++)
      s += rng.bool(0.95) ? rng.pick([...alphabet]) : String.fromCharCode(rng.int(0, 0xffff));
    mustNotThrow(rng, s);
  }
});

const SOUP = [
  'a',
  'b',
  'price',
  '$x',
  "'x'",
  "'it''s'",
  "''",
  '5',
  '-',
  '+',
  '10L',
  '2.5',
  '.5',
  '5.',
  '1e3',
  '0',
  '0.0',
  '9223372036854775808',
  'TRUE',
  'false',
  'NULL',
  'NOT',
  'AND',
  'OR',
  'IS',
  'IN',
  'BETWEEN',
  'CONTAINS',
  'STARTSWITH',
  'endswith',
  '(',
  ')',
  ',',
  '=',
  '<>',
  '>',
  '>=',
  '<',
  '<=',
  '/* c */',
  '--',
  '\n',
];

seeded('token soups never throw, and some of them compile', 3, (rng) => {
  let compiled = 0;
  for (let i = 0; i < 4000; i++) {
    const n = rng.int(1, 14);
    const parts: string[] = [];
    for (let j = 0; j < n; j++) parts.push(rng.pick(SOUP));
    if (mustNotThrow(rng, parts.join(rng.bool(0.8) ? ' ' : ''))) compiled++;
  }
  assert.ok(compiled > 20, `only ${compiled} soups compiled`);
});

seeded('mutated valid expressions never throw', 4, (rng) => {
  for (let i = 0; i < 2000; i++) {
    let s = printer(rng)(randomCond(rng, 4));
    for (let m = rng.int(1, 4); m > 0; m--) {
      const at = rng.int(0, s.length);
      const r = rng.next();
      if (r < 0.33) s = s.slice(0, at) + s.slice(at + rng.int(1, 5));
      else if (r < 0.66) s = s.slice(0, at) + rng.pick(SOUP) + s.slice(at);
      else s = s.slice(0, at) + s.slice(at).split('').reverse().join('').slice(0, rng.int(0, 10));
    }
    mustNotThrow(rng, s);
  }
});

seeded('deep and long inputs are refused or compiled quickly, never overflowing the stack', 5, (rng) => {
  for (let i = 0; i < 20; i++) {
    const d = rng.int(50, 20000);
    const open = rng.pick(['(', 'NOT ', '-', 'NOT (', '+']);
    const src = `${open.repeat(d)}a IS NULL${')'.repeat(open.includes('(') ? d : 0)}`;
    const started = Date.now();
    mustNotThrow(rng, src);
    assert.ok(Date.now() - started < 500, `${d} × ${open} took too long`);
  }
});
