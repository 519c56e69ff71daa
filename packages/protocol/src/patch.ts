/**
 * The db-file patch sent after COMMIT (protocol.md section 9): its format
 * and how it is applied; patch-create.ts builds it.
 *
 * Upstream sends an xdelta3 (VCDIFF) patch. We send our own format: db-files
 * are text, one message per line, and between two syncs only a few lines
 * change. The patch is a header naming the SHA-1 of the file it applies to
 * and of the result, then operations on whole lines of the old file:
 * keep / delete / insert, each counted in BYTES (`=N`, `-N`, `+N` + bytes),
 * not in lines: counting lines would mean scanning the whole 140 MB of a
 * 1M-line db-file on both sides (0.25 s per file here) just to describe a
 * one-line change, and byte counts let the applier copy ranges without
 * splitting the old file. Op boundaries must fall on line boundaries (the
 * applier checks), so the ops are still "keep/delete/insert these lines".
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { constants as bufferConstants } from 'node:buffer';
import { type InflateRaw, createInflateRaw, inflateRawSync } from 'node:zlib';
import { AtomicFileWriter } from '@smd/maildir';

/** First line of every (non-empty) patch. */
export const PATCH_MAGIC = 'smd-dbpatch 1';

/** The patch sent in dry-run: zero bytes. It means "no patch", and applies to nothing. */
export const EMPTY_PATCH: Buffer = Buffer.alloc(0);

/** A malformed patch, or one that does not apply to the given file. */
export class PatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PatchError';
  }
}

/** True for the dry-run patch (nothing to apply). */
export function isEmptyPatch(patch: Uint8Array): boolean {
  return patch.length === 0;
}

// ---------------------------------------------------------------- applying
//
// A patch is applied as a stream: the header is parsed from its first bytes,
// the ops are inflated (if deflated) and run piece by piece, the old file is
// read and the result written in blocks. Memory stays the same whatever the
// size of the patch, of the old file or of the result. Every op is checked as
// it comes (inside the old file, on a line boundary, within the announced
// size), so a forged or bomb patch is refused after a few bytes of it.

/**
 * Largest db-file a patch may produce (2 GiB - 1): what one Node Buffer holds
 * (a db-file is still read whole in places, e.g. by readDbFile).
 */
export const MAX_DB_FILE = 2 ** 31 - 1;

/** zlib's documented maximum inflation ratio of DEFLATE. */
const DEFLATE_MAX_RATIO = 1032;

/** Each header line is at most this long (without its LF). */
const MAX_HEADER_LINE = 200;

/** Longest op line (`+` and 16 digits), without its LF. */
const MAX_OP_LINE = 20;

/** Blocks in which the old file is read and the result written. */
const BLOCK = 1 << 20;

/**
 * Most bytes the ops section of any valid patch from `oldSize` to `size`
 * bytes holds (inflated): the inserted bytes (at most `size`) plus the op
 * lines. An op line of d digits takes d + 2 bytes and covers at least
 * 10^(d-1) bytes of the old file (`=`, `-`) or of the result (`+`), so op
 * lines take at most 3 bytes per byte of both. An ops section that inflates
 * beyond this is refused as soon as it does.
 */
export function maxOpsBytes(oldSize: number, size: number): number {
  return 4 * size + 3 * oldSize;
}

export interface DbPatchOptions {
  /**
   * The largest result the caller can expect (default and at most
   * MAX_DB_FILE). A client can bound it by its db-file plus what the server
   * sent (every new line comes from a diff line). A patch announcing more
   * is refused before anything is written, which bounds the disk a forged
   * patch can fill.
   */
  readonly maxSize?: number;
}

/** The header of a db-file patch. */
export interface DbPatchHeader {
  /** SHA-1 of the db-file it applies to. */
  readonly from: string;
  /** SHA-1 and size of the result. */
  readonly to: string;
  readonly size: number;
  readonly enc: 'plain' | 'deflate';
  /** Length of the ops section as sent (deflated or not). */
  readonly opsLength: number;
  /** Length of the header lines. */
  readonly headerLength: number;
}

/**
 * The header at the start of `buf`, or null if `buf` does not hold it whole
 * yet (and could). Throws PatchError.
 */
function parseHeader(buf: Buffer): DbPatchHeader | null {
  if (buf.length === 0) return null;
  if (buf[0] === 0xd6 && (buf.length < 2 || buf[1] === 0xc3) && (buf.length < 3 || buf[2] === 0xc4)) {
    if (buf.length < 3) return null;
    throw new PatchError('this is an xdelta3 (VCDIFF) patch, as upstream syncmaildir sends, not an smd db-file patch');
  }
  const lines: string[] = [];
  let pos = 0;
  const names = ['magic', 'from', 'to', 'ops'];
  while (lines.length < 4) {
    const nl = buf.indexOf(10, pos);
    const end = nl < 0 ? buf.length : nl;
    if (end - pos > MAX_HEADER_LINE || (nl < 0 && lines.length === 0 && !PATCH_MAGIC.startsWith(buf.toString('latin1', 0, Math.min(buf.length, PATCH_MAGIC.length))))) {
      if (lines.length === 0) {
        throw new PatchError(`not an smd db-file patch (it starts with ${JSON.stringify(buf.toString('latin1', 0, Math.min(end, 40)))}, expected "${PATCH_MAGIC}")`);
      }
      throw new PatchError(`malformed db-file patch: the ${names[lines.length]} line is longer than ${MAX_HEADER_LINE} bytes`);
    }
    if (nl < 0) return null;
    lines.push(buf.toString('latin1', pos, nl));
    pos = nl + 1;
    // Said as soon as it is known: a peer that sends anything else may send nothing more.
    if (lines.length === 1 && lines[0] !== PATCH_MAGIC) {
      throw new PatchError(`not an smd db-file patch (first line ${JSON.stringify(lines[0].slice(0, 40))}, expected "${PATCH_MAGIC}")`);
    }
  }
  const [, from, to, ops] = lines;
  const mf = /^from ([0-9a-f]{40})$/.exec(from);
  if (!mf) throw new PatchError('malformed db-file patch: bad "from" line');
  const mt = /^to ([0-9a-f]{40}) (0|[1-9][0-9]{0,15})$/.exec(to);
  if (!mt) throw new PatchError('malformed db-file patch: bad "to" line');
  const mo = /^ops (plain|deflate) (0|[1-9][0-9]{0,15})$/.exec(ops);
  if (!mo) throw new PatchError('malformed db-file patch: bad "ops" line');
  const size = Number(mt[2]);
  if (size > MAX_DB_FILE) {
    throw new PatchError(`the db-file patch announces a db-file of ${size} bytes, more than the ${MAX_DB_FILE} a db-file may have: refused`);
  }
  return { from: mf[1], to: mt[1], size, enc: mo[1] as 'plain' | 'deflate', opsLength: Number(mo[2]), headerLength: pos };
}

/** The header of a whole patch in memory (its ops are not looked at). Throws PatchError. */
export function parseDbPatch(patch: Buffer): DbPatchHeader {
  if (patch.length === 0) throw emptyPatchError();
  const h = parseHeader(patch);
  if (h === null) throw new PatchError('malformed db-file patch: the header is incomplete');
  return h;
}

const emptyPatchError = (): PatchError => new PatchError('empty db-file patch (what a dry-run server sends): there is nothing to apply');

/** Checks a header against the old file, before any op runs. */
function checkHeader(h: DbPatchHeader, oldSize: number, maxSize: number): void {
  if (h.size > maxSize) {
    throw new PatchError(`the db-file patch announces a db-file of ${h.size} bytes, more than the ${maxSize} expected: refused`);
  }
  // Inserted bytes come from the ops section, which inflates at most DEFLATE_MAX_RATIO times.
  const insertable = h.enc === 'plain' ? h.opsLength : DEFLATE_MAX_RATIO * h.opsLength;
  if (h.size > oldSize + insertable) {
    throw new PatchError(`malformed db-file patch: a ${h.opsLength}-byte ${h.enc} ops section cannot turn ${oldSize} bytes into the announced ${h.size}`);
  }
  if (h.enc === 'plain' && h.opsLength > maxOpsBytes(oldSize, h.size)) {
    throw new PatchError(`malformed db-file patch: its ${h.opsLength}-byte ops section is longer than any patch from ${oldSize} to ${h.size} bytes`);
  }
}

/** The old db-file, read in order as the ops advance (and hashed). */
interface OldSource {
  readonly size: number;
  /** Bytes consumed so far. */
  readonly at: number;
  /** Consumes the next n bytes (passing them to `copy` if given); returns the last byte. */
  take(n: number, copy: ((b: Buffer) => void) | null): number;
  /** Consumes the rest and returns the SHA-1 of the whole old file. */
  sha1(): string;
}

class OldBuffer implements OldSource {
  at = 0;
  private readonly hash = createHash('sha1');
  constructor(private readonly buf: Buffer) {}
  get size(): number { return this.buf.length; }

  take(n: number, copy: ((b: Buffer) => void) | null): number {
    const b = this.buf.subarray(this.at, this.at + n);
    this.hash.update(b);
    copy?.(b);
    this.at += n;
    return b[n - 1];
  }

  private digest: string | null = null;
  sha1(): string {
    if (this.at < this.buf.length) this.take(this.buf.length - this.at, null);
    return (this.digest ??= this.hash.digest('hex'));
  }
}

class OldFile implements OldSource {
  at = 0;
  readonly size: number;
  private readonly hash = createHash('sha1');
  private readonly block = Buffer.allocUnsafe(BLOCK);

  constructor(private readonly fd: number, private readonly path: string) {
    this.size = fstatSync(fd).size;
  }

  take(n: number, copy: ((b: Buffer) => void) | null): number {
    let last = -1;
    for (let left = n; left > 0;) {
      const want = Math.min(left, BLOCK);
      const got = readSync(this.fd, this.block, 0, want, this.at);
      if (got <= 0) throw new PatchError(`the db-file ${this.path} shrank while it was being patched`);
      const b = this.block.subarray(0, got);
      this.hash.update(b);
      copy?.(b);
      last = b[got - 1];
      this.at += got;
      left -= got;
    }
    return last;
  }

  private digest: string | null = null;
  sha1(): string {
    if (this.at < this.size) this.take(this.size - this.at, null);
    return (this.digest ??= this.hash.digest('hex'));
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Where the result goes: counted and hashed; never more than the announced size. */
interface Sink {
  write(b: Uint8Array): void;
}

class MemorySink implements Sink {
  readonly parts: Buffer[] = [];
  write(b: Uint8Array): void { this.parts.push(Buffer.from(b)); }
}

/**
 * Runs the ops of a patch as their bytes arrive (push parser): `feed` any
 * pieces, then `finish`. Throws PatchError at the first bad op.
 */
class OpsRunner {
  /** A partial op line (latin1). */
  private line = '';
  /** Bytes of a `+N` insert still to come. */
  private insertLeft = 0;
  private opsBytes = 0;
  /** maxOpsBytes of this patch. */
  readonly limit: number;
  readonly hash = createHash('sha1');
  bytes = 0;

  constructor(private readonly old: OldSource, private readonly out: Sink, private readonly size: number) {
    this.limit = maxOpsBytes(old.size, size);
  }

  private bad(why: string): never {
    throw new PatchError(`malformed db-file patch: ${why}`);
  }

  private emit = (b: Uint8Array): void => {
    this.hash.update(b);
    this.out.write(b);
    this.bytes += b.length;
  };

  feed(b: Buffer): void {
    this.opsBytes += b.length;
    if (this.opsBytes > this.limit) this.overLimit();
    let p = 0;
    while (p < b.length) {
      if (this.insertLeft > 0) {
        const take = Math.min(this.insertLeft, b.length - p);
        this.emit(b.subarray(p, p + take));
        this.insertLeft -= take;
        p += take;
        continue;
      }
      const nl = b.indexOf(10, p);
      const end = nl < 0 ? b.length : nl;
      if (this.line.length + end - p > MAX_OP_LINE) this.bad('unterminated operation');
      this.line += b.toString('latin1', p, end);
      if (nl < 0) return;
      p = nl + 1;
      const op = this.line;
      this.line = '';
      this.run(op);
    }
  }

  /** Throws the error of an ops section longer than `limit`. */
  overLimit(): never {
    throw new PatchError(`the ops of the db-file patch inflate beyond ${this.limit} bytes, the most a patch from ${this.old.size} ` +
      `to ${this.size} bytes can hold: refused (a forged patch, or a patch bomb)`);
  }

  private run(op: string): void {
    const m = /^([=+-])([1-9][0-9]{0,15})$/.exec(op);
    if (!m) this.bad(`bad operation ${JSON.stringify(op)}`);
    const n = Number(m[2]);
    const kind = m[1];
    if (kind !== '-' && this.bytes + n > this.size) this.bad(`operation ${op} makes the result bigger than the announced ${this.size} bytes`);
    if (kind === '+') { this.insertLeft = n; return; }
    const old = this.old;
    if (old.at + n > old.size) this.bad(`operation ${op} goes past the end of the old db-file (${old.size} bytes)`);
    const last = old.take(n, kind === '=' ? this.emit : null);
    if (old.at < old.size && last !== 10) this.bad(`operation ${op} does not end on a line boundary of the old db-file`);
  }

  finish(): void {
    if (this.insertLeft > 0) this.bad('inserted bytes run past the end of the patch');
    if (this.line !== '') this.bad('unterminated operation');
    if (this.old.at !== this.old.size) this.bad(`the operations cover ${this.old.at} of the ${this.old.size} bytes of the old db-file`);
  }
}

/**
 * Consumes a patch piece by piece: header, then ops (inflated on the way
 * when deflated, never beyond the ops bound). `inflate` turns the deflated
 * ops pieces into ops pieces; it is the only thing that differs between the
 * in-memory and the streaming appliers.
 */
class PatchConsumer {
  private head: Buffer = Buffer.alloc(0);
  header: DbPatchHeader | null = null;
  runner: OpsRunner | null = null;
  private opsSeen = 0;
  patchBytes = 0;

  constructor(private readonly old: OldSource, private readonly out: Sink, private readonly maxSize = MAX_DB_FILE) {}

  /** The ops bytes of `piece` (as sent) after the header, or null while the header is incomplete. */
  take(piece: Buffer): Buffer | null {
    this.patchBytes += piece.length;
    let ops = piece;
    if (this.header === null) {
      this.head = this.head.length === 0 ? Buffer.from(piece) : Buffer.concat([this.head, piece]);
      const h = parseHeader(this.head);
      if (h === null) return null;
      checkHeader(h, this.old.size, this.maxSize);
      this.header = h;
      this.runner = new OpsRunner(this.old, this.out, h.size);
      ops = this.head.subarray(h.headerLength);
      this.head = Buffer.alloc(0);
    }
    this.opsSeen += ops.length;
    if (this.opsSeen > this.header.opsLength) {
      throw new PatchError(`malformed db-file patch: the ops section is longer than the ${this.header.opsLength} bytes its header says`);
    }
    return ops;
  }

  /** At the end of the patch: the header is whole and the ops section as long as announced. */
  endOfPatch(): DbPatchHeader {
    if (this.header === null) {
      if (this.patchBytes === 0) throw emptyPatchError();
      throw new PatchError('malformed db-file patch: the header is incomplete');
    }
    if (this.opsSeen !== this.header.opsLength) {
      throw new PatchError(`malformed db-file patch: ops section is ${this.opsSeen} bytes, header says ${this.header.opsLength}`);
    }
    return this.header;
  }

  /** Last checks: ops complete, result as announced, old file as the patch expects. */
  result(): { sha1: string; bytes: number } {
    const h = this.header!;
    const r = this.runner!;
    r.finish();
    this.checkOld();
    const sha = r.hash.digest('hex');
    if (r.bytes !== h.size || sha !== h.to) {
      throw new PatchError(`the patched db-file has SHA-1 ${sha} (${r.bytes} bytes), the patch promised ${h.to} (${h.size} bytes)`);
    }
    return { sha1: sha, bytes: r.bytes };
  }

  /**
   * A patch made for another db-file fails somewhere, often in its ops:
   * saying so is more useful than naming the op, so the old file's SHA-1 is
   * checked first whenever the header was read.
   */
  explain(e: unknown): unknown {
    if (!(e instanceof PatchError) || this.header === null) return e;
    try { this.checkOld(); } catch (mismatch) { return mismatch; }
    return e;
  }

  private checkOld(): void {
    const oldSha = this.old.sha1();
    if (oldSha !== this.header!.from) {
      throw new PatchError(`the db-file patch applies to a db-file with SHA-1 ${this.header!.from}, ours has SHA-1 ${oldSha}`);
    }
  }
}

/**
 * Runs a whole patch in memory. Its ops are inflated whole (inflateRawSync),
 * bounded by the ops limit of the announced size, itself bounded by the
 * caller's maxSize: memory grows with what the header announces, so a
 * client receiving from a peer uses applyDbPatchStream.
 */
function runBuffer(c: PatchConsumer, patch: Buffer): { sha1: string; bytes: number } {
  try {
    const ops = c.take(patch) ?? Buffer.alloc(0);
    const h = c.endOfPatch();
    const runner = c.runner!;
    if (h.enc === 'plain') runner.feed(ops);
    else {
      let inflated: Buffer;
      try { inflated = inflateRawSync(ops, { maxOutputLength: Math.max(1, Math.min(runner.limit, bufferConstants.MAX_LENGTH)) }); } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') runner.overLimit();
        throw new PatchError(`malformed db-file patch: cannot inflate the ops (${(e as Error).message})`);
      }
      runner.feed(inflated);
    }
    return c.result();
  } catch (e) {
    throw c.explain(e);
  }
}

/** Applies a patch to buffers in memory (the same checks as applyDbPatch). */
export function applyDbPatchToBuffer(old: Buffer, patch: Buffer, opts: DbPatchOptions = {}): Buffer {
  const sink = new MemorySink();
  runBuffer(new PatchConsumer(new OldBuffer(old), sink, maxSizeOf(opts)), patch);
  return Buffer.concat(sink.parts);
}

/**
 * The old db-file and the writer of the result (an AtomicFileWriter of
 * `outPath`, which also removes the temporary files a killed run left).
 */
class PatchFiles {
  readonly old: OldFile;
  readonly out: AtomicFileWriter;
  private committed = false;

  constructor(oldDbPath: string, outPath: string) {
    let oldFd: number;
    try { oldFd = openSync(oldDbPath, 'r'); } catch (e) {
      throw new PatchError(`cannot read the db-file ${oldDbPath} to patch: ${(e as Error).message}`);
    }
    try {
      this.old = new OldFile(oldFd, oldDbPath);
      this.out = new AtomicFileWriter(outPath, 0o600);
    } catch (e) {
      closeSync(oldFd);
      throw e;
    }
  }

  /** fsync, rename into place, fsync the directory. */
  commit(): void {
    this.out.commit();
    this.committed = true;
  }

  /** Always, last: closes everything; an uncommitted result is removed. */
  close(): void {
    this.old.close();
    if (!this.committed) this.out.abort();
  }
}

/**
 * Applies `patch` (whole, in memory) to the file `oldDbPath` and writes the
 * result to `outPath` (temporary file, fsync, rename, directory fsync). The
 * SHA-1 of the old file and of the result are checked against the patch.
 * Throws PatchError. applyDbPatchStream does the same without holding the patch.
 */
export function applyDbPatch(oldDbPath: string, patch: Buffer, outPath: string, opts: DbPatchOptions = {}): { sha1: string; bytes: number } {
  const f = new PatchFiles(oldDbPath, outPath);
  try {
    const r = runBuffer(new PatchConsumer(f.old, f.out, maxSizeOf(opts)), patch);
    f.commit();
    return r;
  } finally {
    f.close();
  }
}


const maxSizeOf = (o: DbPatchOptions): number => Math.min(MAX_DB_FILE, o.maxSize ?? MAX_DB_FILE);

/**
 * Applies a patch that arrives in pieces (e.g. `WireReader.readBytes(n)` of
 * the chunk that answers COMMIT) to the file `oldDbPath`, writing the result
 * to `outPath` like applyDbPatch. Memory does not depend on the size of the
 * patch: pieces are consumed as they come (each before the next is asked
 * for, so they may alias the reader's buffer), deflated ops are inflated
 * through a stream, the old file is read and the result written in blocks.
 * The iterable is consumed to its end unless the patch is refused first.
 * Throws PatchError for a bad patch; errors of the iterable itself (e.g. a
 * ProtocolError when the connection drops) are passed on unchanged.
 */
export async function applyDbPatchStream(oldDbPath: string, patch: AsyncIterable<Uint8Array>, outPath: string,
  opts: DbPatchOptions = {}): Promise<{ sha1: string; bytes: number; patchBytes: number }> {
  const f = new PatchFiles(oldDbPath, outPath);
  try {
    const c = new PatchConsumer(f.old, f.out, maxSizeOf(opts));
    let inflater: BoundedInflater | null = null;
    try {
      for await (const piece of patch) {
        const ops = c.take(Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.length));
        if (ops === null || ops.length === 0) continue;
        if (c.header!.enc === 'plain') { c.runner!.feed(ops); continue; }
        inflater ??= new BoundedInflater(c.runner!);
        await inflater.write(ops);
      }
      const h = c.endOfPatch();
      if (h.enc === 'deflate') await (inflater ?? new BoundedInflater(c.runner!)).end();
      const r = c.result();
      f.commit();
      return { ...r, patchBytes: c.patchBytes };
    } catch (e) {
      inflater?.destroy();
      throw c.explain(e);
    }
  } finally {
    f.close();
  }
}

/**
 * A raw-DEFLATE inflater feeding an OpsRunner as output comes out; `write`
 * resolves once zlib took the piece (it copies it), so the caller may reuse
 * the piece's memory. The runner refuses output beyond its ops limit.
 */
class BoundedInflater {
  private readonly z: InflateRaw = createInflateRaw({ chunkSize: 64 * 1024 });
  private failure: unknown = null;
  private readonly closed: Promise<void>;

  constructor(runner: OpsRunner) {
    this.z.on('data', (out: Buffer) => {
      if (this.failure !== null) return;
      try { runner.feed(out); } catch (e) { this.failure = e; this.z.destroy(); }
    });
    this.closed = new Promise((resolve) => {
      this.z.on('error', (e: Error) => {
        this.failure ??= new PatchError(`malformed db-file patch: cannot inflate the ops (${e.message})`);
        resolve();
      });
      this.z.on('close', () => resolve());
    });
  }

  private check(): void {
    if (this.failure !== null) throw this.failure;
  }

  async write(piece: Buffer): Promise<void> {
    this.check();
    const taken = new Promise<void>((resolve) => { this.z.write(piece, () => resolve()); });
    await Promise.race([taken, this.closed]);
    this.check();
  }

  async end(): Promise<void> {
    this.check();
    this.z.end();
    await this.closed;
    this.check();
  }

  destroy(): void {
    this.z.destroy();
  }
}

