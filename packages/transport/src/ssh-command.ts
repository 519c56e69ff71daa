import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { LITERAL_WORDS, quoteWord, ShellSyntaxError, splitWords } from '@smd/shell';
import { TransportError } from './errors.js';

/**
 * The words of the remote command as ssh gets them: one argument per word, as
 * upstream passes them, so that an SSH wrapper which runs its arguments
 * itself (`shift; exec "$@"`, `cd DIR && exec "$@"`, sudo, a container)
 * runs the right program with the right arguments. OpenSSH joins them with
 * spaces for the remote `sh -c`, so each word is shell-quoted, but only when
 * it needs it: the usual words (paths, options, mailbox names) go through a
 * wrapper untouched. A leading `~/` is left to the remote shell, meaning the
 * remote HOME as it did upstream (smd's programs expand it themselves when a
 * wrapper passes it on literally).
 */
export function remoteWords(argv: readonly string[]): string[] {
  if (argv.length === 0) throw new TransportError('config', 'no remote command given');
  return argv.map((w) => (w.startsWith('~/') ? `~/${w.length > 2 ? quoteWord(w.slice(2)) : ''}` : quoteWord(w)));
}

/** The remote command as one string (what the remote `sh -c` reads; the ssh2 exec request). */
export function remoteCommandLine(argv: readonly string[]): string {
  return remoteWords(argv).join(' ');
}

/**
 * Splits a command value such as `ssh -C -o "ControlPath=~/x y"` into words:
 * quotes and backslashes as in sh, nothing expanded.
 */
export function splitCommandWords(value: string): string[] {
  try {
    return splitWords(value, LITERAL_WORDS);
  } catch (e) {
    if (e instanceof ShellSyntaxError) throw new TransportError('config', `${e.message} in: ${value}`);
    throw e;
  }
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
  const words = splitCommandWords(pick);
  if (words.length === 0 || words[0] === '') throw new TransportError('config', `empty ssh command: ${JSON.stringify(pick)}`);
  const found = findOnPath(words[0]!, env.PATH);
  if (found !== null) words[0] = found;
  return words;
}
