/**
 * Reading JSON written by fastjson, the serializer of RocketMQ's Java side.
 *
 * fastjson writes a map whose keys are integers with the keys unquoted, which is not JSON:
 *
 *   {"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"}}
 *
 * In a register body this shows up inside 5.x static-topic mappings (TopicQueueMappingInfo's
 * `currIdMap`, a Map<Integer, Integer>), and a peer may send any other integer-keyed map the same
 * way. `parseFastjson` accepts such text by quoting bare integer keys before `JSON.parse`; text
 * that is already JSON is parsed as is (the rewrite runs only after a first parse fails).
 *
 * What we write is always standard JSON with quoted keys: fastjson reads `{"0":"..."}` into a
 * Map<Long, String> just as well, and the Node client ali-ons parses route bodies with the lax
 * `JSON2.parse`, which accepts both forms.
 */

const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \
const LBRACE = 0x7b; // {
const COMMA = 0x2c; // ,
const COLON = 0x3a; // :
const MINUS = 0x2d; // -

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * Quotes every object key that is a bare integer (`{0:` or `,12:` outside strings). Text inside
 * strings is never touched; anything else is left for `JSON.parse` to judge.
 */
export function quoteBareIntegerKeys(text: string): string {
  let out = '';
  let copiedUpTo = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c === QUOTE) {
      inString = true;
      continue;
    }
    if (c !== LBRACE && c !== COMMA) continue;
    let start = i + 1;
    while (start < text.length && isSpace(text.charCodeAt(start))) start++;
    let end = start;
    if (end < text.length && text.charCodeAt(end) === MINUS) end++;
    const digitsFrom = end;
    while (end < text.length && isDigit(text.charCodeAt(end))) end++;
    if (end === digitsFrom) continue;
    let after = end;
    while (after < text.length && isSpace(text.charCodeAt(after))) after++;
    if (after >= text.length || text.charCodeAt(after) !== COLON) continue;
    out += `${text.slice(copiedUpTo, start)}"${text.slice(start, end)}"`;
    copiedUpTo = end;
    i = end - 1;
  }
  return copiedUpTo === 0 ? text : out + text.slice(copiedUpTo);
}

/** Parses JSON or fastjson's dialect of it (bare integer keys). Throws SyntaxError otherwise. */
export function parseFastjson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (first) {
    const quoted = quoteBareIntegerKeys(text);
    if (quoted === text) throw first;
    return JSON.parse(quoted);
  }
}
