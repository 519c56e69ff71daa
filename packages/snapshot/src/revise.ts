/**
 * Keeping the agreement of some names as it was: what a run could not carry
 * out for a message (the user's mail program moved it between the scan and
 * the fetch, say) must not be claimed done by the db-file both sides adopt.
 */
import { createHash } from 'node:crypto';
import { existsSync, unlinkSync } from 'node:fs';
import { type ByteString, AtomicFileWriter, writeFileAtomic } from '@smd/maildir';
import { forEachLine } from './dbfile.js';
import { loadStatCache, writeStatCache } from './statcache.js';

const NAME_AT = 82;

/**
 * In `<db>.new`, the lines of `names` are replaced by their lines in `<db>`
 * (removed where `<db>` has none), so for those names the new db-file says
 * what the old one said. `.stat-cache.new` follows (the lines brought back
 * get an entry that matches no file, -1: the next scan reads those files
 * again whatever their mtime, where NaN would mean "unknown: trust the
 * mtime"); without a cache, `.mtime.new` becomes 0 so that no file is
 * trusted by its mtime.
 * Returns how many lines of `<db>.new` changed (removed + brought back).
 */
export function reviseDbNew(db: string, names: ReadonlySet<ByteString>): number {
  const dbNew = `${db}.new`;
  const nameOf = (buf: Buffer, s: number, e: number): ByteString => buf.toString('latin1', s + NAME_AT, e);
  const hash = createHash('sha1');
  const w = new AtomicFileWriter(dbNew, 0o666, (bytes) => hash.update(bytes));
  const dropped: number[] = [];
  let count = 0;
  let kept = 0;
  let added = 0;
  let oldSha: string;
  try {
    oldSha = forEachLine(dbNew, (buf, s, e) => {
      if (names.has(nameOf(buf, s, e))) dropped.push(count);
      else { w.write(buf.subarray(s, e)); w.write('\n'); kept++; }
      count++;
    });
    if (existsSync(db)) {
      forEachLine(db, (buf, s, e) => {
        if (!names.has(nameOf(buf, s, e))) return;
        w.write(buf.subarray(s, e));
        w.write('\n');
        added++;
      });
    }
    if (dropped.length === 0 && added === 0) { w.abort(); return 0; }
    w.commit();
  } catch (e) {
    w.abort();
    throw e;
  }
  const newSha = hash.digest('hex');
  const cache = loadStatCache(db, oldSha, count);
  if (cache !== null) {
    const n = kept + added;
    const ino = new Float64Array(n).fill(-1);
    const size = new Float64Array(n).fill(-1);
    const mtimeMs = new Float64Array(n).fill(-1);
    let j = 0;
    let d = 0;
    for (let i = 0; i < count; i++) {
      if (d < dropped.length && dropped[d] === i) { d++; continue; }
      ino[j] = cache.ino[i]; size[j] = cache.size[i]; mtimeMs[j] = cache.mtimeMs[i];
      j++;
    }
    writeStatCache(db, newSha, { ino, size, mtimeMs }, n);
  } else {
    try { unlinkSync(`${db}.stat-cache.new`); } catch { /* none */ }
    writeFileAtomic(`${db}.mtime.new`, '0');
  }
  return dropped.length + added;
}
