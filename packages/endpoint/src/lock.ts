import { openSync, writeSync, fsyncSync, closeSync, readFileSync, unlinkSync, linkSync, renameSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { basename } from 'node:path';

/** Programs sharing `~/.smd/lock` (upstream 6.6). */
export const SYNC_LOCK_PROGRAMS: readonly string[] = ['smd-pull', 'smd-push', 'smd-uniform-names', 'smd-check-conf'];
/** Programs holding `~/.smd/loop.lock`. */
export const LOOP_LOCK_PROGRAMS: readonly string[] = ['smd-loop'];

/**
 * Another live instance holds the lock. Its message says who and what to do;
 * never to remove the lock: the holder is alive (a dead holder's lock is taken over).
 */
export class LockBusyError extends Error {
  override name = 'LockBusyError';
  /** upstream-style TAGS line (without any `<endpoint>: <prog>@host: ` prefix) */
  readonly tags: string;
  /** `program`: the holder's name (`smd-pull`), as found in its command line */
  constructor(readonly path: string, readonly pid: number, readonly program: string) {
    super(`Already running: ${program} (pid ${pid}) holds ${path}; wait for it to finish, or stop it (kill ${pid})`);
    this.tags = `TAGS: error::context(locking) probable-cause(another-instance-is-running) human-intervention(necessary) suggested-actions(run(kill ${pid}))`;
  }
}

/** Is `pid` a live process? (EPERM: alive, owned by someone else.) */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The argument vector of a process (from /proc, falling back to `ps`), or null. */
export function processArgs(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((s) => s !== '');
  } catch {
    const r = spawnSync('ps', ['-p', String(pid), '-o', 'args='], { encoding: 'utf8' });
    if (r.status !== 0 || typeof r.stdout !== 'string') return null;
    const s = r.stdout.trim();
    return s === '' ? null : s.split(/\s+/);
  }
}

/**
 * Which of `programs` `pid` is, if it is alive and one of them (any of its first
 * arguments whose base name matches, e.g. `node …/bin/smd-pull`), else null.
 */
export function runningProgram(pid: number, programs: readonly string[]): string | null {
  if (!isAlive(pid)) return null;
  const args = processArgs(pid);
  if (args === null) return null;
  // The program name is argv[0] (a compiled tool), or the script run by an interpreter
  // (node, sh): look at the first few arguments only, not at data arguments.
  for (const a of args.slice(0, 3)) if (programs.includes(basename(a))) return basename(a);
  return null;
}

/** Is `pid` alive and one of `programs`? */
export function isProgramRunning(pid: number, programs: readonly string[]): boolean {
  return runningProgram(pid, programs) !== null;
}

export interface AcquireOptions {
  /** programs that may legitimately hold this lock */
  programs: readonly string[];
  /** receives "Found lockfile of a dead instance. Ignored." (default: stdout) */
  notice?: (message: string) => void;
  /** remove the lock at process exit and on SIGINT/SIGTERM/SIGHUP (default true) */
  releaseAtExit?: boolean;
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const SIGNUM: Record<string, number> = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 };

/** A held lock file containing our PID. */
export class Lock {
  private released = false;
  private readonly onExit = (): void => this.release();
  private readonly onSignal = (sig: NodeJS.Signals): void => {
    this.release();
    // If nobody else handles this signal, behave as the default action would.
    if (process.listenerCount(sig) === 0) process.exit(128 + (SIGNUM[sig] ?? 1));
  };

  private constructor(readonly path: string, readonly pid: number, releaseAtExit: boolean) {
    if (releaseAtExit) {
      process.on('exit', this.onExit);
      for (const s of SIGNALS) process.once(s, this.onSignal);
    }
  }

  /**
   * Takes the lock: creates it atomically (a temporary file linked into place, so the
   * lock never exists without a PID in it). A lock held by a live process among
   * `programs` → LockBusyError; any other lock is stale: the notice is printed and the
   * lock taken over.
   */
  static acquire(path: string, opts: AcquireOptions): Lock {
    const notice = opts.notice ?? ((m: string) => { process.stdout.write(`${m}\n`); });
    const tmp = `${path}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, `${process.pid}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          linkSync(tmp, path);
          return new Lock(path, process.pid, opts.releaseAtExit ?? true);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
        const holder = readPid(path);
        if (holder === undefined) continue; // vanished meanwhile: retry
        const program = holder !== null && holder !== process.pid ? runningProgram(holder, opts.programs) : null;
        if (program !== null) throw new LockBusyError(path, holder as number, program);
        // Stale. Move it aside under a private name, then check it is still the one we
        // judged (another instance may have replaced it in between); put it back if not.
        const aside = `${path}.${process.pid}.stale`;
        try {
          renameSync(path, aside);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw e;
        }
        const moved = readPid(aside);
        if (moved === holder) {
          unlinkSync(aside);
          notice('Found lockfile of a dead instance. Ignored.');
        } else {
          try { linkSync(aside, path); } catch { /* someone else holds it now: retry decides */ }
          unlinkSync(aside);
        }
      }
      throw new Error(`cannot take the lock ${path}: it keeps changing`);
    } finally {
      try { unlinkSync(tmp); } catch { /* already gone */ }
    }
  }

  /** Removes the lock file if it still holds our PID. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    process.removeListener('exit', this.onExit);
    for (const s of SIGNALS) process.removeListener(s, this.onSignal);
    if (readPid(this.path) === this.pid) {
      try { unlinkSync(this.path); } catch { /* gone */ }
    }
  }
}

/** PID in a lock file: number, null if unreadable/garbage, undefined if the file is missing. */
export function readPid(path: string): number | null | undefined {
  let s: string;
  try {
    s = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return null;
  }
  const t = s.trim();
  return /^[0-9]+$/.test(t) ? Number(t) : null;
}
