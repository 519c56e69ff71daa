/**
 * Fixtures of the hostile suites (lying peers, kills, fuzz): a server HOME, a
 * client HOME and a sentinel tree outside both, snapshots that tell what a
 * run touched, independent oracles for trees and db-files, and checks of a
 * program's stderr.
 */
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tempDir } from './maildir-fixture.js';

export const sha1 = (d: string | Buffer): string => createHash('sha1').update(typeof d === 'string' ? Buffer.from(d, 'latin1') : d).digest('hex');

/** Encodes a name for a diff line (space and % only, as the protocol says). */
export const enc = (name: string): string => name.replace(/%/g, '%25').replace(/ /g, '%20');

/** Header and body hashes, computed here (split after the first "\n\n", else "\r\n\r\n"). */
export function hashes(data: string | Buffer): { h: string; b: string } {
  const buf = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  let p = buf.indexOf('\n\n');
  let len = 2;
  if (p < 0) { p = buf.indexOf('\r\n\r\n'); len = 4; }
  if (p < 0) throw new Error('not a message');
  return { h: sha1(buf.subarray(0, p + len)), b: sha1(buf.subarray(p + len)) };
}

/** A message with a unique subject. */
export function message(tag: string, body = `body of ${tag}\n`): string {
  return `From: a@example.org\nSubject: ${tag}\nMessage-Id: <${tag}@test>\n\n${body}`;
}

export interface Pair {
  /** Everything of the case lives under here. */
  base: string;
  /** HOME (and cwd) of smd-server. */
  server: string;
  /** HOME (and cwd) of smd-client. */
  client: string;
  /** A tree outside both HOMEs that no run may read or change: `F/{cur,new,tmp}` with a message. */
  elsewhere: string;
  /** A string that appears only in the sentinel tree's files. */
  secret: string;
  /** The sentinel message file (absolute). */
  secretFile: string;
}

let seq = 0;

/** Writes `content` at `home/rel`, creating parents; mtime 1000 s ago (older than any db-file written now). */
export function put(home: string, rel: string, content: string | Buffer): string {
  const p = join(home, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, typeof content === 'string' ? Buffer.from(content, 'latin1') : content);
  const t = Date.now() / 1000 - 1000;
  utimesSync(p, t, t);
  return p;
}

export function maildir(home: string, ...folders: string[]): void {
  for (const f of folders) for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(home, f, d), { recursive: true });
}

/** A server HOME, a client HOME (both with an empty `Mail`) and the sentinel tree. */
export function pairHomes(t: { teardown(fn: () => void): void }): Pair {
  const base = tempDir(t, 'smd-hostile-');
  const server = join(base, 'server');
  const client = join(base, 'client');
  const elsewhere = join(base, 'elsewhere');
  maildir(server, 'Mail');
  maildir(client, 'Mail');
  maildir(elsewhere, 'F');
  // The state dirs exist, as after any first run: creating them is no change outside.
  for (const h of [server, client]) mkdirSync(join(h, '.smd'), { recursive: true, mode: 0o700 });
  seq += 1;
  const secret = `SECRET-${process.pid}-${seq}-${Math.random().toString(36).slice(2)}`;
  const secretFile = put(elsewhere, 'F/cur/secret:2,S', message('secret', `${secret}\n`));
  put(elsewhere, 'notes.txt', `${secret} notes\n`);
  return { base, server, client, elsewhere, secret, secretFile };
}

/**
 * Every entry under `root`, without following symlinks: `d <mtime>`,
 * `f <sha1> <mode>`, `l <target>`. A directory's mtime changes when an entry
 * is created or removed in it, so even a temporary file written and renamed
 * away shows (`dirTimes: false` leaves it out).
 */
export function snapshot(root: string, opts: { dirTimes?: boolean } = {}): Map<string, string> {
  const dirTimes = opts.dirTimes ?? true;
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const n of readdirSync(dir).sort()) {
      const p = join(dir, n);
      const st = lstatSync(p);
      const rel = relative(root, p);
      if (st.isSymbolicLink()) out.set(rel, `l ${readlinkSync(p)}`);
      else if (st.isDirectory()) { out.set(rel, dirTimes ? `d ${st.mtimeMs}` : 'd'); walk(p); } else out.set(rel, `f ${sha1(readFileSync(p))} ${(st.mode & 0o7777).toString(8)}`);
    }
  };
  walk(root);
  return out;
}

/** Paths added, removed or changed between two snapshots that are not under one of `allowed` (prefixes relative to the root). */
export function changesOutside(before: Map<string, string>, after: Map<string, string>, allowed: readonly string[]): string[] {
  const ok = (p: string): boolean => allowed.some((a) => p === a || p.startsWith(`${a}/`));
  const out: string[] = [];
  for (const [p, v] of before) if (after.get(p) !== v && !ok(p)) out.push(`${after.has(p) ? 'changed' : 'removed'} ${p}`);
  for (const p of after.keys()) if (!before.has(p) && !ok(p)) out.push(`added ${p}`);
  return out;
}

/** Regular files under `root` whose content contains `needle` (symlinks are not followed). */
export function filesContaining(root: string, needle: string): string[] {
  const out: string[] = [];
  const b = Buffer.from(needle, 'latin1');
  for (const [p, v] of snapshot(root)) if (v.startsWith('f ') && readFileSync(join(root, p)).includes(b)) out.push(p);
  return out;
}

/**
 * The messages of a mailbox: sorted `name sha1` of every regular file in a
 * cur/ or new/ folder, names relative to `home`. Throws if `home/mailbox` is
 * missing (two missing trees must not compare equal).
 */
export function messages(home: string, mailbox = 'Mail'): string[] {
  const root = join(home, mailbox);
  if (!lstatSync(root).isDirectory()) throw new Error(`${root} is not a directory`);
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const n of readdirSync(dir)) {
      const p = join(dir, n);
      const st = lstatSync(p);
      if (st.isDirectory()) { if (n !== 'tmp') walk(p); continue; }
      const parent = dir.split('/').pop();
      if (st.isFile() && (parent === 'cur' || parent === 'new')) out.push(`${relative(home, p)} ${sha1(readFileSync(p))}`);
    }
  };
  walk(root);
  return out.sort();
}

/** The db-file lines a correct run leaves for the mailbox (hashed here, sorted): the independent oracle of a db-file. */
export function expectedDb(home: string, mailbox = 'Mail'): string[] {
  return messages(home, mailbox).map((l) => {
    const name = l.slice(0, l.lastIndexOf(' '));
    const { h, b } = hashes(readFileSync(join(home, name)));
    return `${h} ${b} ${name}`;
  }).sort();
}

/** The sorted lines of a db-file (throws if it is missing). */
export function dbLines(file: string): string[] {
  return readFileSync(file, 'latin1').split('\n').filter((l) => l !== '').sort();
}

/** Files a run should not leave: temporaries in ~/.smd and in every tmp/ of the mailbox. */
export function strayTemps(home: string, mailbox = 'Mail'): string[] {
  const out: string[] = [];
  for (const [p, v] of snapshot(home)) {
    if (!v.startsWith('f ')) continue;
    if (p.startsWith('.smd/') && /\.tmp\.|\.patching$|\.smd-part$/.test(p)) out.push(p);
    if (p.startsWith(`${mailbox}/`) && p.split('/').slice(-2, -1)[0] === 'tmp') out.push(p);
  }
  return out;
}

/** A stack trace or an internal error in a program's log (never acceptable for a peer or environment fault), or null. */
export function stackTraceIn(stderr: string): string | null {
  for (const l of stderr.split('\n')) {
    if (/Internal error|node:internal|\b(TypeError|RangeError|ReferenceError|SyntaxError)\b|^\s+at .+:\d+(:\d+)?\)?$/.test(l)) return l.slice(0, 300);
  }
  return null;
}

/** The `TAGS: error::...` line of a log, or null. */
export function errorTags(stderr: string): string | null {
  const m = /^TAGS: error::.*$/m.exec(stderr);
  return m === null ? null : m[0];
}

/** Runs `jobs` with at most `n` at a time; results in order. */
export async function pool<T>(n: number, jobs: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, worker));
  return out;
}
