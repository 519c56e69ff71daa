/**
 * The words of a POSIX shell command line, read and written without ever
 * running a shell. One lexer serves every reader smd has:
 * - the config-file parser (@smd/endpoint), which computes the few expansions
 *   it supports and reads the operators itself;
 * - smd-restricted-shell, which refuses everything a shell would give a
 *   meaning to (`strictWords`);
 * - command values such as `SSH="ssh -o 'A=b c'"` and ssh_config arguments,
 *   where `$`, backquotes and operators are plain characters (`LITERAL_WORDS`).
 * Quoting is the same for all: 'single quotes' are literal; in "double
 * quotes" a backslash escapes only `$`, backquote, `"`, `\` and a newline;
 * outside quotes a backslash escapes the next character.
 */

/** A construct the rules refuse, or a quote left open; `offset` is where it starts in the text. */
export class ShellSyntaxError extends Error {
  override readonly name = 'ShellSyntaxError';
  constructor(message: string, readonly offset: number) {
    super(message);
  }
}

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Quotes one word for a POSIX shell: the result always reads back as exactly
 * `word` (spaces, quotes, `$`, `&`, `*`, `~`, newlines included). Words made
 * only of harmless characters are left as they are, for readable logs and for
 * programs that take the words without a shell.
 */
export function quoteWord(word: string): string {
  if (word.length > 0 && SAFE.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A command line that a shell splits back into exactly `words`. */
export function joinWords(words: readonly string[]): string {
  return words.map(quoteWord).join(' ');
}

/** Computes an expansion starting at `text[at]` (`$` or a backquote): its value and where the text goes on. */
export type Expansion = (text: string, at: number) => { value: string; end: number };

export interface WordRules {
  /**
   * `$` and backquotes, outside or inside double quotes: plain characters
   * ('literal'), refused, or computed by the caller.
   */
  readonly expansions: 'literal' | 'refuse' | { readonly dollar: Expansion; readonly backquote: Expansion };
  /** Unquoted `; & | < > ( )`: plain characters, refused, or the end of the word (the caller reads them). */
  readonly operators: 'literal' | 'refuse' | 'end';
  /**
   * Refuse what only a shell script would contain: a newline anywhere (even
   * quoted or escaped), a comment, a backslash at the very end.
   */
  readonly strict: boolean;
  /** `~` starting a word (before `/`, a blank or the end) is this HOME; null: `~` is a plain character. */
  readonly tilde: string | null;
}

/** `$`, backquotes and operators are plain characters; no `~`. */
export const LITERAL_WORDS: WordRules = { expansions: 'literal', operators: 'literal', strict: false, tilde: null };

/** Everything a shell would interpret is refused; `~` is `home`. */
export function strictWords(home: string | null): WordRules {
  return { expansions: 'refuse', operators: 'refuse', strict: true, tilde: home };
}

const OPERATORS = ';&|<>()';
const isBlank = (c: string): boolean => c === ' ' || c === '\t' || c === '\n';

export interface ReadWord {
  /** the word, quotes removed, escapes and expansions done */
  readonly value: string;
  /** index in the text just after the word */
  readonly end: number;
}

/**
 * Reads one word starting at `text[start]` (which the caller made sure is not
 * a blank). Stops at an unquoted blank, at the end, or at an operator when
 * the rules say operators end words. Throws ShellSyntaxError.
 */
export function readWord(text: string, start: number, rules: WordRules): ReadWord {
  const n = text.length;
  let i = start;
  let value = '';
  const refuse = (what: string, at: number): never => { throw new ShellSyntaxError(what, at); };
  const expand = (at: number, quoted: boolean): void => {
    const c = text[at]!;
    const ex = rules.expansions;
    if (ex === 'literal') { value += c; i = at + 1; return; }
    if (ex === 'refuse') refuse(`"${c}" ${quoted ? 'inside double quotes ' : ''}is not accepted (no shell expansions)`, at);
    const r = (c === '$' ? (ex as { dollar: Expansion }).dollar : (ex as { backquote: Expansion }).backquote)(text, at);
    value += r.value;
    i = r.end;
  };

  if (rules.tilde !== null && text[i] === '~') {
    const next = text[i + 1];
    if (next === undefined || next === '/' || isBlank(next) || (rules.operators !== 'literal' && OPERATORS.includes(next))) {
      value = rules.tilde;
      i++;
    }
  }
  if (rules.strict && i === start && text[i] === '#') refuse('comments are not accepted', i);

  while (i < n) {
    const c = text[i]!;
    if (c === ' ' || c === '\t') break;
    if (c === '\n') {
      if (rules.strict) refuse('a newline is not accepted', i);
      break;
    }
    if (OPERATORS.includes(c) && rules.operators !== 'literal') {
      if (rules.operators === 'end') break;
      refuse(`shell syntax "${c}" is not accepted`, i);
    }
    if (c === "'") {
      const close = text.indexOf("'", i + 1);
      if (close < 0) refuse('unterminated single quote', i);
      const inner = text.slice(i + 1, close);
      if (rules.strict && inner.includes('\n')) refuse('a newline is not accepted, even quoted', i + 1 + inner.indexOf('\n'));
      value += inner;
      i = close + 1;
    } else if (c === '"') {
      const open = i;
      i++;
      for (;;) {
        if (i >= n) refuse('unterminated double quote', open);
        const d = text[i]!;
        if (d === '"') { i++; break; }
        if (d === '\\' && i + 1 < n && '$`"\\\n'.includes(text[i + 1]!)) {
          const e = text[i + 1]!;
          if (e === '\n') {
            if (rules.strict) refuse('a newline is not accepted, even escaped', i + 1);
          } else {
            value += e;
          }
          i += 2;
          continue;
        }
        if (d === '$' || d === '`') { expand(i, true); continue; }
        if (d === '\n' && rules.strict) refuse('a newline is not accepted, even quoted', i);
        value += d;
        i++;
      }
    } else if (c === '\\') {
      if (i + 1 >= n) {
        if (rules.strict) refuse('a backslash at the end is not accepted', i);
        value += c; // as sh: a lone trailing backslash stays
        i++;
      } else if (text[i + 1] === '\n') {
        if (rules.strict) refuse('a newline is not accepted, even escaped', i + 1);
        i += 2; // line continuation
      } else {
        value += text[i + 1];
        i += 2;
      }
    } else if (c === '$' || c === '`') {
      expand(i, false);
    } else {
      value += c;
      i++;
    }
  }
  return { value, end: i };
}

/** Splits a whole command line into words (blanks between them; `rules` as for readWord). */
export function splitWords(text: string, rules: WordRules): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t') { i++; continue; }
    if (c === '\n') {
      if (rules.strict) throw new ShellSyntaxError('a newline is not accepted', i);
      i++;
      continue;
    }
    const w = readWord(text, i, rules);
    words.push(w.value);
    i = w.end;
  }
  return words;
}

/**
 * What an unquoted `$VAR` becomes in sh: the value split at white space,
 * empty fields dropped, quotes NOT interpreted. Upstream's scripts read their
 * list variables (MAILBOX, EXCLUDE, SMDCLIENTOPTS...) that way, so a name
 * with a space is written `%20`. (Any white space, not only sh's space, tab
 * and newline: a config file saved with CRLF line ends keeps working.)
 */
export function splitFields(value: string): string[] {
  return value.split(/\s+/).filter((s) => s !== '');
}

/**
 * For arguments the receiving program %-decodes (the `--exclude` globs of
 * smd-server and mddiff, as upstream): every byte a shell would interpret
 * becomes `%XX`, so the word needs no quoting and reaches the program
 * unchanged through a remote shell or through a wrapper that runs its
 * arguments itself. `%` stays: it is already the user's own %-encoding.
 */
export function percentEncodeUnsafe(word: string): string {
  let out = '';
  for (const ch of word) {
    if (/^[A-Za-z0-9_@%+=:,./-]$/.test(ch)) { out += ch; continue; }
    for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
