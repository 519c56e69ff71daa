import { existsSync, mkdirSync, renameSync, chmodSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hooksReadme } from './templates.js';

/** Raised when the environment gives no usable home directory. */
export class HomeError extends Error {
  override name = 'HomeError';
}

export type HookWhen = 'pre' | 'post';
export type HookWhat = 'pull' | 'push';

/**
 * Paths of `~/.smd/` (upstream section 6.1). Pure path arithmetic plus `ensure()`, which
 * creates the tree with private modes.
 */
export class SmdHome {
  /** `$HOME/.smd` */
  readonly dir: string;

  constructor(readonly home: string) {
    if (home === '') throw new HomeError('HOME is not set: smd keeps its files in $HOME/.smd');
    this.dir = join(home, '.smd');
  }

  /** From `$HOME` of the given environment. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): SmdHome {
    return new SmdHome(env.HOME ?? '');
  }

  /** `~/.smd/config.<endpoint>` */
  config(endpoint: string): string { return join(this.dir, `config.${endpoint}`); }
  /** The pre-1.0 single config file, renamed to `config.default` by `ensure()`. */
  get oldConfig(): string { return join(this.dir, 'config'); }
  get lock(): string { return join(this.dir, 'lock'); }
  get loop(): string { return join(this.dir, 'loop'); }
  get loopLock(): string { return join(this.dir, 'loop.lock'); }
  /** Requests of `smd-loop --now` to the running smd-loop, one file each. */
  get loopRequests(): string { return join(this.dir, 'loop.now'); }
  get logDir(): string { return join(this.dir, 'log'); }
  clientLog(endpoint: string): string { return join(this.logDir, `client.${endpoint}.log`); }
  serverLog(endpoint: string): string { return join(this.logDir, `server.${endpoint}.log`); }
  c2sLog(endpoint: string): string { return join(this.logDir, `c2s.${endpoint}.log`); }
  s2cLog(endpoint: string): string { return join(this.logDir, `s2c.${endpoint}.log`); }
  get loopLog(): string { return join(this.logDir, 'loop.log'); }
  /** The run journal of an endpoint (JSON Lines, rotated by size). */
  journal(endpoint: string): string { return join(this.logDir, `journal.${endpoint}.jsonl`); }
  /** The records of the endpoint's last run only (given to post hooks). */
  runJournal(endpoint: string): string { return join(this.logDir, `run.${endpoint}.jsonl`); }
  get fifoDir(): string { return join(this.dir, 'fifo'); }
  get hooksDir(): string { return join(this.dir, 'hooks'); }
  get hooksReadme(): string { return join(this.hooksDir, 'README'); }
  hookDir(when: HookWhen, what: HookWhat): string { return join(this.hooksDir, `${when}-${what}.d`); }
  /** Hooks smd-loop runs when an endpoint needs a human: `HOOK ENDPOINT TAGS MESSAGE`. */
  get needsHumanHookDir(): string { return join(this.hooksDir, 'needs-human.d'); }
  get workarea(): string { return join(this.dir, 'workarea'); }
  /** Scratch db of smd-uniform-names. */
  get renameDb(): string { return join(this.dir, 'rename-db'); }

  /**
   * Creates `~/.smd` (mode 0700: it holds logs with whole mails and db-files) and its
   * subdirectories, writes `hooks/README` when missing, and renames an old
   * `~/.smd/config` to `config.default` (unless that one exists already).
   * Returns whether the old config was renamed.
   */
  ensure(): { renamedOldConfig: boolean } {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    // An existing ~/.smd created by an old version with a lax umask is tightened.
    if ((statSync(this.dir).mode & 0o077) !== 0) chmodSync(this.dir, 0o700);
    for (const d of [this.logDir, this.fifoDir, this.hooksDir, this.workarea]) mkdirSync(d, { recursive: true, mode: 0o700 });
    for (const when of ['pre', 'post'] as const) for (const what of ['pull', 'push'] as const) {
      mkdirSync(this.hookDir(when, what), { recursive: true, mode: 0o700 });
    }
    mkdirSync(this.needsHumanHookDir, { recursive: true, mode: 0o700 });
    if (!existsSync(this.hooksReadme)) {
      try { writeFileSync(this.hooksReadme, hooksReadme(), { flag: 'wx', mode: 0o600 }); } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    let renamedOldConfig = false;
    const def = this.config('default');
    if (existsSync(this.oldConfig) && !existsSync(def)) {
      renameSync(this.oldConfig, def);
      renamedOldConfig = true;
    }
    return { renamedOldConfig };
  }
}
