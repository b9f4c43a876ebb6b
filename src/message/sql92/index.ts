/**
 * RocketMQ's SQL92 message filter (a consumer subscribes with ExpressionType SQL92 and the broker
 * keeps only messages whose user properties satisfy the expression). Written from the behaviour of
 * RocketMQ's filter module (SelectorParser.jj, ComparisonExpression, LogicExpression,
 * UnaryExpression, ConstantExpression) and the broker's MessageEvaluationContext and
 * ExpressionMessageFilter; no code or grammar text is taken from them.
 *
 * API
 *   compileSql92(expression) → { ok: true, filter } | { ok: false, position, message }
 *     position is the 0-based offset of the offending character or token (the end for "missing
 *     something"); message names what was expected, e.g. "expected a value after '>', found the
 *     end at position 4". compileSql92 never throws.
 *   filter.matches(get) → true only when the expression evaluates to TRUE; unknown (NULL), FALSE
 *     and any evaluation fault give false. get(name) returns the message property or undefined.
 *   Compile once per subscription, then call matches per message: it runs prebuilt closures.
 *
 * Limits: SQL92_MAX_LENGTH = 8192 UTF-16 units; SQL92_MAX_DEPTH = 100 nested parentheses and
 * prefix operators (NOT, -, +), so recursion stays shallow whatever the input; SQL92_MAX_TREE_DEPTH
 * = 500 operators nested in the tree (AND/OR chains excepted: they run as loops). Errors past the
 * tree limit report position 0.
 *
 * Grammar (keywords in any case; loosest binding first):
 *   expr        := and { OR and }
 *   and         := equality { AND equality }
 *   equality    := comparison { ('=' | '<>') comparison | IS NULL | IS NOT NULL }
 *   comparison  := unary { ('>' | '>=' | '<' | '<=') unary
 *                        | [NOT] (CONTAINS | STARTSWITH | ENDSWITH) 'string'
 *                        | [NOT] BETWEEN unary AND unary
 *                        | [NOT] IN '(' 'string' { ',' 'string' } ')' }
 *   unary       := '+' unary | '-' unary | NOT unary | primary
 *   primary     := literal | identifier | '(' expr ')'
 *   literal     := 'string' ('' is a quote) | integer [L] | decimal | TRUE | FALSE | NULL
 * NOT is a prefix of a single operand, as in RocketMQ: `NOT a = '1'` means `(NOT a) = '1'`, which
 * never matches; write `NOT (a = '1')`. Comments: `/* … *\/` and `-- …` to a line break.
 * Lexical details are in lexer.ts.
 *
 * Types. Properties are strings; integer literals are Integers (Longs beyond 32 bits, up to Java's
 * long range); decimal literals (5.5, .5, 5., 5E3, 5.5e-3) are Doubles and must be ≥ 4.9e-324,
 * so `0.0` is refused (write 0). Mixed comparisons convert one side (table in values.ts):
 *
 *   expression (a is the string property) | a='10'  a='abc'  a='10.5'  a missing
 *   a > 5           (5 is an Integer)     | TRUE    fault    fault     NULL
 *   a > 5.0         (Double)              | TRUE    fault    TRUE      NULL
 *   a = 10                                | TRUE    fault    fault     NULL
 *   a = '10'        (string equality)     | TRUE    FALSE    FALSE     NULL
 *   a > b           (two strings)         | both read as Doubles, else fault
 *   a = TRUE                              | TRUE only if a is "true" in any case
 *   '10' = a                              | a missing: FALSE (NULL only when the left is missing)
 *   a = b                                 | both missing: TRUE
 *   a IS NULL / a IS NOT NULL             | a missing → TRUE / FALSE
 *   a IN ('x','y') / a NOT IN (…)         | a missing → NULL; else set membership of the string
 *   a CONTAINS 's' / a NOT CONTAINS 's'   | a missing, not a string, or s empty → FALSE (both!)
 *   a BETWEEN x AND y                     | a >= x AND a <= y; NOT BETWEEN: a < x OR a > y
 *   a  (a property alone as a condition)  | NULL if missing, else FALSE
 *   -x                                    | numbers negate; anything else is NULL
 * A "fault" is where RocketMQ's Java throws; the broker then logs and does not deliver, so the
 * whole filter is false even under OR — unless AND/OR short-circuited past it.
 * Three-valued logic: FALSE AND x = FALSE, TRUE OR x = TRUE, otherwise NULL if either side is
 * NULL; NOT NULL = NULL. A top-level NULL does not match.
 *
 * Refused at compile time, as RocketMQ refuses them: a string, boolean or NULL constant or a
 * condition under > >= < <= or BETWEEN; NULL under = or <> (use IS NULL); TRUE/FALSE = a
 * non-boolean constant; IN whose left side is not a property; constant BETWEEN bounds that are
 * NULL or out of order; a value where a condition is needed (e.g. `1 AND a`); integers beyond
 * Java's long range.
 */
import { compileNode } from './evaluate.js';
import { parseSql92 } from './parser.js';
import { EvalFault } from './values.js';

export { SQL92_MAX_DEPTH, SQL92_MAX_LENGTH, SQL92_MAX_TREE_DEPTH } from './parser.js';

export interface SqlFilter {
  readonly expression: string;
  /** true only when the expression evaluates to TRUE (unknown/NULL/false/fault → false) */
  matches(get: (name: string) => string | undefined): boolean;
}

export type SqlCompileResult =
  | { readonly ok: true; readonly filter: SqlFilter }
  | { readonly ok: false; readonly position: number; readonly message: string };

/** Compiles a SQL92 filter expression; never throws. */
export function compileSql92(expression: string): SqlCompileResult {
  const parsed = parseSql92(expression);
  if (!parsed.ok) return parsed;
  const run = compileNode(parsed.tree);
  const filter: SqlFilter = {
    expression,
    matches(get) {
      try {
        return run(get) === true;
      } catch (e) {
        if (e instanceof EvalFault) return false;
        throw e;
      }
    },
  };
  return { ok: true, filter };
}
