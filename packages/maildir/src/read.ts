import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { hash } from 'node:crypto';
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
  /** Could not be opened/read (errno code; ELOOP: a symbolic link), or not a regular file. */
  | { readonly kind: 'unreadable'; readonly code: string };

let shared: Buffer | null = null;
/** One read buffer reused for every file: no per-message allocation of its size. */
function readBuffer(): Buffer {
  if (shared === null) shared = Buffer.allocUnsafe(1 << 20);
  return shared;
}

const O_NOATIME = (constants as Record<string, number>).O_NOATIME ?? 0;
/**
 * A message file that is a symbolic link is never read through (ELOOP), and
 * opening a FIFO or a device named like a message must not block.
 */
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

function openRead(path: Buffer): number {
  if (O_NOATIME !== 0) {
    try {
      return openSync(path, READ_FLAGS | O_NOATIME);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
    }
  }
  return openSync(path, READ_FLAGS);
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
    if (!st.isFile()) return { kind: 'unreadable', code: 'not a regular file' };
    const meta = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
    const buf = readBuffer();
    // The usual case: the whole file fits the buffer and splits at "\n\n": two one-shot hashes.
    let have = 0;
    if (st.size < buf.length) {
      // Until EOF, or until the size fstat gave (saves the read that returns 0; a file
      // growing meanwhile is caught by its size in the stat cache next time).
      for (let n = 1; n > 0 && have < buf.length && have < st.size; have += n) n = readSync(fd, buf, have, buf.length - have, null);
      if (have < buf.length) {
        if (have === 0) return { kind: 'empty', ...meta };
        const data = buf.subarray(0, have);
        const i = data.indexOf('\n\n');
        if (i >= 0) {
          return { kind: 'message', hashes: { header: hash('sha1', data.subarray(0, i + 2), 'hex'), body: hash('sha1', data.subarray(i + 2), 'hex') }, ...meta };
        }
      }
    }
    const h = new MessageHasher();
    if (have > 0) h.update(buf.subarray(0, have));
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
