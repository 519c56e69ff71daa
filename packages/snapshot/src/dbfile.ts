import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeFileSync, constants } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import { type ByteString, AtomicFileWriter, fsyncDir, sha1, writeFileAtomic } from '@smd/maildir';
import { nativeDbLineDecoder } from '@smd/native';

/** A db-file that cannot be used (malformed line, bad .mtime, unreadable). */
export class DbFileError extends Error {
  constructor(message: string, readonly file: string, readonly line?: number) {
    super(message);
    this.name = 'DbFileError';
  }
}

/**
 * The entries of a db-file, in file order, as parallel arrays (a
 * 1,000,000-line db-file must not cost an object per line).
 */
export interface DbEntries {
  readonly names: ByteString[];
  readonly headers: string[];
  readonly bodies: string[];
}

export interface LoadedDb extends DbEntries {
  /** SHA-1 of the whole file (the protocol's db fingerprint; validates the stat cache). */
  readonly sha1: string;
}

const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) { HEX[0x61 + i] = 10 + i; HEX[0x41 + i] = 10 + i; }

function isHex40(buf: Buffer, start: number): boolean {
  for (let i = start; i < start + 40; i++) if (HEX[buf[i]] < 0) return false;
  return true;
}

/**
 * Takes as many whole lines as it can from the start of buf[start, end)
 * (whose first byte is at `offset` in the file); returns how many, and where
 * the first line it did not take starts.
 */
export type LineRunReader = (buf: Buffer, start: number, end: number, offset: number) => { count: number; stop: number };

/**
 * Streams a file line by line with one buffer (lines never become one giant
 * string). `onLine(buf, start, end, lineNo, offset)`: bytes [start,end)
 * without '\n', found at `offset` in the file. With `onRun`, runs of lines
 * go to it first; `onLine` gets the lines it leaves. Returns the SHA-1 of the whole file.
 */
export function forEachLine(
  file: string, onLine: (buf: Buffer, start: number, end: number, lineNo: number, offset: number) => void, onRun?: LineRunReader,
): string {
  const fd = openSync(file, constants.O_RDONLY);
  const hash = createHash('sha1');
  let buf = Buffer.allocUnsafe(1 << 20);
  let have = 0;
  let lineNo = 0;
  /** File offset of buf[0]. */
  let base = 0;
  try {
    for (;;) {
      if (have === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
      }
      const n = readSync(fd, buf, have, buf.length - have, null);
      hash.update(buf.subarray(have, have + n));
      const end = have + n;
      let start = 0;
      for (;;) {
        if (onRun !== undefined) {
          // Stryker disable next-line ArithmeticOperator: lineStart only matters for a copyable file, where every run starts a buffer (start = 0): a run after a line JavaScript read means a line that is not canonical
          const r = onRun(buf, start, end, base + start);
          lineNo += r.count;
          start = r.stop;
        }
        const nl = buf.indexOf(0x0a, start);
        if (nl < 0 || nl >= end) break;
        onLine(buf, start, nl, ++lineNo, base + start);
        start = nl + 1;
      }
      if (n <= 0) {
        // Stryker disable next-line ArithmeticOperator: start is 0 here: what is left of the buffer is one incomplete line, moved to its start
        if (start < end) onLine(buf, start, end, ++lineNo, base + start);
        break;
      }
      buf.copy(buf, 0, start, end);
      have = end - start;
      base += start;
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * Reads a db-file (upstream 2.7): lines `<hsha> <bsha> <name>`, the name raw,
 * everything after the second space up to '\n'. Returns null if it does not
 * exist. Throws DbFileError for a malformed line.
 */
export function readDbFile(file: string): LoadedDb | null {
  if (!existsSync(file)) return null;
  const names: ByteString[] = [];
  const headers: string[] = [];
  const bodies: string[] = [];
  let digest: string;
  try {
    digest = forEachLine(file, (buf, s, e, lineNo) => {
      const len = e - s;
      if (len < 83 || buf[s + 40] !== 0x20 || buf[s + 81] !== 0x20 || !isHex40(buf, s) || !isHex40(buf, s + 41)) {
        const fields = buf.toString('latin1', s, e).split(/[ \t]+/).filter((x) => x !== '').length;
        const why = fields < 3 ? `${fields} != 3 fields` : 'invalid SHA-1';
        throw new DbFileError(`${file}: malformed line ${lineNo}: ${why}. Please remove this db file.`, file, lineNo);
      }
      headers.push(buf.toString('latin1', s, s + 40).toLowerCase());
      bodies.push(buf.toString('latin1', s + 41, s + 81).toLowerCase());
      names.push(buf.toString('latin1', s + 82, e));
    });
  } catch (e) {
    if (e instanceof DbFileError) throw e;
    throw new DbFileError(`${file}: cannot read: ${(e as Error).message}`, file);
  }
  return { names, headers, bodies, sha1: digest };
}

/** A db-file with binary hashes (40 bytes per entry: header SHA-1, body SHA-1), see DiffEngine. */
export interface LoadedBinaryDb {
  readonly file: string;
  readonly names: ByteString[];
  readonly hashes: Buffer;
  /** SHA-1 of the whole file. */
  readonly sha1: string;
  /** Where line i starts in the file; entry n (one past the last line) is the file size. */
  readonly lineStart: Float64Array;
  /** Every line reads as we would write it (lower-case hex, '\n' at the end): unchanged lines can be copied verbatim. */
  readonly copyable: boolean;
  /** The file that was read (see DbLineCopier). */
  readonly identity: { readonly ino: number; readonly size: number; readonly mtimeMs: number };
}

/** Lower-case hex digits → value, anything else → -1 (upper case is legal but not canonical). */
const HEXL = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) HEXL['0123456789abcdef'.charCodeAt(i)] = i;

/**
 * readDbFile for the scan: the same checks and errors, but the hashes go to
 * one Buffer as binaries (no two 40-char strings per line), with the line
 * offsets for copying unchanged lines into the next db-file.
 */
export function readDbFileBinary(file: string): LoadedBinaryDb | null {
  let st: ReturnType<typeof statSync>;
  try { st = statSync(file); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new DbFileError(`${file}: cannot read: ${(e as Error).message}`, file);
  }
  // Names come in runs: each native decode gives one array, the JS path fills the others.
  const nameRuns: ByteString[][] = [];
  let names: ByteString[] = [];
  // Stryker disable next-line MethodExpression: a first guess of the capacity; reserve() grows it to any size
  let hashes = Buffer.allocUnsafe(40 * Math.max(1024, Math.ceil(st.size / 100)));
  // Stryker disable next-line MethodExpression: a first guess of the capacity; reserve() grows it to any size
  let lineStart = new Float64Array(Math.max(1024, Math.ceil(st.size / 100)));
  let n = 0;
  let canonical = true;
  let end = 0;
  let digest: string;
  /** Room for at least `lines` more entries (plus the end offset). */
  const reserve = (lines: number): void => {
    if (n + lines + 1 <= lineStart.length) return;
    // Stryker disable next-line MethodExpression,ArithmeticOperator: the new capacity: the doubling is always at least n + lines + 1 (lines <= size / 84 + 1, length >= size / 100), and an exact fit only grows more often
    const size = Math.max(lineStart.length * 2, n + lines + 1);
    const bigger = new Float64Array(size);
    bigger.set(lineStart.subarray(0, n));
    lineStart = bigger;
    const h = Buffer.allocUnsafe(size * 40);
    hashes.copy(h, 0, 0, n * 40);
    hashes = h;
  };
  // The native decoder takes the canonical lines; the JS below reads the others
  // (upper-case hex, errors) and all of them when the decoder is not built.
  const decode = nativeDbLineDecoder();
  const onRun: LineRunReader | undefined = decode === null ? undefined : (buf, from, to, offset) => {
    // A line is at least 84 bytes.
    reserve(Math.floor((to - from) / 84) + 1);
    // Stryker disable next-line ArithmeticOperator: lineStart only matters for a copyable file, where every run starts a buffer (from = 0)
    const r = decode(buf, from, to, hashes, lineStart, n, offset - from);
    if (r.count > 0) {
      if (names.length > 0) { nameRuns.push(names); names = []; }
      nameRuns.push(r.names);
      n += r.count;
      end = offset + (r.stop - from);
    }
    return r;
  };
  try {
    digest = forEachLine(file, (buf, s, e, lineNo, offset) => {
      reserve(1);
      let bad = e - s < 83 || buf[s + 40] !== 0x20 || buf[s + 81] !== 0x20 ? -1 : 0;
      let o = n * 40;
      if (bad === 0) {
        // Validate and decode in one pass: any non-(lower-case hex) digit makes `bad` negative.
        for (let i = s; i < s + 40; i += 2) {
          const hi = HEXL[buf[i]];
          const lo = HEXL[buf[i + 1]];
          bad |= hi | lo;
          hashes[o++] = (hi << 4) | lo;
        }
        for (let i = s + 41; i < s + 81; i += 2) {
          const hi = HEXL[buf[i]];
          const lo = HEXL[buf[i + 1]];
          bad |= hi | lo;
          hashes[o++] = (hi << 4) | lo;
        }
      }
      if (bad < 0) {
        if (e - s < 83 || buf[s + 40] !== 0x20 || buf[s + 81] !== 0x20 || !isHex40(buf, s) || !isHex40(buf, s + 41)) {
          const fields = buf.toString('latin1', s, e).split(/[ \t]+/).filter((x) => x !== '').length;
          const why = fields < 3 ? `${fields} != 3 fields` : 'invalid SHA-1';
          throw new DbFileError(`${file}: malformed line ${lineNo}: ${why}. Please remove this db file.`, file, lineNo);
        }
        // Upper-case hex: legal, decoded case-insensitively.
        canonical = false;
        o = n * 40;
        for (let i = s; i < s + 40; i += 2) hashes[o++] = (HEX[buf[i]] << 4) | HEX[buf[i + 1]];
        for (let i = s + 41; i < s + 81; i += 2) hashes[o++] = (HEX[buf[i]] << 4) | HEX[buf[i + 1]];
      }
      names.push(buf.toString('latin1', s + 82, e));
      lineStart[n++] = offset;
      end = offset + (e - s) + 1;
    }, onRun);
  } catch (e) {
    if (e instanceof DbFileError) throw e;
    throw new DbFileError(`${file}: cannot read: ${(e as Error).message}`, file);
  }
  lineStart[n] = end;
  // A last line without '\n' (end = size + 1) is not copied verbatim.
  if (end !== st.size) canonical = false;
  if (names.length > 0) nameRuns.push(names);
  return {
    file, names: joinRuns(nameRuns), hashes: hashes.subarray(0, n * 40), sha1: digest, lineStart: lineStart.subarray(0, n + 1), copyable: canonical,
    identity: { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs },
  };
}

/** The runs in order, as one array (concat is a single native copy; a push loop if there are very many). */
function joinRuns(runs: ByteString[][]): ByteString[] {
  if (runs.length === 1) return runs[0];
  if (runs.length <= 1024) return ([] as ByteString[]).concat(...runs);
  const all: ByteString[] = [];
  for (const run of runs) for (const name of run) all.push(name);
  return all;
}

/** Where the lines of a db-file read by readDbFileBinary are. */
export type DbLayout = Pick<LoadedBinaryDb, 'file' | 'lineStart' | 'copyable' | 'identity'>;

/**
 * Copies whole lines of a db-file read by readDbFileBinary, e.g. into its
 * successor. `open` returns null if the file is not copyable or is no longer
 * the one that was read (then the caller writes the lines itself).
 */
export class DbLineCopier {
  private readonly buf = Buffer.allocUnsafe(1 << 20);
  /** File offsets of buf[0] and one past its last valid byte. */
  private from = 0;
  private to = 0;

  private constructor(private readonly fd: number, private readonly db: DbLayout) {}

  static open(db: DbLayout): DbLineCopier | null {
    if (!db.copyable) return null;
    let fd: number;
    try { fd = openSync(db.file, constants.O_RDONLY); } catch { return null; }
    const st = fstatSync(fd);
    const id = db.identity;
    if (st.ino !== id.ino || st.size !== id.size || st.mtimeMs !== id.mtimeMs) { closeSync(fd); return null; }
    return new DbLineCopier(fd, db);
  }

  /**
   * Gives the bytes of lines [a, b) to `sink`, each piece valid only during
   * its call. Calls must go forward through the file: it is read once, in
   * 1 MiB blocks, however many runs of lines are copied.
   */
  copy(a: number, b: number, sink: (piece: Buffer) => void): void {
    let pos = this.db.lineStart[a];
    const end = this.db.lineStart[b];
    while (pos < end) {
      if (pos < this.from || pos >= this.to) {
        const n = readSync(this.fd, this.buf, 0, this.buf.length, pos);
        if (n <= 0) throw new Error(`${this.db.file}: shorter than when it was read`);
        this.from = pos;
        this.to = pos + n;
      }
      const stop = Math.min(end, this.to);
      sink(this.buf.subarray(pos - this.from, stop - this.from));
      pos = stop;
    }
  }

  close(): void { closeSync(this.fd); }
}

/** `F.mtime`: decimal Unix seconds. null if missing. */
export function readDbMtime(db: string): number | null {
  const f = `${db}.mtime`;
  let text: string;
  try {
    text = readFileSync(f, 'latin1');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new DbFileError(`${f}: cannot read: ${(e as Error).message}`, f);
  }
  const t = text.trim();
  if (!/^\d+$/.test(t)) throw new DbFileError(`${f}: malformed mtime file. Please remove this db file.`, f);
  return Number(t);
}

/** One line of a db-file. */
export function dbLine(header: string, body: string, name: ByteString): ByteString {
  return `${header} ${body} ${name}\n`;
}

/**
 * Writes `F.new` (and `F.mtime.new` with `mtime`) atomically and durably.
 * `lines` yields the ByteString lines (with '\n'). Returns the SHA-1 of F.new.
 */
export function writeDbNew(db: string, lines: Iterable<ByteString>, mtime: number): string {
  return writeDbNewFrom(db, (sink) => { for (const l of lines) sink(Buffer.from(l, 'latin1')); }, mtime);
}

/**
 * writeDbNew for a producer of raw pieces (e.g. DiffEngine.writeDb): `F.new`
 * gets the bytes given to `sink`, `F.mtime.new` the mtime. Returns the SHA-1 of F.new.
 */
export function writeDbNewFrom(db: string, produce: (sink: (piece: Uint8Array) => void) => void, mtime: number): string {
  const hash = createHash('sha1');
  // Hashed as the writer flushes (1 MiB at a time), not piece by piece.
  const w = new AtomicFileWriter(`${db}.new`, 0o666, (bytes) => hash.update(bytes));
  try {
    produce((piece) => w.write(piece));
    w.commit();
  } catch (e) {
    w.abort();
    throw e;
  }
  writeFileAtomic(`${db}.mtime.new`, String(mtime));
  return hash.digest('hex');
}

function renameIfExists(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/**
 * Makes the result of a scan the db: `F.new` → F, then `F.mtime.new` →
 * `F.mtime` (in this order: a crash in between leaves an older lastcheck,
 * which only costs re-reading), then the stat cache; fsyncs the directory.
 */
export function commitDbFile(db: string): void {
  renameSync(`${db}.new`, db);
  renameIfExists(`${db}.mtime.new`, `${db}.mtime`);
  renameIfExists(`${db}.stat-cache.new`, `${db}.stat-cache`);
  fsyncDir(dirname(db));
}

/** Removes what a scan wrote (`F.new`, `F.mtime.new`, the new stat cache), if present. */
export function discardDbNew(db: string): void {
  for (const f of [`${db}.new`, `${db}.mtime.new`, `${db}.stat-cache.new`]) {
    try { unlinkSync(f); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; }
  }
}

/** SHA-1 of a file read in blocks (not cut into lines: nothing looks at them), null if it does not exist. */
function sha1File(file: string): string | null {
  if (!existsSync(file)) return null;
  const fd = openSync(file, constants.O_RDONLY);
  try {
    const hash = createHash('sha1');
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n = readSync(fd, buf, 0, buf.length, null); n > 0; n = readSync(fd, buf, 0, buf.length, null)) hash.update(buf.subarray(0, n));
    return hash.digest('hex');
  } finally {
    closeSync(fd);
  }
}

/**
 * The protocol's fingerprints: SHA-1 of F (F is created empty if missing,
 * unless `create` is false: then the SHA-1 of nothing) and of F.new (null if
 * there is none).
 */
export function dbFingerprint(db: string, opts: { create?: boolean } = {}): { db: string; dbNew: string | null } {
  let d = sha1File(db);
  if (d === null) {
    if (opts.create !== false) writeFileSync(db, '', { flag: 'a' });
    d = sha1('');
  }
  return { db: d, dbNew: sha1File(`${db}.new`) };
}

/**
 * The db-file name both sides derive (upstream section 4):
 * `<home>/.smd/<endpoint>__<mailboxes>.db.txt`, endpoint with one trailing '/'
 * removed and '/' → '_'; mailboxes joined by '__', one trailing '/' removed,
 * '/' and '%' → '_'.
 */
export function dbFileName(home: string, endpoint: string, mailboxes: string[]): string {
  const ep = endpoint.replace(/\/$/, '').replace(/\//g, '_');
  const mb = mailboxes.join('__').replace(/\/$/, '').replace(/[/%]/g, '_');
  return `${home}/.smd/${ep}__${mb}.db.txt`;
}
