/**
 * smd-restricted-shell (upstream 6.11, fixing S3)
 *
 * Meant for `command="smd-restricted-shell",restrict ssh-ed25519 ...` in
 * ~/.ssh/authorized_keys: whoever holds that key can only synchronise, not run commands
 * or touch files outside the mailbox machinery.
 *
 * How the command line is read: `$SSH_ORIGINAL_COMMAND` is split into words the way a
 * POSIX shell would split a command made only of words — blanks separate words,
 * 'single quotes', "double quotes" (with \" \\ \$ \` escapes) and backslash escapes are
 * honoured, `~` or `~/...` at the start of a word is $HOME. There is NO shell: no
 * globbing, no variables, no command substitution. Unquoted `; & | < > ( ) $ \``, a `$`
 * or a backquote inside double quotes, comments, and newlines (even quoted or escaped)
 * are refused instead of being taken literally, since a real shell would have given
 * them a meaning (the lexer is @smd/shell's, with its strict rules).
 *
 * The rule. The first word must be `smd-server` or `smd-client`, bare or as the path of
 * the programs of THIS installation (our bin directory, also through a symlink to it).
 * Options are a whitelist, thinking of an attacker holding the key:
 *   - smd-server: -v/--verbose, -d/--dry-run, -n/--no-delete, --no-move,
 *     --stop-after-diff, --exclude GLOB; --override-db F and --dump-stdin F only when F is
 *     ~/.smd/rename-db (smd-uniform-names' scratch db, which they write): anywhere else
 *     --dump-stdin overwrites any file (S3: ~/.ssh/authorized_keys) and --override-db
 *     reads/writes/deletes any file as a db. --get-mddiff-cmdline is refused (useless
 *     remotely).
 *   - both: --follow DIR (where folder symlinks may lead), with DIR relative and without
 *     `..` like a mailbox: an absolute one (FOLLOW_REMOTE) is refused through this shell.
 *   - smd-client: -v/--verbose, -d/--dry-run, -l/--local-sync. Refused: -t/--translator
 *     (runs an arbitrary command), --rename-only (writes ~/smd-rename.sh, a script the
 *     user is told to run) and --override-db.
 *   - -h/--help and --version for both.
 *   Positional arguments (the client name and the mailbox roots) must not be absolute
 *   nor contain a `..` path component, so the scanned/written tree stays below $HOME
 *   (S1/S2 themselves are closed in the server and client).
 *   Combined short options (-vd), `--opt=value` forms and unknown options are refused.
 *   Paths are judged by their spelling only, never by looking at the file system (the
 *   answer must not tell what exists on the server): the rename-db value and a program
 *   path must be spelled plainly (no `.`, `..`, `//`).
 * The allowed program is then run directly (no shell), in $HOME, with its stdio (the
 * rename-db value given as its absolute path), and its exit code is ours. Anything
 * refused: a message on stderr, exit 1.
 */
import { spawn } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { join, isAbsolute, basename, normalize } from 'node:path';
import { ShellSyntaxError, splitWords, strictWords } from '@smd/shell';
import { parseCommandLine } from '../args/index.js';
import { SMD_RESTRICTED_SHELL } from '../args/specs.js';
import { OWN_BIN } from '../launch.js';

const PROGRAMS = ['smd-server', 'smd-client'] as const;
type Program = (typeof PROGRAMS)[number];

/** The bin directory of this installation. */
export function ourBinDir(): string {
  return OWN_BIN;
}

export class RefusedError extends Error {
  override name = 'RefusedError';
}

/** Splits a command line into words (see the module comment): the shared lexer, refusing all shell syntax. */
export function splitCommandLine(cmd: string, home: string): string[] {
  try {
    return splitWords(cmd, strictWords(home === '' ? null : home));
  } catch (e) {
    if (e instanceof ShellSyntaxError) throw new RefusedError(e.message);
    throw e;
  }
}

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/**
 * Which of our programs the first word names, or null. A path must be spelled
 * plainly (no `.`, `..` or `//`): the kernel walks every component of a path
 * like `/dir/../bin/smd-server`, so accepting it would answer differently
 * whether `/dir` exists or not.
 */
export function allowedProgram(word: string, binDir: string): Program | null {
  for (const p of PROGRAMS) {
    if (word === p) return p;
    if (isAbsolute(word) && plainPath(word) && basename(word) === p && (word === join(binDir, p) || sameFile(word, join(binDir, p)))) return p;
  }
  return null;
}

/** An absolute path without `.`, `..`, empty components or a trailing `/`. */
function plainPath(p: string): boolean {
  return p.length > 1 && normalize(p) === p && !p.endsWith('/');
}

function checkPathArgument(a: string, what: string): void {
  if (a === '') throw new RefusedError(`empty ${what}`);
  // mailbox arguments are %-decoded by the programs (mddiff): check both forms
  const d = decodePercent(a);
  if (isAbsolute(a) || isAbsolute(d)) throw new RefusedError(`${what} "${a}" is an absolute path`);
  if (a.split('/').includes('..') || d.split('/').includes('..')) throw new RefusedError(`${what} "${a}" contains ..`);
}

function decodePercent(s: string): string {
  return s.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/**
 * Validates the arguments of `prog` against the whitelist; throws RefusedError.
 * Returns the arguments to run it with: the same, except that the rename-db
 * value is given as its absolute path.
 */
export function checkArguments(prog: Program, args: string[], home: string): string[] {
  const flags = prog === 'smd-server'
    ? ['-v', '--verbose', '-d', '--dry-run', '-n', '--no-delete', '--no-move', '--stop-after-diff', '-h', '--help', '--version']
    : ['-v', '--verbose', '-d', '--dry-run', '-l', '--local-sync', '--allow-mass-delete', '-h', '--help', '--version'];
  const renameDb = home === '' ? null : join(home, '.smd', 'rename-db');
  const positional: string[] = [];
  const out = [...args];
  for (let k = 0; k < args.length; k++) {
    const a = args[k];
    if (positional.length > 0 || !a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    if (flags.includes(a)) continue;
    // The mass-deletion brake's limit (smd-push passes MASS_DELETE_THRESHOLD): a number or `off`, nothing else.
    if (prog === 'smd-client' && /^--mass-delete-threshold=(\d{1,3}|off)$/.test(a)) continue;
    if (prog === 'smd-client' && a === '--mass-delete-threshold') {
      if (!/^(\d{1,3}|off)$/.test(args[++k] ?? '')) throw new RefusedError('--mass-delete-threshold needs a percentage or off');
      continue;
    }
    if (prog === 'smd-server' && a === '--exclude') {
      if (args[++k] === undefined) throw new RefusedError('--exclude needs a value');
      continue;
    }
    if (a === '--follow') {
      // where folder symlinks may lead: like a mailbox, below HOME only
      const v = args[++k];
      if (v === undefined) throw new RefusedError('--follow needs a value');
      checkPathArgument(v, '--follow directory');
      continue;
    }
    if (prog === 'smd-server' && (a === '--override-db' || a === '--dump-stdin')) {
      const v = args[++k];
      if (v === undefined) throw new RefusedError(`${a} needs a value`);
      if (renameDb === null || renameDbPath(v, home) !== renameDb) throw new RefusedError(`${a} is only allowed with ~/.smd/rename-db`);
      out[k] = renameDb;
      continue;
    }
    throw new RefusedError(`option ${a} of ${prog} is not allowed through smd-restricted-shell`);
  }
  positional.forEach((p, idx) => checkPathArgument(p, idx === 0 ? 'client name' : 'mailbox'));
  return out;
}

/**
 * The file a rename-db value names, as smd-server reads it (a leading `~/` is
 * HOME, a relative path is under HOME, where the program runs), or null when
 * it is not spelled plainly. Only the spelling is looked at, never the file
 * system: the answer must not depend on what exists on the server.
 */
function renameDbPath(v: string, home: string): string | null {
  const expanded = v.startsWith('~/') ? `${home}${v.slice(1)}` : v;
  const abs = isAbsolute(expanded) ? expanded : `${home}/${expanded}`;
  return plainPath(abs) ? abs : null;
}

export async function main(argv: string[]): Promise<number> {
  // its own arguments: only --help and --version (the command to check is in SSH_ORIGINAL_COMMAND)
  const own = await parseCommandLine(SMD_RESTRICTED_SHELL, argv);
  if (typeof own === 'number') return own;
  const home = (process.env.HOME ?? '').replace(/(.)\/+$/, '$1');
  const original = process.env.SSH_ORIGINAL_COMMAND;
  const binDir = ourBinDir();
  let prog: Program;
  let args: string[];
  try {
    if (original === undefined || original.trim() === '') throw new RefusedError('no command given (SSH_ORIGINAL_COMMAND is empty): interactive logins are not allowed');
    if (!isAbsolute(home)) throw new RefusedError('HOME is not set to an absolute path');
    const words = splitCommandLine(original, home);
    if (words.length === 0) throw new RefusedError('empty command');
    const p = allowedProgram(words[0], binDir);
    if (p === null) throw new RefusedError(`"${words[0]}" is not allowed: only smd-server and smd-client (bare or as ${binDir}/...)`);
    prog = p;
    args = checkArguments(prog, words.slice(1), home);
  } catch (e) {
    if (e instanceof RefusedError) {
      process.stderr.write(`smd-restricted-shell: refused: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  return await new Promise<number>((res) => {
    // In HOME, where the relative mailbox paths that were checked lead (sshd starts in the passwd home).
    const child = spawn(process.execPath, [join(binDir, prog), ...args], { stdio: 'inherit', cwd: home });
    child.once('error', (e) => {
      process.stderr.write(`smd-restricted-shell: cannot run ${prog}: ${e.message}\n`);
      res(1);
    });
    child.once('exit', (code, signal) => res(code ?? (signal !== null ? 128 + (signalNumber(signal)) : 1)));
  });
}

function signalNumber(sig: NodeJS.Signals): number {
  const nums: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGPIPE: 13, SIGTERM: 15 };
  return nums[sig] ?? 1;
}
