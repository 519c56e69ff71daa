/** Temporary trees and their exact listing, for the tests of paths under the mailbox roots. */
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A temporary directory (its real path: symlink checks compare real paths), removed at teardown. */
export function temp(t: { teardown(fn: () => void): void }, prefix = 'smd-roots-'): string {
  const d = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Every entry under `dir` with its content hash or link target; throws if `dir` is missing (two missing trees must not compare equal). */
export function listing(dir: string, rel = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${e}` : e;
    const st = lstatSync(join(dir, r));
    if (st.isSymbolicLink()) out[r] = `-> ${readlinkSync(join(dir, r))}`;
    else if (st.isDirectory()) { out[r] = 'dir'; Object.assign(out, listing(dir, r)); } else out[r] = createHash('sha1').update(readFileSync(join(dir, r))).digest('hex');
  }
  return out;
}
