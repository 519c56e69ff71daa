/**
 * End-to-end fixtures for smd-pull / smd-push: a local HOME, a "remote" HOME,
 * config files, a fake ssh that runs the remote command with the remote HOME
 * (optionally dropping the connection, or failing once), and tree comparison.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { ROOT, tempDir } from './maildir-fixture.js';

export const BIN = join(ROOT, 'bin');

export interface Run { status: number | null; stdout: string; stderr: string }

/** Runs a command of bin/ with `env`, bounded in time. */
export function smd(cmd: string, args: string[], env: NodeJS.ProcessEnv, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(join(BIN, cmd), args, { env, cwd: opts.cwd ?? env.HOME, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 90_000);
    child.on('close', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
  });
}

/** A sequence number for unique message names. */
let seq = 0;

/** Writes a message into `<home>/<folder>/<cur|new>/` and returns its path relative to home. */
export function deliver(home: string, folder: string, opts: { subject?: string; body?: string; sub?: 'cur' | 'new'; flags?: string; size?: number } = {}): string {
  seq += 1;
  const sub = opts.sub ?? 'cur';
  const name = `${1700000000 + seq}.M${seq}P${process.pid}.testhost${sub === 'cur' ? `:2,${opts.flags ?? ''}` : ''}`;
  for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(home, folder, d), { recursive: true });
  const body = opts.body ?? `Body of message ${seq}\n${'x'.repeat(opts.size ?? 200)}\n`;
  const rel = join(folder, sub, name);
  writeFileSync(join(home, rel), `From: a@example.org\nSubject: ${opts.subject ?? `message ${seq}`}\nMessage-Id: <${seq}@test>\n\n${body}`);
  return rel;
}

/**
 * The messages of a Maildir tree: relative path (from `root`) → SHA-1 of the
 * content; tmp/ and non-message files are left out. A missing or unreadable
 * root (or folder) throws: two missing trees must not compare equal.
 */
export function tree(root: string): Map<string, string> {
  if (!statSync(root).isDirectory()) throw new Error(`tree: ${root} is not a directory`);
  const out = new Map<string, string>();
  const walk = (dir: string, rel: string): void => {
    for (const n of readdirSync(dir).sort()) {
      const p = join(dir, n);
      const r = rel === '' ? n : `${rel}/${n}`;
      const st = statSync(p);
      if (st.isDirectory()) { if (n !== 'tmp') walk(p, r); continue; }
      const parent = rel.split('/').pop();
      if (parent === 'cur' || parent === 'new') out.set(r, createHash('sha1').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(root, '');
  return out;
}

/** `tree` as a plain object (for t.same); throws on a missing root like `tree`. */
export function treeObject(root: string): Record<string, string> {
  return Object.fromEntries(tree(root));
}

/** Number of messages under `root`, 0 while it does not exist yet (for polling). */
export function messageCount(root: string): number {
  return existsSync(root) ? tree(root).size : 0;
}

/**
 * An independent oracle for a db-file: the lines `<header sha1> <body sha1>
 * <name>` of every message under `home/mailbox` (cur/ and new/), computed
 * here from the files (header = up to and including the first empty line),
 * sorted. db-files are compared to it as sorted sets (their order is the
 * scan's business).
 */
export function expectedDbLines(home: string, mailbox: string): string[] {
  const lines: string[] = [];
  const sha = (b: Buffer): string => createHash('sha1').update(b).digest('hex');
  const walk = (dir: string, rel: string): void => {
    for (const n of readdirSync(dir)) {
      const p = join(dir, n);
      const r = `${rel}/${n}`;
      if (statSync(p).isDirectory()) { if (n !== 'tmp') walk(p, r); continue; }
      const parent = rel.split('/').pop();
      if (parent !== 'cur' && parent !== 'new') continue;
      const data = readFileSync(p);
      const cut = data.indexOf('\n\n');
      if (cut < 0) continue;
      lines.push(`${sha(data.subarray(0, cut + 2))} ${sha(data.subarray(cut + 2))} ${r}`);
    }
  };
  walk(join(home, mailbox), mailbox);
  return lines.sort();
}

/** The lines of a db-file, sorted (latin1). */
export function dbFileLines(file: string): string[] {
  return readFileSync(file, 'latin1').split('\n').filter((l) => l !== '').sort();
}

/** Files left in any tmp/ folder under root (a crashed write would leave them). */
export function tmpFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    let names: string[];
    try { names = readdirSync(dir); } catch { return; }
    for (const n of names) {
      const p = join(dir, n);
      if (!statSync(p).isDirectory()) continue;
      if (n === 'tmp') out.push(...readdirSync(p).map((f) => join(p, f)));
      else walk(p);
    }
  };
  walk(root);
  return out;
}

/** Writes `~/.smd/config.<endpoint>` from variables (values are double-quoted). */
export function writeConfig(home: string, endpoint: string, vars: Record<string, string>): void {
  mkdirSync(join(home, '.smd'), { recursive: true, mode: 0o700 });
  const text = Object.entries(vars).map(([k, v]) => `${k}="${v}"`).join('\n') + '\n';
  writeFileSync(join(home, '.smd', `config.${endpoint}`), text);
}

export interface TwoHomes {
  /** this host's HOME */
  local: string;
  /** the other host's HOME (reached through the fake ssh) */
  remote: string;
  /** environment for bin/ commands on this host */
  env: NodeJS.ProcessEnv;
}

/**
 * Two HOMEs on this machine and a fake `ssh` first on PATH that runs the
 * remote command in the remote HOME. FAKE_SSH_MAX_BYTES in the environment
 * cuts the server-to-client stream after that many bytes (a dropped link);
 * FAKE_SSH_FAIL_ONCE=<file> fails to connect once (creating <file>).
 */
export function twoHomes(t: { teardown(fn: () => void): void }): TwoHomes {
  const base = tempDir(t, 'smd-sync-');
  const local = join(base, 'local');
  const remote = join(base, 'remote');
  const fakeBin = join(base, 'fakebin');
  for (const d of [local, remote, fakeBin]) mkdirSync(d, { recursive: true });
  const ssh = join(fakeBin, 'ssh');
  writeFileSync(ssh, `#!/bin/sh
# fake ssh: ssh HOST COMMAND... runs COMMAND on "the remote host" (a HOME of this machine)
shift
cd "${remote}" || exit 255
if [ -n "$FAKE_SSH_FAIL_ONCE" ] && [ ! -e "$FAKE_SSH_FAIL_ONCE" ]; then
  : > "$FAKE_SSH_FAIL_ONCE"
  echo "ssh: connect to host fakehost port 22: Connection timed out" >&2
  exit 255
fi
if [ -n "$FAKE_SSH_MAX_BYTES" ]; then
  # head buffers its stdout (stdio) when it is not a terminal: unbuffered, or
  # the first lines of a listen-first handshake wait in it forever.
  HOME="${remote}" sh -c "$*" | stdbuf -o0 head -c "$FAKE_SSH_MAX_BYTES"
  exit 255
fi
HOME="${remote}" exec sh -c "$*"
`);
  chmodSync(ssh, 0o755);
  const env: NodeJS.ProcessEnv = {
    PATH: `${fakeBin}:${BIN}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: local,
    USER: process.env.USER ?? 'root',
    LANG: 'C.UTF-8',
    // `SMD_NATIVE=0 npm test` (README): the programs too run without the native helper.
    ...(process.env.SMD_NATIVE !== undefined ? { SMD_NATIVE: process.env.SMD_NATIVE } : {}),
  };
  return { local, remote, env };
}

/** Remote-config variables for an endpoint that reaches the remote HOME through the fake ssh. */
export function remoteConfig(extra: Record<string, string> = {}): Record<string, string> {
  return { SERVERNAME: 'fakehost', CLIENTNAME: 'laptop', MAILBOX: 'Mail', ...extra };
}
