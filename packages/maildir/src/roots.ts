/**
 * Paths under the mailbox roots, after Unison's `fspath` and its `follow`
 * preference: a name (from a peer, from the scan) is resolved ONCE,
 * component by component, under the root it names, and the result is what
 * every read and write uses.
 *
 * - A root may itself be a symbolic link (or sit below one): it is the
 *   user's choice, resolved once when the roots are opened.
 * - Below a root, every directory component is lstat'ed. A real directory is
 *   entered; a symbolic link is followed only if its target (real path)
 *   stays inside one of the roots, or inside a directory the user allowed
 *   (`follow`: FOLLOW_LOCAL / FOLLOW_REMOTE in the endpoint's config);
 *   anything else is refused with an error that names the link.
 * - The last component (the message file) is never followed: callers open
 *   it with O_NOFOLLOW, link(2) and rename(2) act on the entry itself.
 *
 * The resolved directory is an absolute real path with no symbolic link in
 * it. Nothing outside the allowed trees can be reached through it, whatever
 * the names are (their syntax is checked before, see @smd/client names.ts).
 */
import { lstatSync, mkdirSync, realpathSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { type ByteString, fsPath, toUtf8 } from './bytes.js';

/** A name that cannot be resolved under the roots without leaving them. */
export class PathRefusal extends Error {
  override name = 'PathRefusal';
  /** `link`: the symbolic link that leads out (ByteString path as seen under the root), if that is the reason. */
  constructor(message: string, readonly path: ByteString, readonly link: boolean) {
    super(message);
  }
}

/** A directory resolved under the roots: its real absolute path (a ByteString). */
export interface RealDir {
  readonly real: ByteString;
}

const b2s = (b: Buffer): ByteString => b.toString('latin1');

/**
 * The real path of `p` (a ByteString), or null if it does not exist. Other errors are thrown.
 * realpath(3) (`.native`): the JS realpathSync decodes a Buffer path as UTF-8, so a name that
 * is not UTF-8 looked missing (a link to a folder of the mailbox was refused as dangling).
 */
function realpathOrNull(p: ByteString): ByteString | null {
  try {
    return b2s(realpathSync.native(fsPath(p), { encoding: 'buffer' }));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
}

/** Is `p` equal to or below one of `trees` (all real absolute paths)? */
function inside(p: ByteString, trees: readonly ByteString[]): boolean {
  return trees.some((t) => p === t || p.startsWith(t.endsWith(sep) ? t : `${t}${sep}`));
}

export interface RootsOptions {
  /** What relative roots and names are relative to (default: process.cwd()). */
  readonly cwd?: string;
  /** Directories (absolute, or relative to `cwd`) a symbolic link below a root may lead into. */
  readonly follow?: readonly ByteString[];
}

/**
 * The mailbox roots of a session. `resolveDir` is the one way from a
 * directory name (`Mail/.Foo/cur`) to the place on disk.
 */
export class MailboxRoots {
  /** Root name → its real path (null: does not exist yet). */
  private readonly real = new Map<ByteString, ByteString | null>();
  /** Where links may lead: the roots' real paths and the allowed directories. */
  private readonly trees: ByteString[] = [];
  private readonly cache = new Map<ByteString, RealDir>();
  private readonly cwd: ByteString;
  private readonly roots: ByteString[] = [];

  constructor(roots: readonly ByteString[], opts: RootsOptions = {}) {
    this.cwd = Buffer.from(resolve(opts.cwd ?? process.cwd()), 'utf8').toString('latin1');
    for (const r of roots) this.addRoot(r);
    for (const f of opts.follow ?? []) {
      const real = realpathOrNull(this.absolute(f));
      if (real !== null) this.trees.push(real);
    }
  }

  /** One more root (e.g. where a translator puts folders); resolved now, as the others. */
  addRoot(r: ByteString): void {
    if (this.real.has(r)) return;
    this.roots.push(r);
    const real = realpathOrNull(this.absolute(r));
    this.real.set(r, real);
    if (real !== null) this.trees.push(real);
  }

  private absolute(p: ByteString): ByteString {
    return p.startsWith('/') ? p : `${this.cwd}/${p}`;
  }

  /** The root a name lives under (the longest that matches), or null. */
  rootOf(name: ByteString): ByteString | null {
    let best: ByteString | null = null;
    for (const r of this.roots) {
      if ((name === r || name.startsWith(`${r}/`)) && (best === null || r.length > best.length)) best = r;
    }
    return best;
  }

  /**
   * The real directory of `dir` (a name under a root, components already
   * checked: no '', '.', '..'). `create`: missing directories are made
   * (0700) on the way; otherwise a missing one gives null (nothing there).
   * Throws PathRefusal for a symbolic link that leads out, or a component
   * that is not a directory.
   */
  resolveDir(dir: ByteString, create: boolean): RealDir | null {
    const hit = this.cache.get(dir);
    if (hit !== undefined) return hit;
    const root = this.rootOf(dir);
    if (root === null) throw new PathRefusal(`${toUtf8(dir)} is not under the mailboxes ${this.roots.map(toUtf8).join(', ')}`, dir, false);
    let start = this.real.get(root) ?? null;
    if (start === null) {
      if (!create) return null;
      // The root is the user's own setting: created where it says, then taken as it really is.
      mkdirSync(fsPath(this.absolute(root)), { recursive: true, mode: 0o700 });
      start = realpathOrNull(this.absolute(root));
      if (start === null) throw new PathRefusal(`${toUtf8(root)} could not be created`, root, false);
      this.real.set(root, start);
      this.trees.push(start);
    }
    let cur: ByteString = start;
    let shown = root;
    const rest = dir.length > root.length ? dir.slice(root.length + 1).split('/') : [];
    for (const c of rest) {
      const p: ByteString = `${cur}/${c}`;
      shown = `${shown}/${c}`;
      let st: ReturnType<typeof lstatSync> | undefined;
      try {
        st = lstatSync(fsPath(p), { throwIfNoEntry: false });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') throw new PathRefusal(`${toUtf8(shown)}: a component is not a directory`, shown, false);
        throw e;
      }
      if (st === undefined) {
        if (!create) return null;
        try {
          mkdirSync(fsPath(p), { mode: 0o700 });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          // Made meanwhile (by a mail program): look again.
          st = lstatSync(fsPath(p));
        }
        if (st === undefined) { cur = p; continue; }
      }
      if (st.isDirectory()) { cur = p; continue; }
      if (!st.isSymbolicLink()) throw new PathRefusal(`${toUtf8(shown)} is not a directory`, shown, false);
      const target = realpathOrNull(p);
      if (target === null) throw new PathRefusal(`${toUtf8(shown)} is a dangling symbolic link`, shown, true);
      if (!inside(target, this.trees)) {
        throw new PathRefusal(`${toUtf8(shown)} is a symbolic link to ${toUtf8(target)}, outside the mailboxes: it is not followed ` +
          '(a folder kept elsewhere through a symbolic link must be allowed with FOLLOW_LOCAL or FOLLOW_REMOTE in ~/.smd/config.ENDPOINT)', shown, true);
      }
      const tst = lstatSync(fsPath(target));
      if (!tst.isDirectory()) throw new PathRefusal(`${toUtf8(shown)} is a symbolic link to ${toUtf8(target)}, which is not a directory`, shown, true);
      cur = target;
    }
    const r = { real: cur };
    this.cache.set(dir, r);
    return r;
  }

  /** Is the real path `p` inside the roots or an allowed directory? */
  allows(p: ByteString): boolean {
    return inside(p, this.trees);
  }
}
