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
  /** why it could not run or was stopped (a spawn error, e.g. bad interpreter; a timeout) */
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
  if (f.error !== undefined) return f.code !== null || f.signal !== null ? `hook ${f.hook}: ${f.error}` : `hook ${f.hook} could not be run: ${f.error}`;
  if (f.signal !== null) return `hook ${f.hook} was killed by ${f.signal}`;
  return `hook ${f.hook} failed with exit code ${f.code}`;
}

/**
 * Runs `~/.smd/hooks/<when>-<what>.d/*` as `HOOK <when> <what> <endpoint> <status>`,
 * stdout and stderr appended to `logFile`. Stops at the first failure and reports it.
 */
export async function runHooks(home: SmdHome, when: HookWhen, what: HookWhat, endpoint: string, status: number, logFile: string, env: NodeJS.ProcessEnv = process.env): Promise<HookRun> {
  const r = await runHookDir(home.hookDir(when, what), [when, what, endpoint, String(status)], { output: logFile, env, cwd: home.home, keepGoing: false });
  return { ran: r.ran, failure: r.failures[0] ?? null };
}

export interface HookDirOptions {
  /** stdout and stderr of the hooks are appended to this file, or given line by line to this function */
  output: string | ((line: string) => void);
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** run the following hooks after a failure (default: stop, as upstream's `set -e`) */
  keepGoing: boolean;
  /** a hook still running after this long is killed and counts as failed (default: no bound) */
  timeoutMs?: number;
}

/** Output of one hook passed on line by line, at most this much (a chatty hook cannot fill the memory or the log). */
const MAX_HOOK_OUTPUT = 64 * 1024;

/** Runs every hook of `dir` (see listHooks) with `args`, one after the other. */
export async function runHookDir(dir: string, args: readonly string[], o: HookDirOptions): Promise<{ ran: string[]; failures: HookFailure[] }> {
  const hooks = listHooks(dir);
  const ran: string[] = [];
  const failures: HookFailure[] = [];
  if (hooks.length === 0) return { ran, failures };
  const onLine = typeof o.output === 'function' ? o.output : null;
  const fd = typeof o.output === 'string' ? openSync(o.output, 'a', 0o600) : null;
  try {
    for (const hook of hooks) {
      ran.push(hook);
      const failure = await new Promise<HookFailure | null>((resolve) => {
        const child = spawn(hook, args, { stdio: fd !== null ? ['ignore', fd, fd] : ['ignore', 'pipe', 'pipe'], env: o.env, cwd: o.cwd });
        if (onLine !== null) {
          let kept = 0;
          for (const stream of [child.stdout, child.stderr]) {
            let partial = '';
            stream?.setEncoding('utf8').on('data', (d: string) => {
              if (kept >= MAX_HOOK_OUTPUT) return;
              kept += d.length;
              const lines = (partial + d).split('\n');
              partial = lines.pop() ?? '';
              for (const l of lines) onLine(l);
            }).on('end', () => { if (partial !== '') onLine(partial); });
          }
        }
        let timedOut = false;
        const timer = o.timeoutMs === undefined ? null : setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, o.timeoutMs);
        child.once('error', (e) => { if (timer !== null) clearTimeout(timer); resolve({ hook, code: null, signal: null, error: e.message }); });
        const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
          if (timer !== null) clearTimeout(timer);
          child.stdout?.destroy(); // no pipe left open by a background process
          child.stderr?.destroy();
          resolve(code === 0 ? null : timedOut ? { hook, code, signal, error: `still running after ${Math.round(o.timeoutMs! / 1000)} s: killed` } : { hook, code, signal });
        };
        if (onLine === null) child.once('exit', finish);
        else {
          // 'close' comes once the output has been passed on; a process the hook left in
          // the background may keep the pipes open, so 'exit' + a moment is enough too.
          child.once('close', finish);
          child.once('exit', (code, signal) => { setTimeout(() => finish(code, signal), 1000).unref(); });
        }
      });
      if (failure === null) continue;
      failures.push(failure);
      if (!o.keepGoing) break;
    }
    return { ran, failures };
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
