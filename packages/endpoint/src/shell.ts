import { hostname } from 'node:os';

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
  /** the unquoted, unescaped text when the word is a plain `NAME=` prefix candidate */
  assignName: string | null;
}

/** Parses shell-subset text into assignments, in order. */
export function parseShellAssignments(text: string, file: string, env: NodeJS.ProcessEnv = process.env): ShellAssignment[] {
  const vars = new Map<string, string>();
  const out: ShellAssignment[] = [];
  let i = 0;
  let line = 1;
  const n = text.length;
  const fail = (what: string, at = line): never => { throw new ConfigError(file, at, what); };
  const lookup = (name: string): string => vars.get(name) ?? env[name] ?? '';

  const readName = (): string => {
    let s = '';
    while (i < n && NAME_CHAR.test(text[i])) s += text[i++];
    return s;
  };

  // `$...` at text[i] === '$'. Returns the expansion.
  const dollar = (): string => {
    i++; // $
    const c = text[i];
    if (c === '{') {
      i++;
      if (i < n && NAME_START.test(text[i])) {
        const name = readName();
        if (text[i] === '}') { i++; return lookup(name); }
        return fail(`parameter expansion \${${name}${text[i] ?? ''}...} is not supported (only \${NAME})`);
      }
      return fail('parameter expansion ${...} is not supported (only ${NAME})');
    }
    if (c === '(') {
      if (text[i + 1] === '(') fail('arithmetic expansion $((...)) is not supported');
      const end = text.indexOf(')', i);
      if (end < 0) fail('unterminated $(');
      const cmd = text.slice(i + 1, end);
      const r = substituteCommand(cmd);
      if (r === null) fail(`command substitution $(${cmd.trim()}) is not supported (only hostname)`);
      i = end + 1;
      return r as string;
    }
    if (c !== undefined && NAME_START.test(c)) return lookup(readName());
    if (c !== undefined && /[0-9@*#?$!-]/.test(c)) return fail(`special parameter $${c} is not supported`);
    return '$'; // a lone dollar is literal, as in sh
  };

  const backquote = (): string => {
    const start = line;
    i++; // `
    let cmd = '';
    while (i < n && text[i] !== '`') {
      if (text[i] === '\n') line++;
      cmd += text[i++];
    }
    if (i >= n) fail('unterminated `', start);
    i++;
    const r = substituteCommand(cmd);
    if (r === null) fail(`command substitution \`${cmd.trim()}\` is not supported (only hostname)`, start);
    return r as string;
  };

  // Reads one word starting at text[i] (not blank, not special, not newline).
  const readWord = (): Word => {
    let s = '';
    let plain = true; // no quoting/expansion yet: candidate for NAME=
    let assignName: string | null = null;
    const wordStart = i;
    let valueStart = -1; // index in `text` where the value of NAME= starts
    while (i < n) {
      const c = text[i];
      if (c === ' ' || c === '\t' || c === '\n' || SPECIAL.has(c)) break;
      if (plain && assignName === null && c === '=' && i > wordStart && /^[A-Za-z_][A-Za-z0-9_]*$/.test(s)) {
        assignName = s;
        s = '';
        i++;
        valueStart = i;
        // tilde at the start of an assignment value
        if (text[i] === '~' && (i + 1 >= n || /[/\s;]/.test(text[i + 1]))) { s += lookup('HOME'); i++; }
        continue;
      }
      if (c === "'") {
        plain = false;
        const start = line;
        i++;
        while (i < n && text[i] !== "'") { if (text[i] === '\n') line++; s += text[i++]; }
        if (i >= n) fail('unterminated single quote', start);
        i++;
      } else if (c === '"') {
        plain = false;
        const start = line;
        i++;
        while (i < n && text[i] !== '"') {
          const d = text[i];
          if (d === '\\') {
            const e = text[i + 1];
            if (e === '\n') { line++; i += 2; continue; }
            if (e === '$' || e === '`' || e === '"' || e === '\\') { s += e; i += 2; continue; }
            s += d; i++; continue;
          }
          if (d === '$') { s += dollar(); continue; }
          if (d === '`') { s += backquote(); continue; }
          if (d === '\n') line++;
          s += d; i++;
        }
        if (i >= n) fail('unterminated double quote', start);
        i++;
      } else if (c === '\\') {
        if (text[i + 1] === '\n') { line++; i += 2; continue; }
        if (i + 1 >= n) { i++; continue; }
        plain = false;
        s += text[i + 1];
        i += 2;
      } else if (c === '$') {
        plain = false; s += dollar();
      } else if (c === '`') {
        plain = false; s += backquote();
      } else if (c === '~' && i === wordStart && valueStart < 0) {
        // tilde at the start of a (non-assignment) word: only meaningful after export
        s += c; i++;
      } else {
        s += c; i++;
      }
    }
    return { text: s, assignName };
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
    words.push(readWord());
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
