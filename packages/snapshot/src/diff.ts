import type { ByteString } from '@smd/maildir';
import type { DiffCommand } from './command.js';
import type { DbEntries } from './dbfile.js';

/** State of an entry during one diff run (upstream's NOT_SEEN/SEEN/CHANGED/MOVED). */
export const NOT_SEEN = 0;
export const SEEN = 1;
export const CHANGED = 2;
export const MOVED = 3;

export interface DiffOptions {
  /** `-n`: vanished messages are not DELETEd. */
  readonly noDelete?: boolean;
  /** `--no-move`: a rename is COPY + DELETE. */
  readonly noMove?: boolean;
  /**
   * The engine takes the previous snapshot's names array and hashes Buffer
   * (and the spare room of that Buffer's memory, for the entries it
   * appends) instead of copying them: the caller must not use them after.
   */
  readonly adopt?: boolean;
}

/**
 * Upstream's "does o still exist under its old name with mtime <= lastcheck"
 * check (step 5), injected so the core does no I/O. `index` is the entry's
 * index in the previous snapshot.
 */
export type StillThere = (name: ByteString, index: number) => boolean;

/**
 * A previous snapshot with binary hashes: entry i has its header SHA-1 at
 * bytes [40i, 40i+20) of `hashes` and its body SHA-1 at [40i+20, 40i+40).
 */
export interface BinaryDbEntries {
  readonly names: ByteString[];
  readonly hashes: Buffer;
}

/** Bytes per entry in the hash table: header SHA-1 then body SHA-1. */
export const HASHES = 40;

const HEXCHARS = '0123456789abcdef';
/** Byte → its two lower-case hex digits, as one 16-bit little-endian pair. */
const HEX_PAIR = new Uint16Array(256);
for (let i = 0; i < 256; i++) HEX_PAIR[i] = HEXCHARS.charCodeAt(i >> 4) | (HEXCHARS.charCodeAt(i & 15) << 8);

/** Writes the 40 hex digits of the 20 bytes at `src[at..]` into `dst[off..]`. */
export function writeHex(src: Uint8Array, at: number, dst: Buffer, off: number): void {
  for (let k = 0; k < 20; k++) {
    const p = HEX_PAIR[src[at + k]];
    dst[off++] = p & 0xff;
    dst[off++] = p >> 8;
  }
}

/**
 * The diff of upstream mddiff (spec 2.5), as an incremental, I/O-free engine:
 * feed it the current files in walk order (`file` or `unchanged`), get the
 * non-DELETE commands back one at a time, then `deletes()` and the new db
 * lines (`dbLines()` / `writeDb`).
 *
 * Entries live in one table: indexes [0, oldCount) are the previous
 * snapshot in db order, then the files of this run in walk order. Hashes are
 * kept as 20-byte binaries in one Buffer (40 bytes per entry, no string per
 * hash); the body index is an open-addressing table over them.
 */
export class DiffEngine {
  readonly names: ByteString[];
  /** 40 bytes per entry: header SHA-1, body SHA-1. Reallocated as entries are appended. */
  hashes: Buffer;
  /** Entry states (NOT_SEEN...MOVED); reallocated as entries are appended. */
  state: Uint8Array;
  /** Index of the last file given to `file`/`unchanged` (-1 if it was not a message). */
  current = -1;
  readonly oldCount: number;
  /**
   * Name → index of the previous snapshot, built at the first lookup the
   * cursor cannot answer: a scan of an unchanged mailbox meets the names in
   * the db-file's own order (the db keeps walk order), and a million-entry
   * Map costs seconds to build and query.
   */
  private byName: Map<ByteString, number> | null = null;
  /** The previous-snapshot entry expected next in walk order. */
  private cursor = 0;
  /** Open addressing: slot → 1 + entry index of the most recent entry with that body (0: empty). */
  private bodyTable: Int32Array | null = null;
  private bodyNext: Int32Array = new Int32Array(0);
  private readonly scratch = Buffer.alloc(HASHES);

  constructor(previous: DbEntries | BinaryDbEntries, private readonly opts: DiffOptions = {}, private readonly stillThere: StillThere = () => false) {
    this.names = opts.adopt === true ? previous.names : previous.names.slice();
    const n = this.names.length;
    this.oldCount = n;
    let cap = Math.max(16, n + (n >> 3));
    const given = 'hashes' in previous ? previous.hashes : null;
    const room = given !== null && opts.adopt === true ? Math.floor((given.buffer.byteLength - given.byteOffset) / HASHES) : 0;
    if (given !== null && room >= n + 16) {
      // A million entries are 40 MB: no second copy.
      cap = room;
      this.hashes = Buffer.from(given.buffer, given.byteOffset, cap * HASHES);
    } else {
      this.hashes = Buffer.alloc(cap * HASHES);
    }
    if ('hashes' in previous) {
      if (this.hashes.buffer !== previous.hashes.buffer) previous.hashes.copy(this.hashes, 0, 0, n * HASHES);
    } else {
      for (let i = 0; i < n; i++) {
        this.hashes.write(previous.headers[i], i * HASHES, 20, 'hex');
        this.hashes.write(previous.bodies[i], i * HASHES + 20, 20, 'hex');
      }
    }
    this.state = new Uint8Array(cap);
  }

  /** Index of the previous-snapshot entry with this name, or -1. */
  lookup(name: ByteString): number {
    const c = this.cursor;
    if (c < this.oldCount && this.names[c] === name) { this.cursor = c + 1; return c; }
    if (this.byName === null) {
      this.byName = new Map();
      for (let i = 0; i < this.oldCount; i++) this.byName.set(this.names[i], i);
    }
    const i = this.byName.get(name);
    if (i === undefined) return -1;
    this.cursor = i + 1;
    return i;
  }

  /** Header SHA-1 (hex) of entry i. */
  header(i: number): string {
    return this.hashes.toString('hex', i * HASHES, i * HASHES + 20);
  }

  /** Body SHA-1 (hex) of entry i. */
  body(i: number): string {
    return this.hashes.toString('hex', i * HASHES + 20, i * HASHES + 40);
  }

  /** The mtime shortcut (step 2): the old entry `i` is unchanged, it was not read. */
  unchanged(i: number): void {
    this.state[i] = SEEN;
    this.current = i;
  }

  /** Steps 4–6 for the file `name` with the given (hex) hashes. */
  file(name: ByteString, header: string, body: string): DiffCommand | null {
    const s = this.scratch;
    s.write(header, 0, 20, 'hex');
    s.write(body, 20, 20, 'hex');
    return this.fileAt(name, s, 0);
  }

  /**
   * Like `file`, the 40 hash bytes (header, body) at `src[at..]` (src may be
   * `this.hashes`). `o`: `lookup(name)`, when the caller has it already.
   */
  fileAt(name: ByteString, src: Uint8Array, at: number, o = this.lookup(name)): DiffCommand | null {
    if (src === this.hashes) {
      this.hashes.copy(this.scratch, 0, at, at + HASHES);
      src = this.scratch;
      at = 0;
    }
    const H = this.hashes;
    if (o >= 0) {
      const ob = o * HASHES;
      if (eq20(H, ob + 20, src, at + 20)) {
        if (eq20(H, ob, src, at)) {
          this.state[o] = SEEN;
          this.current = o;
          return null;
        }
        this.state[o] = CHANGED;
        this.append(name, src, at);
        return { op: 'REPLACEHEADER', name, header: this.header(o), body: this.body(o), newHeader: hex(src, at) };
      }
      this.state[o] = CHANGED;
      this.append(name, src, at);
      return { op: 'REPLACE', name, header: this.header(o), body: this.body(o), newHeader: hex(src, at), newBody: hex(src, at + 20) };
    }
    const slot = this.findBody(src, at + 20);
    const table = this.bodyTable!;
    if (table[slot] !== 0) {
      const head = table[slot] - 1;
      for (let m = head; m >= 0; m = this.bodyNext[m]) {
        if (!eq20(this.hashes, m * HASHES, src, at)) continue;
        const from = this.names[m];
        if (this.state[m] === SEEN || (this.state[m] === NOT_SEEN && this.checkStillThere(m)) || this.opts.noMove) {
          if (this.state[m] === NOT_SEEN) this.state[m] = MOVED;
          const n = this.append(name, src, at);
          return { op: 'COPY', from, header: this.header(n), body: this.body(n), to: name };
        }
        this.state[m] = MOVED;
        const n = this.append(name, src, at);
        this.bodyNext[n] = head;
        table[slot] = n + 1;
        return { op: 'MOVE', from, header: this.header(n), body: this.body(n), to: name };
      }
      const n = this.append(name, src, at);
      return { op: 'COPYBODY', from: this.names[head], body: this.body(n), to: name, toHeader: this.header(n) };
    }
    const n = this.append(name, src, at);
    return { op: 'ADD', name, header: this.header(n), body: this.body(n) };
  }

  /** Step 7: DELETE commands in db order. */
  *deletes(): Generator<DiffCommand> {
    const { noDelete, noMove } = this.opts;
    for (let i = 0; i < this.oldCount; i++) {
      const s = this.state[i];
      if ((s === NOT_SEEN && !noDelete) || (s === MOVED && noMove)) {
        yield { op: 'DELETE', name: this.names[i], header: this.header(i), body: this.body(i) };
      }
    }
  }

  /** Indexes of the entries of the new db, in upstream's order (surviving old ones, then new ones). */
  *survivors(): Generator<number> {
    for (let i = 0; i < this.oldCount; i++) if (this.state[i] === SEEN) yield i;
    for (let i = this.oldCount; i < this.names.length; i++) yield i;
  }

  /** Number of entries of the new db. */
  survivorCount(): number {
    let n = this.names.length - this.oldCount;
    for (let i = 0; i < this.oldCount; i++) if (this.state[i] === SEEN) n++;
    return n;
  }

  /** The lines of the new db-file. */
  *dbLines(): Generator<ByteString> {
    for (const i of this.survivors()) yield `${this.header(i)} ${this.body(i)} ${this.names[i]}\n`;
  }

  /**
   * Writes the new db-file's lines (as `dbLines`) through `sink`, in pieces
   * of about 1 MiB, without a string per line. Each piece is only valid during the call.
   * With `copyOld(a, b)`, runs of unchanged previous entries [a, b) are left
   * to it (it copies the previous db-file's lines, in order with the pieces).
   */
  writeDb(sink: (piece: Buffer) => void, copyOld?: (a: number, b: number) => void): void {
    const buf = Buffer.allocUnsafe(1 << 20);
    let used = 0;
    const put = (i: number): void => {
      const name = this.names[i];
      const need = 83 + name.length;
      if (used + need > buf.length) {
        if (used > 0) sink(buf.subarray(0, used));
        used = 0;
        if (need > buf.length) { sink(Buffer.from(`${this.header(i)} ${this.body(i)} ${name}\n`, 'latin1')); return; }
      }
      writeHex(this.hashes, i * HASHES, buf, used);
      buf[used + 40] = 0x20;
      writeHex(this.hashes, i * HASHES + 20, buf, used + 41);
      buf[used + 81] = 0x20;
      used += 82;
      used += buf.write(name, used, 'latin1');
      buf[used++] = 0x0a;
    };
    const flush = (): void => { if (used > 0) sink(buf.subarray(0, used)); used = 0; };
    if (copyOld === undefined) {
      for (const i of this.survivors()) put(i);
      flush();
      return;
    }
    for (let a = 0; a < this.oldCount;) {
      if (this.state[a] !== SEEN) { a++; continue; }
      let b = a + 1;
      while (b < this.oldCount && this.state[b] === SEEN) b++;
      flush();
      copyOld(a, b);
      a = b;
    }
    for (let i = this.oldCount; i < this.names.length; i++) put(i);
    flush();
  }

  private checkStillThere(m: number): boolean {
    if (m >= this.oldCount || !this.stillThere(this.names[m], m)) return false;
    this.state[m] = SEEN;
    return true;
  }

  private append(name: ByteString, src: Uint8Array, at: number): number {
    const n = this.names.length;
    if ((n + 1) * HASHES > this.hashes.length) {
      const cap = grown(n);
      const h = Buffer.alloc(cap * HASHES);
      this.hashes.copy(h, 0, 0, n * HASHES);
      this.hashes = h;
      const st = new Uint8Array(cap);
      st.set(this.state.subarray(0, n));
      this.state = st;
    }
    // 40 bytes: a loop beats making a subarray view to copy from.
    const h = this.hashes;
    for (let k = 0, o = n * HASHES; k < HASHES; k++) h[o + k] = src[at + k];
    this.names.push(name);
    this.state[n] = SEEN;
    this.current = n;
    if (this.bodyTable !== null && n >= this.bodyNext.length) {
      const next = new Int32Array(grown(n)).fill(-1);
      next.set(this.bodyNext);
      this.bodyNext = next;
    }
    return n;
  }

  /** The slot of the body hash at `src[at..]` in the body index (built on first use: a no-change run never needs it). */
  private findBody(src: Uint8Array, at: number): number {
    if (this.bodyTable === null) this.buildBodyIndex();
    const table = this.bodyTable!;
    const mask = table.length - 1;
    const H = this.hashes;
    // SHA-1 bytes are uniformly distributed: the first four are a good hash.
    let slot = ((src[at] | (src[at + 1] << 8) | (src[at + 2] << 16)) ^ (src[at + 3] << 24)) & mask;
    for (;;) {
      const e = table[slot];
      if (e === 0 || eq20(H, (e - 1) * HASHES + 20, src, at)) return slot;
      slot = (slot + 1) & mask;
    }
  }

  private buildBodyIndex(): void {
    let size = 16;
    while (size < this.oldCount * 2) size *= 2;
    this.bodyTable = new Int32Array(size);
    const next = new Int32Array(Math.max(16, this.names.length * 2)).fill(-1);
    this.bodyNext = next;
    const table = this.bodyTable;
    for (let i = 0; i < this.oldCount; i++) {
      const slot = this.findBody(this.hashes, i * HASHES + 20);
      next[i] = table[slot] - 1;
      table[slot] = i + 1;
    }
  }
}

/**
 * The capacity after `n` entries: doubling while small, then a quarter more
 * (a first scan of a million messages appends them all: doubling left up to
 * 3x the hashes in memory while the copy was made).
 */
function grown(n: number): number {
  return n < 65536 ? Math.max(16, n * 2) : n + (n >> 2);
}

function eq20(a: Uint8Array, ai: number, b: Uint8Array, bi: number): boolean {
  for (let k = 0; k < 20; k++) if (a[ai + k] !== b[bi + k]) return false;
  return true;
}

function hex(src: Uint8Array, at: number): string {
  return Buffer.from(src.buffer, src.byteOffset + at, 20).toString('hex');
}

/** A current file for `diff`: its hashes, or `unchanged` (the mtime shortcut: trust the old entry). */
export type CurrentFile =
  | { readonly name: ByteString; readonly header: string; readonly body: string }
  | { readonly name: ByteString; readonly unchanged: true };

/**
 * The pure diff: previous snapshot + current files in walk order → commands
 * in upstream order (non-DELETEs as files come, DELETEs last in db order).
 */
export function* diff(previous: DbEntries, current: Iterable<CurrentFile>, opts: DiffOptions = {}, stillThere?: StillThere): Generator<DiffCommand, DiffEngine, void> {
  const e = new DiffEngine(previous, opts, stillThere);
  for (const f of current) {
    if ('unchanged' in f) {
      const i = e.lookup(f.name);
      if (i >= 0) { e.unchanged(i); continue; }
      throw new Error(`unchanged file ${f.name} is not in the previous snapshot`);
    }
    const c = e.file(f.name, f.header, f.body);
    if (c !== null) yield c;
  }
  yield* e.deletes();
  return e;
}
