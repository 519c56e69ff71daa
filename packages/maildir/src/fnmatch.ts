import type { ByteString } from './bytes.js';

/**
 * fnmatch(3) with flags 0, compiled to a RegExp over ByteStrings: `*` and `?`
 * also match '/', a leading '.' is not special, `[...]` classes (with `!` or
 * `^` negation, ranges and `[:alpha:]`-style names), backslash escapes the next
 * character. The pattern must match the whole string. An unterminated `[` is a
 * literal '['.
 */
export function fnmatchToRegExp(pattern: ByteString): RegExp {
  let re = '^';
  const n = pattern.length;
  for (let i = 0; i < n; i++) {
    const c = pattern[i];
    if (c === '*') {
      while (pattern[i + 1] === '*') i++;
      re += '[\\s\\S]*';
    } else if (c === '?') {
      re += '[\\s\\S]';
    } else if (c === '\\' && i + 1 < n) {
      re += escapeChar(pattern[++i]);
    } else if (c === '[') {
      const parsed = parseBracket(pattern, i);
      if (parsed === null) re += '\\[';
      else { re += parsed.re; i = parsed.end; }
    } else {
      re += escapeChar(c);
    }
  }
  return new RegExp(re + '$');
}

/** Does `subject` match the fnmatch pattern (flags 0)? */
export function fnmatch(pattern: ByteString, subject: ByteString): boolean {
  return fnmatchToRegExp(pattern).test(subject);
}

const CLASSES: Record<string, string> = {
  alpha: 'A-Za-z', digit: '0-9', alnum: '0-9A-Za-z', upper: 'A-Z', lower: 'a-z',
  space: ' \\t\\n\\r\\f\\v', blank: ' \\t', punct: '!-\\/:-@\\[-`{-~', xdigit: '0-9A-Fa-f',
  cntrl: '\\x00-\\x1f\\x7f', print: ' -~', graph: '!-~',
};

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** Parses the bracket expression starting at `start` ('['); null if unterminated. */
function parseBracket(p: string, start: number): { re: string; end: number } | null {
  let i = start + 1;
  let negate = false;
  if (p[i] === '!' || p[i] === '^') { negate = true; i++; }
  let body = '';
  let first = true;
  while (i < p.length) {
    let c = p[i];
    if (c === ']' && !first) {
      return { re: `[${negate ? '^' : ''}${body}]`, end: i };
    }
    first = false;
    if (c === '[' && p[i + 1] === ':') {
      const close = p.indexOf(':]', i + 2);
      if (close >= 0) {
        const name = p.slice(i + 2, close);
        const cls = CLASSES[name];
        if (cls === undefined) return null;
        body += cls;
        i = close + 2;
        continue;
      }
    }
    if (c === '\\' && i + 1 < p.length) c = p[++i];
    if (p[i + 1] === '-' && i + 2 < p.length && p[i + 2] !== ']') {
      let hi = p[i + 2];
      let skip = 2;
      if (hi === '\\' && i + 3 < p.length) { hi = p[i + 3]; skip = 3; }
      if (hi.charCodeAt(0) >= c.charCodeAt(0)) body += `${escapeChar(c)}-${escapeChar(hi)}`;
      i += skip + 1;
      continue;
    }
    body += escapeChar(c);
    i++;
  }
  return null;
}
