/**
 * Running test processes as an unprivileged user.
 *
 * CI and sessions run as root, where `chmod a-w` / `chmod 0` deny nothing, so
 * a permission case tested as root tests nothing. `testUser()` returns the
 * user the permission tests run as:
 * - as root: the user `smd-test`, created here if missing (`useradd -m`, and
 *   `usermod -p '*'` so that sshd accepts it: it refuses a locked `!`
 *   password field when UsePAM is off). `.ci/run` creates it too; creating it
 *   here keeps `npx tap test/permissions.test.ts` working on a fresh machine.
 *   Failing to create it fails the test (never a silent skip).
 * - as any other user: that user itself (it is already unprivileged).
 *
 * `runAs` spawns a process under that user (Node's `uid`/`gid` spawn options,
 * which also drop root's supplementary groups), `ownedTempDir` makes a temp
 * directory the user owns (removed at teardown, as root or as the user).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export const TEST_USER = 'smd-test';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  /** true when the tests run as root and this is the created user */
  created: boolean;
}

let cached: TestUser | null = null;

function lookup(name: string): TestUser | null {
  const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return null;
  return { name, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()), created: true };
}

/** The unprivileged user of the permission tests (see the module comment). Throws if it cannot exist. */
export function testUser(): TestUser {
  if (cached !== null) return cached;
  if (process.getuid?.() !== 0) {
    const me = userInfo();
    cached = { name: me.username, uid: me.uid, gid: me.gid, created: false };
    return cached;
  }
  let u = lookup(TEST_USER);
  if (u === null) {
    const add = spawnSync('useradd', ['-m', '-s', '/bin/sh', TEST_USER], { encoding: 'utf8' });
    // Another test file (or worktree) may have created it meanwhile: look again before failing.
    u = lookup(TEST_USER);
    if (u === null) throw new Error(`cannot create the test user ${TEST_USER}: ${add.stderr || add.error?.message}`);
  }
  const shadow = spawnSync('getent', ['shadow', TEST_USER], { encoding: 'utf8' });
  if (shadow.status === 0 && shadow.stdout.split(':')[1]?.startsWith('!')) spawnSync('usermod', ['-p', '*', TEST_USER]);
  if (u.uid === 0) throw new Error(`the test user ${TEST_USER} has uid 0`);
  cached = u;
  return cached;
}

/** A fresh temp directory owned by the test user (mode 0755), removed when `t` ends. */
export function ownedTempDir(t: { teardown(fn: () => void): void }, prefix = 'smd-perm-'): string {
  const u = testUser();
  const d = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(d, 0o755);
  if (u.created) chownSync(d, u.uid, u.gid);
  t.teardown(() => {
    // Folders the test made unreadable are made readable again before removal
    // (root removes anything; a non-root run needs the bits back).
    spawnSync('chmod', ['-R', 'u+rwX', d]);
    rmSync(d, { recursive: true, force: true });
  });
  return d;
}

export interface RunAsResult { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/**
 * Runs `cmd args` as the test user in `cwd` with exactly `env` (plus nothing:
 * HOME, PATH... must be given), stdin from `input`; bounded in time
 * (SIGKILL after `timeoutMs`, default 90 s). Output is decoded as latin1.
 */
export function runAs(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; input?: string | Buffer; timeoutMs?: number }): Promise<RunAsResult> {
  const u = testUser();
  return new Promise((resolve) => {
    // Through env(1): tap's process-info hook injects NODE_OPTIONS into every
    // child, and that hook would try to write into the repository's .tap/ as
    // the test user (an EACCES stack trace on stderr of every program).
    const child = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', cmd, ...args], {
      cwd: opts.cwd, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'],
      ...(u.created ? { uid: u.uid, gid: u.gid } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('latin1').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('latin1').on('data', (d: string) => { stderr += d; });
    child.stdin.on('error', () => { /* it may exit before reading */ });
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 90_000);
    child.on('close', (status, signal) => { clearTimeout(timer); resolve({ status, signal, stdout, stderr }); });
  });
}

/** Runs a shell script as the test user (for building fixtures with the user's ownership). */
export function shAs(script: string, cwd: string): void {
  const u = testUser();
  const r = spawnSync('sh', ['-ec', script], { cwd, encoding: 'utf8', ...(u.created ? { uid: u.uid, gid: u.gid } : {}) });
  if (r.status !== 0) throw new Error(`fixture script failed (${r.status}): ${r.stderr}`);
}

/** The spawn options that make a process run as the test user (for spawn calls made elsewhere). */
export function asTestUser(): { uid?: number; gid?: number } {
  const u = testUser();
  return u.created ? { uid: u.uid, gid: u.gid } : {};
}

/** Gives `path` (recursively) to the test user: fixtures written by the test process (root) become the user's. */
export function giveToTestUser(path: string): void {
  const u = testUser();
  if (!u.created) return;
  const r = spawnSync('chown', ['-R', `${u.uid}:${u.gid}`, path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`chown -R ${u.name} ${path} failed: ${r.stderr}`);
}

/**
 * Spawns `cmd args` as the test user with piped stdio (for scripted peers).
 * NODE_OPTIONS is dropped as in `runAs`.
 */
export function spawnAs(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): ChildProcess {
  return spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', cmd, ...args], { cwd: opts.cwd, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'], ...asTestUser() });
}
