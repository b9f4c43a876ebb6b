/**
 * Tokens of a SQL92 filter expression, following the lexical rules of RocketMQ's selector
 * grammar (learned from filter/.../parser/SelectorParser.jj, not copied):
 *   - whitespace is space, tab, CR, LF and form feed; `-- …` up to a line break and `/* … *\/` are
 *     comments (a `--` with no line break after it is two minus signs, as in RocketMQ);
 *   - keywords NOT AND OR BETWEEN IN TRUE FALSE NULL IS CONTAINS STARTSWITH ENDSWITH, any case;
 *   - identifiers `[A-Za-z_$][A-Za-z0-9_$]*` that are not keywords (so `in` cannot name a property);
 *   - integers `0 | [1-9][0-9]*` with an optional `L`; decimals `5.`, `5.5`, `.5`, each with an
 *     optional exponent `E[+-]digits`, and `5E10`; the longest match wins (`007` is three tokens);
 *   - strings in single quotes, `''` standing for one quote; they may span lines.
 */

export const KEYWORDS = [
  'NOT',
  'AND',
  'OR',
  'BETWEEN',
  'IN',
  'TRUE',
  'FALSE',
  'NULL',
  'IS',
  'CONTAINS',
  'STARTSWITH',
  'ENDSWITH',
] as const;
export type Keyword = (typeof KEYWORDS)[number];
const keywordSet: ReadonlySet<string> = new Set(KEYWORDS);

export type Punct = '=' | '<>' | '>' | '>=' | '<' | '<=' | '(' | ')' | ',' | '+' | '-';

export type Token =
  | { readonly kind: 'kw'; readonly kw: Keyword; readonly pos: number; readonly text: string }
  | { readonly kind: 'id'; readonly pos: number; readonly text: string }
  | { readonly kind: 'int'; readonly pos: number; readonly text: string }
  | { readonly kind: 'float'; readonly pos: number; readonly text: string }
  | { readonly kind: 'str'; readonly value: string; readonly pos: number; readonly text: string }
  | { readonly kind: 'punct'; readonly p: Punct; readonly pos: number; readonly text: string }
  | { readonly kind: 'eof'; readonly pos: number; readonly text: '' };

export type LexResult =
  | { readonly ok: true; readonly tokens: Token[] }
  | { readonly ok: false; readonly position: number; readonly message: string };

const FLOAT_RE = /\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+/y;
const INT_RE = /(?:0|[1-9]\d*)[lL]?/y;
const ID_RE = /[A-Za-z_$][A-Za-z0-9_$]*/y;

function sticky(re: RegExp, s: string, at: number): string | undefined {
  re.lastIndex = at;
  const m = re.exec(s);
  return m === null ? undefined : m[0];
}

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f';
}

/** Splits `src` into tokens, ending with one `eof`; a character no token can start is an error. */
export function tokenize(src: string): LexResult {
  const tokens: Token[] = [];
  let i = 0;
  const n = src.length;
  while (true) {
    // Skip whitespace and comments.
    while (i < n) {
      const c = src[i]!;
      if (isSpace(c)) {
        i++;
      } else if (c === '-' && src[i + 1] === '-') {
        let j = i + 2;
        while (j < n && src[j] !== '\n' && src[j] !== '\r') j++;
        if (j >= n) break; // no line break: RocketMQ reads two minus signs
        i = j + 1;
      } else if (c === '/' && src[i + 1] === '*') {
        const end = src.indexOf('*/', i + 2);
        if (end < 0) return { ok: false, position: i, message: `unterminated comment at position ${i}` };
        i = end + 2;
      } else {
        break;
      }
    }
    if (i >= n) {
      tokens.push({ kind: 'eof', pos: n, text: '' });
      return { ok: true, tokens };
    }
    const c = src[i]!;
    const pos = i;
    if (c === "'") {
      let value = '';
      let j = i + 1;
      for (;;) {
        if (j >= n) return { ok: false, position: pos, message: `unterminated string at position ${pos}` };
        const q = src.indexOf("'", j);
        if (q < 0) return { ok: false, position: pos, message: `unterminated string at position ${pos}` };
        value += src.slice(j, q);
        if (src[q + 1] === "'") {
          value += "'";
          j = q + 2;
        } else {
          j = q + 1;
          break;
        }
      }
      tokens.push({ kind: 'str', value, pos, text: src.slice(pos, j) });
      i = j;
      continue;
    }
    if ((c >= '0' && c <= '9') || c === '.') {
      const f = sticky(FLOAT_RE, src, i);
      const d = sticky(INT_RE, src, i);
      if (f !== undefined && (d === undefined || f.length > d.length)) {
        tokens.push({ kind: 'float', pos, text: f });
        i += f.length;
        continue;
      }
      if (d !== undefined) {
        tokens.push({ kind: 'int', pos, text: d });
        i += d.length;
        continue;
      }
    }
    const id = sticky(ID_RE, src, i);
    if (id !== undefined) {
      const up = id.toUpperCase();
      if (keywordSet.has(up)) tokens.push({ kind: 'kw', kw: up as Keyword, pos, text: id });
      else tokens.push({ kind: 'id', pos, text: id });
      i += id.length;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (two === '<>' || two === '>=' || two === '<=') {
      tokens.push({ kind: 'punct', p: two, pos, text: two });
      i += 2;
      continue;
    }
    if ('=<>(),+-'.includes(c)) {
      tokens.push({ kind: 'punct', p: c as Punct, pos, text: c });
      i++;
      continue;
    }
    const shown = JSON.stringify(String.fromCodePoint(src.codePointAt(i)!));
    return { ok: false, position: pos, message: `unexpected character ${shown} at position ${pos}` };
  }
}
