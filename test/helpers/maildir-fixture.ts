/** Temporary Maildirs with real files for tests. */
import { mkdtempSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');
export const MDDIFF = join(ROOT, 'bin', 'mddiff');

/** A temp dir removed when the test `t` ends. */
export function tempDir(t: { teardown(fn: () => void): void }, prefix = 'smd-md-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Creates `cur`, `new`, `tmp` under each folder (paths relative to `base`). */
export function makeMaildir(base: string, ...folders: string[]): void {
  for (const f of folders) for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(base, f, d), { recursive: true });
}

/** Byte path (latin1 string) under base, as a Buffer for fs. */
export function bpath(base: string, rel: string): Buffer {
  return Buffer.concat([Buffer.from(base + '/', 'utf8'), Buffer.from(rel, 'latin1')]);
}

/**
 * Writes a message `header` + "\n\n" + `body` (or raw `content`) at base/rel
 * (rel is a latin1 byte string), creating parents; optional mtime in seconds
 * ago (default 1000 s ago, so it is older than a db written now).
 */
export function writeMessage(base: string, rel: string, m: { header?: string; body?: string; content?: string | Buffer; ago?: number }): Buffer {
  const p = bpath(base, rel);
  mkdirSync(Buffer.from(dirname(p.toString('latin1')), 'latin1'), { recursive: true });
  const data = m.content ?? `${m.header ?? 'Subject: x'}\n\n${m.body ?? ''}`;
  writeFileSync(p, typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  setAge(p, m.ago ?? 1000);
  return p;
}

/** Sets atime/mtime to `ago` seconds in the past. */
export function setAge(p: string | Buffer, ago: number): void {
  const t = Date.now() / 1000 - ago;
  utimesSync(p, t, t);
}

export function sha1(data: string | Buffer): string {
  return createHash('sha1').update(typeof data === 'string' ? Buffer.from(data, 'latin1') : data).digest('hex');
}

export interface RunResult { status: number | null; stdout: string; stderr: string; lines: string[] }

/** Runs bin/mddiff in `cwd`; stdout decoded as latin1 (ByteStrings). */
export function mddiff(cwd: string, args: string[], input?: string): RunResult {
  const r = spawnSync(process.execPath, [MDDIFF, ...args], { cwd, encoding: 'latin1', input, timeout: 60000, maxBuffer: 64 << 20 });
  const stdout = r.stdout ?? '';
  return { status: r.status, stdout, stderr: r.stderr ?? '', lines: stdout.split('\n').filter((l) => l !== '') };
}

/** mddiff run + rename of the .new files into place (what smd-server does after DONE). */
export function mddiffCommit(cwd: string, args: string[]): RunResult {
  const r = mddiff(cwd, args);
  spawnSync('sh', ['-c', 'for f in *.new; do [ -e "$f" ] && mv "$f" "${f%.new}"; done; true'], { cwd });
  return r;
}
