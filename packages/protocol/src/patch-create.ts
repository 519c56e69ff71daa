/**
 * Building the db-file patch sent after COMMIT (format: patch.ts and
 * protocol.md section 9) from two files, in bounded memory: the files are
 * read where the diff needs them (a few MiB of each at a time), the patch
 * is described as ops over byte ranges of the files and produced in pieces
 * as it is sent. Memory does not grow with the size of the db-files (a
 * first sync of a million messages sends a 140 MB patch); only a reordered
 * middle costs per line (step 3: ~50 bytes per line of it).
 *
 * Building it is linear in the size of the files, plus O(k log k) for the k
 * lines that were reordered:
 *  1. common prefix and suffix, found with block-wise memcmp and cut back to
 *     line boundaries;
 *  2. a greedy walk of the middle: equal runs are skipped with memcmp; at a
 *     difference, look up to RESYNC_LOOKAHEAD lines ahead in either file for
 *     the line that resynchronises (= lines deleted or inserted there). The
 *     usual db-file changes (entries removed from their place, new ones
 *     appended: spec 2.7) never need more than this; then, for a block of
 *     lines deleted or inserted (a folder removed), search each current line
 *     within the next RESYNC_WINDOW bytes of the other file (memmem);
 *  3. if the greedy walk gets lost (reordering, a large deleted block), the
 *     rest of the middle is fingerprinted (64-bit xxhash + length) and every
 *     new line is paired with a still unpaired old line of the same
 *     fingerprint (k-th occurrence with k-th occurrence). Lines are not
 *     compared byte for byte (that would mean reading the old file at
 *     random): the finished patch is checked instead, by computing the
 *     SHA-1 of what it produces, and a fingerprint collision (which the
 *     check finds) makes it fall back to a patch that inserts the whole new
 *     file: bigger, never wrong;
 *  4. paired lines in the same order are kept; each maximal block of
 *     reordered pairs is aligned with fast-diff over lines mapped to
 *     characters when it is small (<= REORDER_FASTDIFF_MAX lines) and with a
 *     longest-increasing-subsequence pass (O(k log k); an exact LCS too,
 *     since the pairs of a block are a permutation) when it is bigger;
 *  5. unpaired old lines are deleted, unpaired new lines inserted.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { deflateRawSync } from 'node:zlib';
import { createRequire } from 'node:module';
import type FastDiff from 'fast-diff';
import { h64Raw } from './fingerprint.js';
import { PATCH_MAGIC } from './patch.js';

/**
 * Largest reordered block aligned with fast-diff; bigger ones use the LIS
 * pass. fast-diff (Myers, O(N*D)) is quadratic on shuffled input: measured
 * here 0.05 s for 1,000 reversed lines, 0.5 s for 1,000 shuffled lines and
 * 4.5 s for 10,000 shuffled lines, while the LIS pass is O(k log k) and, the
 * paired lines of a block being a permutation, just as exact.
 */
export const REORDER_FASTDIFF_MAX = 256;

/**
 * Ops sections between these sizes are deflated (kept only if smaller).
 * zlib runs at 30-60 MB/s here (level 1; a 142 MB first-sync patch took
 * 4.6 s to shrink to 59 MB), slower than a LAN or local pipe, so very big
 * patches (first syncs of huge mailboxes) travel plain: ssh -C can still
 * compress them, in parallel with the rest.
 */
const DEFLATE_MIN = 512;
const DEFLATE_MAX = 16 * 1024 * 1024;

/** Greedy resynchronisation looks this many lines ahead before falling back to fingerprints. */
const RESYNC_LOOKAHEAD = 64;

/** How far ahead (bytes) the greedy walk searches for a line before falling back to fingerprints. */
const RESYNC_WINDOW = 4 * 1024 * 1024;

/** Files are read in blocks of this size (and at least this much ahead of where the diff looks). */
const BLOCK = 1 << 20;

// ----------------------------------------------------------------- sources

/** One of the two files, in memory or read where the diff looks. */
interface Source {
  readonly size: number;
  /** Bytes [p, p + n) (within the file); valid until the next call on this source. */
  view(p: number, n: number): Buffer;
  /** The bytes [p, p + n) as a fresh Buffer (kept by a writer until it is written). */
  copy(p: number, n: number): Buffer;
}

class BufferSource implements Source {
  constructor(private readonly buf: Buffer) {}
  get size(): number { return this.buf.length; }
  view(p: number, n: number): Buffer { return this.buf.subarray(p, p + n); }
  copy(p: number, n: number): Buffer { return Buffer.from(this.buf.subarray(p, p + n)); }
}

/** A file read through one window that moves (and grows) with what is asked. */
class FileSource implements Source {
  readonly size: number;
  private buf = Buffer.allocUnsafe(BLOCK);
  /** File offsets of buf[0] and one past the last valid byte. */
  private from = 0;
  private to = 0;

  constructor(private readonly fd: number, readonly path: string) {
    const st = fstatSync(fd);
    this.size = st.size;
    this.identity = `${st.ino} ${st.size} ${st.mtimeMs}`;
  }

  readonly identity: string;

  view(p: number, n: number): Buffer {
    if (p >= this.from && p + n <= this.to) return this.buf.subarray(p - this.from, p - this.from + n);
    const want = Math.min(this.size - p, Math.max(n, BLOCK));
    if (want > this.buf.length) this.buf = Buffer.allocUnsafe(want);
    this.fill(this.buf, p, want);
    this.from = p;
    this.to = p + want;
    return this.buf.subarray(0, n);
  }

  copy(p: number, n: number): Buffer {
    if (p >= this.from && p + n <= this.to) return Buffer.from(this.buf.subarray(p - this.from, p - this.from + n));
    const b = Buffer.allocUnsafe(n);
    this.fill(b, p, n);
    return b;
  }

  private fill(b: Buffer, p: number, n: number): void {
    for (let got = 0; got < n;) {
      const k = readSync(this.fd, b, got, n - got, p + got);
      if (k <= 0) throw new Error(`${this.path} is shorter than when the db-file patch was started`);
      got += k;
    }
  }

  /** Throws if the file is no longer the one the patch describes. */
  check(): void {
    const st = fstatSync(this.fd);
    if (`${st.ino} ${st.size} ${st.mtimeMs}` !== this.identity) throw new Error(`${this.path} changed while its db-file patch was being sent`);
  }

  close(): void { closeSync(this.fd); }
}

/** SHA-1 of a whole source, read in blocks. */
function sha1Of(s: Source): string {
  const h = createHash('sha1');
  for (let p = 0; p < s.size; p += BLOCK) h.update(s.view(p, Math.min(BLOCK, s.size - p)));
  return h.digest('hex');
}

const byteAt = (s: Source, p: number): number => s.view(p, 1)[0];

/** Position of the first '\n' in [p, end), or -1. */
function indexOfLf(s: Source, p: number, end: number): number {
  for (let step = 4096; p < end; step = Math.min(step * 4, BLOCK)) {
    const n = Math.min(end - p, step);
    const k = s.view(p, n).indexOf(10);
    if (k >= 0) return p + k;
    p += n;
  }
  return -1;
}

/** Position of the last '\n' before p (i.e. in [0, p)), or -1. */
function lastLfBefore(s: Source, p: number): number {
  for (let step = 4096; p > 0; step = Math.min(step * 4, BLOCK)) {
    const n = Math.min(p, step);
    const k = s.view(p - n, n).lastIndexOf(10);
    if (k >= 0) return p - n + k;
    p -= n;
  }
  return -1;
}

/** Length of the common prefix of a[ai..aEnd) and b[bi..bEnd) (block-wise memcmp). */
function commonPrefix(a: Source, ai: number, aEnd: number, b: Source, bi: number, bEnd: number): number {
  const max = Math.min(aEnd - ai, bEnd - bi);
  let n = 0;
  let step = 4096;
  while (n < max) {
    const len = Math.min(step, max - n);
    const va = a.view(ai + n, len);
    const vb = b.view(bi + n, len);
    if (va.equals(vb)) { n += len; if (step < BLOCK) step *= 2; continue; }
    // The first difference is in this block: narrow it down by halves.
    let lo = 0;
    let hi = len; // a difference exists in [lo, hi)
    while (hi - lo > 16) {
      const mid = (lo + hi) >>> 1;
      if (va.compare(vb, lo, mid, lo, mid) === 0) lo = mid; else hi = mid;
    }
    while (lo < hi && va[lo] === vb[lo]) lo++;
    return n + lo;
  }
  return max;
}

/** Length of the common suffix of a[aStart..ae) and b[bStart..be). */
function commonSuffix(a: Source, aStart: number, ae: number, b: Source, bStart: number, be: number): number {
  const max = Math.min(ae - aStart, be - bStart);
  let n = 0;
  let step = 4096;
  while (n < max) {
    const len = Math.min(step, max - n);
    const va = a.view(ae - n - len, len);
    const vb = b.view(be - n - len, len);
    if (va.equals(vb)) { n += len; if (step < BLOCK) step *= 2; continue; }
    let lo = 0;
    let hi = len;
    while (hi - lo > 16) {
      const mid = (lo + hi) >>> 1;
      if (va.compare(vb, len - mid, len - lo, len - mid, len - lo) === 0) lo = mid; else hi = mid;
    }
    while (lo < hi && va[len - lo - 1] === vb[len - lo - 1]) lo++;
    return n + lo;
  }
  return max;
}

/** End of the line starting at `p` (just after its `\n`, or `end`). */
function lineEnd(s: Source, p: number, end: number): number {
  const nl = indexOfLf(s, p, end);
  return nl < 0 ? end : nl + 1;
}

function sameRange(a: Source, a0: number, a1: number, b: Source, b0: number, b1: number): boolean {
  return a1 - a0 === b1 - b0 && a.view(a0, a1 - a0).equals(b.view(b0, b1 - b0));
}

/**
 * Start of the first whole line of s[from, min(end, from + RESYNC_WINDOW))
 * equal to the line `line` of `other` (which ends with its `\n`, unless it is the last line of
 * its file), or -1.
 */
function findLine(s: Source, from: number, end: number, other: Source, l0: number, l1: number): number {
  const limit = Math.min(end, from + RESYNC_WINDOW);
  if (l1 - l0 > limit - from) return -1;
  const before = from === 0 ? 10 : byteAt(s, from - 1);
  const line = other.view(l0, l1 - l0);
  const needLf = line.length > 0 && line[line.length - 1] === 10;
  const view = s.view(from, limit - from);
  for (let q = 0; ;) {
    const k = view.indexOf(line, q);
    if (k < 0) return -1;
    const at = from + k;
    if ((k === 0 ? before === 10 : view[k - 1] === 10) && (needLf || at + line.length === end)) return at;
    q = k + 1;
  }
}

/** Line starts of s[from..to), plus a final `to`. */
function lineStarts(s: Source, from: number, to: number): Float64Array {
  let st = new Float64Array(Math.max(16, Math.floor((to - from) / 64) + 2));
  let n = 0;
  const push = (x: number): void => {
    if (n >= st.length) { const t = new Float64Array(st.length * 2); t.set(st); st = t; }
    st[n++] = x;
  };
  if (from < to) push(from);
  // Every '\n' before the last byte starts a line.
  for (let p = from; p < to - 1;) {
    const n2 = Math.min(BLOCK, to - 1 - p);
    const v = s.view(p, n2);
    for (let k = v.indexOf(10); k >= 0; k = v.indexOf(10, k + 1)) push(p + k + 1);
    p += n2;
  }
  push(to);
  return st.subarray(0, n);
}

// ------------------------------------------------------------- reordering

/** Longest increasing subsequence of `v` (distinct values): flags of the members. */
function lisMembers(v: Int32Array): Uint8Array {
  const n = v.length;
  const tails = new Int32Array(n); // index into v of the smallest tail of an increasing run of length k+1
  const prev = new Int32Array(n);
  let len = 0;
  for (let i = 0; i < n; i++) {
    let lo = 0;
    let hi = len;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (v[tails[mid]] < v[i]) lo = mid + 1; else hi = mid;
    }
    prev[i] = lo > 0 ? tails[lo - 1] : -1;
    tails[lo] = i;
    if (lo === len) len++;
  }
  const out = new Uint8Array(n);
  for (let i = len > 0 ? tails[len - 1] : -1; i >= 0; i = prev[i]) out[i] = 1;
  return out;
}

/**
 * fast-diff, loaded on first use: importing it costs ~10 ms, paid by every
 * program that imports @smd/protocol, while it only runs for reordered db-files.
 */
let fastDiffFn: typeof FastDiff | null = null;
function fastDiff(a: string, b: string): FastDiff.Diff[] {
  fastDiffFn ??= createRequire(import.meta.url)('fast-diff') as typeof FastDiff;
  return fastDiffFn(a, b);
}

/** BMP code point for a small integer, skipping the surrogate range. */
const charOf = (x: number): string => String.fromCharCode(x < 0xd800 ? x : x + 0x800);

/**
 * Members of a longest common subsequence of 0..n-1 (in order) and the
 * permutation `perm` of 0..n-1: flags indexed by value. fast-diff over
 * characters for small blocks, LIS for big ones.
 */
function keptInBlock(perm: Int32Array): Uint8Array {
  const n = perm.length;
  const kept = new Uint8Array(n);
  if (n <= REORDER_FASTDIFF_MAX) {
    let a = '';
    let b = '';
    for (let i = 0; i < n; i++) { a += charOf(i); b += charOf(perm[i]); }
    let ia = 0;
    for (const [op, text] of fastDiff(a, b)) {
      if (op === 0) for (let k = 0; k < text.length; k++) kept[ia++] = 1;
      else if (op === -1) ia += text.length;
    }
    return kept;
  }
  const lis = lisMembers(perm);
  for (let i = 0; i < n; i++) if (lis[i]) kept[perm[i]] = 1;
  return kept;
}

// --------------------------------------------------------------------- ops

const KEEP = 0;
const DEL = 1;
const INS = 2;
const OP_CHAR = '=-+';

/**
 * The patch ops, as numbers: kind, byte count, and for an insert where its
 * bytes are in the new file. Every op counts bytes: `=N` keep the next N
 * bytes of the old file, `-N` skip them, `+N` insert N bytes. Adjacent ops
 * of one kind are merged.
 */
class Ops {
  kind = new Uint8Array(64);
  count = new Float64Array(64);
  from = new Float64Array(64);
  n = 0;

  keep(n: number): void { this.add(KEEP, n, 0); }
  del(n: number): void { this.add(DEL, n, 0); }
  /** Insert new[from, to). */
  ins(from: number, to: number): void { this.add(INS, to - from, from); }

  private add(kind: number, n: number, from: number): void {
    if (n === 0) return;
    const last = this.n - 1;
    if (last >= 0 && this.kind[last] === kind && (kind !== INS || from === this.from[last] + this.count[last])) { this.count[last] += n; return; }
    if (this.n === this.kind.length) {
      const k = new Uint8Array(this.n * 2); k.set(this.kind); this.kind = k;
      const c = new Float64Array(this.n * 2); c.set(this.count); this.count = c;
      const f = new Float64Array(this.n * 2); f.set(this.from); this.from = f;
    }
    this.kind[this.n] = kind;
    this.count[this.n] = n;
    this.from[this.n] = from;
    this.n++;
  }

  line(i: number): string { return `${OP_CHAR[this.kind[i]]}${this.count[i]}\n`; }

  /** Bytes of the ops section (op lines and inserted bytes). */
  bytes(): number {
    let total = 0;
    for (let i = 0; i < this.n; i++) total += this.line(i).length + (this.kind[i] === INS ? this.count[i] : 0);
    return total;
  }
}

/** Moves `p` forward to the first line start (of both files) at or after it. */
function alignSuffix(a: Source, ea: number, la: number, b: Source, eb: number): number {
  // ea/eb start a common byte run that reaches the ends of both files.
  if ((ea === 0 || byteAt(a, ea - 1) === 10) && (eb === 0 || byteAt(b, eb - 1) === 10)) return 0;
  const nl = indexOfLf(a, ea, la);
  return nl < 0 ? la - ea : nl + 1 - ea;
}

/** A fingerprint of some bytes: 64-bit xxhash (replaceable for tests of the collision fallback). */
export type Fingerprint = (bytes: Uint8Array) => bigint;

/** The ops turning `a` into `b` (see the module comment); `fingerprinted`: step 3 paired lines by fingerprint. */
function diffSources(a: Source, b: Source, fp: Fingerprint): { ops: Ops; fingerprinted: boolean } {
  const ops = new Ops();
  const la = a.size;
  const lb = b.size;
  let fingerprinted = false;
  // 1. common prefix and suffix, on bytes, cut back to line boundaries.
  let pre = commonPrefix(a, 0, la, b, 0, lb);
  if (!(pre === la && pre === lb)) pre = pre === 0 ? 0 : lastLfBefore(a, pre) + 1;
  let suf = commonSuffix(a, pre, la, b, pre, lb);
  suf -= alignSuffix(a, la - suf, la, b, lb - suf);
  ops.keep(pre);
  let i = pre;
  let j = pre;
  const ea = la - suf;
  const eb = lb - suf;
  let searchBudget = 2 * (la + lb);
  // 2. greedy walk: runs of equal lines are skipped with memcmp; at a
  // difference, look a few lines ahead for the line that resynchronises.
  while (i < ea && j < eb) {
    let run = commonPrefix(a, i, ea, b, j, eb);
    if (!(i + run === ea && j + run === eb)) run = run === 0 ? 0 : lastLfBefore(a, i + run) + 1 - i;
    if (run > 0) { ops.keep(run); i += run; j += run; continue; }
    const aLine = lineEnd(a, i, ea);
    const bLine = lineEnd(b, j, eb);
    let done = false;
    // d lines of a deleted, or d lines of b inserted.
    let ad = aLine;
    let bd = bLine;
    for (let d = 1; d <= RESYNC_LOOKAHEAD && !done; d++) {
      if (ad < ea) {
        const e = lineEnd(a, ad, ea);
        if (sameRange(a, ad, e, b, j, bLine)) { ops.del(ad - i); i = ad; done = true; break; }
        ad = e;
      }
      if (bd < eb) {
        const e = lineEnd(b, bd, eb);
        if (sameRange(b, bd, e, a, i, aLine)) { ops.ins(j, bd); j = bd; done = true; break; }
        bd = e;
      }
      if (ad >= ea && bd >= eb) break;
    }
    if (done) continue;
    // A block of lines deleted or inserted (a folder removed, ...): search
    // each current line within the next RESYNC_WINDOW bytes of the other file.
    // The bytes searched are budgeted (twice the files), so that a
    // pathological input cannot make this quadratic.
    if (searchBudget > 0) {
      const da = findLine(a, i, ea, b, j, bLine);
      const db = findLine(b, j, eb, a, i, aLine);
      searchBudget -= (da >= 0 ? da - i : Math.min(ea - i, RESYNC_WINDOW)) + (db >= 0 ? db - j : Math.min(eb - j, RESYNC_WINDOW));
      if (da >= 0 && (db < 0 || da - i <= db - j)) { ops.del(da - i); i = da; continue; }
      if (db >= 0) { ops.ins(j, db); j = db; continue; }
    }
    // 3. no quick resync: fingerprints for the rest of the middle.
    middle(a, lineStarts(a, i, ea), b, lineStarts(b, j, eb), ops, fp);
    fingerprinted = true;
    i = ea;
    j = eb;
  }
  if (i < ea) ops.del(ea - i);
  if (j < eb) ops.ins(j, eb);
  ops.keep(suf);
  return { ops, fingerprinted };
}

function middle(a: Source, sa: Float64Array, b: Source, sb: Float64Array, ops: Ops, fp: Fingerprint): void {
  const ma = sa.length - 1;
  const mb = sb.length - 1;
  // Fingerprint table of the old lines: open addressing on (64-bit xxhash, length),
  // each slot heading a FIFO list of the old lines with that fingerprint.
  let cap = 1024;
  while (cap < ma * 2) cap *= 2;
  const mask = cap - 1;
  const used = new Uint8Array(cap);
  const keyHi = new Uint32Array(cap);
  const keyLo = new Uint32Array(cap);
  const keyLen = new Float64Array(cap);
  const head = new Int32Array(cap).fill(-1);
  const tail = new Int32Array(cap);
  const next = new Int32Array(ma).fill(-1);
  const find = (s: Source, p0: number, p1: number, insert: boolean): number => {
    const h = fp(s.view(p0, p1 - p0));
    const len = p1 - p0;
    const lo = Number(h & 0xffffffffn);
    const hi = Number(h >> 32n);
    let k = (lo ^ Math.imul(hi, 0x9e3779b1) ^ len) & mask;
    while (used[k]) {
      if (keyHi[k] === hi && keyLo[k] === lo && keyLen[k] === len) return k;
      k = (k + 1) & mask;
    }
    if (!insert) return -1;
    used[k] = 1; keyHi[k] = hi; keyLo[k] = lo; keyLen[k] = len;
    return k;
  };
  for (let i = 0; i < ma; i++) {
    const k = find(a, sa[i], sa[i + 1], true);
    if (head[k] === -1) head[k] = i; else next[tail[k]] = i;
    tail[k] = i;
  }

  // Pair every new line with the first unpaired old line of the same fingerprint.
  const partnerOfB = new Int32Array(mb).fill(-1);
  const rankA = new Int32Array(ma).fill(-1);
  let pairs = 0;
  for (let j = 0; j < mb; j++) {
    const k = find(b, sb[j], sb[j + 1], false);
    if (k < 0) continue;
    const i = head[k];
    if (i === -1) continue;
    head[k] = next[i];
    partnerOfB[j] = i;
    rankA[i] = 0;
    pairs++;
  }

  // rank of each paired old line in old order; perm = ranks in new order.
  for (let i = 0, r = 0; i < ma; i++) if (rankA[i] === 0) rankA[i] = r++; else rankA[i] = -1;
  // (the loop above turns the "paired" marks into ranks 0..pairs-1)
  const perm = new Int32Array(pairs);
  for (let j = 0, k = 0; j < mb; j++) if (partnerOfB[j] >= 0) perm[k++] = rankA[partnerOfB[j]];

  // Kept ranks: where perm is the identity, lines are kept; each maximal
  // reordered block [start, k] (perm maps it onto itself) is aligned.
  const keptRank = new Uint8Array(pairs);
  let maxSeen = -1;
  let start = 0;
  for (let k = 0; k < pairs; k++) {
    if (perm[k] > maxSeen) maxSeen = perm[k];
    if (maxSeen === k) {
      if (k === start) keptRank[k] = 1;
      else {
        const block = new Int32Array(k + 1 - start);
        for (let x = start; x <= k; x++) block[x - start] = perm[x] - start;
        const kept = keptInBlock(block);
        for (let x = 0; x < kept.length; x++) if (kept[x]) keptRank[start + x] = 1;
      }
      start = k + 1;
    }
  }

  // Walk both: kept lines appear in the same order in both.
  let i = 0;
  let j = 0;
  const keptA = (x: number): boolean => rankA[x] >= 0 && keptRank[rankA[x]] === 1;
  const keptB = (y: number): boolean => partnerOfB[y] >= 0 && keptRank[rankA[partnerOfB[y]]] === 1;
  while (i < ma || j < mb) {
    if (i < ma && !keptA(i)) { ops.del(sa[i + 1] - sa[i]); i++; continue; }
    if (j < mb && !keptB(j)) { ops.ins(sb[j], sb[j + 1]); j++; continue; }
    ops.keep(sa[i + 1] - sa[i]);
    i++;
    j++;
  }
}

/** SHA-1 and size of what `ops` make of `a` (new bytes from `b`). */
function resultOf(a: Source, b: Source, ops: Ops): { sha1: string; size: number } {
  const h = createHash('sha1');
  let at = 0;
  let size = 0;
  const feed = (s: Source, p: number, n: number): void => {
    for (let o = 0; o < n; o += BLOCK) h.update(s.view(p + o, Math.min(BLOCK, n - o)));
    size += n;
  };
  for (let k = 0; k < ops.n; k++) {
    const n = ops.count[k];
    if (ops.kind[k] === INS) { feed(b, ops.from[k], n); continue; }
    if (ops.kind[k] === KEEP) feed(a, at, n);
    at += n;
  }
  return { sha1: h.digest('hex'), size };
}

// ------------------------------------------------------------------ patch

/** A db-file patch ready to be sent. */
export interface DbPatch {
  /** Bytes of the whole patch. */
  readonly size: number;
  /** The patch in pieces, each a fresh Buffer (a writer may keep it until it is written); once. */
  pieces(): Generator<Buffer, void, void>;
  /** Releases the files (after pieces(), or instead of it). */
  close(): void;
}

export interface CreateOptions {
  /** Tests only: the line fingerprint of step 3 (default 64-bit xxhash). */
  readonly fingerprint?: Fingerprint;
}

function build(a: Source, b: Source, opts: CreateOptions, onDone: () => void, check: () => void): DbPatch {
  const from = sha1Of(a);
  const to = sha1Of(b);
  let { ops, fingerprinted } = diffSources(a, b, opts.fingerprint ?? h64Raw);
  if (fingerprinted) {
    // Lines were paired by fingerprint: check what the ops produce (a collision would show here).
    const r = resultOf(a, b, ops);
    if (r.sha1 !== to || r.size !== b.size) {
      ops = new Ops();
      ops.del(a.size);
      ops.ins(0, b.size);
    }
  }
  let bodyBytes = ops.bytes();
  let body: Buffer | null = null;
  let enc = 'plain';
  if (bodyBytes >= DEFLATE_MIN && bodyBytes <= DEFLATE_MAX) {
    // Small enough to be built whole, and maybe deflated.
    const whole = Buffer.allocUnsafe(bodyBytes);
    let o = 0;
    for (let k = 0; k < ops.n; k++) {
      o += whole.write(ops.line(k), o, 'latin1');
      if (ops.kind[k] === INS) {
        for (let p = ops.from[k], left = ops.count[k]; left > 0;) {
          const n = Math.min(left, BLOCK);
          o += b.view(p, n).copy(whole, o);
          p += n;
          left -= n;
        }
      }
    }
    const z = deflateRawSync(whole, { level: 1 });
    if (z.length < whole.length) { body = z; enc = 'deflate'; bodyBytes = z.length; } else body = whole;
  }
  const head = Buffer.from(`${PATCH_MAGIC}\nfrom ${from}\nto ${to} ${b.size}\nops ${enc} ${bodyBytes}\n`, 'latin1');
  let started = false;
  return {
    size: head.length + bodyBytes,
    *pieces() {
      if (started) throw new Error('the pieces of a db-file patch can be produced once');
      started = true;
      yield head;
      if (body !== null) { if (body.length > 0) yield body; return; }
      check();
      let lines = '';
      for (let k = 0; k < ops.n; k++) {
        lines += ops.line(k);
        if (ops.kind[k] !== INS && lines.length < 4096 && k + 1 < ops.n) continue;
        yield Buffer.from(lines, 'latin1');
        lines = '';
        if (ops.kind[k] !== INS) continue;
        for (let p = ops.from[k], left = ops.count[k]; left > 0;) {
          const n = Math.min(left, BLOCK);
          yield b.copy(p, n);
          p += n;
          left -= n;
        }
      }
      if (lines !== '') yield Buffer.from(lines, 'latin1');
    },
    close: onDone,
  };
}

/**
 * The patch turning the file `oldDbPath` into `newDbPath` (both must exist),
 * produced in pieces as it is sent: the files stay open until `close()` and
 * must not change meanwhile (checked before the new file's lines are sent).
 */
export function openDbPatch(oldDbPath: string, newDbPath: string, opts: CreateOptions = {}): DbPatch {
  const a = new FileSource(openSync(oldDbPath, 'r'), oldDbPath);
  let b: FileSource;
  try {
    b = new FileSource(openSync(newDbPath, 'r'), newDbPath);
  } catch (e) {
    a.close();
    throw e;
  }
  let closed = false;
  const close = (): void => { if (!closed) { closed = true; a.close(); b.close(); } };
  try {
    return build(a, b, opts, close, () => { a.check(); b.check(); });
  } catch (e) {
    close();
    throw e;
  }
}

/** The patch turning the file `oldDbPath` into `newDbPath`, whole in memory (format: protocol.md). */
export function createDbPatch(oldDbPath: string, newDbPath: string, opts: CreateOptions = {}): Buffer {
  const p = openDbPatch(oldDbPath, newDbPath, opts);
  try {
    return Buffer.concat([...p.pieces()], p.size);
  } finally {
    p.close();
  }
}

/** createDbPatch on contents already in memory. */
export function createDbPatchFromBuffers(a: Buffer, b: Buffer, opts: CreateOptions = {}): Buffer {
  const p = build(new BufferSource(a), new BufferSource(b), opts, () => {}, () => {});
  return Buffer.concat([...p.pieces()], p.size);
}
