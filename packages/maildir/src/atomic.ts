import { closeSync, existsSync, fsyncSync, lstatSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync, constants } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { getSystemErrorMap, getSystemErrorName } from 'node:util';
import { nativeRenameNoReplace, nativeSyncFs } from '@smd/native';

/** fsync a directory (so a rename in it is durable). Errors other than EINVAL/EISDIR are thrown. */
export function fsyncDir(dir: string | Buffer): void {
  const fd = openSync(dir, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EBADF') throw e;
  } finally {
    closeSync(fd);
  }
}

/**
 * Makes everything written so far on the file system holding `dir` durable
 * (syncfs(2) through the native helper, on the thread pool): one journal
 * commit for a batch of files where an fsync each costs one per file. Null
 * where there is none (no native helper, not Linux): fsync each file then.
 */
export function fileSystemSync(): ((dir: Buffer) => Promise<void>) | null {
  const sync = nativeSyncFs();
  if (sync === null) return null;
  return async (dir) => {
    const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      await sync(fd);
    } catch (e) {
      throw Object.assign(e as Error, { path: dir.toString('latin1') });
    } finally {
      closeSync(fd);
    }
  };
}

let noReplace = nativeRenameNoReplace();

/**
 * Renames `from` to `to` unless something is at `to` (renameat2
 * RENAME_NOREPLACE: one call where link + unlink takes two). 'unsupported':
 * no native helper, or a file system/kernel without it (then never tried
 * again): the caller links. Other failures throw an errno error.
 */
export function renameNoReplace(from: string, to: string): 'renamed' | 'exists' | 'unsupported' {
  if (noReplace === null) return 'unsupported';
  const errno = noReplace(Buffer.from(from, 'latin1'), Buffer.from(to, 'latin1'));
  if (errno === 0) return 'renamed';
  const code = getSystemErrorName(-errno);
  if (code === 'EEXIST') return 'exists';
  if (code === 'EINVAL' || code === 'ENOSYS' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') { noReplace = null; return 'unsupported'; }
  const text = getSystemErrorMap().get(-errno)?.[1] ?? code;
  throw Object.assign(new Error(`${code}: ${text}, rename '${from}' -> '${to}'`), { errno: -errno, code, syscall: 'rename', path: from, dest: to });
}

/** `<path>.tmp.<pid>.<random>`: the pid tells a later run whether the writer still runs. */
function tmpName(path: string): string {
  return `${path}.tmp.${process.pid}.${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Whether `pid` is a live process. A zombie is not: a killed program whose
 * parent died too stays a zombie until init reaps it, which in a container
 * may be never, and its files must still be cleaned up.
 */
export function isProcessRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  let stat: string | null = null;
  try { stat = readFileSync(`/proc/${pid}/stat`, 'latin1'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && existsSync('/proc/self/stat')) return false;
  }
  if (stat !== null) {
    // "pid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'.
    const state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state !== 'Z' && state !== 'X' && state !== 'x';
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Removes the temporary files that writers of `path` (AtomicFileWriter, the
 * db-file patch) left when their process was killed: regular files named
 * `<path>.tmp.<pid>.<random>` whose process no longer runs. A crash while a
 * db-file `.new` is written would otherwise leave a db-sized file behind for
 * every crash. Files of a live process (this one included), anything else
 * in the directory, symbolic links and directories are never touched.
 * Returns the names removed.
 */
export function removeStaleTemps(path: string): string[] {
  const dir = dirname(path);
  const re = new RegExp(`^${escapeRe(basename(path))}\\.tmp\\.([0-9]{1,10})\\.[0-9a-z]{1,16}$`);
  let names: string[];
  try { names = readdirSync(dir); } catch { return []; }
  const removed: string[] = [];
  for (const n of names) {
    const m = re.exec(n);
    if (m === null) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || isProcessRunning(pid)) continue;
    const p = join(dir, n);
    try {
      if (!lstatSync(p).isFile()) continue;
      unlinkSync(p);
      removed.push(n);
    } catch { /* gone meanwhile, or not ours to remove */ }
  }
  return removed;
}

/**
 * A writer to a temporary file next to `path` that becomes `path` on commit
 * (write, fsync, rename, fsync the directory). Writes are buffered. Creating
 * one first removes the temporary files of `path` that killed writers left
 * (removeStaleTemps): the files written this way are the db-file, its
 * `.new`, `.mtime` and stat cache, in a small directory.
 */
export class AtomicFileWriter {
  private readonly tmp: string;
  private fd: number;
  private buf = Buffer.allocUnsafe(1 << 20);
  private used = 0;

  /** `onBytes` sees every byte written, in order (e.g. to hash the file). */
  constructor(readonly path: string, mode = 0o666, private readonly onBytes?: (bytes: Uint8Array) => void) {
    removeStaleTemps(path);
    this.tmp = tmpName(path);
    this.fd = openSync(this.tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  }

  /** Appends a latin1 string (a ByteString) or bytes. */
  write(data: string | Uint8Array): void {
    const len = typeof data === 'string' ? data.length : data.length;
    if (this.used + len > this.buf.length) {
      this.flush();
      if (len > this.buf.length) {
        const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
        this.onBytes?.(b);
        let off = 0;
        while (off < b.length) off += writeSync(this.fd, b, off, b.length - off);
        return;
      }
    }
    if (typeof data === 'string') this.used += this.buf.write(data, this.used, 'latin1');
    else { this.buf.set(data, this.used); this.used += len; }
  }

  private flush(): void {
    if (this.used > 0) this.onBytes?.(this.buf.subarray(0, this.used));
    let off = 0;
    while (off < this.used) off += writeSync(this.fd, this.buf, off, this.used - off);
    this.used = 0;
  }

  /** fsync + rename into place + fsync the directory (unless `sync` is false). */
  commit(sync = true): void {
    this.flush();
    if (sync) fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
    renameSync(this.tmp, this.path);
    if (sync) fsyncDir(dirname(this.path));
  }

  /** Removes the temporary file. Safe to call after commit. */
  abort(): void {
    if (this.fd >= 0) {
      try { closeSync(this.fd); } catch { /* already closed */ }
      this.fd = -1;
      try { unlinkSync(this.tmp); } catch { /* gone */ }
    }
  }
}

/** Writes `data` to `path` atomically and durably (tmp + fsync + rename + fsync dir). */
export function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode?: number; encoding?: 'latin1' | 'utf8' } = {}): void {
  const w = new AtomicFileWriter(path, opts.mode);
  try {
    w.write(typeof data === 'string' && opts.encoding === 'utf8' ? Buffer.from(data, 'utf8') : data);
    w.commit();
  } catch (e) {
    w.abort();
    throw e;
  }
}
