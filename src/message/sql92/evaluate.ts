/**
 * Turns a parsed tree into nested closures once, so matching a message only calls functions and
 * reads properties — no re-parsing, no tree walking by kind. Each closure returns a Java value;
 * conditions return true, false or null (unknown). Where RocketMQ's Java code would throw, the
 * closure throws EvalFault and SqlFilter.matches answers false, as the broker does.
 */
import type { Sql92Node } from './parser.js';
import { EvalFault, type JValue, javaCompare, javaEquals, javaNegate, parseJavaDouble } from './values.js';

export type PropertyGetter = (name: string) => string | undefined;
export type Evaluator = (get: PropertyGetter) => JValue;

export function compileNode(n: Sql92Node): Evaluator {
  switch (n.k) {
    case 'const': {
      const v = n.v;
      return () => v;
    }
    case 'prop': {
      const name = n.name;
      return (get) => get(name) ?? null;
    }
    case 'neg': {
      const e = compileNode(n.e);
      return (get) => javaNegate(e(get));
    }
    case 'and': {
      const l = compileNode(n.l);
      const r = compileNode(n.r);
      // LogicExpression.createAND: false wins, then unknown, and the right side is skipped when
      // the left is false (so its faults are too).
      return (get) => {
        const lv = asBool(l(get));
        if (lv === false) return false;
        const rv = asBool(r(get));
        if (rv === false) return false;
        return lv === null || rv === null ? null : true;
      };
    }
    case 'or': {
      const l = compileNode(n.l);
      const r = compileNode(n.r);
      return (get) => {
        const lv = asBool(l(get));
        if (lv === true) return true;
        const rv = asBool(r(get));
        if (rv === true) return true;
        return lv === null || rv === null ? null : false;
      };
    }
    case 'not': {
      const e = compileNode(n.e);
      return (get) => {
        const v = asBool(e(get));
        return v === null ? null : !v;
      };
    }
    case 'cast': {
      // UnaryExpression.createBooleanCast: a property alone is unknown when missing, else false
      // (a property is a string, never a Boolean).
      const e = compileNode(n.e);
      return (get) => {
        const v = e(get);
        return v === null ? null : typeof v === 'boolean' ? v : false;
      };
    }
    case 'eq': {
      const l = compileNode(n.l);
      const r = compileNode(n.r);
      // ComparisonExpression.doCreateEqual: a missing left side is unknown, a missing right side
      // is false, both missing is true (that is how IS NULL works).
      return (get) => {
        const lv = l(get);
        const rv = r(get);
        if (lv === null) return rv === null ? true : null;
        if (rv === null) return false;
        return javaEquals(lv, rv) || javaCompare(lv, rv) === 0;
      };
    }
    case 'cmp': {
      const l = compileNode(n.l);
      const r = compileNode(n.r);
      const test = CMP[n.op];
      return (get) => {
        const lv = l(get);
        if (lv === null) return null;
        const rv = r(get);
        if (rv === null) return null;
        // Two strings under an ordering are both read as doubles, or the evaluation fails.
        if (typeof lv === 'string' && typeof rv === 'string') {
          return test(javaCompare(parseJavaDouble(lv), parseJavaDouble(rv)));
        }
        return test(javaCompare(lv, rv));
      };
    }
    case 'in': {
      const name = n.name;
      const set = new Set(n.values);
      const not = n.not;
      return (get) => {
        const v = get(name);
        return v === undefined ? null : set.has(v) !== not;
      };
    }
    case 'str': {
      const e = compileNode(n.e);
      const search = n.search;
      const not = n.not;
      const test =
        n.op === 'CONTAINS'
          ? (s: string) => s.includes(search)
          : n.op === 'STARTSWITH'
            ? (s: string) => s.startsWith(search)
            : (s: string) => s.endsWith(search);
      // ContainsExpression and friends: an empty search, a missing or non-string value is plain
      // false — for the NOT forms too.
      if (search.length === 0) return () => false;
      return (get) => {
        const v = e(get);
        return typeof v === 'string' ? test(v) !== not : false;
      };
    }
  }
}

const CMP: Record<'>' | '>=' | '<' | '<=', (c: number) => boolean> = {
  '>': (c) => c > 0,
  '>=': (c) => c >= 0,
  '<': (c) => c < 0,
  '<=': (c) => c <= 0,
};

/** A condition's value; Java would throw ClassCastException on anything but a Boolean or null. */
function asBool(v: JValue): boolean | null {
  if (v === null || typeof v === 'boolean') return v;
  throw new EvalFault('not a boolean');
}
