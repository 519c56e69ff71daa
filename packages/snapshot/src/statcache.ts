import { readFileSync } from 'node:fs';
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

/** Loads the cache written for the db-file whose SHA-1 is `dbSha1` with `count` lines; null if none fits. */
export function loadStatCache(db: string, dbSha1: string, count: number): StatCache | null {
  const head = Buffer.from(`${MAGIC} ${dbSha1} ${count}\n`, 'latin1');
  for (const f of statCacheFiles(db)) {
    let data: Buffer;
    try {
      data = readFileSync(f);
    } catch {
      continue; // missing or unreadable: only a missed shortcut
    }
    if (data.length !== head.length + 24 * count || !data.subarray(0, head.length).equals(head)) continue;
    const all = new Float64Array(3 * count);
    Buffer.from(all.buffer).set(data.subarray(head.length));
    return { ino: all.subarray(0, count), size: all.subarray(count, 2 * count), mtimeMs: all.subarray(2 * count) };
  }
  return null;
}

/** Writes `<db>.stat-cache.new` (atomically; no fsync: it is only a cache). Arrays of `count` entries, in db-file order. */
export function writeStatCache(db: string, dbSha1: string, cache: StatCache, count: number): void {
  const w = new AtomicFileWriter(`${db}.stat-cache.new`);
  try {
    w.write(`${MAGIC} ${dbSha1} ${count}\n`);
    for (const a of [cache.ino, cache.size, cache.mtimeMs]) {
      const v = a.subarray(0, count);
      w.write(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    }
    w.commit(false);
  } catch (e) {
    w.abort();
    throw e;
  }
}
