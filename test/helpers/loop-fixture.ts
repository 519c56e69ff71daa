/**
 * Running smd-loop in tests: the process, its log, event-based waits with generous
 * deadlines, and a gate in front of the sync fixture's fake ssh (network down, slow link).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, messageCount, type TwoHomes } from './sync-fixture.js';

/** Deadline of every wait: only a hang gets near it. */
export const DEADLINE = 90_000;

export interface Loop {
  child: ChildProcess;
  pid: number;
  output: () => string;
  exited: Promise<number | null>;
  /** the exit code once exited, undefined while running */
  code: () => number | null | undefined;
}

/**
 * Starts smd-loop as a user would. tap's process-info hook puts itself into every node
 * process a test spawns (NODE_OPTIONS, even with an explicit env), and its signal-exit
 * SIGTERM listener makes smd-pull's lock think someone else handles SIGTERM, so smd-pull
 * would no longer stop on it: `env -u NODE_OPTIONS` keeps the loop and its jobs clean.
 */
export function startLoop(env: NodeJS.ProcessEnv, t: { teardown(fn: () => void): void }): Loop {
  const child = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', join(BIN, 'smd-loop')], { env, cwd: env.HOME, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  let code: number | null | undefined;
  const exited = new Promise<number | null>((r) => child.on('close', (c) => { code = c; r(c); }));
  const killer = setTimeout(() => child.kill('SIGKILL'), 5 * DEADLINE);
  void exited.then(() => clearTimeout(killer));
  t.teardown(() => { if (code === undefined) child.kill('SIGKILL'); });
  return { child, pid: child.pid!, output: () => out, exited, code: () => code };
}

/** Polls `cond` until it holds or the deadline passes; resolves to whether it held. */
export async function until(cond: () => boolean, ms = DEADLINE): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}

export const loopLog = (h: TwoHomes): string => {
  try { return readFileSync(join(h.local, '.smd', 'log', 'loop.log'), 'utf8'); } catch { return ''; }
};
export const count = (text: string, re: RegExp): number => text.split('\n').filter((l) => re.test(l)).length;
/** Messages under `root`; 0 while the first pull has not created it. */
export const messages = (root: string): number => messageCount(root);
export const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : []);

/**
 * A gate in front of the fixture's fake ssh: every connection is counted in `<dir>/calls`;
 * while `<dir>/down` exists it fails like an unreachable network; with `slow` the server's
 * output is throttled (to stop a sync in the middle).
 */
export function gate(h: TwoHomes, opts: { slow?: boolean } = {}): { env: NodeJS.ProcessEnv; down: string; calls: string } {
  const dir = join(h.local, '..', 'gate');
  mkdirSync(dir, { recursive: true });
  const fixtureSsh = join(h.env.PATH!.split(':')[0], 'ssh');
  const throttle = join(dir, 'throttle.mjs');
  writeFileSync(throttle, `import { spawn } from 'node:child_process';
const c = spawn(process.argv[2], process.argv.slice(3), { stdio: ['inherit', 'pipe', 'inherit'] });
// about 200 KB/s: 4 KB every 20 ms
c.stdout.on('data', (d) => {
  c.stdout.pause();
  const piece = (k) => {
    if (k >= d.length) { c.stdout.resume(); return; }
    process.stdout.write(d.subarray(k, k + 4096), () => setTimeout(() => piece(k + 4096), 20));
  };
  piece(0);
});
c.on('exit', (code) => { process.exitCode = code ?? 255; });
`);
  const down = join(dir, 'down');
  const calls = join(dir, 'calls');
  writeFileSync(join(dir, 'ssh'), `#!/bin/sh
echo call >> "${calls}"
if [ -e "${down}" ]; then echo "ssh: connect to host fakehost port 22: Network is unreachable" >&2; exit 255; fi
${opts.slow === true ? `exec "${process.execPath}" "${throttle}" "${fixtureSsh}" "$@"` : `exec "${fixtureSsh}" "$@"`}
`);
  chmodSync(join(dir, 'ssh'), 0o755);
  return { env: { ...h.env, PATH: `${dir}:${h.env.PATH}` }, down, calls };
}

/** Inodes of the listening TCP sockets of this machine (network namespace). */
function listeningInodes(): Set<string> {
  const out = new Set<string>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(f, 'utf8'); } catch { continue; }
    for (const l of text.split('\n').slice(1)) {
      const c = l.trim().split(/\s+/);
      if (c[3] === '0A') out.add(c[9]); // state LISTEN, inode
    }
  }
  return out;
}

/** The listening TCP sockets a process holds (Node's inspector would be one). */
export function listeningSocketsOf(pid: number): string[] {
  const listening = listeningInodes();
  const held: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target = '';
    try { target = readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m !== null && listening.has(m[1])) held.push(m[1]);
  }
  return held;
}

/** Live processes (not zombies) whose environment names `home`. */
export function processesOf(home: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (/^State:\s+Z/m.test(readFileSync(`/proc/${p}/status`, 'utf8'))) continue;
      if (readFileSync(`/proc/${p}/environ`, 'latin1').split('\0').some((v) => v === `HOME=${home}` || v.includes(home))) out.push(Number(p));
    } catch { /* gone */ }
  }
  return out;
}

