/**
 * Waking a running smd-loop from another terminal: `smd-loop --now [ENDPOINT]` drops a
 * request file into `~/.smd/loop.now/` and sends SIGUSR1 to the pid of `~/.smd/loop.lock`;
 * the loop takes (deletes) the requests when the signal arrives. A plain `kill -USR1`
 * finds no request and means every endpoint. Files, not the signal, carry the endpoint, so
 * two requests arriving together (signals are not queued) are both served.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isProgramRunning, LOOP_LOCK_PROGRAMS, readPid, type SmdHome } from '@smd/endpoint';

/** How long `--now` waits for the loop to take its request. */
const TAKE_TIMEOUT_MS = 10_000;

/**
 * The requests waiting in `dir`, removed: an endpoint name each, null for "every
 * endpoint". Files being written (dot names) are left for the next signal.
 */
export function takeRequests(dir: string): (string | null)[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: (string | null)[] = [];
  for (const n of names) {
    if (n.startsWith('.')) continue;
    const p = join(dir, n);
    let text: string;
    try {
      text = readFileSync(p, 'utf8');
      unlinkSync(p);
    } catch {
      continue; // taken meanwhile
    }
    const endpoint = text.trim();
    out.push(endpoint === '' ? null : endpoint);
  }
  return out;
}

/** The pid of the running smd-loop (from `~/.smd/loop.lock`), or null. */
export function runningLoop(home: SmdHome): number | null {
  const pid = readPid(home.loopLock);
  if (typeof pid !== 'number' || pid === process.pid) return null;
  return isProgramRunning(pid, LOOP_LOCK_PROGRAMS) ? pid : null;
}

export type WakeResult = { ok: true; pid: number } | { ok: false; message: string };

/** Asks the running smd-loop to sync `endpoint` (every endpoint when null) now; resolves once it took the request. */
export async function requestWake(home: SmdHome, endpoint: string | null): Promise<WakeResult> {
  const pid = runningLoop(home);
  if (pid === null) return { ok: false, message: 'no smd-loop is running (start it, or run smd-pull / smd-push by hand)' };
  mkdirSync(home.loopRequests, { recursive: true, mode: 0o700 });
  const name = `${process.pid}-${Date.now()}`;
  const file = join(home.loopRequests, name);
  const tmp = join(home.loopRequests, `.${name}`);
  writeFileSync(tmp, `${endpoint ?? ''}\n`, { mode: 0o600 });
  renameSync(tmp, file);
  try {
    process.kill(pid, 'SIGUSR1');
  } catch (e) {
    try { unlinkSync(file); } catch { /* taken */ }
    return { ok: false, message: `cannot signal smd-loop (pid ${pid}): ${(e as Error).message}` };
  }
  const deadline = Date.now() + TAKE_TIMEOUT_MS;
  while (existsSync(file)) {
    if (Date.now() > deadline) {
      try { unlinkSync(file); } catch { return { ok: true, pid }; /* taken at the last moment */ }
      return { ok: false, message: `smd-loop (pid ${pid}) did not take the request within ${TAKE_TIMEOUT_MS / 1000} s` };
    }
    await sleep(20);
  }
  return { ok: true, pid };
}
