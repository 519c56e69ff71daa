import { hostname } from 'node:os';
import { readWord, ShellSyntaxError, type Expansion } from '@smd/shell';

/**
 * A parser for the subset of the POSIX shell that smd configuration files contain.
 * Upstream SOURCES the file with sh; we never run a shell. Supported:
 *   - comments (`#` at the start of a word) and blank lines;
 *   - statements `NAME=value [NAME=value ...]`, optionally preceded by `export`
 *     (`export NAME` alone is accepted and does nothing), separated by newlines or `;`;
 *   - values made of: 'single quoted' text, "double quoted" text (with `\$ \` \" \\`
 *     and backslash-newline escapes, `$VAR`, `${VAR}` and command substitution), unquoted
 *     text (backslash escapes, `$VAR`, `${VAR}`, `~` or `~/` at the start of the value);
 *   - command substitution `` `hostname` `` / `$(hostname)`, with `-s` / `-f` too, computed
 *     in-process; no other command.
 * Variables: earlier assignments of the file, then the given environment; unset → empty.
 * Anything else raises a ConfigError naming the file, the line and the construct.
 * Words are read by the shared shell-word lexer (@smd/shell), with the expansions
 * above computed here; this file reads the statements around them.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly file: string, readonly line: number | null, readonly reason: string) {
    super(line === null ? `${file}: ${reason}` : `${file}:${line}: ${reason}`);
  }
}

export interface ShellAssignment {
  name: string;
  value: string;
  line: number;
  exported: boolean;
}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;
const SPECIAL = new Set([';', '&', '|', '<', '>', '(', ')']);

/** Computes the few commands a config may substitute. `null` → not supported. */
export function substituteCommand(cmd: string): string | null {
  const words = cmd.trim().split(/\s+/);
  if (words[0] !== 'hostname') return null;
  const h = hostname();
  if (words.length === 1) return h;
  if (words.length === 2 && words[1] === '-s') return h.split('.')[0];
  // `hostname -f` would ask the resolver; the kernel name is what we can know in-process
  // without I/O (it is already fully qualified on hosts configured that way).
  if (words.length === 2 && words[1] === '-f') return h;
  return null;
}

interface Word {
  text: string;
  /** NAME when the word is an assignment `NAME=value` (its text is then the value) */
  assignName: string | null;
}

const ASSIGNMENT = /[A-Za-z_][A-Za-z0-9_]*=/y;

/** Parses shell-subset text into assignments, in order. */
export function parseShellAssignments(text: string, file: string, env: NodeJS.ProcessEnv = process.env): ShellAssignment[] {
  const vars = new Map<string, string>();
  const out: ShellAssignment[] = [];
  let i = 0;
  let line = 1;
  const n = text.length;
  const fail = (what: string, at = line): never => { throw new ConfigError(file, at, what); };
  const lineAt = (offset: number): number => {
    let l = 1;
    for (let k = text.indexOf('\n'); k >= 0 && k < offset; k = text.indexOf('\n', k + 1)) l++;
    return l;
  };
  const lookup = (name: string): string => vars.get(name) ?? env[name] ?? '';

  const readName = (at: number): string => {
    let e = at;
    while (e < n && NAME_CHAR.test(text[e])) e++;
    return text.slice(at, e);
  };

  // `$...` at text[at] === '$' (outside or inside double quotes).
  const dollar: Expansion = (_t, at) => {
    const c = text[at + 1];
    if (c === '{') {
      if (at + 2 < n && NAME_START.test(text[at + 2])) {
        const name = readName(at + 2);
        const after = at + 2 + name.length;
        if (text[after] === '}') return { value: lookup(name), end: after + 1 };
        return fail(`parameter expansion \${${name}${text[after] ?? ''}...} is not supported (only \${NAME})`, lineAt(at));
      }
      return fail('parameter expansion ${...} is not supported (only ${NAME})', lineAt(at));
    }
    if (c === '(') {
      if (text[at + 2] === '(') fail('arithmetic expansion $((...)) is not supported', lineAt(at));
      const close = text.indexOf(')', at + 1);
      if (close < 0) fail('unterminated $(', lineAt(at));
      const cmd = text.slice(at + 2, close);
      const r = substituteCommand(cmd);
      if (r === null) fail(`command substitution $(${cmd.trim()}) is not supported (only hostname)`, lineAt(at));
      return { value: r as string, end: close + 1 };
    }
    if (c !== undefined && NAME_START.test(c)) {
      const name = readName(at + 1);
      return { value: lookup(name), end: at + 1 + name.length };
    }
    if (c !== undefined && /[0-9@*#?$!-]/.test(c)) return fail(`special parameter $${c} is not supported`, lineAt(at));
    return { value: '$', end: at + 1 }; // a lone dollar is literal, as in sh
  };

  const backquote: Expansion = (_t, at) => {
    const close = text.indexOf('`', at + 1);
    if (close < 0) fail('unterminated `', lineAt(at));
    const cmd = text.slice(at + 1, close);
    const r = substituteCommand(cmd);
    if (r === null) fail(`command substitution \`${cmd.trim()}\` is not supported (only hostname)`, lineAt(at));
    return { value: r as string, end: close + 1 };
  };

  // One word at text[i] (not blank, not an operator, not a newline): the shared
  // lexer, after the `NAME=` of an assignment (where a leading `~` is $HOME).
  const readStatementWord = (): Word => {
    const start = i;
    ASSIGNMENT.lastIndex = i;
    const m = ASSIGNMENT.exec(text);
    const assignName = m === null ? null : m[0].slice(0, -1);
    if (m !== null) i += m[0].length;
    let w;
    try {
      w = readWord(text, i, { expansions: { dollar, backquote }, operators: 'end', strict: false, tilde: m === null ? null : lookup('HOME') });
    } catch (e) {
      if (e instanceof ShellSyntaxError) fail(e.message, lineAt(e.offset));
      throw e;
    }
    for (let k = start; k < w.end; k++) if (text[k] === '\n') line++;
    i = w.end;
    return { text: w.value, assignName };
  };

  let stmtLine = line;
  let words: Word[] = [];
  let exported = false;
  const endStatement = () => {
    if (words.length > 0) {
      let k = 0;
      exported = false;
      if (words[0].assignName === null && words[0].text === 'export') { exported = true; k = 1; }
      for (; k < words.length; k++) {
        const w = words[k];
        if (w.assignName === null) {
          if (exported && /^[A-Za-z_][A-Za-z0-9_]*$/.test(w.text)) continue; // export NAME
          fail(exported ? `"export ${w.text}" is not an assignment` : `"${w.text}": commands are not supported (only NAME=value assignments)`, stmtLine);
        }
        vars.set(w.assignName as string, w.text);
        out.push({ name: w.assignName as string, value: w.text, line: stmtLine, exported });
      }
    }
    words = [];
  };

  while (i < n) {
    const c = text[i];
    if (c === ' ' || c === '\t' || c === '\r') { i++; continue; }
    if (c === '\n') { endStatement(); i++; line++; stmtLine = line; continue; }
    if (c === '#') { while (i < n && text[i] !== '\n') i++; continue; }
    if (c === ';') {
      if (text[i + 1] === ';') fail('";;" is not supported');
      endStatement(); i++; stmtLine = line; continue;
    }
    if (SPECIAL.has(c)) {
      const what = c === '|' ? 'pipes' : c === '&' ? (text[i + 1] === '&' ? '"&&" lists' : 'background jobs ("&")') : c === '<' || c === '>' ? 'redirections' : 'subshells and functions';
      fail(`${what} are not supported`);
    }
    if (words.length === 0) {
      // A reserved word at the start of a statement: say it plainly.
      const m = /^(if|then|else|elif|fi|for|while|until|do|done|case|esac|function|\{|\}|!)(?=[\s;]|$)/.exec(text.slice(i, i + 10));
      if (m) fail(`"${m[1]}": shell control structures are not supported`);
    }
    if (words.length === 0) stmtLine = line;
    words.push(readStatementWord());
  }
  endStatement();
  return out;
}

/** The final value of every variable assigned in the text (last assignment wins). */
export function shellVariables(assignments: ShellAssignment[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const a of assignments) m.set(a.name, a.value);
  return m;
}
