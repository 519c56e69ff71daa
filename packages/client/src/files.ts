/**
 * The client's file operations on the Maildir (fixing upstream B14): data
 * always goes to a fresh file in the folder's `tmp/`, is made durable
 * (durable.ts) and verified, then renamed into place, never clobbering.
 */
import {
  closeSync, constants, fsync, fsyncSync, open, linkSync, lstatSync, openSync, readdirSync, readSync, renameSync, unlinkSync, writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { type ByteString, fsPath, fsyncDir, isProcessRunning, MessageHasher, readMessageFile, renameNoReplace, type MessageHashes } from '@smd/maildir';
import type { LocalState } from './policy.js';

/** The state of a name for the policy: empty, missing → absent; no header / unreadable → other. */
export function observe(path: ByteString): LocalState {
  const f = readMessageFile(path);
  switch (f.kind) {
    case 'gone': case 'empty': return { kind: 'absent' };
    case 'message': return { kind: 'message', header: f.hashes.header, body: f.hashes.body };
    case 'noheader': return { kind: 'other', why: 'not a message (no blank line after the header)' };
    case 'unreadable':
      if (f.code === 'ENOTDIR') return { kind: 'absent' };
      return { kind: 'other', why: f.code === 'ELOOP' ? 'a symbolic link (never read or written through)' : `unreadable (${f.code})` };
  }
}

/** Temp files currently open or not yet placed: removed by `removeLiveTemps` when a session fails. */
const live = new Set<ByteString>();

export function removeLiveTemps(): void {
  for (const p of live) { try { unlinkSync(fsPath(p)); } catch { /* gone */ } }
  live.clear();
}

let seq = 0;
const RAND = randomBytes(4).toString('hex');

/**
 * A unique Maildir-style temporary name in `tmpDir`: `<secs>.P<pid>Q<n>R<rand>.smd-part`.
 * It lives in `tmp/`, which is never scanned, and the `.smd-part` suffix tells a
 * human what it is.
 */
function tempName(tmpDir: ByteString): ByteString {
  return `${tmpDir}/${Math.floor(Date.now() / 1000)}.P${process.pid}Q${++seq}R${RAND}.smd-part`;
}

const STALE_PART = /^\d+\.P(\d+)Q\d+R[0-9a-f]+\.smd-part$/;

/**
 * Removes the `.smd-part` files a killed client left in `tmpDir` (those of a
 * process that no longer runs). They were never renamed into place, so they
 * hold nothing the mailbox needs. Returns how many were removed.
 */
export function removeStaleTemps(tmpDir: ByteString): number {
  let names: string[];
  try { names = readdirSync(fsPath(tmpDir), { encoding: 'latin1' }); } catch { return 0; }
  let removed = 0;
  for (const n of names) {
    const m = STALE_PART.exec(n);
    if (m === null) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || isProcessRunning(pid)) continue;
    try { unlinkSync(fsPath(`${tmpDir}/${n}`)); removed += 1; } catch { /* gone */ }
  }
  return removed;
}

const BUF = Buffer.allocUnsafe(1 << 16);
/** A message file that is a symbolic link is never read through; a FIFO must not block. */
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;

/** A new temp file in `tmpDir`, hashed as it is written. */
export class TempFile {
  readonly path: ByteString;
  private fd: number;
  private readonly hasher = new MessageHasher();
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  size = 0;

  /** Creates a fresh temp file in `tmpDir` (a new Maildir-style name on a collision). */
  constructor(tmpDir: ByteString);
  /** Adopts a file already created (TempFile.open). */
  constructor(path: ByteString, fd: number);
  constructor(where: ByteString, opened?: number) {
    let path = opened === undefined ? tempName(where) : where;
    let fd = opened ?? -1;
    for (let i = 0; fd < 0; i++) {
      try {
        fd = openSync(fsPath(path), CREATE_FLAGS, 0o600);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || i >= 10) throw e;
        path = tempName(where);
      }
    }
    this.path = path;
    this.fd = fd;
    live.add(path);
  }

  /** Like the constructor, with the file created on the thread pool. */
  static async open(tmpDir: ByteString): Promise<TempFile> {
    for (let i = 0; ; i++) {
      const path = tempName(tmpDir);
      try {
        const fd = await new Promise<number>((res, rej) => open(fsPath(path), CREATE_FLAGS, 0o600, (e, f) => (e ? rej(e) : res(f))));
        return new TempFile(path, fd);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || i >= 10) throw e;
      }
    }
  }

  /** Appends bytes (copied into a small buffer; written in 256 KiB batches). */
  write(piece: Uint8Array): void {
    if (piece.length === 0) return;
    this.hasher.update(piece);
    this.size += piece.length;
    this.pending.push(Buffer.from(piece));
    this.pendingBytes += piece.length;
    if (this.pendingBytes >= 256 * 1024) this.flush();
  }

  private flush(): void {
    if (this.pendingBytes === 0) return;
    const b = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    for (let off = 0; off < b.length;) off += writeSync(this.fd, b, off, b.length - off);
  }

  /** Flushes and closes without an fsync (a file-system sync covers it: durable.ts); the hashes of what was written. */
  close(): MessageHashes | null {
    this.flush();
    closeSync(this.fd);
    this.fd = -1;
    return this.hasher.digest();
  }

  /** Flushes, fsyncs, closes; the hashes of what was written (null: not a message). */
  finish(): MessageHashes | null {
    this.flush();
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
    return this.hasher.digest();
  }

  /**
   * Like finish(), but the fsync runs on the libuv thread pool, so the
   * caller can receive the next message meanwhile (several fsyncs in flight
   * also share journal commits).
   */
  async finishAsync(): Promise<MessageHashes | null> {
    this.flush();
    const fd = this.fd;
    await new Promise<void>((res, rej) => fsync(fd, (e) => (e ? rej(e) : res())));
    if (this.fd === fd) { closeSync(fd); this.fd = -1; }
    return this.hasher.digest();
  }

  /** Closes (if needed) and removes the temp file. */
  discard(): void {
    if (this.fd >= 0) { try { closeSync(this.fd); } catch { /* closed */ } this.fd = -1; }
    try { unlinkSync(fsPath(this.path)); } catch { /* gone */ }
    live.delete(this.path);
  }

  /** The file was placed (renamed/linked away): forget it. */
  placed(): void {
    live.delete(this.path);
  }
}

/**
 * Temp files for received messages, each created while the one before it
 * is being received: creating an inode costs 0.15-0.45 ms on ext4 here (more
 * while a sync commits), which the thread reading the replies then does not
 * wait for. One spare per temp directory, for the last few directories.
 */
export class TempFileSource {
  private readonly spares = new Map<ByteString, Promise<TempFile>>();
  private static readonly DIRS = 4;

  async take(tmpDir: ByteString): Promise<TempFile> {
    const spare = this.spares.get(tmpDir);
    this.spares.delete(tmpDir);
    let tmp: TempFile;
    try {
      tmp = spare === undefined ? new TempFile(tmpDir) : await spare;
    } finally {
      this.prepare(tmpDir);
    }
    return tmp;
  }

  private prepare(tmpDir: ByteString): void {
    if (this.spares.size >= TempFileSource.DIRS) {
      const [oldest, p] = this.spares.entries().next().value!;
      this.spares.delete(oldest);
      p.then((t) => t.discard(), () => undefined);
    }
    const p = TempFile.open(tmpDir);
    p.catch(() => undefined); // the taker sees the failure
    this.spares.set(tmpDir, p);
  }

  /** Removes the spares not taken (the end of a session, whatever its outcome). */
  async close(): Promise<void> {
    const all = [...this.spares.values()];
    this.spares.clear();
    for (const p of all) { try { (await p).discard(); } catch { /* never created */ } }
  }
}

export type PlaceResult = 'placed' | 'exists';

/**
 * Moves a finished temp file to `target` without ever clobbering:
 * renameat2(RENAME_NOREPLACE), or link(2) + unlink where it is missing; both
 * fail with EEXIST if anything appeared there. File systems without hard
 * links fall back to check-then-rename.
 */
export function placeNoClobber(tmp: TempFile, target: ByteString): PlaceResult {
  switch (renameNoReplace(tmp.path, target)) {
    case 'renamed': tmp.placed(); return 'placed';
    case 'exists': return 'exists';
    case 'unsupported': break;
  }
  try {
    linkSync(fsPath(tmp.path), fsPath(target));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return 'exists';
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EMLINK' && code !== 'EXDEV') throw e;
    if (exists(target)) return 'exists';
    renameSync(fsPath(tmp.path), fsPath(target));
    tmp.placed();
    return 'placed';
  }
  unlinkSync(fsPath(tmp.path));
  tmp.placed();
  return 'placed';
}

/** Renames a finished temp file over `target` (whatever is there). */
export function placeOver(tmp: TempFile, target: ByteString): void {
  renameSync(fsPath(tmp.path), fsPath(target));
  tmp.placed();
}

export function exists(p: ByteString): boolean {
  try { lstatSync(fsPath(p)); return true; } catch { return false; }
}

/** Hashes of a local file and the length of its header, or null if it is not a message. */
export function hashWithSplit(path: ByteString): { hashes: MessageHashes; headerLength: number } | null {
  const fd = openSync(fsPath(path), READ_FLAGS);
  try {
    const h = new MessageHasher();
    for (;;) {
      const n = readSync(fd, BUF, 0, BUF.length, null);
      if (n <= 0) break;
      h.update(BUF.subarray(0, n));
    }
    const hashes = h.digest();
    return hashes === null ? null : { hashes, headerLength: h.headerLength };
  } finally {
    closeSync(fd);
  }
}

/** Streams bytes [from, end) of a local file into `sink`. */
export function copyRange(path: ByteString, from: number, sink: (piece: Buffer) => void): void {
  const fd = openSync(fsPath(path), READ_FLAGS);
  try {
    let pos = from;
    for (;;) {
      const n = readSync(fd, BUF, 0, BUF.length, pos);
      if (n <= 0) break;
      pos += n;
      sink(BUF.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
}

/** Directories whose entries changed; fsync'ed once before COMMIT. */
export class DirtyDirs {
  private readonly dirs = new Set<ByteString>();
  add(d: ByteString): void { this.dirs.add(d); }
  syncAll(): void {
    for (const d of this.dirs) fsyncDir(fsPath(d));
    this.dirs.clear();
  }
}
