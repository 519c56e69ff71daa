/**
 * Which names from the server the client accepts (pure). Upstream uses them
 * as given (spec 8, S2: a hostile server writes anywhere); we accept only
 * `<root>/.../(cur|new)/<file>` under a mailbox root of the command line.
 */
import type { ByteString } from '@smd/maildir';
import type { DiffCommand } from '@smd/snapshot';
import { namesOf } from './policy.js';

/** Normalised mailbox roots (one trailing `/` removed), or a reason to refuse one. */
export function checkMailboxRoot(root: ByteString): { ok: true; root: ByteString } | { ok: false; reason: 'absolute' | 'bad' } {
  if (root.startsWith('/')) return { ok: false, reason: 'absolute' };
  const r = root.endsWith('/') ? root.slice(0, -1) : root;
  if (r === '' || /[\0\r\n]/.test(r)) return { ok: false, reason: 'bad' };
  for (const seg of r.split('/')) if (seg === '' || seg === '.' || seg === '..') return { ok: false, reason: 'bad' };
  return { ok: true, root: r };
}

/** Null if `name` is acceptable, else why not. */
export function refuseName(name: ByteString, roots: readonly ByteString[]): string | null {
  if (name === '') return 'empty name';
  if (/[\0\r\n]/.test(name)) return 'NUL, CR or LF in the name';
  if (name.startsWith('/')) return 'absolute name';
  const segs = name.split('/');
  for (const s of segs) {
    if (s === '') return 'empty path component';
    if (s === '.' || s === '..') return `"${s}" path component`;
  }
  if (segs.length < 3) return 'not in a Maildir folder';
  const parent = segs[segs.length - 2];
  if (parent !== 'cur' && parent !== 'new') return 'not in a cur/ or new/ directory';
  if (!roots.some((r) => name.startsWith(`${r}/`))) return 'outside the mailboxes given on the command line';
  return null;
}

/** The first refused name of a command, with the reason, or null. */
export function refuseCommand(c: DiffCommand, roots: readonly ByteString[]): { name: ByteString; reason: string } | null {
  for (const n of namesOf(c)) {
    const reason = refuseName(n, roots);
    if (reason !== null) return { name: n, reason };
  }
  return null;
}

/** `Mail/.Foo/cur/x` → `Mail/.Foo` (the Maildir folder of an accepted name). */
export function folderOf(name: ByteString): ByteString {
  const i = name.lastIndexOf('/');
  const j = name.lastIndexOf('/', i - 1);
  return name.slice(0, j);
}

/** `Mail/.Foo/cur/x` → `Mail/.Foo/cur`. */
export function dirOf(name: ByteString): ByteString {
  return name.slice(0, name.lastIndexOf('/'));
}

/** The last path component. */
export function baseOf(name: ByteString): ByteString {
  return name.slice(name.lastIndexOf('/') + 1);
}
