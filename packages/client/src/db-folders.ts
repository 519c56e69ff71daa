/**
 * How many messages each folder held at the last sync: the db-file's lines
 * counted per folder (for the mass-deletion brake). One pass with one
 * buffer; only the folder part of each name becomes a string.
 */
import { existsSync } from 'node:fs';
import type { ByteString } from '@smd/maildir';
import { forEachLine } from '@smd/snapshot';

/** Offset of the name in a db-file line (`<40 hex> <40 hex> <name>`). */
const NAME = 82;

export function countDbFolders(dbFile: string): Map<ByteString, number> {
  const counts = new Map<ByteString, number>();
  if (!existsSync(dbFile)) return counts;
  let last = '';
  let lastCount = 0;
  forEachLine(dbFile, (buf, s, e) => {
    if (e - s <= NAME) return;
    // <folder>/<cur|new>/<file>: the folder ends at the second '/' from the right.
    const i = buf.lastIndexOf(0x2f, e - 1);
    const j = i > s + NAME ? buf.lastIndexOf(0x2f, i - 1) : -1;
    if (j < s + NAME) return;
    const folder = buf.toString('latin1', s + NAME, j);
    // Lines of a folder mostly come together: count runs before touching the map.
    if (folder === last) { lastCount++; return; }
    if (lastCount > 0) counts.set(last, (counts.get(last) ?? 0) + lastCount);
    last = folder;
    lastCount = 1;
  });
  if (lastCount > 0) counts.set(last, (counts.get(last) ?? 0) + lastCount);
  return counts;
}
