/**
 * The db-file patch sent after COMMIT (protocol.md section 9).
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
 *
 * Building it (createDbPatch) is linear in the size of the files, plus
 * O(k log k) for the k lines that were reordered:
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
 *     rest of the middle is fingerprinted (64-bit xxhash) and every new line
 *     is paired with an equal, still unpaired old line (k-th occurrence with
 *     k-th occurrence; bytes are compared, so a fingerprint collision can
 *     only make the patch bigger, never wrong);
 *  4. paired lines in the same order are kept; each maximal block of
 *     reordered pairs is aligned with fast-diff over lines mapped to
 *     characters when it is small (<= REORDER_FASTDIFF_MAX lines) and with a
 *     longest-increasing-subsequence pass (O(k log k); an exact LCS too,
 *     since the pairs of a block are a permutation) when it is bigger;
 *  5. unpaired old lines are deleted, unpaired new lines inserted.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { createRequire } from 'node:module';
import type FastDiff from 'fast-diff';
import { h64Raw } from './fingerprint.js';

/** First line of every (non-empty) patch. */
export const PATCH_MAGIC = 'smd-dbpatch 1';

/** The patch sent in dry-run: zero bytes. It means "no patch", and applies to nothing. */
export const EMPTY_PATCH: Buffer = Buffer.alloc(0);

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

const sha1hex = (b: Uint8Array): string => createHash('sha1').update(b).digest('hex');

/** Greedy resynchronisation looks this many lines ahead before falling back to fingerprints. */
const RESYNC_LOOKAHEAD = 64;

/** Length of the common prefix of a[ai..aEnd) and b[bi..bEnd) (block-wise memcmp). */
function commonPrefix(a: Buffer, ai: number, aEnd: number, b: Buffer, bi: number, bEnd: number): number {
  const max = Math.min(aEnd - ai, bEnd - bi);
  let n = 0;
  let step = 4096;
  while (n < max) {
    const len = Math.min(step, max - n);
    if (a.compare(b, bi + n, bi + n + len, ai + n, ai + n + len) === 0) { n += len; if (step < 1 << 20) step *= 2; continue; }
    // The first difference is in this block: narrow it down by halves.
    let lo = 0;
    let hi = len; // a difference exists in [lo, hi)
    while (hi - lo > 16) {
      const mid = (lo + hi) >>> 1;
      if (a.compare(b, bi + n + lo, bi + n + mid, ai + n + lo, ai + n + mid) === 0) lo = mid; else hi = mid;
    }
    while (lo < hi && a[ai + n + lo] === b[bi + n + lo]) lo++;
    return n + lo;
  }
  return max;
}

/** Length of the common suffix of a[aStart..ae) and b[bStart..be). */
function commonSuffix(a: Buffer, aStart: number, ae: number, b: Buffer, bStart: number, be: number): number {
  const max = Math.min(ae - aStart, be - bStart);
  let n = 0;
  let step = 4096;
  while (n < max) {
    const len = Math.min(step, max - n);
    if (a.compare(b, be - n - len, be - n, ae - n - len, ae - n) === 0) { n += len; if (step < 1 << 20) step *= 2; continue; }
    let lo = 0;
    let hi = len;
    while (hi - lo > 16) {
      const mid = (lo + hi) >>> 1;
      if (a.compare(b, be - n - mid, be - n - lo, ae - n - mid, ae - n - lo) === 0) lo = mid; else hi = mid;
    }
    while (lo < hi && a[ae - n - lo - 1] === b[be - n - lo - 1]) lo++;
    return n + lo;
  }
  return max;
}

/** How far ahead (bytes) the greedy walk searches for a line before falling back to fingerprints. */
const RESYNC_WINDOW = 4 * 1024 * 1024;

/**
 * Start of the first whole line of buf[from, min(end, from + RESYNC_WINDOW))
 * equal to `line` (which ends with its `\n`, unless it is the last line of
 * its file), or -1.
 */
function findLine(buf: Buffer, from: number, end: number, line: Buffer): number {
  const limit = Math.min(end, from + RESYNC_WINDOW);
  const view = buf.subarray(from, limit);
  const needLf = line.length > 0 && line[line.length - 1] === 10;
  for (let q = 0; ;) {
    const k = view.indexOf(line, q);
    if (k < 0) return -1;
    const at = from + k;
    if ((at === 0 || buf[at - 1] === 10) && (needLf || at + line.length === end)) return at;
    q = k + 1;
  }
}

/** End of the line starting at `p` (just after its `\n`, or `end`). */
function lineEnd(buf: Buffer, p: number, end: number): number {
  const nl = buf.indexOf(10, p);
  return nl < 0 || nl >= end ? end : nl + 1;
}

/** Line starts of buf[from..to), plus a final `to`. */
function lineStarts(buf: Buffer, from: number, to: number): Uint32Array {
  let s = new Uint32Array(Math.max(16, ((to - from) >>> 6) + 2));
  let n = 0;
  if (from < to) s[n++] = from;
  for (let k = from; k < to - 1; k++) {
    if (buf[k] === 10) {
      if (n + 1 >= s.length) { const t = new Uint32Array(s.length * 2); t.set(s); s = t; }
      s[n++] = k + 1;
    }
  }
  if (n + 1 > s.length) { const t = new Uint32Array(s.length + 1); t.set(s); s = t; }
  s[n++] = to;
  return s.subarray(0, n);
}

function sameRange(a: Buffer, a0: number, a1: number, b: Buffer, b0: number, b1: number): boolean {
  return a1 - a0 === b1 - b0 && a.compare(b, b0, b1, a0, a1) === 0;
}

function sameLine(a: Buffer, sa: Uint32Array, i: number, b: Buffer, sb: Uint32Array, j: number): boolean {
  return sameRange(a, sa[i], sa[i + 1], b, sb[j], sb[j + 1]);
}

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

/**
 * Patch ops, accumulated as text + raw inserted bytes. Every op counts
 * bytes: `=N` keep the next N bytes of the old file, `-N` skip them, `+N`
 * insert the N bytes that follow. Adjacent ops of one kind are merged.
 */
class OpWriter {
  readonly parts: Buffer[] = [];
  bytes = 0;
  private op = '';
  private count = 0;
  private insFrom = 0;

  constructor(private readonly src: Buffer) {}

  keep(n: number): void { this.add('=', n, 0); }
  del(n: number): void { this.add('-', n, 0); }
  /** Insert src[from, to). */
  ins(from: number, to: number): void { this.add('+', to - from, from); }

  private add(op: string, n: number, from: number): void {
    if (n === 0) return;
    if (op === this.op && (op !== '+' || from === this.insFrom + this.count)) { this.count += n; return; }
    this.close();
    this.op = op;
    this.count = n;
    this.insFrom = from;
  }

  close(): void {
    if (this.count === 0) return;
    this.push(Buffer.from(`${this.op}${this.count}\n`, 'latin1'));
    if (this.op === '+') this.push(this.src.subarray(this.insFrom, this.insFrom + this.count));
    this.count = 0;
    this.op = '';
  }

  private push(b: Buffer): void {
    this.parts.push(b);
    this.bytes += b.length;
  }
}

/** Moves `p` forward to the first line start (of both files) at or after it. */
function alignSuffix(a: Buffer, ea: number, la: number, b: Buffer, eb: number): number {
  // ea/eb start a common byte run that reaches the ends of both files.
  if ((ea === 0 || a[ea - 1] === 10) && (eb === 0 || b[eb - 1] === 10)) return 0;
  const nl = a.indexOf(10, ea);
  return nl < 0 ? la - ea : nl + 1 - ea;
}

/** The ops turning `a` into `b` (see the module comment). */
function diffLines(a: Buffer, b: Buffer): OpWriter {
  const ops = new OpWriter(b);
  const la = a.length;
  const lb = b.length;
  // 1. common prefix and suffix, on bytes, cut back to line boundaries.
  let pre = commonPrefix(a, 0, la, b, 0, lb);
  if (!(pre === la && pre === lb)) pre = pre === 0 ? 0 : a.lastIndexOf(10, pre - 1) + 1;
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
    if (!(i + run === ea && j + run === eb)) run = run === 0 ? 0 : a.lastIndexOf(10, i + run - 1) + 1 - i;
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
      const da = findLine(a, i, ea, b.subarray(j, bLine));
      const db = findLine(b, j, eb, a.subarray(i, aLine));
      searchBudget -= (da >= 0 ? da - i : Math.min(ea - i, RESYNC_WINDOW)) + (db >= 0 ? db - j : Math.min(eb - j, RESYNC_WINDOW));
      if (da >= 0 && (db < 0 || da - i <= db - j)) { ops.del(da - i); i = da; continue; }
      if (db >= 0) { ops.ins(j, db); j = db; continue; }
    }
    // 3. no quick resync: fingerprints for the rest of the middle.
    middle(a, lineStarts(a, i, ea), b, lineStarts(b, j, eb), ops);
    i = ea;
    j = eb;
  }
  if (i < ea) ops.del(ea - i);
  if (j < eb) ops.ins(j, eb);
  ops.keep(suf);
  ops.close();
  return ops;
}

function middle(a: Buffer, sa: Uint32Array, b: Buffer, sb: Uint32Array, ops: OpWriter): void {
  const ma = sa.length - 1;
  const mb = sb.length - 1;
  // Fingerprint table of the old lines: open addressing on 64-bit xxhash,
  // each slot heading a FIFO list of the old lines with that fingerprint.
  let cap = 1024;
  while (cap < ma * 2) cap *= 2;
  const mask = cap - 1;
  const used = new Uint8Array(cap);
  const keyHi = new Uint32Array(cap);
  const keyLo = new Uint32Array(cap);
  const head = new Int32Array(cap).fill(-1);
  const tail = new Int32Array(cap);
  const next = new Int32Array(ma).fill(-1);
  const find = (h: bigint, insert: boolean): number => {
    const lo = Number(h & 0xffffffffn);
    const hi = Number(h >> 32n);
    let k = (lo ^ Math.imul(hi, 0x9e3779b1)) & mask;
    while (used[k]) {
      if (keyHi[k] === hi && keyLo[k] === lo) return k;
      k = (k + 1) & mask;
    }
    if (!insert) return -1;
    used[k] = 1; keyHi[k] = hi; keyLo[k] = lo;
    return k;
  };
  for (let i = 0; i < ma; i++) {
    const k = find(h64Raw(a.subarray(sa[i], sa[i + 1])), true);
    if (head[k] === -1) head[k] = i; else next[tail[k]] = i;
    tail[k] = i;
  }

  // Pair every new line with the first unpaired equal old line.
  const partnerOfB = new Int32Array(mb).fill(-1);
  const rankA = new Int32Array(ma).fill(-1);
  let pairs = 0;
  for (let j = 0; j < mb; j++) {
    const k = find(h64Raw(b.subarray(sb[j], sb[j + 1])), false);
    if (k < 0) continue;
    const i = head[k];
    if (i === -1) continue;
    if (!sameLine(a, sa, i, b, sb, j)) continue; // fingerprint collision
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
/**
 * The patch turning the file `oldDbPath` into `newDbPath` (both must exist).
 * Format: see protocol.md.
 */
export function createDbPatch(oldDbPath: string, newDbPath: string): Buffer {
  const a = readFileSync(oldDbPath);
  const b = readFileSync(newDbPath);
  return createDbPatchFromBuffers(a, b);
}

/** createDbPatch on contents already in memory. */
export function createDbPatchFromBuffers(a: Buffer, b: Buffer): Buffer {
  const ops = diffLines(a, b);
  let body = Buffer.concat(ops.parts, ops.bytes);
  let enc = 'plain';
  if (body.length >= DEFLATE_MIN && body.length <= DEFLATE_MAX) {
    const z = deflateRawSync(body, { level: 1 });
    if (z.length < body.length) { body = z; enc = 'deflate'; }
  }
  const head = `${PATCH_MAGIC}\nfrom ${sha1hex(a)}\nto ${sha1hex(b)} ${b.length}\nops ${enc} ${body.length}\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

interface ParsedPatch {
  readonly from: string;
  readonly to: string;
  readonly size: number;
  readonly ops: Buffer;
}

/** Parses the header of a patch (and inflates its ops). Throws PatchError. */
export function parseDbPatch(patch: Buffer): ParsedPatch {
  if (patch.length === 0) throw new PatchError('empty db-file patch (what a dry-run server sends): there is nothing to apply');
  if (patch[0] === 0xd6 && patch[1] === 0xc3 && patch[2] === 0xc4) {
    throw new PatchError('this is an xdelta3 (VCDIFF) patch, as upstream syncmaildir sends, not an smd db-file patch');
  }
  let pos = 0;
  const line = (what: string): string => {
    const nl = patch.indexOf(10, pos);
    if (nl < 0 || nl - pos > 200) throw new PatchError(`malformed db-file patch: missing ${what} line`);
    const l = patch.toString('latin1', pos, nl);
    pos = nl + 1;
    return l;
  };
  const magic = line('magic');
  if (magic !== PATCH_MAGIC) {
    throw new PatchError(`not an smd db-file patch (first line ${JSON.stringify(magic.slice(0, 40))}, expected "${PATCH_MAGIC}")`);
  }
  const mf = /^from ([0-9a-f]{40})$/.exec(line('from'));
  if (!mf) throw new PatchError('malformed db-file patch: bad "from" line');
  const mt = /^to ([0-9a-f]{40}) (0|[1-9][0-9]{0,15})$/.exec(line('to'));
  if (!mt) throw new PatchError('malformed db-file patch: bad "to" line');
  const mo = /^ops (plain|deflate) (0|[1-9][0-9]{0,15})$/.exec(line('ops'));
  if (!mo) throw new PatchError('malformed db-file patch: bad "ops" line');
  const len = Number(mo[2]);
  if (patch.length - pos !== len) {
    throw new PatchError(`malformed db-file patch: ops section is ${patch.length - pos} bytes, header says ${len}`);
  }
  let ops = patch.subarray(pos);
  if (mo[1] === 'deflate') {
    try { ops = inflateRawSync(ops); } catch (e) {
      throw new PatchError(`malformed db-file patch: cannot inflate the ops (${(e as Error).message})`);
    }
  }
  return { from: mf[1], to: mt[1], size: Number(mt[2]), ops };
}

/** Applies parsed ops to `old`; calls `emit` with each output piece. Throws PatchError. */
function runOps(old: Buffer, ops: Buffer, emit: (piece: Buffer) => void): void {
  let at = 0; // position in old
  let pos = 0; // position in ops
  const bad = (why: string): never => { throw new PatchError(`malformed db-file patch: ${why}`); };
  while (pos < ops.length) {
    const nl = ops.indexOf(10, pos);
    if (nl < 0 || nl - pos > 20) bad('unterminated operation');
    const op = ops.toString('latin1', pos, nl);
    pos = nl + 1;
    const m = /^([=+-])([1-9][0-9]{0,15})$/.exec(op);
    if (!m) bad(`bad operation ${JSON.stringify(op)}`);
    const n = Number(m![2]);
    if (m![1] === '+') {
      if (pos + n > ops.length) bad('inserted bytes run past the end of the patch');
      emit(ops.subarray(pos, pos + n));
      pos += n;
      continue;
    }
    if (at + n > old.length) bad(`operation ${op} goes past the end of the old db-file (${old.length} bytes)`);
    if (at + n < old.length && old[at + n - 1] !== 10) bad(`operation ${op} does not end on a line boundary of the old db-file`);
    if (m![1] === '=') emit(old.subarray(at, at + n));
    at += n;
  }
  if (at !== old.length) bad(`the operations cover ${at} of the ${old.length} bytes of the old db-file`);
}

/** Applies a patch to buffers in memory (checks both SHA-1s). */
export function applyDbPatchToBuffer(old: Buffer, patch: Buffer): Buffer {
  const p = parseDbPatch(patch);
  const oldSha = sha1hex(old);
  if (oldSha !== p.from) throw new PatchError(`the db-file patch applies to a db-file with SHA-1 ${p.from}, ours is ${oldSha}`);
  const parts: Buffer[] = [];
  runOps(old, p.ops, (x) => parts.push(x));
  const out = Buffer.concat(parts);
  const sha = sha1hex(out);
  if (out.length !== p.size || sha !== p.to) {
    throw new PatchError(`the patched db-file has SHA-1 ${sha} (${out.length} bytes), the patch promised ${p.to} (${p.size} bytes)`);
  }
  return out;
}

/**
 * Applies `patch` to the file `oldDbPath` and writes the result to `outPath`
 * (temporary file, fsync, rename, directory fsync). The SHA-1 of the old file
 * and of the result are checked against the patch. Throws PatchError.
 */
export function applyDbPatch(oldDbPath: string, patch: Buffer, outPath: string): { sha1: string; bytes: number } {
  const p = parseDbPatch(patch);
  let old: Buffer;
  try { old = readFileSync(oldDbPath); } catch (e) {
    throw new PatchError(`cannot read the db-file ${oldDbPath} to patch: ${(e as Error).message}`);
  }
  const oldSha = sha1hex(old);
  if (oldSha !== p.from) {
    throw new PatchError(`the db-file patch applies to a db-file with SHA-1 ${p.from}, but ${oldDbPath} has SHA-1 ${oldSha}`);
  }
  const dir = dirname(outPath);
  const tmp = join(dir, `.${basename(outPath)}.${process.pid}.patching`);
  const fd = openSync(tmp, 'w', 0o600);
  const hash = createHash('sha1');
  let bytes = 0;
  let ok = false;
  try {
    runOps(old, p.ops, (piece) => {
      hash.update(piece);
      for (let off = 0; off < piece.length;) off += writeSync(fd, piece, off, piece.length - off);
      bytes += piece.length;
    });
    const sha = hash.digest('hex');
    if (bytes !== p.size || sha !== p.to) {
      throw new PatchError(`the patched db-file has SHA-1 ${sha} (${bytes} bytes), the patch promised ${p.to} (${p.size} bytes)`);
    }
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, outPath);
    ok = true;
    fsyncDir(dir);
    return { sha1: sha, bytes };
  } finally {
    if (!ok) {
      try { closeSync(fd); } catch { /* already closed */ }
      try { unlinkSync(tmp); } catch { /* not there */ }
    }
  }
}

function fsyncDir(dir: string): void {
  let fd: number;
  try { fd = openSync(dir, 'r'); } catch { return; }
  try { fsyncSync(fd); } catch { /* some file systems refuse */ } finally { closeSync(fd); }
}
