import { opendirSync, realpathSync, statSync, type Dirent, type Stats } from 'node:fs';
import { nativeFolderQueue, nativeLister } from '@smd/native';
import { type ByteString, fsName, fsPath, toUtf8 } from './bytes.js';
import { fnmatchToRegExp } from './fnmatch.js';

/** A fatal problem of the tree walk: the scan cannot be trusted (upstream prints ERROR). */
export class MaildirWalkError extends Error {
  constructor(message: string, readonly path: ByteString) {
    super(message);
    this.name = 'MaildirWalkError';
  }
}

/** A file that may be a message: a regular file in a directory named `cur` or `new`. */
export interface Candidate {
  /** `<dir>/<entry>`, the name recorded in the db-file and printed in the diff. */
  readonly path: ByteString;
  readonly dir: ByteString;
  readonly entry: ByteString;
  /**
   * stat(2) of the file taken while listing (when the walk was given a
   * DirLister that stats): NaN if it could not be stat'ed, undefined if not
   * taken.
   */
  readonly ino?: number;
  readonly size?: number;
  readonly mtimeMs?: number;
}

/** A directory listing in readdir order; `stats` holds ino, size, mtimeMs of entry i at 3i (NaN: not a file / not stat'ed). */
export interface DirListing {
  readonly names: ByteString[];
  readonly kinds: Uint8Array;
  readonly stats: Float64Array | null;
}

/** Lists the mail folders (`cur`/`new`) for the walk, e.g. on worker threads; throws like opendir. */
export interface DirLister {
  list(dir: ByteString): DirListing;
}

export interface WalkOptions {
  /** fnmatch(3) globs (flags 0) tested against every directory path, root included. */
  excludes?: readonly ByteString[];
  /** Non-fatal problems (entry skipped), human readable. */
  onWarning?: (message: string) => void;
  /** Details (`-v`), human readable. */
  onDebug?: (message: string) => void;
  /** Lists (and stats) the mail folders; default: opendir on this thread, no stat. */
  lister?: DirLister;
  /**
   * Default lister only: stat the message files while listing when that is
   * cheap (the native lister of @smd/native is built). Otherwise `stats`
   * stay null and the caller stats the files it needs.
   */
  statIfCheap?: boolean;
  /**
   * Directories (besides the roots) a symbolic link below a root may lead
   * into. A folder symlink whose real target is anywhere else stops the walk
   * with a MaildirWalkError naming it (its messages must not become
   * DELETEs, nor may files outside the mailboxes be served).
   */
  follow?: readonly ByteString[];
}

/** Strips one trailing '/', as upstream does with every root argument. */
export function stripOneSlash(root: ByteString): ByteString {
  return root.length > 1 && root.endsWith('/') ? root.slice(0, -1) : root;
}

/**
 * Files in cur/new that are never messages even if upstream would read them:
 * dot-files, Maildir++/Dovecot/Courier bookkeeping files.
 */
export function isNotAMessageName(entry: ByteString): boolean {
  return entry.charCodeAt(0) === 0x2e /* . */ || entry === 'maildirfolder' || entry.startsWith('dovecot')
    || entry === 'subscriptions';
}

/** Directories never descended into. */
function isSkippedDir(entry: ByteString): boolean {
  return entry === 'tmp' || entry === '.' || entry === '..' || entry === '.notmuch';
}

function isMailDir(dir: ByteString): boolean {
  const s = dir.lastIndexOf('/');
  const base = s < 0 ? dir : dir.slice(s + 1);
  return base === 'cur' || base === 'new';
}

/**
 * The real path of a ByteString path, or null if it cannot be resolved (missing, dangling).
 * realpath(3) (`.native`): the JS realpathSync turns a Buffer path into a UTF-8 string, so a
 * name that is not UTF-8 looked missing and its link was never checked (and followed out).
 */
function realOrNull(p: ByteString): ByteString | null {
  try { return realpathSync.native(fsName(p), { encoding: 'buffer' }).toString('latin1'); } catch { return null; }
}

function describe(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err?.code ?? err?.message ?? String(e);
}

const KIND_FILE = 1;
const KIND_DIR = 2;
const KIND_LINK = 3;

/** Lists a directory in readdir order (not sorted, unlike readdirSync). */
export function listDirectory(dir: ByteString): { names: ByteString[]; kinds: Uint8Array } {
  const native = nativeLister()?.(dir, false);
  return native ?? listDirectoryFs(dir);
}

function listDirectoryFs(dir: ByteString): { names: ByteString[]; kinds: Uint8Array } {
  const d = opendirSync(fsPath(dir), { encoding: 'latin1', bufferSize: 1024 } as never);
  const names: ByteString[] = [];
  const kinds: number[] = [];
  try {
    let e: Dirent | null;
    while ((e = d.readSync()) !== null) {
      names.push(e.name as unknown as string);
      kinds.push(e.isFile() ? KIND_FILE : e.isDirectory() ? KIND_DIR : e.isSymbolicLink() ? KIND_LINK : 0);
    }
  } finally {
    d.closeSync();
  }
  return { names, kinds: Uint8Array.from(kinds) };
}

/**
 * listDirectory + (with `stat`) the ino, size and mtimeMs of every regular
 * file (NaN where stat fails: the file vanished). The native lister does it
 * in one call; without it, every file that may be a message is stat'ed here.
 */
export function listDirectoryStat(dir: ByteString, stat: boolean): DirListing {
  const native = nativeLister()?.(dir, stat);
  if (native !== undefined) return native;
  const { names, kinds } = listDirectoryFs(dir);
  if (!stat) return { names, kinds, stats: null };
  const stats = new Float64Array(names.length * 3).fill(NaN);
  for (let i = 0; i < names.length; i++) {
    if (kinds[i] !== KIND_FILE || isNotAMessageName(names[i])) continue;
    let st: Stats | undefined;
    try { st = statSync(fsName(`${dir}/${names[i]}`), { throwIfNoEntry: false }); } catch { st = undefined; }
    if (st === undefined || !st.isFile()) continue;
    stats[3 * i] = st.ino;
    stats[3 * i + 1] = st.size;
    stats[3 * i + 2] = st.mtimeMs;
  }
  return { names, kinds, stats };
}

/** A DirLister that must be closed (it owns threads). */
export interface FolderPrefetch extends DirLister {
  close(): void;
}

/**
 * Lists and stats the mail folders of the trees ahead, on `threads` native
 * threads, while the caller does other work (reads the db-file); the walk
 * then takes them (pass it as `lister`). The folders are found by a cheap
 * walk of the folder tree now; a folder not found then (it appeared since)
 * or that could not be listed ahead is listed on the spot, so the walk
 * throws as it would without. Null when the native lister is not built or
 * this first walk fails (the real walk reports why).
 */
export function prefetchMailFolders(roots: readonly ByteString[], opts: WalkOptions, threads: number): FolderPrefetch | null {
  if (nativeLister() === null) return null;
  const folders = findMailFolders(roots, opts.excludes, opts.follow);
  const q = folders === null ? null : nativeFolderQueue(folders, true, threads);
  if (folders === null || q === null) return null;
  opts.onDebug?.(`listing ${folders.length} mail folders ahead on ${threads} native thread(s)`);
  return { ...listerAhead(folders, (i) => q.take(i)), close: () => q.close() };
}

/** The cur/new folders of the trees as they are now (to list them ahead); null if that walk fails (the real walk says why). */
export function findMailFolders(roots: readonly ByteString[], excludes?: readonly ByteString[], follow?: readonly ByteString[]): ByteString[] | null {
  try {
    return [...walkMailFolders(roots, { excludes, follow })];
  } catch {
    return null;
  }
}

/**
 * A DirLister over folders listed ahead: folder i's listing is `take(i)`,
 * once; a folder not in the list (it appeared since) or that `take` could
 * not give (undefined) is listed and stat'ed here, and fails here if it must.
 */
export function listerAhead(folders: readonly ByteString[], take: (i: number) => DirListing | undefined): DirLister {
  const index = new Map(folders.map((d, i) => [d, i]));
  return {
    list(dir) {
      const i = index.get(dir);
      if (i !== undefined) {
        index.delete(dir);
        const l = take(i);
        if (l !== undefined) return l;
      }
      return listDirectoryStat(dir, true);
    },
  };
}

/** Message files of a folder gathered for a MailFolderListing. */
class ListingBatch {
  private entries: ByteString[] = [];
  private at: number[] = [];

  constructor(private readonly dir: ByteString, private readonly stats: Float64Array | null) {}

  get size(): number { return this.entries.length; }

  add(entry: ByteString, i: number): void { this.entries.push(entry); this.at.push(i); }

  /** `last`: no more files of this folder will follow. */
  take(last: boolean): MailFolderListing {
    let st3: Float64Array | null = null;
    if (this.stats !== null) {
      st3 = new Float64Array(3 * this.at.length);
      for (let k = 0; k < this.at.length; k++) {
        const i = 3 * this.at[k];
        st3[3 * k] = this.stats[i];
        st3[3 * k + 1] = this.stats[i + 1];
        st3[3 * k + 2] = this.stats[i + 2];
      }
    }
    const l = { dir: this.dir, entries: this.entries, stats: st3, last };
    this.entries = [];
    this.at = [];
    return l;
  }
}

/** A name the db-file and the wire cannot carry (they are line based). */
function hasLineBreak(name: ByteString): boolean {
  return name.includes('\n') || name.includes('\r');
}

/** Every entry is a regular file with a message name (so a listing needs no filtering). */
function allMessageFiles(names: readonly ByteString[], kinds: Uint8Array): boolean {
  for (let i = 0; i < names.length; i++) {
    if (kinds[i] !== KIND_FILE) return false;
    const n = names[i];
    if (isNotAMessageName(n) || hasLineBreak(n)) return false;
  }
  return true;
}

class Walker {
  private readonly excludes: RegExp[];
  private readonly warn: (m: string) => void;
  private readonly debug: (m: string) => void;
  private readonly lister: DirLister | undefined;
  private readonly stat: boolean;
  /** dev:ino of the directories on the current path (symlink loop detection). */
  private readonly onPath = new Set<string>();
  /** Real paths a followed symlink may lead into: the roots and `follow`. */
  private readonly trees: ByteString[] = [];
  private readonly follow: readonly ByteString[];

  /** files: yield a Candidate per message file; folders: the cur/new folders; listings: a MailFolderListing per cur/new folder. */
  constructor(opts: WalkOptions, private readonly mode: 'files' | 'folders' | 'listings') {
    this.excludes = (opts.excludes ?? []).map(fnmatchToRegExp);
    this.warn = opts.onWarning ?? (() => {});
    this.debug = opts.onDebug ?? (() => {});
    this.lister = opts.lister;
    this.stat = opts.statIfCheap === true && nativeLister() !== null;
    this.follow = opts.follow ?? [];
  }

  /** Resolves the trees links may lead into, before the first root is walked. */
  prepare(roots: readonly ByteString[]): this {
    for (const r of [...roots.map(stripOneSlash), ...this.follow]) {
      const real = realOrNull(r);
      if (real !== null) this.trees.push(real);
    }
    return this;
  }

  /** A folder symlink: its real target must stay inside the trees. */
  private checkLink(path: ByteString): void {
    const target = realOrNull(path);
    if (target === null) return;
    if (this.trees.some((t) => target === t || target.startsWith(`${t}/`))) return;
    throw new MaildirWalkError(`${toUtf8(path)} is a symbolic link to ${toUtf8(target)}, outside the mailboxes: it is not followed ` +
      '(to synchronize a folder kept elsewhere, allow its target with FOLLOW_LOCAL or FOLLOW_REMOTE in ~/.smd/config.ENDPOINT, ' +
      'or --follow DIR)', path);
  }

  /** A file of a mail folder that is a message to sync (else says why not). */
  private isMessageEntry(dir: ByteString, entry: ByteString): boolean {
    if (isNotAMessageName(entry)) { this.debug(`skipping ${toUtf8(`${dir}/${entry}`)}: not a message file`); return false; }
    if (hasLineBreak(entry)) {
      this.warn(`skipping ${JSON.stringify(toUtf8(`${dir}/${entry}`))}: a name with a newline cannot be synchronized`);
      return false;
    }
    return true;
  }

  excluded(dir: ByteString): boolean {
    for (const re of this.excludes) if (re.test(dir)) return true;
    return false;
  }

  *root(rootArg: ByteString): Generator<Candidate | ByteString | MailFolderListing> {
    const root = stripOneSlash(rootArg);
    let st: Stats;
    try {
      st = statSync(fsPath(root));
    } catch (e) {
      throw new MaildirWalkError(`Unable to stat ${toUtf8(root)}: ${describe(e)}`, root);
    }
    if (!st.isDirectory()) throw new MaildirWalkError(`${toUtf8(root)} is not a directory`, root);
    yield* this.dir(root, st);
  }

  private *dir(dir: ByteString, st: Stats): Generator<Candidate | ByteString | MailFolderListing> {
    if (this.excluded(dir)) { this.debug(`excluding ${toUtf8(dir)}`); return; }
    const mail = isMailDir(dir);
    if (this.mode === 'folders' && mail) { yield dir; return; }
    let list: { names: ByteString[]; kinds: Uint8Array; stats?: Float64Array | null };
    try {
      list = !mail ? listDirectory(dir) : this.lister !== undefined ? this.lister.list(dir) : listDirectoryStat(dir, this.stat);
    } catch (e) {
      // Its messages would turn into DELETEs: the whole scan must fail.
      throw new MaildirWalkError(`Unable to open directory ${toUtf8(dir)}: ${describe(e)}`, dir);
    }
    const { names, kinds } = list;
    const stats = list.stats ?? null;
    // The usual mail folder: message files only. Its listing is the batch, as it is.
    if (mail && this.mode === 'listings' && allMessageFiles(names, kinds)) {
      yield { dir, entries: names, stats, last: true };
      return;
    }
    const key = `${st.dev}:${st.ino}`;
    this.onPath.add(key);
    try {
      // listings mode: message files are gathered into one listing per run between subfolders.
      const batch = mail && this.mode === 'listings' ? new ListingBatch(dir, stats) : null;
      for (let i = 0; i < names.length; i++) {
        const entry = names[i];
        const kind = kinds[i];
        if (kind === KIND_FILE) {
          if (batch !== null) { if (this.isMessageEntry(dir, entry)) batch.add(entry, i); continue; }
          if (!mail || this.mode !== 'files') continue;
          if (!this.isMessageEntry(dir, entry)) continue;
          const path = `${dir}/${entry}`;
          if (stats === null) yield { path, dir, entry };
          else yield { path, dir, entry, ino: stats[3 * i], size: stats[3 * i + 1], mtimeMs: stats[3 * i + 2] };
        } else if (kind === KIND_DIR || kind === KIND_LINK) {
          if (isSkippedDir(entry)) continue;
          const path = `${dir}/${entry}`;
          let cst: Stats | undefined;
          try {
            cst = statSync(fsPath(path), { throwIfNoEntry: false });
          } catch (e) {
            if (kind === KIND_LINK) { this.warn(`skipping symlink ${toUtf8(path)}: ${describe(e)}`); continue; }
            throw new MaildirWalkError(`Unable to open directory ${toUtf8(path)}: ${describe(e)}`, path);
          }
          if (cst === undefined) {
            if (kind === KIND_LINK) { this.warn(`skipping dangling symlink ${toUtf8(path)}`); continue; }
            // Vanished while we walk: a folder being renamed; its messages must not become DELETEs.
            throw new MaildirWalkError(`Unable to open directory ${toUtf8(path)}: ENOENT`, path);
          }
          if (!cst.isDirectory()) {
            if (kind === KIND_LINK) this.warn(`skipping symlink ${toUtf8(path)}: it does not point to a directory`);
            continue;
          }
          if (this.onPath.has(`${cst.dev}:${cst.ino}`)) {
            this.warn(`skipping ${toUtf8(path)}: symlink loop`);
            continue;
          }
          if (kind === KIND_LINK) this.checkLink(path);
          if (batch !== null && batch.size > 0) yield batch.take(false);
          yield* this.dir(path, cst);
        }
      }
      // The last piece even if empty: it says the whole folder was listed.
      if (batch !== null) yield batch.take(true);
    } finally {
      this.onPath.delete(key);
    }
  }
}

/**
 * Walks Maildir trees as upstream mddiff does (roots in argument order, one
 * trailing '/' stripped, readdir order, `tmp` never entered, excludes tested
 * on every directory) and yields the candidate message files. Throws
 * MaildirWalkError for a missing/unreadable root or folder.
 */
export function* walkMaildir(roots: readonly ByteString[], opts: WalkOptions = {}): Generator<Candidate> {
  const w = new Walker(opts, 'files').prepare(roots);
  for (const r of roots) yield* w.root(r) as Generator<Candidate>;
}

/**
 * The message files of one cur/new folder, in readdir order; `stats` as in
 * DirListing (3 per entry) when the lister stat'ed them. A folder with
 * subdirectories comes in several pieces (walk order); `last` marks its
 * final piece, which is yielded even when empty.
 */
export interface MailFolderListing {
  readonly dir: ByteString;
  readonly entries: ByteString[];
  readonly stats: Float64Array | null;
  readonly last: boolean;
}

/** walkMaildir by folder: the same files in the same order, one listing per cur/new folder. */
export function* walkMaildirFolders(roots: readonly ByteString[], opts: WalkOptions = {}): Generator<MailFolderListing> {
  const w = new Walker(opts, 'listings').prepare(roots);
  for (const r of roots) yield* w.root(r) as Generator<MailFolderListing>;
}

/** `mddiff -l`: the `cur`/`new` directories of the trees, in walk order. */
export function* walkMailFolders(roots: readonly ByteString[], opts: WalkOptions = {}): Generator<ByteString> {
  const w = new Walker(opts, 'folders').prepare(roots);
  for (const r of roots) yield* w.root(r) as Generator<ByteString>;
}

/** The Maildir "unique" part of a file name (before the ':2,flags' info). */
function uniquePart(entry: ByteString): ByteString {
  const c = entry.indexOf(':');
  return c < 0 ? entry : entry.slice(0, c);
}

/**
 * A candidate vanished between readdir and open: a mail program probably
 * renamed it (flag change, new/ -> cur/). Re-lists its directory (and the
 * sibling `cur` of a `new`) and returns the paths of regular files with the
 * same unique part, other than itself.
 */
export function findRenamed(c: Candidate): ByteString[] {
  const want = uniquePart(c.entry);
  const dirs = [c.dir];
  if (c.dir.endsWith('/new') || c.dir === 'new') dirs.push(c.dir.slice(0, -3) + 'cur');
  const out: ByteString[] = [];
  for (const d of dirs) {
    let list: { names: ByteString[]; kinds: Uint8Array };
    try { list = listDirectory(d); } catch { continue; }
    for (let i = 0; i < list.names.length; i++) {
      const n = list.names[i];
      if (list.kinds[i] !== KIND_FILE || n === c.entry || isNotAMessageName(n)) continue;
      if (hasLineBreak(n)) continue;
      if (uniquePart(n) === want) out.push(`${d}/${n}`);
    }
  }
  return out;
}
