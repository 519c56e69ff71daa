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
 * or a backquote inside double quotes, and newlines are refused instead of being taken
 * literally, since a real shell would have given them a meaning.
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
 *   - smd-client: -v/--verbose, -d/--dry-run, -l/--local-sync. Refused: -t/--translator
 *     (runs an arbitrary command), --rename-only (writes ~/smd-rename.sh, a script the
 *     user is told to run) and --override-db.
 *   - -h/--help and --version for both.
 *   Positional arguments (the client name and the mailbox roots) must not be absolute
 *   nor contain a `..` path component, so the scanned/written tree stays below $HOME
 *   (S1/S2 themselves are closed in the server and client).
 *   Combined short options (-vd), `--opt=value` forms and unknown options are refused.
 * The allowed program is then run directly (no shell) with its stdio, and its exit code
 * is ours. Anything refused: a message on stderr, exit 1.
 */
import { spawn } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { dirname, join, resolve, isAbsolute, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VERSION } from '../launch.js';

const PROGRAMS = ['smd-server', 'smd-client'] as const;
type Program = (typeof PROGRAMS)[number];

/** The bin directory of this installation (packages/cli/dist/commands → ../../../../bin). */
export function ourBinDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'bin');
}

export class RefusedError extends Error {
  override name = 'RefusedError';
}

/** Splits a command line into words (see the module comment). */
export function splitCommandLine(cmd: string, home: string): string[] {
  const words: string[] = [];
  let i = 0;
  const n = cmd.length;
  while (i < n) {
    while (i < n && (cmd[i] === ' ' || cmd[i] === '\t')) i++;
    if (i >= n) break;
    let w = '';
    let any = false;
    if (cmd[i] === '~' && (i + 1 >= n || cmd[i + 1] === '/' || cmd[i + 1] === ' ' || cmd[i + 1] === '\t')) {
      if (home === '') throw new RefusedError('~ used but HOME is not set');
      w = home; i++; any = true;
    }
    while (i < n && cmd[i] !== ' ' && cmd[i] !== '\t') {
      const c = cmd[i];
      if (c === "'") {
        const e = cmd.indexOf("'", i + 1);
        if (e < 0) throw new RefusedError('unterminated single quote');
        w += cmd.slice(i + 1, e); i = e + 1; any = true;
      } else if (c === '"') {
        i++;
        while (i < n && cmd[i] !== '"') {
          const d = cmd[i];
          if (d === '$' || d === '`') throw new RefusedError(`"${d}" inside double quotes is not accepted`);
          if (d === '\\' && i + 1 < n && '"\\$`'.includes(cmd[i + 1])) { w += cmd[i + 1]; i += 2; continue; }
          if (d === '\n') throw new RefusedError('newline in the command');
          w += d; i++;
        }
        if (i >= n) throw new RefusedError('unterminated double quote');
        i++; any = true;
      } else if (c === '\\') {
        if (i + 1 >= n || cmd[i + 1] === '\n') throw new RefusedError('dangling backslash');
        w += cmd[i + 1]; i += 2; any = true;
      } else if (';&|<>()$`\n\r'.includes(c)) {
        throw new RefusedError(`shell syntax "${c === '\n' ? '\\n' : c}" is not accepted`);
      } else if (c === '#' && !any) {
        throw new RefusedError('comments are not accepted');
      } else {
        w += c; i++; any = true;
      }
    }
    if (any) words.push(w);
  }
  return words;
}

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** Which of our programs the first word names, or null. */
export function allowedProgram(word: string, binDir: string): Program | null {
  for (const p of PROGRAMS) {
    if (word === p) return p;
    if (isAbsolute(word) && basename(word) === p && (resolve(word) === join(binDir, p) || sameFile(word, join(binDir, p)))) return p;
  }
  return null;
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

/** Validates the arguments of `prog` against the whitelist; throws RefusedError. */
export function checkArguments(prog: Program, args: string[], home: string): void {
  const flags = prog === 'smd-server'
    ? ['-v', '--verbose', '-d', '--dry-run', '-n', '--no-delete', '--no-move', '--stop-after-diff', '-h', '--help', '--version']
    : ['-v', '--verbose', '-d', '--dry-run', '-l', '--local-sync', '--allow-mass-delete', '-h', '--help', '--version'];
  const renameDb = home === '' ? null : join(home, '.smd', 'rename-db');
  const positional: string[] = [];
  for (let k = 0; k < args.length; k++) {
    const a = args[k];
    if (positional.length > 0 || !a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    if (flags.includes(a)) continue;
    // The mass-deletion brake's limit (smd-push passes MASS_DELETE_THRESHOLD): a number or `off`, nothing else.
    if (prog === 'smd-client' && /^--mass-delete-threshold=(\d{1,3}|off)$/.test(a)) continue;
    if (prog === 'smd-server' && a === '--exclude') {
      if (args[++k] === undefined) throw new RefusedError('--exclude needs a value');
      continue;
    }
    if (prog === 'smd-server' && (a === '--override-db' || a === '--dump-stdin')) {
      const v = args[++k];
      if (v === undefined) throw new RefusedError(`${a} needs a value`);
      const abs = isAbsolute(v) ? resolve(v) : home === '' ? null : resolve(home, v);
      if (renameDb === null || abs !== renameDb) throw new RefusedError(`${a} is only allowed with ~/.smd/rename-db`);
      continue;
    }
    throw new RefusedError(`option ${a} of ${prog} is not allowed through smd-restricted-shell`);
  }
  positional.forEach((p, idx) => checkPathArgument(p, idx === 0 ? 'client name' : 'mailbox'));
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(`Usage: smd-restricted-shell

To be used as command="smd-restricted-shell" in ~/.ssh/authorized_keys. Runs
$SSH_ORIGINAL_COMMAND only if it is smd-server or smd-client with options that
cannot touch anything but the mailbox. The command line is split into words
without a shell (no globbing, variables or substitutions; ; & | < > refused).

Allowed:
  smd-server  -v -d -n --no-move --stop-after-diff --exclude GLOB,
              --override-db / --dump-stdin only with ~/.smd/rename-db
  smd-client  -v -d -l --allow-mass-delete --mass-delete-threshold=N|off
  ENDPOINT and MAILBOX arguments that are relative and contain no ".."
Refused: anything else, e.g. smd-client -t (runs a command), --rename-only,
--dump-stdin to another file, --get-mddiff-cmdline, other programs.
`);
    return 0;
  }
  if (argv[0] === '--version') { process.stdout.write(`${VERSION}\n`); return 0; }
  const home = process.env.HOME ?? '';
  const original = process.env.SSH_ORIGINAL_COMMAND;
  const binDir = ourBinDir();
  let prog: Program;
  let args: string[];
  try {
    if (original === undefined || original.trim() === '') throw new RefusedError('no command given (SSH_ORIGINAL_COMMAND is empty): interactive logins are not allowed');
    const words = splitCommandLine(original, home);
    if (words.length === 0) throw new RefusedError('empty command');
    const p = allowedProgram(words[0], binDir);
    if (p === null) throw new RefusedError(`"${words[0]}" is not allowed: only smd-server and smd-client (bare or as ${binDir}/...)`);
    prog = p;
    args = words.slice(1);
    checkArguments(prog, args, home);
  } catch (e) {
    if (e instanceof RefusedError) {
      process.stderr.write(`smd-restricted-shell: refused: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  return await new Promise<number>((res) => {
    const child = spawn(process.execPath, [join(binDir, prog), ...args], { stdio: 'inherit' });
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
