/**
 * Telling a human that an endpoint needs them: the hooks of `~/.smd/hooks/needs-human.d/`
 * (`HOOK ENDPOINT TAGS MESSAGE`) and, in a desktop session with `notify-send`, a desktop
 * notification. smd-loop calls this once per problem, not per retry.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describeHookFailure, findOnPath, runHookDir, type Problem, type SmdHome } from '@smd/endpoint';

/** Bound of each hook and of notify-send: the loop must go on. */
const HOOK_TIMEOUT_MS = 60_000;
const NOTIFY_TIMEOUT_MS = 10_000;

/** A graphical session whose notification daemon notify-send can reach over the session bus. */
export function hasDesktopSession(env: NodeJS.ProcessEnv): boolean {
  const display = (env.DISPLAY ?? '') !== '' || (env.WAYLAND_DISPLAY ?? '') !== '';
  const bus = (env.DBUS_SESSION_BUS_ADDRESS ?? '') !== '' || ((env.XDG_RUNTIME_DIR ?? '') !== '' && existsSync(join(env.XDG_RUNTIME_DIR!, 'bus')));
  return display && bus;
}

export async function tellHuman(home: SmdHome, endpoint: string, problem: Problem, log: (line: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const hooks = await runHookDir(home.needsHumanHookDir, [endpoint, problem.tags, problem.message], {
    output: (l) => log(`hook: ${l}`), env, cwd: home.home, keepGoing: true, timeoutMs: HOOK_TIMEOUT_MS,
  });
  if (hooks.ran.length > 0) log(`ran ${hooks.ran.length} needs-human hook(s)`);
  for (const f of hooks.failures) log(describeHookFailure(f));

  if (!hasDesktopSession(env)) return;
  const notifySend = findOnPath('notify-send', env);
  if (notifySend === null) return;
  const error = await new Promise<string | null>((resolve) => {
    const child = spawn(notifySend, ['-u', 'critical', '-a', 'smd-loop', `smd: ${endpoint} needs you`, problem.message], { stdio: 'ignore', env });
    const timer = setTimeout(() => child.kill('SIGKILL'), NOTIFY_TIMEOUT_MS);
    child.once('error', (e) => { clearTimeout(timer); resolve(e.message); });
    child.once('exit', (code, signal) => { clearTimeout(timer); resolve(code === 0 ? null : `exit ${code ?? signal}`); });
  });
  log(error === null ? 'desktop notification sent' : `notify-send failed (${error})`);
}
