import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  compileSql92,
  SQL92_MAX_DEPTH,
  SQL92_MAX_LENGTH,
  SQL92_MAX_TREE_DEPTH,
} from '../../src/message/index.js';

type Props = Record<string, string>;

function matches(expression: string, props: Props): boolean {
  const r = compileSql92(expression);
  if (!r.ok) assert.fail(`${JSON.stringify(expression)} should compile: ${r.message}`);
  assert.equal(r.filter.expression, expression);
  return r.filter.matches((name) => (Object.hasOwn(props, name) ? props[name] : undefined));
}

/** [expression, properties, expected match] — expected values follow RocketMQ's Java semantics. */
const cases: [string, Props, boolean][] = [
  // Ordering against an Integer literal: the string property is read with Integer.valueOf.
  ['a > 5', { a: '10' }, true],
  ['a > 5', { a: '5' }, false],
  ['a > 5', { a: '3' }, false],
  ['a > 5', {}, false],
  ['a > 5', { a: 'x' }, false], // Integer.valueOf fails: the broker does not deliver
  ['a > 5', { a: '10.5' }, false], // same: not an int
  ['a > 5', { a: '3000000000' }, false], // beyond int: fails
  ['a > 5', { a: '1e1' }, false],
  ['a < 5', { a: 'x' }, false],
  ['a < 5', { a: ' 3' }, false], // Integer.valueOf does not trim
  ['a < 5', { a: '3' }, true],
  ['a < 5', { a: '-3' }, true],
  ['a < 5', { a: '+3' }, true],
  ['a >= 5', { a: '5' }, true],
  ['a >= 5', { a: '4' }, false],
  ['a <= 5', { a: '5' }, true],
  ['a <= 5', { a: '6' }, false],
  ['5 < a', { a: '6' }, true],
  ['5 < a', { a: 'x' }, false],
  // Against a Long literal (beyond 32 bits) the property is read as a long.
  ['a > 2147483648', { a: '3000000000' }, true],
  ['a > 9223372036854775806', { a: '9223372036854775807' }, true],
  ['a = 9223372036854775807', { a: '9223372036854775807' }, true],
  ['a = 10L', { a: '10' }, true],
  // Against a Double literal the property is read with Double.valueOf (trims, NaN, Infinity, suffix).
  ['a > 5.0', { a: '10.5' }, true],
  ['a > 5.0', { a: ' 10.5 ' }, true],
  ['a > 5.0', { a: '1e3' }, true],
  ['a > 5.0', { a: '10f' }, true],
  ['a > 5.0', { a: 'NaN' }, true], // Double.compare puts NaN above everything
  ['a > 5.0', { a: 'Infinity' }, true],
  ['a < 5.0', { a: '-Infinity' }, true],
  ['a > 5.0', { a: 'abc' }, false],
  ['a > .5', { a: '0.6' }, true],
  ['a > 5.', { a: '6' }, true],
  ['a < 5E1', { a: '49' }, true],
  ['a < 5.5e-1', { a: '0.5' }, true],
  ['a > 5.5e+1', { a: '55' }, false],
  // Two properties under an ordering are both read as doubles.
  ['a > b', { a: '10', b: '9' }, true],
  ['a > b', { a: 'x', b: '1' }, false],
  ['a > b', { a: '1' }, false],
  // Equality: same type compares values; a string against a number converts the string.
  ['a = 10', { a: '10' }, true],
  ['a = 10', { a: '010' }, true],
  ['a = 10', { a: 'abc' }, false],
  ['a = 10.0', { a: '10' }, true],
  ["a = '10'", { a: '10' }, true],
  ["a = '10'", { a: '010' }, false],
  ["a = '10'", {}, false],
  ["a <> '10'", { a: '11' }, true],
  ["a <> '10'", { a: '10' }, false],
  ["a <> '10'", {}, false], // NOT unknown is unknown
  ['a <> 10', { a: 'abc' }, false],
  ['a = TRUE', { a: 'TRUE' }, true],
  ['a = TRUE', { a: 'yes' }, false],
  ['a = FALSE', { a: 'yes' }, true], // Boolean.valueOf("yes") is false
  ['TRUE = a', { a: 'true' }, false], // RocketMQ throws ClassCastException here
  ["'10' = a", {}, false],
  ["NOT ('10' = a)", {}, true], // a missing right side is FALSE, not unknown
  ["NOT (a = '10')", {}, false],
  ['a = b', {}, true], // both missing: equal
  ['a = b', { a: 'x', b: 'x' }, true],
  ['a = b', { a: 'x' }, false],
  ['1 = 1', {}, true],
  ['1 = 1.0', {}, true],
  ['2147483648 = 2147483648.0', {}, true],
  ['1 = TRUE', {}, false],
  ['1 <> TRUE', {}, true],
  ['(a > 1) = TRUE', { a: '2' }, true],
  ['(a > 1) = FALSE', { a: '2' }, false],
  ['5 > 3', {}, true],
  ['-5 < -3', {}, true],
  ['- - 5 = 5', {}, true],
  ['+5 = 5', {}, true],
  ['-a > 3', { a: '1' }, false], // negating a string gives NULL
  ['-a IS NULL', { a: '1' }, true],
  ['a > -2147483648', { a: '0' }, true],
  // IS [NOT] NULL
  ['a IS NULL', {}, true],
  ['a IS NULL', { a: '' }, false],
  ['a IS NOT NULL', { a: '' }, true],
  ['a IS NOT NULL', {}, false],
  ['NULL IS NULL', {}, true],
  ['a IS NULL IS NULL', {}, false],
  // BETWEEN is a >= x AND a <= y; NOT BETWEEN is a < x OR a > y.
  ['a BETWEEN 1 AND 3', { a: '2' }, true],
  ['a BETWEEN 1 AND 3', { a: '1' }, true],
  ['a BETWEEN 1 AND 3', { a: '3' }, true],
  ['a BETWEEN 1 AND 3', { a: '4' }, false],
  ['a BETWEEN 1 AND 3', {}, false],
  ['a BETWEEN 1 AND 3', { a: 'x' }, false],
  ['a BETWEEN 1 AND 2.5', { a: '2' }, true],
  ['a BETWEEN 1 AND 2.5', { a: '2.5' }, false], // a >= 1 reads '2.5' as an int and fails
  ['a BETWEEN 1 AND 3 AND b = 1', { a: '2', b: '1' }, true],
  ['a NOT BETWEEN 1 AND 3', { a: '4' }, true],
  ['a NOT BETWEEN 1 AND 3', { a: '0' }, true],
  ['a NOT BETWEEN 1 AND 3', { a: '2' }, false],
  ['a NOT BETWEEN 1 AND 3', {}, false],
  ['a NOT BETWEEN 3 AND 1', { a: '2' }, true], // no bound check for NOT BETWEEN
  ['a BETWEEN -3 AND -5', { a: '-4' }, false], // negated bounds are not constants: accepted, empty
  // IN compares strings only.
  ["a IN ('x', 'y')", { a: 'x' }, true],
  ["a IN ('x', 'y')", { a: 'z' }, false],
  ["a IN ('x', 'y')", {}, false],
  ["a IN ('1', '2', '3', '4', '5', '6')", { a: '6' }, true],
  ["a NOT IN ('x', 'y')", { a: 'z' }, true],
  ["a NOT IN ('x', 'y')", { a: 'x' }, false],
  ["a NOT IN ('x', 'y')", {}, false],
  ["NOT (a IN ('x'))", {}, false],
  // CONTAINS / STARTSWITH / ENDSWITH: missing or empty search gives FALSE, for the NOT forms too.
  ["a CONTAINS 'bc'", { a: 'abcd' }, true],
  ["a CONTAINS 'bc'", { a: 'x' }, false],
  ["a CONTAINS 'bc'", {}, false],
  ["a NOT CONTAINS 'bc'", { a: 'x' }, true],
  ["a NOT CONTAINS 'bc'", { a: 'abcd' }, false],
  ["a NOT CONTAINS 'bc'", {}, false],
  ["NOT (a CONTAINS 'bc')", {}, true],
  ["a CONTAINS ''", { a: 'x' }, false],
  ["a NOT CONTAINS ''", { a: 'x' }, false],
  ["a STARTSWITH 'ab'", { a: 'abc' }, true],
  ["a STARTSWITH 'ab'", { a: 'cab' }, false],
  ["a NOT STARTSWITH 'ab'", { a: 'cab' }, true],
  ["a NOT STARTSWITH 'ab'", {}, false],
  ["a ENDSWITH 'ab'", { a: 'cab' }, true],
  ["a ENDSWITH 'ab'", { a: 'abc' }, false],
  ["a NOT ENDSWITH 'ab'", { a: 'abc' }, true],
  ["a NOT ENDSWITH 'ab'", { a: 'cab' }, false],
  ["'abc' CONTAINS 'b'", {}, true],
  ["(a > 1) CONTAINS 'true'", { a: '2' }, false], // not a string
  // Three-valued logic.
  ["a = '1' AND b = '2'", { a: '1', b: '2' }, true],
  ["a = '1' AND b = '2'", { a: '1', b: '3' }, false],
  ["a = '1' AND b = '2'", { b: '2' }, false],
  ["NOT (a = '1' AND b = '2')", { b: '3' }, true], // unknown AND false = false
  ["NOT (a = '1' AND b = '2')", { b: '2' }, false], // unknown AND true = unknown
  ["NOT (b = '2' AND a = '1')", { b: '3' }, true],
  ["a = '1' OR b = '2'", { b: '2' }, true], // unknown OR true = true
  ["a = '1' OR b = '2'", { b: '3' }, false],
  ["NOT (a = '1' OR b = '2')", { b: '3' }, false], // unknown OR false = unknown
  ["NOT (a = '1' OR b = '2')", { a: '0', b: '3' }, true],
  ["NOT (a = '1' OR b = '2')", { b: '2' }, false],
  ["NOT NOT (a = '1')", { a: '1' }, true],
  ["NOT (NOT (a = '1'))", {}, false],
  ["a = '1' OR b = '2' AND c = '3'", { a: '1' }, true], // AND binds tighter than OR
  ["(a = '1' OR b = '2') AND c = '3'", { a: '1' }, false],
  ["NOT a = '1'", { a: '1' }, false], // NOT takes one operand: (NOT a) = '1'
  ["NOT a = '1'", { a: '2' }, false],
  // A fault anywhere stops the evaluation, unless AND/OR short-circuited before it.
  ["a > 5 OR b = 'x'", { a: 'abc', b: 'x' }, false],
  ["b = 'x' OR a > 5", { a: 'abc', b: 'x' }, true],
  ["NOT (b = 'x' AND a > 5)", { a: 'abc', b: 'y' }, true],
  ["NOT (a > 5 AND b = 'x')", { a: 'abc', b: 'y' }, false],
  // Boolean literals and a property standing alone as a condition.
  ['TRUE', {}, true],
  ['FALSE', {}, false],
  ['NULL', {}, false],
  ['NOT NULL', {}, false],
  ['NOT FALSE', {}, true],
  ['a', { a: 'true' }, false], // a string is never a Boolean
  ['a', {}, false],
  ['NOT a', { a: 'x' }, true],
  ['NOT a', {}, false],
  ['a OR TRUE', {}, true],
  // Strings, escapes, identifiers, case, comments, whitespace.
  ["a = 'it''s'", { a: "it's" }, true],
  ["a = ''''", { a: "'" }, true],
  ["a = ''", { a: '' }, true],
  ["a = 'two\nlines'", { a: 'two\nlines' }, true],
  ["a = 'é日本'", { a: 'é日本' }, true],
  ["$a_1 = 'x'", { $a_1: 'x' }, true],
  ['_x IS NULL', {}, true],
  ["A = 'x'", { a: 'x' }, false], // property names are case-sensitive
  ["notA = 'x'", { notA: 'x' }, true], // a keyword prefix is still an identifier
  ["a Is NoT nUlL aNd b bEtWeEn 1 AnD 2 oR c iN ('z') And d CoNtAiNs 'q'", { a: '1', b: '2' }, true],
  ['tRuE', {}, true],
  ["a nOt StArTsWiTh 'x'", { a: 'y' }, true],
  ["/* lead */ a = '1' -- trailing\n", { a: '1' }, true],
  ["a = '1' /* a = '2' */ AND b IS NULL", { a: '1' }, true],
  ["\ta\r\n=\f'1'\n", { a: '1' }, true],
  ["a='1'AND(b='2')", { a: '1', b: '2' }, true],
];

test('table: expressions × properties → match, as RocketMQ evaluates them', () => {
  const wrong: string[] = [];
  for (const [expression, props, expected] of cases) {
    if (matches(expression, props) !== expected) {
      wrong.push(`${JSON.stringify(expression)} with ${JSON.stringify(props)} should be ${expected}`);
    }
  }
  assert.deepEqual(wrong, []);
});

/** [expression, error position, fragment of the message] */
const invalid: [string, number, string][] = [
  ['', 0, 'expected an expression'],
  ['   ', 3, 'expected an expression'],
  ['price >', 7, "expected a value after '>', found the end at position 7"],
  ['price > )', 8, "expected a value after '>'"],
  ['a =', 3, "expected a value after '='"],
  ['a BETWEEN', 9, "expected a value after 'BETWEEN'"],
  ['a AND', 5, "expected an expression after 'AND'"],
  ['a OR', 4, "expected an expression after 'OR'"],
  ['(a = 1', 6, "expected ')'"],
  ['()', 1, 'expected an expression'],
  ['a = 1)', 5, 'expected an operator, AND, OR or the end'],
  ["a = 'x", 4, 'unterminated string'],
  ['a # 1', 2, 'unexpected character "#"'],
  ['a != 1', 2, 'unexpected character "!"'],
  ['a.b = 1', 1, 'unexpected character "."'],
  ['007 = a', 1, "after '0'"],
  ['a = 1 -- no line break', 6, 'expected an operator'],
  ['/* open', 0, 'unterminated comment'],
  ['a IN (1, 2)', 6, "expected a string literal after '('"],
  ["a IN 'x'", 5, "expected '('"],
  ["a IN ('x'", 9, "expected ',' or ')'"],
  ["a IN ('x',)", 10, "expected a string literal after ','"],
  ['a IN ()', 6, 'expected a string literal'],
  ["1 IN ('x')", 2, 'IN needs a property'],
  ['a CONTAINS b', 11, "expected a string literal after 'CONTAINS'"],
  ['a NOT STARTSWITH 1', 17, 'expected a string literal'],
  ["a > 'x'", 4, "expected a number or a property as operand of '>', found ''x''"],
  ['a > TRUE', 4, 'as operand'],
  ['a < NULL', 4, 'as operand'],
  ["'x' <= a", 0, 'as operand'],
  ['a > 5 > 3', 0, 'found a condition'],
  ["a BETWEEN 'a' AND 'b'", 10, 'as operand'],
  ['a = NULL', 4, 'use IS NULL'],
  ['NULL <> a', 0, 'use IS NULL'],
  ['TRUE = 1', 5, 'a boolean cannot be compared'],
  ['a BETWEEN 3 AND 1', 10, 'lower bound is above its upper bound'],
  ['a BETWEEN NULL AND 1', 10, 'cannot be NULL'],
  ['a BETWEEN 1 OR 2', 12, 'expected AND of BETWEEN'],
  ['a IS 1', 5, 'expected NULL or NOT NULL'],
  ['a IS NOT 1', 9, "expected NULL after 'NOT'"],
  ['1', 0, 'expected a boolean expression'],
  ["'x'", 0, 'expected a boolean expression'],
  ['-a', 0, 'expected a boolean expression'],
  ['a = 1 AND 5', 10, 'expected a boolean expression'],
  ["5 OR a = 'x'", 0, 'expected a boolean expression'],
  ['NOT 5', 4, 'expected a boolean expression'],
  ['a NOT 1', 2, "found 'NOT'"],
  ["in = 'x'", 0, 'expected a value'],
  ['a > 9223372036854775808', 4, 'out of range'],
  ['a > -9223372036854775808', 5, 'out of range'],
  ['a > 1e999', 4, 'too large'],
  ['a > 0.0', 4, 'below Double.MIN_VALUE'],
  ['a > 1e-999', 4, 'below Double.MIN_VALUE'],
];

test('invalid expressions: position and message', () => {
  for (const [expression, position, fragment] of invalid) {
    const r = compileSql92(expression);
    assert.equal(r.ok, false, `${JSON.stringify(expression)} should not compile`);
    if (r.ok) continue;
    assert.equal(r.position, position, `${JSON.stringify(expression)}: ${r.message}`);
    assert.ok(r.message.includes(fragment), `${JSON.stringify(expression)}: ${r.message} lacks ${fragment}`);
    assert.ok(r.message.includes(`position ${position}`), r.message);
  }
});

test('limits: length and nesting depth are refused with a position, never a stack overflow', () => {
  const atLimit = `a = '${'x'.repeat(SQL92_MAX_LENGTH - 6)}'`;
  assert.equal(atLimit.length, SQL92_MAX_LENGTH);
  assert.ok(compileSql92(atLimit).ok);
  const over = compileSql92(`${atLimit} `);
  assert.deepEqual(over.ok ? undefined : over.position, SQL92_MAX_LENGTH);

  const nest = (d: number) => `${'('.repeat(d)}a IS NULL${')'.repeat(d)}`;
  assert.ok(compileSql92(nest(SQL92_MAX_DEPTH)).ok);
  const deep = compileSql92(nest(SQL92_MAX_DEPTH + 1));
  assert.ok(!deep.ok && deep.position === SQL92_MAX_DEPTH && deep.message.includes('nesting'));
  const nots = compileSql92(`${'NOT '.repeat(SQL92_MAX_DEPTH + 1)}a`);
  assert.ok(!nots.ok && nots.message.includes('nesting'));
  const minus = compileSql92(`${'-'.repeat(SQL92_MAX_DEPTH + 1)}a IS NULL`);
  assert.ok(!minus.ok && minus.message.includes('nesting'));
  // Operator chains other than AND/OR build deep trees: refused past the tree limit.
  const eqChain = (k: number) => Array.from({ length: k }, () => 'a').join(' = ');
  assert.ok(compileSql92(eqChain(SQL92_MAX_TREE_DEPTH)).ok);
  const tall = compileSql92(eqChain(SQL92_MAX_TREE_DEPTH + 1));
  assert.ok(!tall.ok && tall.position === 0 && tall.message.includes('nested deeper'));
  const isNulls = compileSql92(`a${' IS NULL'.repeat(SQL92_MAX_TREE_DEPTH + 1)}`);
  assert.ok(!isNulls.ok && isNulls.message.includes('nested deeper'));
  // Long AND/OR chains are loops, not recursion, and do not count against the tree limit.
  const ors = compileSql92(`${Array.from({ length: 700 }, () => "a = 'x'").join(' OR ')} OR b IS NULL`);
  assert.ok(ors.ok && ors.filter.matches(() => undefined));
  assert.ok(ors.ok && !ors.filter.matches(() => 'y'));
  const chain = Array.from({ length: 300 }, (_, i) => `p${i} IS NULL`).join(' AND ');
  const c = compileSql92(chain);
  assert.ok(c.ok && c.filter.matches(() => undefined));
  assert.ok(c.ok && !c.filter.matches((n) => (n === 'p299' ? 'x' : undefined)));
});

test('compile once, evaluate many: a filter is reusable and reads properties only through get', () => {
  const r = compileSql92("region = 'eu' AND price BETWEEN 10 AND 20 AND tag IN ('a', 'b')");
  assert.ok(r.ok);
  let hits = 0;
  let expected = 0;
  for (let i = 0; i < 10_000; i++) {
    const props: Props = { region: i % 2 === 0 ? 'eu' : 'us', price: String(i % 30), tag: 'a' };
    if (r.filter.matches((n) => props[n])) hits++;
    if (i % 2 === 0 && i % 30 >= 10 && i % 30 <= 20) expected++;
  }
  assert.equal(hits, expected);
});
