import { existsSync } from 'node:fs';
import { AtomicFileWriter } from '@smd/maildir';
import { forEachLine } from './dbfile.js';

/**
 * The stat cache: a sidecar of the db-file on the scanning host only,
 * `<db>.stat-cache` (or `<db>.stat-cache.new`, written next to `<db>.new`).
 * Line k+1 holds `ino size mtimeMs` of line k of the db-file it was written
 * for (`-` if unknown); the first line names that db-file by its SHA-1, so a
 * cache that does not belong to the db being read is ignored. Upstream
 * db-files have no cache: everything works without one.
 */
const MAGIC = 'smd-stat-cache 1';

export interface StatCache {
  readonly ino: Float64Array;
  readonly size: Float64Array;
  readonly mtimeMs: Float64Array;
}

export function statCacheFiles(db: string): string[] {
  return [`${db}.stat-cache.new`, `${db}.stat-cache`];
}

/** Loads the cache written for the db-file whose SHA-1 is `dbSha1` with `count` lines; null if none fits. */
export function loadStatCache(db: string, dbSha1: string, count: number): StatCache | null {
  for (const f of statCacheFiles(db)) {
    if (!existsSync(f)) continue;
    try {
      const c = parse(f, dbSha1, count);
      if (c !== null) return c;
    } catch {
      // A corrupt cache is only a missed shortcut.
    }
  }
  return null;
}

class Mismatch extends Error {}

function parse(f: string, dbSha1: string, count: number): StatCache | null {
  const ino = new Float64Array(count).fill(NaN);
  const size = new Float64Array(count).fill(NaN);
  const mtimeMs = new Float64Array(count).fill(NaN);
  let seen = 0;
  try {
    forEachLine(f, (buf, s, e, lineNo) => {
      const line = buf.toString('latin1', s, e);
      if (lineNo === 1) {
        if (line !== `${MAGIC} ${dbSha1} ${count}`) throw new Mismatch();
        return;
      }
      const k = lineNo - 2;
      if (k >= count) throw new Mismatch();
      seen++;
      if (line === '-') return;
      const p = line.split(' ');
      if (p.length !== 3) throw new Mismatch();
      const a = Number(p[0]), b = Number(p[1]), c = Number(p[2]);
      if (!Number.isFinite(a) || !Number.isFinite(b) || !Number.isFinite(c)) throw new Mismatch();
      ino[k] = a; size[k] = b; mtimeMs[k] = c;
    });
  } catch (e) {
    if (e instanceof Mismatch) return null;
    throw e;
  }
  return seen === count ? { ino, size, mtimeMs } : null;
}

/** Writes `<db>.stat-cache.new` (atomically; no fsync: it is only a cache). */
export function writeStatCache(db: string, dbSha1: string, rows: Iterable<[number, number, number]>, count: number): void {
  const w = new AtomicFileWriter(`${db}.stat-cache.new`);
  try {
    w.write(`${MAGIC} ${dbSha1} ${count}\n`);
    for (const [a, b, c] of rows) w.write(Number.isNaN(a) ? '-\n' : `${a} ${b} ${c}\n`);
    w.commit(false);
  } catch (e) {
    w.abort();
    throw e;
  }
}
