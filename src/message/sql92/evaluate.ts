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
    case 'and':
    case 'or': {
      // A chain `x AND y AND z` is left-nested; it runs as one loop, which short-circuits exactly
      // as LogicExpression does (AND: false wins and stops, otherwise any unknown makes the
      // result unknown; OR the same with true), so faults after the deciding operand are skipped.
      const parts = chain(n).map(compileNode);
      const decisive = n.k === 'or';
      return (get) => {
        let unknown = false;
        for (const part of parts) {
          const v = asBool(part(get));
          if (v === decisive) return decisive;
          if (v === null) unknown = true;
        }
        return unknown ? null : !decisive;
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

/** The operands of a left-nested chain of one logical operator, in evaluation order. */
function chain(n: Sql92Node & { k: 'and' | 'or' }): Sql92Node[] {
  const rights: Sql92Node[] = [];
  let cur: Sql92Node = n;
  while (cur.k === n.k) {
    const c = cur as Sql92Node & { k: 'and' | 'or' };
    rights.push(c.r);
    cur = c.l;
  }
  rights.push(cur);
  return rights.reverse();
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
