/**
 * smd's optional native helpers (native/*.c), if they were built: one call
 * lists a directory and stats its regular files (dirstat.c), folders listed
 * ahead on a thread (dirstat.c), the canonical lines of a db-file decoded
 * (dbparse.c), syncfs(2) on the thread pool (syncfs.c). When the addon is missing (no compiler at install time,
 * another OS) or SMD_NATIVE=0, every accessor here returns null and callers
 * use their JavaScript paths.
 */
import { createRequire } from 'node:module';
import { getSystemErrorMap, getSystemErrorName } from 'node:util';

/** A directory in readdir order, see native/dirstat.c for the exact contract. */
export interface NativeListing {
  /** Raw entry names (latin1 ByteStrings). */
  readonly names: string[];
  /** Per entry: 1 regular file, 2 directory, 3 symlink, 0 other. */
  readonly kinds: Uint8Array;
  /** With stat: ino, size, mtimeMs per entry (3 each; NaN when not a regular file or vanished). */
  readonly stats: Float64Array | null;
}

/** Lists `dir` (a latin1 ByteString path); undefined when it cannot be opened or read. */
export type NativeLister = (dir: string, stat: boolean) => NativeListing | undefined;

/**
 * Folders listed ahead on native threads (while the caller does other work),
 * taken in any order; a folder no thread has started is listed by take().
 */
export interface NativeFolderQueue {
  /** Folder i of the list given at start; undefined if it cannot be listed (or was taken already). */
  take(i: number): NativeListing | undefined;
  /** Stops and joins the threads. */
  close(): void;
}

type RawListing = [string, Uint8Array, Float64Array | null];
type Handle = object;
interface Binding {
  listDirStat(dir: string, stat: boolean): RawListing | undefined;
  startFolderQueue(dirs: string[], stat: boolean, threads: number): Handle;
  takeFolder(q: Handle, i: number): RawListing | undefined;
  closeFolderQueue(q: Handle): void;
  parseDbLines(buf: Uint8Array, start: number, end: number, hashes: Uint8Array, lineStart: Float64Array, at: number, base: number): [number, number, string];
  syncFs?(fd: number, done: (errno: number) => void): void;
  renameNoReplace?(from: Buffer, to: Buffer): number;
}

let binding: Binding | null | undefined;

function load(): Binding | null {
  if (binding !== undefined) return binding;
  binding = null;
  if (process.env.SMD_NATIVE === '0') return binding;
  try {
    binding = createRequire(import.meta.url)('../build/Release/smd_native.node') as Binding;
  } catch {
    // Not built: callers use fs.
  }
  return binding;
}

const toListing = (r: RawListing | undefined): NativeListing | undefined =>
  r === undefined ? undefined : { names: r[1].length === 0 ? [] : r[0].split('/'), kinds: r[1], stats: r[2] };

let lister: NativeLister | null | undefined;

/** The native lister, or null when it is not built or SMD_NATIVE=0. */
export function nativeLister(): NativeLister | null {
  if (lister === undefined) {
    const b = load();
    lister = b === null ? null : (dir, stat) => toListing(b.listDirStat(dir, stat));
  }
  return lister;
}

/** Starts listing `dirs` on `threads` native threads; null when the addon is not available. */
export function nativeFolderQueue(dirs: string[], stat: boolean, threads: number): NativeFolderQueue | null {
  const b = load();
  if (b === null) return null;
  const q = b.startFolderQueue(dirs, stat, threads);
  return {
    take: (i) => toListing(b.takeFolder(q, i)),
    close: () => b.closeFolderQueue(q),
  };
}

/**
 * Decodes the canonical db-file lines at the start of buf[start, end) (see
 * native/dbparse.c): entry at+k gets its 40 hash bytes at hashes[40 (at+k)]
 * and its file offset (base + index in buf) at lineStart[at+k]. Stops at an
 * incomplete line, a line that is not canonical (the caller reads it) or a
 * full array. Returns how many lines, where it stopped, and their names.
 */
export type DbLineDecoder = (
  buf: Uint8Array, start: number, end: number, hashes: Uint8Array, lineStart: Float64Array, at: number, base: number,
) => { count: number; stop: number; names: string[] };

let decoder: DbLineDecoder | null | undefined;

/** The native db-line decoder, or null when it is not built or SMD_NATIVE=0. */
export function nativeDbLineDecoder(): DbLineDecoder | null {
  if (decoder === undefined) {
    const b = load();
    decoder = b === null ? null : (buf, start, end, hashes, lineStart, at, base) => {
      const [count, stop, names] = b.parseDbLines(buf, start, end, hashes, lineStart, at, base);
      return { count, stop, names: count === 0 ? [] : names.split('\n') };
    };
  }
  return decoder;
}

/** syncfs(2) of the file system holding `fd`, off the main thread; rejects with an errno error (syscall 'syncfs'). */
export type FileSystemSync = (fd: number) => Promise<void>;

let syncer: FileSystemSync | null | undefined;

/** The native syncfs, or null when the addon is not built (or predates it), SMD_NATIVE=0, or the OS has none. */
export function nativeSyncFs(): FileSystemSync | null {
  if (syncer === undefined) {
    const b = load();
    const fn = b?.syncFs;
    syncer = fn === undefined || process.platform !== 'linux' ? null : (fd) => new Promise((resolve, reject) => {
      fn.call(b, fd, (errno) => {
        if (errno === 0) { resolve(); return; }
        const code = getSystemErrorName(-errno);
        const text = getSystemErrorMap().get(-errno)?.[1] ?? code;
        reject(Object.assign(new Error(`${code}: ${text}, syncfs`), { errno: -errno, code, syscall: 'syncfs' }));
      });
    });
  }
  return syncer;
}

/**
 * renameat2(RENAME_NOREPLACE): 0 renamed, else the errno (EEXIST: the
 * target exists; EINVAL/ENOSYS: not on this file system or kernel). Null
 * when the addon is not built (or predates it) or SMD_NATIVE=0.
 */
export type NoReplaceRename = (from: Buffer, to: Buffer) => number;

let renamer: NoReplaceRename | null | undefined;

export function nativeRenameNoReplace(): NoReplaceRename | null {
  if (renamer === undefined) {
    const b = load();
    const fn = b?.renameNoReplace;
    renamer = fn === undefined || process.platform !== 'linux' ? null : (from, to) => fn.call(b, from, to);
  }
  return renamer;
}
