import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { type ByteString, fsPath } from './bytes.js';
import { MessageHasher, type MessageHashes } from './hash.js';

/** What reading one candidate file gave. */
export type MessageFile =
  | { readonly kind: 'message'; readonly hashes: MessageHashes; readonly ino: number; readonly size: number; readonly mtimeMs: number }
  /** Empty file: not a message, silently skipped. */
  | { readonly kind: 'empty'; readonly ino: number; readonly size: number; readonly mtimeMs: number }
  /** No blank line: not a message ("malformed file, no header"). */
  | { readonly kind: 'noheader'; readonly ino: number; readonly size: number; readonly mtimeMs: number }
  /** Vanished between listing and open. */
  | { readonly kind: 'gone' }
  /** Could not be opened/read (errno code). */
  | { readonly kind: 'unreadable'; readonly code: string };

let shared: Buffer | null = null;
/** One read buffer reused for every file: no per-message allocation of its size. */
function readBuffer(): Buffer {
  if (shared === null) shared = Buffer.allocUnsafe(1 << 20);
  return shared;
}

const O_NOATIME = (constants as Record<string, number>).O_NOATIME ?? 0;

function openRead(path: Buffer): number {
  if (O_NOATIME !== 0) {
    try {
      return openSync(path, constants.O_RDONLY | O_NOATIME);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
    }
  }
  return openSync(path, constants.O_RDONLY);
}

/**
 * Opens a file once, fstats it and streams it through MessageHasher with one
 * reused buffer. Never throws for ENOENT/EACCES-style problems (see kinds).
 */
export function readMessageFile(name: ByteString): MessageFile {
  let fd: number;
  try {
    fd = openRead(fsPath(name));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    return code === 'ENOENT' ? { kind: 'gone' } : { kind: 'unreadable', code };
  }
  try {
    const st = fstatSync(fd);
    const meta = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
    const buf = readBuffer();
    const h = new MessageHasher();
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
    }
    if (h.length === 0) return { kind: 'empty', ...meta };
    const hashes = h.digest();
    if (hashes === null) return { kind: 'noheader', ...meta };
    return { kind: 'message', hashes, ...meta };
  } catch (e) {
    return { kind: 'unreadable', code: (e as NodeJS.ErrnoException).code ?? String(e) };
  } finally {
    closeSync(fd);
  }
}
