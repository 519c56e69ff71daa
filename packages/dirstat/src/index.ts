/**
 * The native directory lister (native/dirstat.c), if it was built: one call
 * lists a directory and stats its regular files. It is optional: when the
 * addon is missing (no compiler at install time, another OS) or SMD_NATIVE=0,
 * `nativeLister()` is null and callers use `fs`.
 */
import { createRequire } from 'node:module';

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
}

let binding: Binding | null | undefined;

function load(): Binding | null {
  if (binding !== undefined) return binding;
  binding = null;
  if (process.env.SMD_NATIVE === '0') return binding;
  try {
    binding = createRequire(import.meta.url)('../build/Release/dirstat.node') as Binding;
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
