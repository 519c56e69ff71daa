import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { TransportError } from './errors.js';

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Quotes one word for a POSIX shell: the result always reads back as exactly
 * `word` (spaces, quotes, `$`, `&`, `*`, newlines included). Words made only
 * of harmless characters are left as they are, for readable logs.
 */
export function shellQuote(word: string): string {
  if (word.length > 0 && SAFE.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command string ssh hands to the remote login shell (`sh -c`): every
 * argument quoted. Upstream concatenated them unquoted (B15/S5).
 */
export function remoteCommandLine(argv: readonly string[]): string {
  if (argv.length === 0) throw new TransportError('config', 'no remote command given');
  return argv.map(shellQuote).join(' ');
}

/**
 * Splits a command value such as `ssh -C -o "ControlPath=~/x y"` into words,
 * with the simple part of the shell's rules: blanks separate words; '...'
 * is literal; "..." keeps blanks and honours backslash before `"\$` and
 * backquote; a backslash outside quotes escapes the next character. No
 * expansion of any kind happens.
 */
export function splitShellWords(value: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let i = 0;
  const n = value.length;
  while (i < n) {
    const c = value[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) { words.push(cur); cur = ''; inWord = false; }
      i++;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = value.indexOf("'", i + 1);
      if (end < 0) throw new TransportError('config', `unterminated ' quote in: ${value}`);
      cur += value.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= n) throw new TransportError('config', `unterminated " quote in: ${value}`);
        const d = value[i]!;
        if (d === '"') { i++; break; }
        if (d === '\\' && i + 1 < n && '"\\$`\n'.includes(value[i + 1]!)) {
          if (value[i + 1] !== '\n') cur += value[i + 1];
          i += 2;
          continue;
        }
        cur += d;
        i++;
      }
    } else if (c === '\\') {
      if (i + 1 < n) { if (value[i + 1] !== '\n') cur += value[i + 1]; i += 2; } else { cur += c; i++; }
    } else {
      cur += c;
      i++;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

/** A regular file we may execute. */
export function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Where a command runs from: a name with a `/` must itself be executable; a
 * bare name is looked up on `pathValue` (an empty entry is the cwd, as in sh).
 * Null when not found.
 */
export function findOnPath(name: string, pathValue: string | undefined): string | null {
  if (name.includes('/')) return isExecutableFile(name) ? name : null;
  for (const dir of (pathValue ?? '').split(delimiter)) {
    const p = join(dir === '' ? '.' : dir, name);
    if (isExecutableFile(p)) return p;
  }
  return null;
}

/**
 * The ssh command to run, as words: the environment's `SMD_SSH` wins over the
 * config value `SSH`; both default to `ssh`. The value may carry options
 * (`ssh -C -o ControlMaster=auto`). A bare program name is resolved on the
 * environment's PATH (left bare when not found: starting it then fails with a
 * clear 'spawn' error).
 */
export function resolveSshCommand(opts: { configValue?: string | undefined; env?: NodeJS.ProcessEnv } = {}): string[] {
  const env = opts.env ?? process.env;
  const pick = [env.SMD_SSH, opts.configValue].find((v) => v !== undefined && v.trim() !== '') ?? 'ssh';
  const words = splitShellWords(pick);
  if (words.length === 0 || words[0] === '') throw new TransportError('config', `empty ssh command: ${JSON.stringify(pick)}`);
  const found = findOnPath(words[0]!, env.PATH);
  if (found !== null) words[0] = found;
  return words;
}
