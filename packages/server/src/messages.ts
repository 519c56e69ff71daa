import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { describeFsError, fsPath, MessageHasher, toUtf8, type ByteString } from '@smd/maildir';

/** What a request asks for: the whole file, its header, or its body. */
export type Part = 'whole' | 'header' | 'body';

/**
 * Why a message cannot be served; the session answers ABORT and goes on.
 * `gone`: it vanished (a mail program renamed or deleted it since the scan),
 * which is normal life; anything else (permissions, not a regular file) is
 * something the user must hear about.
 */
export class ServeRefusal extends Error {
  override name = 'ServeRefusal';
  constructor(message: string, readonly gone = false) { super(message); }
}

/** Messages up to this size are read whole before the reply starts (so the announced size is certain). */
const WHOLE_READ_LIMIT = 8 * 1024 * 1024;
const PIECE = 256 * 1024;

/**
 * A message opened for sending: the byte range of the requested part and a
 * way to read it in pieces. Opened without following a symlink in the last
 * component; it must be a regular file.
 */
export class OpenMessage {
  private constructor(private readonly fd: number, readonly start: number, readonly size: number, private readonly data: Buffer | null) {}

  static open(name: ByteString, part: Part): OpenMessage {
    let fd: number;
    try {
      fd = openSync(fsPath(name), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ServeRefusal(`cannot open ${toUtf8(name)}: ${code === 'ELOOP' ? 'it is a symbolic link' : describeFsError(e)}`, code === 'ENOENT' || code === 'ENOTDIR');
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new ServeRefusal(`${toUtf8(name)} is not a regular file`);
      let data: Buffer | null = null;
      if (st.size <= WHOLE_READ_LIMIT) {
        data = Buffer.allocUnsafe(st.size);
        let got = 0;
        while (got < st.size) {
          const n = readSync(fd, data, got, st.size - got, got);
          if (n === 0) break;
          got += n;
        }
        data = data.subarray(0, got);
      }
      const total = data ? data.length : st.size;
      if (part === 'whole') return new OpenMessage(fd, 0, total, data);
      const headerLength = data ? headerLengthOf([data]) : headerLengthOf(readPieces(fd, 0, total));
      if (headerLength < 0) throw new ServeRefusal(`${toUtf8(name)} has no header (no empty line): it was changed since the scan`, true);
      return part === 'header'
        ? new OpenMessage(fd, 0, headerLength, data)
        : new OpenMessage(fd, headerLength, total - headerLength, data);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** The part's bytes, in pieces. A file that shrank meanwhile throws: the announced size can no longer be honoured. */
  *pieces(): Generator<Buffer> {
    if (this.data !== null) {
      if (this.size > 0) yield this.data.subarray(this.start, this.start + this.size);
      return;
    }
    let sent = 0;
    for (const p of readPieces(this.fd, this.start, this.size)) { sent += p.length; yield p; }
    if (sent !== this.size) throw new Error(`the message shrank while being sent (${sent} of ${this.size} bytes)`);
  }

  close(): void {
    closeSync(this.fd);
  }
}

function* readPieces(fd: number, start: number, size: number): Generator<Buffer> {
  let pos = start;
  const end = start + size;
  while (pos < end) {
    const buf = Buffer.allocUnsafe(Math.min(PIECE, end - pos));
    const n = readSync(fd, buf, 0, buf.length, pos);
    if (n === 0) return;
    pos += n;
    yield buf.subarray(0, n);
  }
}

/** Header length by the same rule mddiff hashes with ("\n\n", else "\r\n\r\n"), -1 if none. */
function headerLengthOf(pieces: Iterable<Buffer>): number {
  const h = new MessageHasher();
  for (const p of pieces) h.update(p);
  return h.digest() === null ? -1 : h.headerLength;
}
