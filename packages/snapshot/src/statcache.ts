import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { AtomicFileWriter } from '@smd/maildir';

/**
 * The stat cache: a sidecar of the db-file on the scanning host only,
 * `<db>.stat-cache` (or `<db>.stat-cache.new`, written next to `<db>.new`).
 * It holds `ino size mtimeMs` of every line of the db-file it was written
 * for (NaN if unknown). Format (version 2, binary): the text line
 * `smd-stat-cache 2 <endianness> <SHA-1 of the db-file> <count>\n`, then
 * `count` float64 inodes, `count` sizes, `count` mtimes (native byte order).
 * A cache that does not belong to the db being read (other SHA-1, count,
 * version or byte order, wrong length) is ignored. Upstream db-files have no
 * cache: everything works without one.
 */
const MAGIC = `smd-stat-cache 2 ${endianness()}`;

export interface StatCache {
  readonly ino: Float64Array;
  readonly size: Float64Array;
  readonly mtimeMs: Float64Array;
}

export function statCacheFiles(db: string): string[] {
  return [`${db}.stat-cache.new`, `${db}.stat-cache`];
}

/**
 * Loads the cache written for the db-file whose SHA-1 is `dbSha1` with `count` lines; null if none fits.
 * The arrays are read in place (no copy of the file in memory).
 */
export function loadStatCache(db: string, dbSha1: string, count: number): StatCache | null {
  const head = Buffer.from(`${MAGIC} ${dbSha1} ${count}\n`, 'latin1');
  for (const f of statCacheFiles(db)) {
    let fd: number;
    try {
      fd = openSync(f, 'r');
    } catch {
      continue; // missing or unreadable: only a missed shortcut
    }
    try {
      if (fstatSync(fd).size !== head.length + 24 * count) continue;
      const got = Buffer.alloc(head.length);
      if (readSync(fd, got, 0, head.length, 0) !== head.length || !got.equals(head)) continue;
      const all = new Float64Array(3 * count);
      const bytes = new Uint8Array(all.buffer);
      for (let off = 0; off < bytes.length;) {
        const n = readSync(fd, bytes, off, bytes.length - off, head.length + off);
        if (n <= 0) break;
        off += n;
      }
      return { ino: all.subarray(0, count), size: all.subarray(count, 2 * count), mtimeMs: all.subarray(2 * count) };
    } catch {
      continue;
    } finally {
      closeSync(fd);
    }
  }
  return null;
}

/** Writes `<db>.stat-cache.new` (atomically; no fsync: it is only a cache). Arrays of `count` entries, in db-file order. */
export function writeStatCache(db: string, dbSha1: string, cache: StatCache, count: number): void {
  const cols = [cache.ino, cache.size, cache.mtimeMs];
  writeStatCacheFrom(db, dbSha1, count, (c, emit) => { const a = cols[c]; for (let i = 0; i < count; i++) emit(a[i]); });
}

/**
 * writeStatCache from a producer of each column (0: inodes, 1: sizes, 2: mtimes), value by value in
 * db-file order: written through a small buffer, no array of the whole column is built.
 */
export function writeStatCacheFrom(db: string, dbSha1: string, count: number, column: (c: 0 | 1 | 2, emit: (v: number) => void) => void): void {
  const w = new AtomicFileWriter(`${db}.stat-cache.new`);
  const block = new Float64Array(8192);
  const bytes = new Uint8Array(block.buffer);
  try {
    w.write(`${MAGIC} ${dbSha1} ${count}\n`);
    for (const c of [0, 1, 2] as const) {
      let n = 0;
      let total = 0;
      column(c, (v) => {
        block[n++] = v;
        if (n === block.length) { w.write(bytes); total += n; n = 0; }
      });
      if (n > 0) w.write(bytes.subarray(0, n * 8));
      total += n;
      if (total !== count) throw new Error(`internal: stat cache column ${c} has ${total} values, not ${count}`);
    }
    w.commit(false);
  } catch (e) {
    w.abort();
    throw e;
  }
}
