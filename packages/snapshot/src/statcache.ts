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
      if (lineNo === 1) {
        if (buf.toString('latin1', s, e) !== `${MAGIC} ${dbSha1} ${count}`) throw new Mismatch();
        return;
      }
      const k = lineNo - 2;
      if (k >= count) throw new Mismatch();
      seen++;
      if (e - s === 1 && buf[s] === 0x2d /* - */) return;
      // Three space-separated decimal numbers (the mtime may have a fraction).
      let field = 0;
      let i = s;
      const vals = [0, 0, 0];
      while (field < 3) {
        let j = i;
        while (j < e && buf[j] !== 0x20) j++;
        if (j === i) throw new Mismatch();
        let v = 0;
        let simple = true;
        for (let q = i; q < j; q++) {
          const c = buf[q] - 0x30;
          if (c < 0 || c > 9) { simple = false; break; }
          v = v * 10 + c;
        }
        if (!simple) {
          v = Number(buf.toString('latin1', i, j));
          if (!Number.isFinite(v)) throw new Mismatch();
        }
        vals[field++] = v;
        i = j + 1;
        if (field < 3 && j >= e) throw new Mismatch();
      }
      if (i <= e) throw new Mismatch();
      ino[k] = vals[0]; size[k] = vals[1]; mtimeMs[k] = vals[2];
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
