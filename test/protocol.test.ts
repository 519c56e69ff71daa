/**
 * The db-file patch of @smd/protocol, its heavy cases: big and random round
 * trips (mostly patch-create.ts), a 100 MB patch streamed through a child
 * process, patches built in bounded memory. The fast, pure cases of applying
 * (patch.ts: the header, every refusal, every applier) are in patch.test.ts,
 * which the mutation run of patch.ts uses; the wire and the handshake are in
 * wire.test.ts.
 */
import t from 'tap';
import { mkdtempSync, writeFileSync, rmSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { dbl, roundTrip, sha1 } from './helpers/db-patch-fixture.js';
import { createDbPatch, createDbPatchFromBuffers, applyDbPatchToBuffer, openDbPatch } from '@smd/protocol';

const ROOT = resolve(import.meta.dirname, '..');
const dirs: string[] = [];
t.teardown(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const tmp = (): string => { const d = mkdtempSync(join(tmpdir(), 'smd-protocol-')); dirs.push(d); return d; };



let seed = 42;
const rnd = (): number => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
const ri = (n: number): number => Math.floor(rnd() * n);


t.test('db-file patch', async (t) => {
  t.test('random edits, reorderings, duplicates, missing final newline', async (t) => {
    let total = 0;
    for (let it = 0; it < 400; it++) {
      const n = ri(it < 300 ? 40 : 3000);
      const pool = ri(4) === 0 ? 5 : 1e6; // small pools give duplicate lines
      const a = Array.from({ length: n }, () => `l${ri(pool)} x\n`);
      const b = a.slice();
      for (let e = ri(8); e > 0; e--) {
        const r = ri(6);
        if (r === 0 && b.length > 0) b.splice(ri(b.length), 1 + ri(3));
        else if (r === 1) b.splice(ri(b.length + 1), 0, `n${ri(pool)} y\n`);
        else if (r === 2 && b.length > 1) { const x = b.splice(ri(b.length), 1 + ri(50)); b.splice(ri(b.length + 1), 0, ...x); }
        else if (r === 3) b.reverse();
        else if (r === 4) b.sort();
        else b.push(`z${ri(pool)}\n`);
      }
      let A = a.join('');
      let B = b.join('');
      if (ri(5) === 0) A = A.slice(0, Math.max(0, A.length - 1));
      if (ri(5) === 0) B = B.slice(0, Math.max(0, B.length - 1));
      roundTrip(t, A, B, `case ${it}`);
      total++;
    }
    t.equal(total, 400, '400 random round trips');
  });

  t.test('big reordered block (LIS path) and moved block (fast-diff path)', async (t) => {
    const n = 20000;
    const a = Array.from({ length: n }, (_, i) => dbl(i));
    const rev = a.slice(0, 10).concat(a.slice(10).reverse());
    roundTrip(t, a.join(''), rev.join(''), 'reverse of 40k lines');
    const moved = a.slice(0, 100).concat(a.slice(5000, 5010), a.slice(100, 5000), a.slice(5010));
    const p = roundTrip(t, a.join(''), moved.join(''), 'ten lines moved up');
    t.ok(p.length < 3000, `moving 10 lines costs about 10 lines (${p.length} bytes)`);
    const folderGone = a.slice(0, 5000).concat(a.slice(9000), [dbl(99999)]);
    const pf = roundTrip(t, a.join(''), folderGone.join(''), 'block of 4,000 lines deleted');
    t.ok(pf.length < 400, `a deleted block costs one op (${pf.length} bytes)`);
    const folderNew = a.slice(0, 5000).concat(Array.from({ length: 3000 }, (_, i) => dbl(50000 + i)), a.slice(5000));
    roundTrip(t, a.join(''), folderNew.join(''), 'block of 3,000 lines inserted in the middle');
    const shuffled = a.slice();
    for (let i = shuffled.length - 1; i > 0; i--) { const j = ri(i + 1); [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]]; }
    roundTrip(t, a.join(''), shuffled.join(''), 'full shuffle');
  });
});

t.test('db-file patch applied as a stream (the client path)', async (t) => {
  t.test('memory does not grow with the patch: a 100 MB patch streamed through a child process', async (t) => {
    const d = tmp();
    writeFileSync(join(d, 'old'), '');
    // The child generates the patch on the fly (never whole in memory) and reports its peak RSS.
    const script = `
      import { applyDbPatchStream, PATCH_MAGIC } from '@smd/protocol';
      import { createHash } from 'node:crypto';
      const line = Buffer.from('0123456789abcdef0123456789abcdef01234567 0123456789abcdef0123456789abcdef01234567 Mail/cur/x:2,S\\n');
      const n = Math.floor(100e6 / line.length), size = n * line.length;
      const h = createHash('sha1'); for (let i = 0; i < n; i++) h.update(line);
      const ops = '+' + size + '\\n';
      async function* gen() {
        yield Buffer.from(PATCH_MAGIC + '\\nfrom da39a3ee5e6b4b0d3255bfef95601890afd80709\\nto ' + h.digest('hex') + ' ' + size + '\\nops plain ' + (ops.length + size) + '\\n' + ops);
        const block = Buffer.concat(Array(1000).fill(line));
        for (let i = 0; i < n; i += 1000) yield i + 1000 <= n ? block : block.subarray(0, (n - i) * line.length);
      }
      const before = process.resourceUsage().maxRSS;
      const r = await applyDbPatchStream(process.argv[1] + '/old', gen(), process.argv[1] + '/out');
      console.log(JSON.stringify({ bytes: r.bytes, before, peak: process.resourceUsage().maxRSS }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script, d], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    const r = JSON.parse(out) as { bytes: number; before: number; peak: number };
    t.ok(r.bytes > 99e6, `applied ${r.bytes} bytes`);
    t.ok(r.peak - r.before < 64 * 1024, `peak RSS grew by ${Math.round((r.peak - r.before) / 1024)} MiB (< 64 MiB) for a 100 MB patch`);
    t.equal(statSync(join(d, 'out')).size, r.bytes);
  });
});

t.test('db-file patch built from files in bounded memory, sent in pieces', async (t) => {
  const lines = Array.from({ length: 60000 }, (_, i) => dbl(i, `Mail/.F${i % 7}/cur/${1700000000 + i}.M${i}P1.host:2,S`));
  const A = lines.join('');
  t.ok(A.length > 7 * (1 << 20), 'the old file spans several read windows');
  // Changes spread over the windows: scattered renames (removed from their place, appended),
  // a deleted block bigger than the resync window reaches, a reordered block, new lines.
  const gone = new Set<number>();
  for (let i = 17; i < lines.length; i += 997) gone.add(i);
  for (let i = 20000; i < 50000; i++) gone.add(i);
  const survivors = lines.filter((_, i) => !gone.has(i));
  const cut = survivors.slice(100, 400).reverse();
  survivors.splice(100, 300, ...cut);
  const B = survivors.join('') + [...gone].filter((i) => i < 20000).map((i) => dbl(i, `Mail/cur/${i}.moved:2,RS`)).join('') + dbl(777777);
  const d = tmp();
  writeFileSync(join(d, 'db'), A, 'latin1');
  writeFileSync(join(d, 'db.new'), B, 'latin1');
  const fromFiles = createDbPatch(join(d, 'db'), join(d, 'db.new'));
  const inMemory = createDbPatchFromBuffers(Buffer.from(A, 'latin1'), Buffer.from(B, 'latin1'));
  t.ok(fromFiles.equals(inMemory), 'the patch read through windows is the one built in memory');
  t.ok(applyDbPatchToBuffer(Buffer.from(A, 'latin1'), fromFiles).equals(Buffer.from(B, 'latin1')), 'and it applies');

  // A first sync: a plain patch (over 16 MiB) made of the whole new file, never read whole.
  const big = lines.join('').repeat(3);
  writeFileSync(join(d, 'empty'), '');
  writeFileSync(join(d, 'big'), big, 'latin1');
  const before = process.memoryUsage().arrayBuffers;
  const p = openDbPatch(join(d, 'empty'), join(d, 'big'));
  const grew = process.memoryUsage().arrayBuffers - before;
  t.ok(grew < 8 * (1 << 20), `building a ${(big.length / 1048576).toFixed(0)} MiB patch holds a few MiB (${(grew / 1048576).toFixed(1)} MiB)`);
  const hash = createHash('sha1');
  let sent = 0;
  let largest = 0;
  for (const piece of p.pieces()) { hash.update(piece); sent += piece.length; largest = Math.max(largest, piece.length); }
  p.close();
  t.equal(sent, p.size, 'the pieces add up to the announced size');
  t.ok(largest <= 1 << 20, 'no piece is bigger than a read block');
  const whole = createDbPatch(join(d, 'empty'), join(d, 'big'));
  t.equal(hash.digest('hex'), sha1(whole), 'the pieces are the patch');
  t.match(whole.toString('latin1', 0, 200), /\nops plain \d+\n/);
  t.ok(applyDbPatchToBuffer(Buffer.alloc(0), whole).equals(Buffer.from(big, 'latin1')), 'the first-sync patch applies');

  // The new file changes after the patch was built: refused before its lines are sent.
  const q = openDbPatch(join(d, 'empty'), join(d, 'big'));
  writeFileSync(join(d, 'big'), big.slice(1), 'latin1');
  t.throws(() => { for (const _ of q.pieces()) { /* consume */ } }, /changed while its db-file patch was being sent/);
  q.close();
});

t.test('db-file patch: a fingerprint collision costs size, never correctness', async (t) => {
  const a = Array.from({ length: 3000 }, (_, i) => dbl(i));
  const shuffled = a.slice();
  for (let i = shuffled.length - 1; i > 0; i--) { const j = ri(i + 1); [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]]; }
  const A = Buffer.from(a.join(''), 'latin1');
  const B = Buffer.from(shuffled.join(''), 'latin1');
  // Every line of the same length collides: pairs are wrong, the check of the result sees it.
  const colliding = createDbPatchFromBuffers(A, B, { fingerprint: () => 0n });
  t.ok(applyDbPatchToBuffer(A, colliding).equals(B), 'the patch still produces the new file');
  const good = createDbPatchFromBuffers(A, B);
  t.ok(applyDbPatchToBuffer(A, good).equals(B), 'and so does the usual one');
  t.ok(good.length < colliding.length, `the fallback only costs size (${good.length} < ${colliding.length} bytes)`);
});
