/**
 * Applying the db-file patch (@smd/protocol patch.ts), its fast and pure
 * cases: round trips through every applier, the header, every refusal
 * (corrupt, forged, bomb patches), the stream the client reads. Kept fast on
 * purpose: it is the test file of the mutation run of patch.ts (TESTING.md).
 * The heavy cases (big and random round trips, a 100 MB stream, patches built
 * in bounded memory) are in protocol.test.ts.
 */
import t from 'tap';
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, existsSync, rmSync } from 'node:fs';
import { constants as zlibConstants, deflateRawSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { concat, dbl, patchOf, refusals, roundTrip, sha1, splitEvery } from './helpers/db-patch-fixture.js';
import {
  WireReader,
  createDbPatch, createDbPatchFromBuffers, applyDbPatch, applyDbPatchStream, applyDbPatchToBuffer, parseDbPatch,
  MAX_DB_FILE, maxOpsBytes, PatchError, EMPTY_PATCH, isEmptyPatch, PATCH_MAGIC,
} from '@smd/protocol';
import { rejectsKind } from './helpers/protocol-errors.js';

const dirs: string[] = [];
t.teardown(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const tmp = (): string => { const d = mkdtempSync(join(tmpdir(), 'smd-patch-')); dirs.push(d); return d; };

/** An async iterable yielding the given pieces (latin1 strings or Buffers). */
async function* pieces(...ps: (string | Buffer)[]): AsyncGenerator<Buffer> {
  for (const p of ps) yield typeof p === 'string' ? Buffer.from(p, 'latin1') : p;
}

/** Raw DEFLATE that inflates to `prefix` then `mib` MiB of zeros, built without holding them (sync-flushed blocks repeat). */
function deflateBomb(prefix: string, mib: number): Buffer {
  const zeros = deflateRawSync(Buffer.alloc(1 << 20), { level: 9, finishFlush: zlibConstants.Z_SYNC_FLUSH });
  const head = deflateRawSync(Buffer.from(prefix, 'latin1'), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
  return Buffer.concat([head, ...Array<Buffer>(mib).fill(zeros), deflateRawSync(Buffer.alloc(0))]);
}

t.test('db-file patch', async (t) => {
  t.test('round trips on files', async (t) => {
    const d = tmp();
    const lines = Array.from({ length: 2000 }, (_, i) => dbl(i));
    const oldText = lines.join('');
    // upstream order: survivors keep their order, changed entries are appended
    const changed = new Set([5, 600, 601, 1999]);
    const newText = lines.filter((_, i) => !changed.has(i)).join('') + [...changed].map((i) => dbl(i, `Mail/cur/${i}.host:2,RS`)).join('') + dbl(5000);
    writeFileSync(join(d, 'db'), oldText, 'latin1');
    writeFileSync(join(d, 'db.new'), newText, 'latin1');
    const patch = createDbPatch(join(d, 'db'), join(d, 'db.new'));
    t.ok(patch.length < 1200, `small patch for 5 changed lines (${patch.length} bytes)`);
    t.ok(patch.subarray(0, PATCH_MAGIC.length + 1).equals(Buffer.from(`${PATCH_MAGIC}\n`)), 'magic line');
    const res = applyDbPatch(join(d, 'db'), patch, join(d, 'client.db.new'));
    t.same(readFileSync(join(d, 'client.db.new')), readFileSync(join(d, 'db.new')), 'result is the new db-file, byte for byte');
    t.same(res, { sha1: sha1(newText), bytes: Buffer.byteLength(newText, 'latin1') });
    t.same(readdirSync(d).sort(), ['client.db.new', 'db', 'db.new'], 'no temporary file left');
    // applying over the old file itself
    applyDbPatch(join(d, 'db'), patch, join(d, 'db'));
    t.equal(readFileSync(join(d, 'db'), 'latin1'), newText, 'outPath may be the old file');
    const p = parseDbPatch(patch);
    t.equal(p.from, sha1(oldText));
    t.equal(p.to, sha1(newText));
  });

  t.test('first sync, empty, identical', async (t) => {
    const text = Array.from({ length: 5000 }, (_, i) => dbl(i)).join('');
    const p = roundTrip(t, '', text, 'first sync');
    t.ok(p.length < text.length * 0.8, `first-sync patch is deflated (${p.length} < ${text.length})`);
    t.match(p.toString('latin1', 0, 200), /\nops deflate \d+\n/);
    const same = roundTrip(t, text, text, 'identical');
    t.ok(same.length < 150, `identical files: header + one keep (${same.length} bytes)`);
    roundTrip(t, '', '', 'both empty');
    roundTrip(t, text, '', 'everything deleted');
  });

  t.test('latin1 names with spaces and high bytes', async (t) => {
    const odd = ['Mail/cur/a b c:2,S', 'Mail/.Entw\u00fcrfe/cur/\u00e9t\u00e9 %41:2,', 'Mail/cur/\u00ff\u00fe\u0080', 'Mail/cur/tab\there'];
    const a = odd.map((n, i) => dbl(i, n)).join('');
    const b = dbl(1, odd[1]) + dbl(0, odd[0]) + dbl(9, 'Mail/cur/n\u00e4me with  two spaces') + dbl(3, odd[3]);
    const p = roundTrip(t, a, b, 'latin1');
    const d = tmp();
    writeFileSync(join(d, 'old'), Buffer.from(a, 'latin1'));
    applyDbPatch(join(d, 'old'), p, join(d, 'out'));
    t.ok(readFileSync(join(d, 'out')).equals(Buffer.from(b, 'latin1')), 'bytes exact through files');
  });

  t.test('wrong old file -> PatchError, nothing written', async (t) => {
    const d = tmp();
    writeFileSync(join(d, 'old'), dbl(1) + dbl(2));
    writeFileSync(join(d, 'new'), dbl(1) + dbl(3));
    const patch = createDbPatch(join(d, 'old'), join(d, 'new'));
    writeFileSync(join(d, 'other'), dbl(1) + dbl(4));
    t.throws(() => applyDbPatch(join(d, 'other'), patch, join(d, 'out')), PatchError);
    t.throws(() => applyDbPatch(join(d, 'other'), patch, join(d, 'out')), /SHA-1/);
    t.throws(() => applyDbPatch(join(d, 'missing'), patch, join(d, 'out')), PatchError);
    t.notOk(existsSync(join(d, 'out')), 'no output');
    t.same(readdirSync(d).sort(), ['new', 'old', 'other'], 'no temporary file left');
  });

  t.test('corrupted patches -> PatchError', async (t) => {
    const old = Buffer.from(Array.from({ length: 300 }, (_, i) => dbl(i)).join(''), 'latin1');
    const neu = Buffer.from(Array.from({ length: 300 }, (_, i) => dbl(i === 150 ? 999 : i)).join(''), 'latin1');
    const good = createDbPatchFromBuffers(old, neu);
    t.ok(applyDbPatchToBuffer(old, good).equals(neu));
    const text = good.toString('latin1');
    const bad: [string, Buffer][] = [
      ['empty (dry-run) patch', EMPTY_PATCH],
      ['xdelta3 magic', Buffer.from([0xd6, 0xc3, 0xc4, 0x00, 0x05])],
      ['wrong magic', Buffer.from(text.replace(PATCH_MAGIC, 'smd-dbpatch 2'), 'latin1')],
      ['truncated', good.subarray(0, good.length - 5)],
      ['header only', good.subarray(0, text.indexOf('ops '))],
      ['extra byte', Buffer.concat([good, Buffer.from('x')])],
      ['bad target hash', Buffer.from(text.replace(/\nto ([0-9a-f])/, (_, c: string) => `\nto ${c === '0' ? '1' : '0'}`), 'latin1')],
      ['bad target size', Buffer.from(text.replace(/\nto ([0-9a-f]{40}) (\d+)/, (_, h: string, s: string) => `\nto ${h} ${Number(s) + 1}`), 'latin1')],
    ];
    // plain ops: hand-made patches with bad operations
    const mk = (ops: string, to = sha1(neu), size = neu.length): Buffer =>
      Buffer.from(`${PATCH_MAGIC}\nfrom ${sha1(old)}\nto ${to} ${size}\nops plain ${Buffer.byteLength(ops, 'latin1')}\n${ops}`, 'latin1');
    bad.push(['keep past the end', mk(`=${old.length + 1}\n`)]);
    bad.push(['keep not on a line boundary', mk(`=10\n-${old.length - 10}\n`)]);
    bad.push(['ops do not cover the old file', mk(`=${dbl(0).length}\n`)]);
    bad.push(['unknown op', mk('*3\n')]);
    bad.push(['insert past the end', mk('+100\nabc')]);
    bad.push(['deflate garbage', Buffer.from(`${PATCH_MAGIC}\nfrom ${sha1(old)}\nto ${sha1(neu)} ${neu.length}\nops deflate 4\nabcd`, 'latin1')]);
    // a byte flipped inside the deflated ops
    const flipped = Buffer.from(good);
    flipped[flipped.length - 3] ^= 0x55;
    bad.push(['flipped byte', flipped]);
    // The same refusals on every applier: in memory, file, and stream (the client's path):
    // refused, no output, no temporary file, the old file untouched.
    const d = tmp();
    writeFileSync(join(d, 'db'), old);
    for (const [what, p] of bad) {
      t.throws(() => applyDbPatchToBuffer(old, p), PatchError, `${what} (buffer)`);
      t.throws(() => applyDbPatch(join(d, 'db'), p, join(d, 'db.new')), PatchError, `file: ${what}`);
      await t.rejects(applyDbPatchStream(join(d, 'db'), concat(splitEvery(p, 7)), join(d, 'db.new')), PatchError, `stream: ${what}`);
      t.same(readdirSync(d), ['db'], `${what}: nothing written`);
    }
    t.ok(readFileSync(join(d, 'db')).equals(old), 'the old db-file is untouched');
    const lie = bad.find(([w]) => w === 'bad target hash')![1];
    const promised = /the patched db-file has SHA-1 [0-9a-f]{40} \(\d+ bytes\), the patch promised/;
    t.throws(() => applyDbPatch(join(d, 'db'), lie, join(d, 'db.new')), promised);
    await t.rejects(applyDbPatchStream(join(d, 'db'), concat([lie]), join(d, 'db.new')), promised);
    const res = applyDbPatch(join(d, 'db'), good, join(d, 'db'));
    t.same(res, { sha1: sha1(neu), bytes: neu.length }, 'file: the good patch applies');
    t.ok(isEmptyPatch(EMPTY_PATCH) && !isEmptyPatch(good));
    t.throws(() => applyDbPatchToBuffer(old, EMPTY_PATCH), /dry-run/);
    t.throws(() => applyDbPatchToBuffer(old, Buffer.from([0xd6, 0xc3, 0xc4, 0])), /xdelta3/);
  });
});

t.test('db-file patch applied as a stream (the client path)', async (t) => {
  t.test('through a WireReader, in pieces of any size, plain and deflated', async (t) => {
    const d = tmp();
    const lines = Array.from({ length: 4000 }, (_, i) => dbl(i));
    const cases: [string, string, string][] = [
      ['first sync (deflated)', '', lines.join('')],
      ['a few changes (plain)', lines.join(''), lines.filter((_, i) => i % 1000 !== 7).join('') + dbl(9999)],
      ['everything deleted', lines.join(''), ''],
    ];
    for (const [what, a, b] of cases) {
      writeFileSync(join(d, 'old'), a, 'latin1');
      const patch = createDbPatchFromBuffers(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1'));
      for (const size of [...(patch.length < 20_000 ? [1] : []), 509, 65536, patch.length]) {
        const r = new WireReader(concat([Buffer.from(`chunk ${patch.length}\n`)], splitEvery(patch, size), [Buffer.from('DONE\n')]));
        const n = await r.readChunkHeader();
        const res = await applyDbPatchStream(join(d, 'old'), r.readBytes(n), join(d, 'out'));
        t.equal(readFileSync(join(d, 'out'), 'latin1'), b, `${what}, pieces of ${size}: the new db-file`);
        t.same(res, { sha1: sha1(b), bytes: Buffer.byteLength(b, 'latin1'), patchBytes: patch.length });
        t.equal(await r.readLine(), 'DONE', 'exactly the chunk was consumed');
      }
      t.match(patch.toString('latin1', 0, 200), what.includes('deflated') ? /\nops deflate / : /\nops plain /);
    }
    writeFileSync(join(d, 'old'), 'a\nb\n');
    const p = createDbPatchFromBuffers(Buffer.from('a\nb\n'), Buffer.from('a\nc\n'));
    await applyDbPatchStream(join(d, 'old'), pieces(p), join(d, 'old'));
    t.equal(readFileSync(join(d, 'old'), 'latin1'), 'a\nc\n', 'outPath may be the old file');
    t.same(readdirSync(d).sort(), ['old', 'out'], 'no temporary file left');
  });

  t.test('the connection dropping inside the patch is a ProtocolError, not a PatchError', async (t) => {
    const d = tmp();
    writeFileSync(join(d, 'old'), '');
    const patch = createDbPatchFromBuffers(Buffer.alloc(0), Buffer.from(Array.from({ length: 3000 }, (_, i) => dbl(i)).join(''), 'latin1'));
    const r = new WireReader(pieces(`chunk ${patch.length}\n`, patch.subarray(0, patch.length >> 1)));
    const n = await r.readChunkHeader();
    await rejectsKind(t, applyDbPatchStream(join(d, 'old'), r.readBytes(n), join(d, 'out')), 'eof', 'EOF inside the patch');
    t.same(readdirSync(d), ['old'], 'nothing written');
    // Even when the patch was made for another db-file: the connection dropped, that is what is said.
    const foreign = patchOf(sha1('another'), sha1('x'), 10, 'plain', Buffer.from(`+10\n${'x'.repeat(10)}`));
    const r2 = new WireReader(pieces(`chunk ${foreign.length}\n`, foreign.subarray(0, foreign.length - 4)));
    await rejectsKind(t, applyDbPatchStream(join(d, 'old'), r2.readBytes(await r2.readChunkHeader()), join(d, 'out')), 'eof', 'EOF inside a foreign patch');
  });

  t.test('a patch bomb is refused early, by every applier', async (t) => {
    const d = tmp();
    const old = Buffer.from(dbl(1) + dbl(2), 'latin1');
    writeFileSync(join(d, 'old'), old);
    // 3.5 MB that inflate to 3.4 GiB of zeros (the reported bomb made the client take 7.3 GiB for 41 s).
    const zeros = deflateBomb('', 3400);
    t.ok(zeros.length > 3_400_000 && zeros.length < 3_700_000, `a ${zeros.length}-byte bomb`);
    const started = Date.now();
    const bomb = patchOf(sha1(old), sha1('x'), 1 << 30, 'deflate', zeros);
    await t.rejects(applyDbPatchStream(join(d, 'old'), concat(splitEvery(bomb, 65536)), join(d, 'out')),
      { name: 'PatchError', message: /unterminated operation/ }, 'stream: refused at the first op');
    // The in-memory appliers inflate whole, bounded by what the announced size allows.
    const small = patchOf(sha1(old), sha1('x'), 1 << 20, 'deflate', zeros);
    t.throws(() => applyDbPatchToBuffer(old, small), { name: 'PatchError', message: /inflate beyond 4194\d+ bytes/ }, 'buffer: refused, bounded inflate');
    t.throws(() => applyDbPatchToBuffer(old, small), { message: `the ops of the db-file patch inflate beyond ${maxOpsBytes(old.length, 1 << 20)} bytes, the most a patch from ${old.length} to ${1 << 20} bytes can hold: refused (a forged patch, or a patch bomb)` }, 'the whole message');
    t.throws(() => applyDbPatch(join(d, 'old'), small, join(d, 'out')), { name: 'PatchError', message: /inflate beyond/ }, 'file: refused');
    t.ok(Date.now() - started < 30_000, `refused in ${Date.now() - started} ms, not after inflating 3.4 GiB`);

    // Valid ops first (delete the old lines, insert 1 MiB), then the zeros: no op.
    const inserting = patchOf(sha1(old), sha1('x'), 1 << 20, 'deflate', deflateBomb(`-${old.length}\n+${1 << 20}\n`, 64));
    await t.rejects(applyDbPatchStream(join(d, 'old'), pieces(inserting), join(d, 'out')), { name: 'PatchError', message: /unterminated operation/ });
    // Ops inserting more than the announced result, and ops inflating beyond what that result allows.
    const tooBig = patchOf(sha1(old), sha1('x'), 10, 'plain', Buffer.from(`-${old.length}\n+100\n${'x'.repeat(100)}`));
    await t.rejects(applyDbPatchStream(join(d, 'old'), pieces(tooBig), join(d, 'out')), { name: 'PatchError', message: /bigger than the announced 10 bytes/ });
    const overLimit = patchOf(sha1(old), sha1('x'), 10, 'deflate', deflateBomb(`-${old.length}\n+10\n`, 1));
    await t.rejects(applyDbPatchStream(join(d, 'old'), pieces(overLimit), join(d, 'out')), { name: 'PatchError', message: /inflate beyond \d+ bytes/ });
    t.same(readdirSync(d), ['old'], 'nothing written');
  });

  t.test('header limits: announced size, ops length, maxSize', async (t) => {
    const d = tmp();
    const old = Buffer.from(dbl(1), 'latin1');
    writeFileSync(join(d, 'old'), old);
    const from = sha1(old);
    const refused = async (p: Buffer, re: RegExp, what: string, opts?: { maxSize: number }): Promise<void> => {
      await t.rejects(applyDbPatchStream(join(d, 'old'), pieces(p), join(d, 'out'), opts), { name: 'PatchError', message: re }, what);
    };
    await refused(patchOf(from, sha1('x'), MAX_DB_FILE + 1, 'plain', Buffer.from('=1\n')), /more than the \d+ a db-file may have/, 'beyond MAX_DB_FILE');
    await refused(patchOf(from, sha1('x'), 10_000, 'plain', Buffer.from(`=${old.length}\n+3\nab\n`)), /cannot turn/, 'more than the ops can insert');
    await refused(patchOf(from, sha1('x'), 5000, 'deflate', Buffer.from([3, 0])), /cannot turn/, 'more than DEFLATE can inflate to');
    const ops = Buffer.from(`=${old.length}\n` + `+1\nx`.repeat(40));
    await refused(patchOf(from, sha1('x'), 40, 'plain', Buffer.concat([ops, Buffer.alloc(maxOpsBytes(old.length, 40))])), /longer than any patch/, 'plain ops longer than possible');
    const good = createDbPatchFromBuffers(old, Buffer.from(dbl(1) + dbl(2), 'latin1'));
    await refused(good, /more than the 100 expected/, 'the caller\'s maxSize', { maxSize: 100 });
    await applyDbPatchStream(join(d, 'old'), pieces(good), join(d, 'out'), { maxSize: 1000 });
    t.equal(readFileSync(join(d, 'out'), 'latin1'), dbl(1) + dbl(2), 'within maxSize: applied');
    t.same(parseDbPatch(good).size, Buffer.byteLength(dbl(1) + dbl(2)), 'parseDbPatch reads the header');
    t.equal(maxOpsBytes(0, 0), 0);
  });
});

t.test('every refusal says why, the same through every applier', async (t) => {
  const d = tmp();
  const old = Buffer.from(dbl(1) + dbl(2), 'latin1');
  const neu = Buffer.from(dbl(1) + dbl(3), 'latin1');
  const from = sha1(old);
  const to = sha1(neu);
  const L = dbl(1).length;
  const plain = (ops: string, size = neu.length, h = to): Buffer => patchOf(from, h, size, 'plain', Buffer.from(ops, 'latin1'));
  const good = `=${L}\n-${L}\n+${L}\n${dbl(3)}`;
  t.same(await refusals(d, old, plain(good)), ['applied', 'applied', 'applied'], 'the hand-made patch applies');
  rmSync(join(d, 'db.new'));
  const cases: Array<[string, Buffer, string]> = [
    ['wrong magic', Buffer.from(`smd-dbpatch 2\nfrom ${from}\n`), 'not an smd db-file patch (first line "smd-dbpatch 2", expected "smd-dbpatch 1")'],
    ['a long wrong first line', Buffer.from(`${'w'.repeat(150)}\n`), `not an smd db-file patch (first line "${'w'.repeat(40)}", expected "smd-dbpatch 1")`],
    ['not a patch at all', Buffer.from('GET Mail/cur/x\n'), 'not an smd db-file patch (first line "GET Mail/cur/x", expected "smd-dbpatch 1")'],
    ['xdelta3', Buffer.from([0xd6, 0xc3, 0xc4, 0, 5, 6]), 'this is an xdelta3 (VCDIFF) patch, as upstream syncmaildir sends, not an smd db-file patch'],
    ['upper-case from', Buffer.from(`${PATCH_MAGIC}\nfrom ${from.toUpperCase()}\nto ${to} 1\nops plain 1\n=`), 'malformed db-file patch: bad "from" line'],
    ['short from', Buffer.from(`${PATCH_MAGIC}\nfrom ${from.slice(1)}\nto ${to} 1\nops plain 1\n=`), 'malformed db-file patch: bad "from" line'],
    ['size with a leading zero', Buffer.from(`${PATCH_MAGIC}\nfrom ${from}\nto ${to} 01\nops plain 1\n=`), 'malformed db-file patch: bad "to" line'],
    ['17-digit size', Buffer.from(`${PATCH_MAGIC}\nfrom ${from}\nto ${to} ${'1'.repeat(17)}\nops plain 1\n=`), 'malformed db-file patch: bad "to" line'],
    ['no size', Buffer.from(`${PATCH_MAGIC}\nfrom ${from}\nto ${to}\nops plain 1\n=`), 'malformed db-file patch: bad "to" line'],
    ['unknown encoding', Buffer.from(`${PATCH_MAGIC}\nfrom ${from}\nto ${to} 1\nops gzip 1\n=`), 'malformed db-file patch: bad "ops" line'],
    ['ops length with a leading zero', Buffer.from(`${PATCH_MAGIC}\nfrom ${from}\nto ${to} 1\nops plain 01\n=`), 'malformed db-file patch: bad "ops" line'],
    ['a 201-byte header line', Buffer.from(`${PATCH_MAGIC}\nfrom ${'f'.repeat(196)}\n`), 'malformed db-file patch: the from line is longer than 200 bytes'],
    ['a 201-byte to line', Buffer.from(`${PATCH_MAGIC}\nfrom ${from}\nto ${to} ${'1'.repeat(157)}\n`), 'malformed db-file patch: the to line is longer than 200 bytes'],
    ['a 200-byte to line', Buffer.from(`${PATCH_MAGIC}\nfrom ${from}\nto ${to} ${'1'.repeat(156)}\nops plain 1\n=`), 'malformed db-file patch: bad "to" line'],
    ['keep past the end', plain(`=${old.length + 1}\n`, old.length + 1), `malformed db-file patch: operation =${old.length + 1} goes past the end of the old db-file (${old.length} bytes)`],
    ['keep off a line boundary', plain(`=10\n-${old.length - 10}\n`), 'malformed db-file patch: operation =10 does not end on a line boundary of the old db-file'],
    ['delete off a line boundary', plain(`-10\n-${old.length - 10}\n`), 'malformed db-file patch: operation -10 does not end on a line boundary of the old db-file'],
    ['keep more than the result', plain(`=${old.length}\n`, L), `malformed db-file patch: operation =${old.length} makes the result bigger than the announced ${L} bytes`],
    ['insert more than the result', plain(`-${old.length}\n+${neu.length + 1}\n${'x'.repeat(neu.length + 1)}`), `malformed db-file patch: operation +${neu.length + 1} makes the result bigger than the announced ${neu.length} bytes`],
    ['ops short of the old file', plain(`=${L}\n`), `malformed db-file patch: the operations cover ${L} of the ${old.length} bytes of the old db-file`],
    ['insert past the end', plain(`=${old.length}\n+5\nab`, old.length + 5), 'malformed db-file patch: inserted bytes run past the end of the patch'],
    ['last op without LF', plain(`=${old.length}`, old.length), 'malformed db-file patch: unterminated operation'],
    ['a zero count', plain(`=0\n=${old.length}\n`), 'malformed db-file patch: bad operation "=0"'],
    ['a count with a leading zero', plain(`=0${L}\n`), `malformed db-file patch: bad operation "=0${L}"`],
    ['an unknown op', plain('*3\n'), 'malformed db-file patch: bad operation "*3"'],
    ['an op after something', plain(`x=${old.length}\n`), `malformed db-file patch: bad operation "x=${old.length}"`],
    ['an op before something', plain(`=${old.length}x\n`), `malformed db-file patch: bad operation "=${old.length}x"`],
    ['a 17-digit count', plain(`=${'1'.repeat(17)}\n`), `malformed db-file patch: bad operation "=${'1'.repeat(17)}"`],
    ['something before from', Buffer.from(`${PATCH_MAGIC}\nxfrom ${from}\nto ${to} 1\nops plain 1\n=`), 'malformed db-file patch: bad "from" line'],
    ['something after from', Buffer.from(`${PATCH_MAGIC}\nfrom ${from}x\nto ${to} 1\nops plain 1\n=`), 'malformed db-file patch: bad "from" line'],
    ['something before to', Buffer.from(`${PATCH_MAGIC}\nfrom ${from}\n to ${to} 1\nops plain 1\n=`), 'malformed db-file patch: bad "to" line'],
    ['something after to', Buffer.from(`${PATCH_MAGIC}\nfrom ${from}\nto ${to} 1 x\nops plain 1\n=`), 'malformed db-file patch: bad "to" line'],
    ['something before ops', Buffer.from(`${PATCH_MAGIC}\nfrom ${from}\nto ${to} 1\n ops plain 1\n=`), 'malformed db-file patch: bad "ops" line'],
    ['something after ops', Buffer.from(`${PATCH_MAGIC}\nfrom ${from}\nto ${to} 1\nops plain 1 x\n=`), 'malformed db-file patch: bad "ops" line'],
    ['17-digit ops length', Buffer.from(`${PATCH_MAGIC}\nfrom ${from}\nto ${to} 1\nops plain ${'1'.repeat(17)}\n=`), 'malformed db-file patch: bad "ops" line'],
    ['a 20-byte op line', plain(`=${'9'.repeat(19)}\n`), `malformed db-file patch: bad operation "=${'9'.repeat(19)}"`],
    ['a 21-byte op line', plain(`=${'9'.repeat(20)}\n`), 'malformed db-file patch: unterminated operation'],
    ['empty ops, deflated', patchOf(from, to, 0, 'deflate', Buffer.alloc(0)), 'malformed db-file patch: cannot inflate the ops (unexpected end of file)'],
    ['ops longer than said', Buffer.concat([plain(good), Buffer.from('=')]), `malformed db-file patch: the ops section is longer than the ${Buffer.byteLength(good, 'latin1')} bytes its header says`],
    ['ops shorter than said', plain(good).subarray(0, plain(good).length - 1), `malformed db-file patch: ops section is ${Buffer.byteLength(good, 'latin1') - 1} bytes, header says ${Buffer.byteLength(good, 'latin1')}`],
    ['the header cut', plain(good).subarray(0, 30), 'malformed db-file patch: the header is incomplete'],
    ['another result', plain(good, neu.length, sha1('x')), `the patched db-file has SHA-1 ${to} (${neu.length} bytes), the patch promised ${sha1('x')} (${neu.length} bytes)`],
    ['another db-file', patchOf(sha1('other'), to, neu.length, 'plain', Buffer.from(good, 'latin1')), `the db-file patch applies to a db-file with SHA-1 ${sha1('other')}, ours has SHA-1 ${from}`],
    // Made for another db-file and failing in its ops: the SHA-1 says more than the op.
    ['another db-file, a bad op', patchOf(sha1('other'), to, neu.length, 'plain', Buffer.from(`=${old.length + 1}\n`)), `the db-file patch applies to a db-file with SHA-1 ${sha1('other')}, ours has SHA-1 ${from}`],
  ];
  const fds = (): number => readdirSync('/proc/self/fd').length;
  const before = fds();
  for (const [what, p, message] of cases) {
    t.same(await refusals(d, old, p, what === 'not a patch at all' || what === 'a long wrong first line' ? p.length : 7), [message, message, message], what);
    t.same(readdirSync(d).sort(), ['db'], `${what}: nothing written`);
  }
  t.equal(fds(), before, 'every refusal closed the old db-file and the output');
  // Garbage where DEFLATE data should be: the same refusal, whichever inflater.
  const garbage = await refusals(d, old, patchOf(from, to, neu.length, 'deflate', Buffer.from('abcd')));
  t.match(garbage[0], /^malformed db-file patch: cannot inflate the ops \(.+\)$/);
  t.same(garbage, [garbage[0], garbage[0], garbage[0]], 'deflate garbage');
  // An empty db-file to an empty one, deflated: no ops byte may come out, and none does.
  const z0 = patchOf(sha1(''), sha1(''), 0, 'deflate', deflateRawSync(Buffer.alloc(0)));
  t.same(await refusals(d, Buffer.alloc(0), z0), ['applied', 'applied', 'applied'], 'empty to empty, deflated');
  rmSync(join(d, 'db.new'));
  writeFileSync(join(d, 'db'), old);
  const out = join(d, 'no-dir', 'out');
  t.throws(() => applyDbPatch(join(d, 'db'), plain(good), out), { code: 'ENOENT' });
  await t.rejects(applyDbPatchStream(join(d, 'db'), pieces(plain(good)), out), { code: 'ENOENT' });
  t.equal(fds(), before, 'an output that cannot be created: the old db-file closed');
  const xd = cases.find(([w]) => w === 'xdelta3')!;
  t.same(await refusals(d, old, xd[1], 1), Array(3).fill(xd[2]), 'xdelta3, one byte at a time: still recognised');
  t.same(await refusals(d, old, Buffer.from([0xd6, 0xc3, 0x00, 0x0a]), 1), [
    'not an smd db-file patch (first line "\u00d6\u00c3\\u0000", expected "smd-dbpatch 1")',
    'not an smd db-file patch (first line "\u00d6\u00c3\\u0000", expected "smd-dbpatch 1")',
    'not an smd db-file patch (it starts with "\u00d6\u00c3\\u0000", expected "smd-dbpatch 1")',
  ], 'two bytes of the xdelta3 magic then others: not xdelta3 (the stream refuses at the third byte)');
  t.same(await refusals(d, old, Buffer.from('GET Mail/cur/x\n'), 3), [
    'not an smd db-file patch (first line "GET Mail/cur/x", expected "smd-dbpatch 1")',
    'not an smd db-file patch (first line "GET Mail/cur/x", expected "smd-dbpatch 1")',
    'not an smd db-file patch (it starts with "GET", expected "smd-dbpatch 1")',
  ], 'not a patch, in pieces: refused at the first piece that is not the magic');
  t.same(await refusals(d, old, Buffer.from([0xd6]), 1), Array(3).fill('malformed db-file patch: the header is incomplete'), 'a patch of one 0xd6 byte: incomplete');
  t.same(await refusals(d, old, plain(good), 1), ['applied', 'applied', 'applied'], 'the good patch one byte at a time');
  rmSync(join(d, 'db.new'));

  // Missing or unreadable files: said so, with the path.
  const missing = join(d, 'missing');
  t.throws(() => applyDbPatch(missing, plain(good), join(d, 'out')), { name: 'PatchError', message: `cannot read the db-file ${missing} to patch: ENOENT: no such file or directory, open '${missing}'` });
  await t.rejects(applyDbPatchStream(missing, pieces(plain(good)), join(d, 'out')), { name: 'PatchError', message: /^cannot read the db-file .*missing to patch: ENOENT/ });
  t.throws(() => applyDbPatch(join(d, 'db'), plain(good), join(d, 'no-dir', 'out')), { code: 'ENOENT' }, 'an output that cannot be created: the fs error');
  t.same(readdirSync(d).sort(), ['db']);
  t.throws(() => parseDbPatch(EMPTY_PATCH), { name: 'PatchError', message: 'empty db-file patch (what a dry-run server sends): there is nothing to apply' });
  t.throws(() => parseDbPatch(plain(good).subarray(0, 40)), { name: 'PatchError', message: 'malformed db-file patch: the header is incomplete' });
  t.same(parseDbPatch(plain(good)), { from, to, size: neu.length, enc: 'plain', opsLength: Buffer.byteLength(good, 'latin1'), headerLength: plain(good).length - Buffer.byteLength(good, 'latin1') });
  await t.rejects(applyDbPatchStream(join(d, 'db'), pieces(), join(d, 'out')), { name: 'PatchError', message: /^empty db-file patch/ }, 'stream: nothing at all');
  await t.rejects(applyDbPatchStream(join(d, 'db'), pieces(Buffer.alloc(0), Buffer.alloc(0)), join(d, 'out')), { name: 'PatchError', message: /^empty db-file patch/ }, 'stream: empty pieces only');
});

t.test('limits at their boundaries; garbage is refused at once, never waited for', async (t) => {
  const d = tmp();
  const old = Buffer.from(dbl(1), 'latin1');
  writeFileSync(join(d, 'db'), old);
  const from = sha1(old);
  const neu = Buffer.from(dbl(1) + dbl(2), 'latin1');
  const ops = `=${old.length}\n+${dbl(2).length}\n${dbl(2)}`;
  const p = patchOf(from, sha1(neu), neu.length, 'plain', Buffer.from(ops, 'latin1'));
  t.ok(applyDbPatchToBuffer(old, p, { maxSize: neu.length }).equals(neu), 'maxSize exactly the result: applied');
  t.throws(() => applyDbPatchToBuffer(old, p, { maxSize: neu.length - 1 }), { message: `the db-file patch announces a db-file of ${neu.length} bytes, more than the ${neu.length - 1} expected: refused` });
  t.throws(() => applyDbPatch(join(d, 'db'), p, join(d, 'out'), { maxSize: neu.length - 1 }), { message: /more than the \d+ expected/ });
  t.ok(applyDbPatchToBuffer(old, p, { maxSize: MAX_DB_FILE + 10 }).equals(neu), 'a maxSize above MAX_DB_FILE is MAX_DB_FILE');
  t.throws(() => applyDbPatchToBuffer(old, patchOf(from, sha1('x'), MAX_DB_FILE + 1, 'plain', Buffer.from('=1\n')), { maxSize: MAX_DB_FILE + 10 }),
    { message: `the db-file patch announces a db-file of ${MAX_DB_FILE + 1} bytes, more than the ${MAX_DB_FILE} a db-file may have: refused` });
  t.throws(() => applyDbPatchToBuffer(old, patchOf(from, sha1('x'), MAX_DB_FILE, 'plain', Buffer.from('=1\n'))), { message: /3-byte plain ops section cannot turn/ }, 'MAX_DB_FILE itself passes the header line');
  // Plain: at most oldSize + opsLength bytes can come out; exactly that is fine.
  const insertAll = (n: number): Buffer => patchOf(from, sha1('x'), n, 'plain', Buffer.from(`=${old.length}\n+1\nx`));
  const n = `=${old.length}\n+1\nx`.length;
  t.throws(() => applyDbPatchToBuffer(old, insertAll(old.length + n + 1)), { message: `malformed db-file patch: a ${n}-byte plain ops section cannot turn ${old.length} bytes into the announced ${old.length + n + 1}` });
  t.throws(() => applyDbPatchToBuffer(old, insertAll(old.length + n)), { message: /promised/ }, 'as much as the ops could insert: past the header check');
  // Deflate: at most 1032 times the ops.
  const z = deflateRawSync(Buffer.from(`=${old.length}\n`));
  t.throws(() => applyDbPatchToBuffer(old, patchOf(from, sha1('x'), old.length + 1032 * z.length + 1, 'deflate', z)), { message: /cannot turn/ });
  t.throws(() => applyDbPatchToBuffer(old, patchOf(from, sha1('x'), old.length + 1032 * z.length, 'deflate', z)), { message: /makes the result bigger|promised|cover/ }, 'the most DEFLATE could give: past the header check');
  // maxOpsBytes: 4 per result byte + 3 per old byte, exactly.
  t.equal(maxOpsBytes(10, 100), 430);
  const padded = (n: number): Buffer => patchOf(from, sha1(old), old.length, 'plain', Buffer.concat([Buffer.from(`=${old.length}\n`), Buffer.alloc(n - `=${old.length}\n`.length, 0x0a)]));
  t.throws(() => applyDbPatchToBuffer(old, padded(maxOpsBytes(old.length, old.length) + 1)), { message: /longer than any patch from/ });
  t.throws(() => applyDbPatchToBuffer(old, padded(maxOpsBytes(old.length, old.length))), { message: /bad operation ""/ }, 'exactly the bound: past the header check');

  // Garbage with no newline (another protocol, a peer gone mad): refused at its first piece.
  let pulled = 0;
  async function* forever(): AsyncGenerator<Buffer> { for (;;) { pulled++; yield Buffer.from('GET Mail/cur/x GET Mail/cur/y GET Mail/cur/z '); } }
  await t.rejects(applyDbPatchStream(join(d, 'db'), forever(), join(d, 'out')),
    { name: 'PatchError', message: 'not an smd db-file patch (it starts with "GET Mail/cur/x GET Mail/cur/y GET Mail/c", expected "smd-dbpatch 1")' }, 'its first 40 bytes shown');
  t.equal(pulled, 1, 'after one piece');
  pulled = 0;
  async function* longLine(): AsyncGenerator<Buffer> { yield Buffer.from(`${PATCH_MAGIC}\nfrom `); for (;;) { pulled++; yield Buffer.from('0'.repeat(50)); } }
  await t.rejects(applyDbPatchStream(join(d, 'db'), longLine(), join(d, 'out')), { message: 'malformed db-file patch: the from line is longer than 200 bytes' });
  t.equal(pulled, 4, 'as soon as the line is longer than 200 bytes');
  pulled = 0;
  async function* prefix(): AsyncGenerator<Buffer> { yield Buffer.from('smd-db'); pulled++; yield Buffer.from('patch 2\n'); }
  await t.rejects(applyDbPatchStream(join(d, 'db'), prefix(), join(d, 'out')), { message: /first line "smd-dbpatch 2"/ }, 'a prefix of the magic is waited for');
  t.equal(pulled, 1);
  t.same(readdirSync(d), ['db']);
});

t.test('the old db-file: bigger than a read block, no final newline, shrinking under the stream; pieces that are views', async (t) => {
  const d = tmp();
  // 2.5 MiB: the file applier reads it in 1 MiB blocks.
  const lines = Array.from({ length: 26000 }, (_, i) => dbl(i));
  const old = Buffer.from(lines.join(''), 'latin1');
  t.ok(old.length > 2.5 * (1 << 20));
  const neu = Buffer.from(lines.slice(0, 25000).join('') + dbl(77777) + lines.slice(25001).join(''), 'latin1');
  writeFileSync(join(d, 'db'), old);
  const p = createDbPatchFromBuffers(old, neu);
  t.same(applyDbPatch(join(d, 'db'), p, join(d, 'out')), { sha1: sha1(neu), bytes: neu.length });
  t.ok(readFileSync(join(d, 'out')).equals(neu), 'file: the new db-file');
  const r = await applyDbPatchStream(join(d, 'db'), concat(splitEvery(p, 3)), join(d, 'out'));
  t.same(r, { sha1: sha1(neu), bytes: neu.length, patchBytes: p.length });
  t.ok(readFileSync(join(d, 'out')).equals(neu), 'stream: the new db-file');
  const whole = patchOf(sha1(old), sha1(old), old.length, 'plain', Buffer.from(`=${old.length}\n`));
  t.same(applyDbPatch(join(d, 'db'), whole, join(d, 'out')), { sha1: sha1(old), bytes: old.length }, 'one op over every block');
  const skip = patchOf(sha1(old), sha1(''), 0, 'plain', Buffer.from(`-${old.length}\n`));
  t.same(applyDbPatch(join(d, 'db'), skip, join(d, 'out')), { sha1: sha1(''), bytes: 0 }, 'one delete over every block');

  // No newline at the end of the old file: its last op may end there.
  const tail = Buffer.from(`${dbl(1)}last line`, 'latin1');
  writeFileSync(join(d, 'db'), tail);
  const keepTail = patchOf(sha1(tail), sha1(Buffer.concat([tail, Buffer.from('\n')])), tail.length + 1, 'plain', Buffer.from(`=${tail.length}\n+1\n\n`));
  t.ok(applyDbPatchToBuffer(tail, keepTail).equals(Buffer.concat([tail, Buffer.from('\n')])), 'buffer');
  t.same(applyDbPatch(join(d, 'db'), keepTail, join(d, 'out')).bytes, tail.length + 1, 'file');
  t.same((await refusals(d, tail, patchOf(sha1(tail), sha1('x'), tail.length, 'plain', Buffer.from(`=${dbl(1).length + 2}\n-7\n`))))[0],
    `malformed db-file patch: operation =${dbl(1).length + 2} does not end on a line boundary of the old db-file`, 'but only there');

  // The old file truncated while the patch streams in: refused, nothing written.
  writeFileSync(join(d, 'db'), old);
  const keep = patchOf(sha1(old), sha1(old), old.length, 'plain', Buffer.from(`=${old.length}\n`));
  async function* shrinking(): AsyncGenerator<Buffer> {
    yield keep.subarray(0, keep.length - 3);
    writeFileSync(join(d, 'db'), old.subarray(0, 1000));
    yield keep.subarray(keep.length - 3);
  }
  rmSync(join(d, 'out'));
  await t.rejects(applyDbPatchStream(join(d, 'db'), shrinking(), join(d, 'out')), { name: 'PatchError', message: `the db-file ${join(d, 'db')} shrank while it was being patched` });
  t.same(readdirSync(d).sort(), ['db'], 'nothing written');

  // Pieces as Uint8Array views into a bigger memory (what a socket may give).
  writeFileSync(join(d, 'db'), old);
  const backing = new Uint8Array(p.length + 64);
  backing.set(p, 32);
  async function* views(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < p.length; i += 1000) yield new Uint8Array(backing.buffer, 32 + i, Math.min(1000, p.length - i));
  }
  t.same(await applyDbPatchStream(join(d, 'db'), views(), join(d, 'out')), { sha1: sha1(neu), bytes: neu.length, patchBytes: p.length }, 'views: applied');
  // A deflated patch in views too.
  const first = createDbPatchFromBuffers(Buffer.alloc(0), neu);
  t.match(first.toString('latin1', 0, 200), /\nops deflate /);
  writeFileSync(join(d, 'empty'), '');
  const fb = new Uint8Array(first.length + 10);
  fb.set(first, 5);
  async function* deflatedViews(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < first.length; i += 777) yield new Uint8Array(fb.buffer, 5 + i, Math.min(777, first.length - i));
  }
  t.same(await applyDbPatchStream(join(d, 'empty'), deflatedViews(), join(d, 'out')), { sha1: sha1(neu), bytes: neu.length, patchBytes: first.length }, 'deflated views: applied');
});
