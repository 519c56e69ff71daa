import { readdirSync, openSync, closeSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { isExecutableFile } from '@smd/transport';
import { join } from 'node:path';
import type { SmdHome, HookWhen, HookWhat } from './home.js';

export interface HookFailure {
  hook: string;
  /** exit code, or null when killed by a signal */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** spawn error message (e.g. bad interpreter) */
  error?: string;
}

export interface HookRun {
  /** hooks run, in order (full paths) */
  ran: string[];
  /** the first failing hook (the following ones are not run, as with upstream's `set -e`) */
  failure: HookFailure | null;
}

/** Executable regular files of a hook directory in glob order (byte order, dot-files skipped). */
export function listHooks(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return names
    .filter((n) => !n.startsWith('.'))
    .sort((a, b) => { const x = Buffer.from(a); const y = Buffer.from(b); return Buffer.compare(x, y); })
    .map((n) => join(dir, n))
    .filter(isExecutableFile);
}

/** Describes a failure for people. */
export function describeHookFailure(f: HookFailure): string {
  if (f.error !== undefined) return `hook ${f.hook} could not be run: ${f.error}`;
  if (f.signal !== null) return `hook ${f.hook} was killed by ${f.signal}`;
  return `hook ${f.hook} failed with exit code ${f.code}`;
}

/**
 * Runs `~/.smd/hooks/<when>-<what>.d/*` as `HOOK <when> <what> <endpoint> <status>`,
 * stdout and stderr appended to `logFile`. Stops at the first failure and reports it.
 */
export async function runHooks(home: SmdHome, when: HookWhen, what: HookWhat, endpoint: string, status: number, logFile: string, env: NodeJS.ProcessEnv = process.env): Promise<HookRun> {
  const hooks = listHooks(home.hookDir(when, what));
  const ran: string[] = [];
  if (hooks.length === 0) return { ran, failure: null };
  const fd = openSync(logFile, 'a', 0o600);
  try {
    for (const hook of hooks) {
      ran.push(hook);
      const failure = await new Promise<HookFailure | null>((resolve) => {
        const child = spawn(hook, [when, what, endpoint, String(status)], { stdio: ['ignore', fd, fd], env, cwd: home.home });
        child.once('error', (e) => resolve({ hook, code: null, signal: null, error: e.message }));
        child.once('exit', (code, signal) => resolve(code === 0 ? null : { hook, code, signal }));
      });
      if (failure !== null) return { ran, failure };
    }
    return { ran, failure: null };
  } finally {
    closeSync(fd);
  }
}
