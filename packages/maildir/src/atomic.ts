import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync, constants } from 'node:fs';
import { dirname } from 'node:path';

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

function tmpName(path: string): string {
  return `${path}.tmp.${process.pid}.${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * A writer to a temporary file next to `path` that becomes `path` on commit
 * (write, fsync, rename, fsync the directory). Writes are buffered.
 */
export class AtomicFileWriter {
  private readonly tmp: string;
  private fd: number;
  private buf = Buffer.allocUnsafe(1 << 20);
  private used = 0;

  /** `onBytes` sees every byte written, in order (e.g. to hash the file). */
  constructor(readonly path: string, mode = 0o666, private readonly onBytes?: (bytes: Uint8Array) => void) {
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
