/**
 * Recursive-descent parser for the grammar in index.ts, building a typed tree. It also makes the
 * checks RocketMQ makes while building its expression objects (ComparisonExpression.create*,
 * SelectorParser.asBooleanExpression, ConstantExpression.create*), so an expression RocketMQ
 * refuses at subscribe time is refused here too, with a position instead of a Java stack trace.
 */
import { type Keyword, type Punct, type Token, tokenize } from './lexer.js';
import { JDouble, JInt, type JValue, javaCompare } from './values.js';

export type CmpOp = '>' | '>=' | '<' | '<=';
export type StrOp = 'CONTAINS' | 'STARTSWITH' | 'ENDSWITH';

export type Sql92Node =
  | { readonly k: 'const'; readonly v: JValue }
  | { readonly k: 'prop'; readonly name: string }
  | { readonly k: 'neg'; readonly e: Sql92Node }
  | { readonly k: 'and' | 'or'; readonly l: Sql92Node; readonly r: Sql92Node }
  | { readonly k: 'not' | 'cast'; readonly e: Sql92Node }
  | { readonly k: 'cmp'; readonly op: CmpOp; readonly l: Sql92Node; readonly r: Sql92Node }
  | { readonly k: 'eq'; readonly l: Sql92Node; readonly r: Sql92Node }
  | { readonly k: 'in'; readonly name: string; readonly values: readonly string[]; readonly not: boolean }
  | {
      readonly k: 'str';
      readonly op: StrOp;
      readonly not: boolean;
      readonly e: Sql92Node;
      readonly search: string;
    };

/** Longest expression accepted, in UTF-16 code units (8 KiB of ASCII). */
export const SQL92_MAX_LENGTH = 8192;
/** Deepest nesting of parentheses and prefix operators (NOT, -, +) accepted. */
export const SQL92_MAX_DEPTH = 100;
/**
 * Deepest operator tree accepted, so compiling and evaluating (both recursive) stay far from the
 * stack's end. Chains of AND or OR do not count (they compile to loops); chains such as
 * `a = b = c = …` or `a IS NULL IS NULL …` do.
 */
export const SQL92_MAX_TREE_DEPTH = 500;

export type ParseResult =
  | { readonly ok: true; readonly tree: Sql92Node }
  | { readonly ok: false; readonly position: number; readonly message: string };

class ParseFail extends Error {
  constructor(
    readonly position: number,
    message: string,
  ) {
    super(message);
  }
}

const NULL_CONST: Sql92Node = { k: 'const', v: null };

function isBoolean(n: Sql92Node): boolean {
  if (n.k === 'const') return n.v === null || typeof n.v === 'boolean';
  return n.k !== 'prop' && n.k !== 'neg';
}

function describe(t: Token): string {
  return t.kind === 'eof' ? 'the end' : `'${t.text.length > 20 ? `${t.text.slice(0, 20)}…` : t.text}'`;
}

class Parser {
  private i = 0;
  private depth = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(ahead = 0): Token {
    return this.tokens[Math.min(this.i + ahead, this.tokens.length - 1)]!;
  }
  private next(): Token {
    const t = this.peek();
    if (this.i < this.tokens.length - 1) this.i++;
    return t;
  }
  private isKw(kw: Keyword, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.kind === 'kw' && t.kw === kw;
  }
  private isPunct(p: Punct): boolean {
    const t = this.peek();
    return t.kind === 'punct' && t.p === p;
  }
  private fail(what: string, after: Token | undefined): never {
    const t = this.peek();
    const where = after === undefined ? '' : ` after '${after.text}'`;
    throw new ParseFail(t.pos, `expected ${what}${where}, found ${describe(t)} at position ${t.pos}`);
  }
  private enter(at: Token): void {
    if (++this.depth > SQL92_MAX_DEPTH) {
      throw new ParseFail(at.pos, `nesting deeper than ${SQL92_MAX_DEPTH} at position ${at.pos}`);
    }
  }

  parseAll(): Sql92Node {
    const first = this.peek();
    if (first.kind === 'eof') this.fail('an expression', undefined);
    const e = this.orExpr();
    const t = this.peek();
    if (t.kind !== 'eof') this.fail('an operator, AND, OR or the end', this.tokens[this.i - 1]);
    return this.asBoolean(e, first);
  }

  /** SelectorParser.asBooleanExpression: a property becomes a boolean cast; other values are refused. */
  private asBoolean(n: Sql92Node, at: Token): Sql92Node {
    if (isBoolean(n)) return n;
    if (n.k === 'prop') return { k: 'cast', e: n };
    throw new ParseFail(at.pos, `expected a boolean expression at position ${at.pos}, found a value`);
  }

  private orExpr(): Sql92Node {
    let start = this.peek();
    let left = this.andExpr();
    while (this.isKw('OR')) {
      const op = this.next();
      const rs = this.peek();
      if (rs.kind === 'eof') this.fail('an expression', op);
      const right = this.andExpr();
      left = { k: 'or', l: this.asBoolean(left, start), r: this.asBoolean(right, rs) };
      start = rs;
    }
    return left;
  }

  private andExpr(): Sql92Node {
    let start = this.peek();
    let left = this.equality();
    while (this.isKw('AND')) {
      const op = this.next();
      const rs = this.peek();
      if (rs.kind === 'eof') this.fail('an expression', op);
      const right = this.equality();
      left = { k: 'and', l: this.asBoolean(left, start), r: this.asBoolean(right, rs) };
      start = rs;
    }
    return left;
  }

  private equality(): Sql92Node {
    const start = this.peek();
    let left = this.comparison();
    for (;;) {
      if (this.isPunct('=') || this.isPunct('<>')) {
        const op = this.next();
        const rs = this.peek();
        const right = this.value(op, () => this.comparison());
        checkEqualOperand(left, start, op);
        checkEqualOperand(right, rs, op);
        if (left.k === 'const' && right.k === 'const' && isBoolean(left) && !isBoolean(right)) {
          throw new ParseFail(op.pos, `a boolean cannot be compared with '${rs.text}' at position ${op.pos}`);
        }
        const eq: Sql92Node = { k: 'eq', l: left, r: right };
        left = op.text === '=' ? eq : { k: 'not', e: eq };
      } else if (this.isKw('IS')) {
        const is = this.next();
        let not = false;
        if (this.isKw('NOT')) {
          this.next();
          not = true;
        }
        if (!this.isKw('NULL')) this.fail(not ? 'NULL' : 'NULL or NOT NULL', this.tokens[this.i - 1] ?? is);
        this.next();
        const eq: Sql92Node = { k: 'eq', l: left, r: NULL_CONST };
        left = not ? { k: 'not', e: eq } : eq;
      } else {
        return left;
      }
    }
  }

  /** Parses an operand after `op`, saying "expected a value" if none starts here. */
  private value(op: Token, parse: () => Sql92Node): Sql92Node {
    const t = this.peek();
    const starts =
      t.kind === 'id' ||
      t.kind === 'int' ||
      t.kind === 'float' ||
      t.kind === 'str' ||
      (t.kind === 'kw' && (t.kw === 'TRUE' || t.kw === 'FALSE' || t.kw === 'NULL' || t.kw === 'NOT')) ||
      (t.kind === 'punct' && (t.p === '(' || t.p === '+' || t.p === '-'));
    if (!starts) this.fail('a value', op);
    return parse();
  }

  private stringLiteral(after: Token): string {
    const t = this.peek();
    if (t.kind !== 'str') this.fail('a string literal', after);
    this.next();
    return t.value;
  }

  private comparison(): Sql92Node {
    const start = this.peek();
    let left = this.unary();
    for (;;) {
      const t = this.peek();
      if (t.kind === 'punct' && (t.p === '>' || t.p === '>=' || t.p === '<' || t.p === '<=')) {
        this.next();
        const rs = this.peek();
        const right = this.value(t, () => this.unary());
        checkLessThanOperand(left, start, t);
        checkLessThanOperand(right, rs, t);
        left = { k: 'cmp', op: t.p, l: left, r: right };
        continue;
      }
      let not = false;
      let opTok = t;
      if (t.kind === 'kw' && t.kw === 'NOT') {
        const n = this.peek(1);
        if (n.kind !== 'kw' || !['CONTAINS', 'STARTSWITH', 'ENDSWITH', 'BETWEEN', 'IN'].includes(n.kw)) {
          return left;
        }
        this.next();
        not = true;
        opTok = n;
      }
      if (opTok.kind !== 'kw') return left;
      const kw = opTok.kw;
      if (kw === 'CONTAINS' || kw === 'STARTSWITH' || kw === 'ENDSWITH') {
        this.next();
        const search = this.stringLiteral(opTok);
        left = { k: 'str', op: kw, not, e: left, search };
      } else if (kw === 'BETWEEN') {
        this.next();
        const lowTok = this.peek();
        const low = this.value(opTok, () => this.unary());
        if (!this.isKw('AND')) this.fail('AND of BETWEEN … AND …', this.tokens[this.i - 1]);
        const and = this.next();
        const highTok = this.peek();
        const high = this.value(and, () => this.unary());
        if (!not) checkBetween(low, high, lowTok);
        for (const [n, at] of [
          [left, start],
          [low, lowTok],
          [high, highTok],
        ] as const) {
          checkLessThanOperand(n, at, opTok);
        }
        left = not
          ? { k: 'or', l: { k: 'cmp', op: '<', l: left, r: low }, r: { k: 'cmp', op: '>', l: left, r: high } }
          : {
              k: 'and',
              l: { k: 'cmp', op: '>=', l: left, r: low },
              r: { k: 'cmp', op: '<=', l: left, r: high },
            };
      } else if (kw === 'IN') {
        this.next();
        if (!this.isPunct('(')) this.fail("'('", opTok);
        let prev = this.next();
        const values: string[] = [this.stringLiteral(prev)];
        while (this.isPunct(',')) {
          prev = this.next();
          values.push(this.stringLiteral(prev));
        }
        if (!this.isPunct(')')) this.fail("',' or ')'", this.tokens[this.i - 1]);
        this.next();
        if (left.k !== 'prop') {
          throw new ParseFail(opTok.pos, `IN needs a property on its left at position ${opTok.pos}`);
        }
        left = { k: 'in', name: left.name, values, not };
      } else {
        return left;
      }
    }
  }

  private unary(): Sql92Node {
    const t = this.peek();
    if (t.kind === 'punct' && (t.p === '+' || t.p === '-')) {
      this.enter(t);
      this.next();
      const e = this.value(t, () => this.unary());
      this.depth--;
      return t.p === '+' ? e : { k: 'neg', e };
    }
    if (t.kind === 'kw' && t.kw === 'NOT') {
      this.enter(t);
      this.next();
      const at = this.peek();
      const e = this.value(t, () => this.unary());
      this.depth--;
      return { k: 'not', e: this.asBoolean(e, at) };
    }
    return this.primary();
  }

  private primary(): Sql92Node {
    const t = this.peek();
    switch (t.kind) {
      case 'str':
        this.next();
        return { k: 'const', v: t.value };
      case 'int':
        this.next();
        return { k: 'const', v: integerLiteral(t) };
      case 'float':
        this.next();
        return { k: 'const', v: floatLiteral(t) };
      case 'id':
        this.next();
        return { k: 'prop', name: t.text };
      case 'kw':
        if (t.kw === 'TRUE' || t.kw === 'FALSE' || t.kw === 'NULL') {
          this.next();
          return { k: 'const', v: t.kw === 'NULL' ? null : t.kw === 'TRUE' };
        }
        break;
      case 'punct':
        if (t.p === '(') {
          this.enter(t);
          this.next();
          if (this.peek().kind === 'eof' || this.isPunct(')')) this.fail('an expression', t);
          const e = this.orExpr();
          if (!this.isPunct(')')) this.fail("')'", this.tokens[this.i - 1]);
          this.next();
          this.depth--;
          return e;
        }
        break;
    }
    return this.fail('a value', this.tokens[this.i - 1]);
  }
}

/** ConstantExpression.createFromDecimal: a Long, narrowed to an Integer when it fits in 32 bits. */
function integerLiteral(t: Token): JValue {
  const digits = t.text.replace(/[lL]$/, '');
  const v = BigInt(digits);
  if (v > 2n ** 63n - 1n) throw new ParseFail(t.pos, `integer ${t.text} out of range at position ${t.pos}`);
  return v <= 2147483647n ? new JInt(Number(v)) : v;
}

/** ConstantExpression.createFloat: a Double, which must be finite and at least Double.MIN_VALUE. */
function floatLiteral(t: Token): JValue {
  const v = Number(t.text);
  if (!Number.isFinite(v)) throw new ParseFail(t.pos, `number ${t.text} too large at position ${t.pos}`);
  if (v < Number.MIN_VALUE) {
    throw new ParseFail(t.pos, `decimal ${t.text} below Double.MIN_VALUE at position ${t.pos} (write 0)`);
  }
  return new JDouble(v);
}

/** ComparisonExpression.checkLessThanOperand: no string, boolean or NULL constant, no condition. */
function checkLessThanOperand(n: Sql92Node, at: Token, op: Token): void {
  const ok =
    n.k === 'const'
      ? n.v instanceof JInt || n.v instanceof JDouble || typeof n.v === 'bigint'
      : !isBoolean(n);
  if (!ok) {
    const found = n.k === 'const' ? `'${at.text}'` : 'a condition';
    throw new ParseFail(
      at.pos,
      `expected a number or a property as operand of '${op.text.toUpperCase()}', found ${found} at position ${at.pos}`,
    );
  }
}

/** ComparisonExpression.checkEqualOperand: NULL is compared with IS NULL, not '='. */
function checkEqualOperand(n: Sql92Node, at: Token, op: Token): void {
  if (n.k === 'const' && n.v === null) {
    throw new ParseFail(
      at.pos,
      `NULL cannot be compared with '${op.text}' at position ${at.pos} (use IS NULL)`,
    );
  }
}

/** ComparisonExpression.createBetween: constant bounds must be non-NULL and in order. */
function checkBetween(low: Sql92Node, high: Sql92Node, at: Token): void {
  if (low.k !== 'const' || high.k !== 'const') return;
  if (low.v === null || high.v === null) {
    throw new ParseFail(at.pos, `BETWEEN bounds cannot be NULL at position ${at.pos}`);
  }
  let order: number;
  try {
    order = javaCompare(high.v, low.v);
  } catch {
    throw new ParseFail(at.pos, `BETWEEN bounds cannot be compared at position ${at.pos}`);
  }
  if (order < 0)
    throw new ParseFail(at.pos, `BETWEEN's lower bound is above its upper bound at position ${at.pos}`);
}

/** The tree's depth as compileNode recurses: the left operand of a same-kind AND/OR is free. */
function treeDepth(root: Sql92Node): number {
  let max = 0;
  const stack: [Sql92Node, number][] = [[root, 1]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [n, d] = top;
    if (d > max) max = d;
    switch (n.k) {
      case 'and':
      case 'or':
        stack.push([n.l, n.l.k === n.k ? d : d + 1], [n.r, d + 1]);
        break;
      case 'cmp':
      case 'eq':
        stack.push([n.l, d + 1], [n.r, d + 1]);
        break;
      case 'neg':
      case 'not':
      case 'cast':
      case 'str':
        stack.push([n.e, d + 1]);
        break;
    }
  }
  return max;
}

/** Parses `src` into a tree, or says where and why it is not a valid expression. */
export function parseSql92(src: string): ParseResult {
  if (src.length > SQL92_MAX_LENGTH) {
    return {
      ok: false,
      position: SQL92_MAX_LENGTH,
      message: `expression longer than ${SQL92_MAX_LENGTH} characters at position ${SQL92_MAX_LENGTH}`,
    };
  }
  const lexed = tokenize(src);
  if (!lexed.ok) return lexed;
  try {
    const tree = new Parser(lexed.tokens).parseAll();
    if (treeDepth(tree) > SQL92_MAX_TREE_DEPTH) {
      return {
        ok: false,
        position: 0,
        message: `operators nested deeper than ${SQL92_MAX_TREE_DEPTH} in the expression at position 0`,
      };
    }
    return { ok: true, tree };
  } catch (e) {
    if (e instanceof ParseFail) return { ok: false, position: e.position, message: e.message };
    throw e;
  }
}
