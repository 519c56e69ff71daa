/**
 * The pure diff of @smd/snapshot (diff.ts, the DiffEngine) and the native
 * db-line decoder, without I/O: fast, it is the test file of the mutation run
 * of diff.ts (TESTING.md). The db-file (dbfile.ts) is dbfile.test.ts.
 */
import t from 'tap';
import { diff, DiffEngine, formatCommand, type DbEntries, type CurrentFile } from '@smd/snapshot';
import { nativeDbLineDecoder } from '@smd/native';
import { sha1 } from './helpers/maildir-fixture.js';

const H = (c: string): string => c.repeat(40);
const db = (...rows: Array<[string, string, string]>): DbEntries => ({
  names: rows.map((r) => r[0]), headers: rows.map((r) => H(r[1])), bodies: rows.map((r) => H(r[2])),
});
const f = (name: string, h: string, b: string): CurrentFile => ({ name, header: H(h), body: H(b) });
const run = (prev: DbEntries, cur: CurrentFile[], opts = {}, still?: (n: string) => boolean): string[] =>
  [...diff(prev, cur, opts, still)].map((c) => formatCommand(c).replace(/([0-9a-f])\1{39}/g, '$1'));

t.test('pure diff: every command', async (t) => {
  t.same(run(db(), [f('a', '1', '2')]), ['ADD a 1 2']);
  t.same(run(db(['a', '1', '2']), [f('a', '1', '2')]), [], 'unchanged');
  t.same(run(db(['a', '1', '2']), [{ name: 'a', unchanged: true }]), [], 'mtime shortcut');
  t.same(run(db(['a', '1', '2']), [f('a', '3', '2')]), ['REPLACEHEADER a 1 2 WITH 3']);
  t.same(run(db(['a', '1', '2']), [f('a', '3', '4')]), ['REPLACE a 1 2 WITH 3 4']);
  t.same(run(db(['a', '1', '2']), [f('a', '1', '4')]), ['REPLACE a 1 2 WITH 1 4']);
  t.same(run(db(['a', '1', '2']), [f('b', '1', '2')]), ['MOVE a 1 2 TO b']);
  t.same(run(db(['a', '1', '2']), [f('a', '1', '2'), f('b', '1', '2')]), ['COPY a 1 2 TO b'], 'source seen');
  t.same(run(db(['a', '1', '2']), [f('b', '1', '2'), f('a', '1', '2')], {}, (n) => n === 'a'), ['COPY a 1 2 TO b'],
    'source still there with old mtime (not yet walked)');
  t.same(run(db(['a', '1', '2']), [f('b', '1', '2'), f('c', '1', '2')]), ['MOVE a 1 2 TO b', 'COPY b 1 2 TO c'],
    'a second copy comes from the MOVE target');
  t.same(run(db(['a', '1', '2']), [f('b', '3', '2')]), ['COPYBODY a 2 TO b 3', 'DELETE a 1 2']);
  t.same(run(db(['a', '1', '2'], ['c', '5', '2']), [f('b', '3', '2')]), ['COPYBODY c 2 TO b 3', 'DELETE a 1 2', 'DELETE c 5 2'],
    'COPYBODY from the head of the list: the last db line with that body');
  t.same(run(db(['a', '1', '2'], ['c', '5', '2']), [f('b', '1', '2')]), ['MOVE a 1 2 TO b', 'DELETE c 5 2'],
    'header match found further down the list');
  t.same(run(db(['a', '1', '2']), []), ['DELETE a 1 2']);
  t.same(run(db(), [f('a', '1', '2'), f('b', '1', '2')]), ['ADD a 1 2', 'ADD b 1 2'], 'B8: duplicates in one run are two ADDs');
  t.same(run(db(['x y%', '1', '2']), [f('x y% 2', '3', '2')]).slice(0, 1), ['COPYBODY x%20y%25 2 TO x%20y%25%202 3'], 'names encoded');
  t.same(run(db(['x y', '1', '2']), [f('x y', '3', '2')]), ['REPLACEHEADER x%20y 1 2 WITH 3'], 'REPLACEHEADER encoded too (B1 fixed)');
});

t.test('pure diff: ordering and -n/--no-move', async (t) => {
  const prev = db(['a', '1', '1'], ['b', '2', '2'], ['c', '3', '3'], ['d', '4', '4']);
  const cur = [f('n1', '9', '9'), f('d', '4', '4'), f('a2', '1', '1'), f('c', '3', '7')];
  t.same(run(prev, cur), ['ADD n1 9 9', 'MOVE a 1 1 TO a2', 'REPLACE c 3 3 WITH 3 7', 'DELETE b 2 2'], 'walk order, DELETEs last in db order');
  t.same(run(prev, cur, { noDelete: true }), ['ADD n1 9 9', 'MOVE a 1 1 TO a2', 'REPLACE c 3 3 WITH 3 7'], '-n: rename is MOVE, deletion vanishes');
  t.same(run(prev, cur, { noMove: true }), ['ADD n1 9 9', 'COPY a 1 1 TO a2', 'REPLACE c 3 3 WITH 3 7', 'DELETE a 1 1', 'DELETE b 2 2'], '--no-move');
  t.same(run(prev, cur, { noMove: true, noDelete: true }), ['ADD n1 9 9', 'COPY a 1 1 TO a2', 'REPLACE c 3 3 WITH 3 7', 'DELETE a 1 1'],
    '-n --no-move: the renamed old name is still deleted');

  // New db order: surviving old entries in old order, then new ones in walk order.
  const g = diff(prev, cur);
  let r = g.next();
  while (!r.done) r = g.next();
  const lines = [...r.value.dbLines()].map((l) => l.replace(/([0-9a-f])\1{39}/g, '$1'));
  t.same(lines, ['4 4 d\n', '9 9 n1\n', '1 1 a2\n', '3 7 c\n']);
});

t.test('the native db-line decoder takes canonical lines only, and stops where JavaScript must read', async (t) => {
  const decode = nativeDbLineDecoder();
  if (process.env.SMD_NATIVE === '0') { t.equal(decode, null, 'SMD_NATIVE=0 turns it off'); return; }
  t.not(decode, null, 'built');
  if (decode === null) return;
  const a = `${sha1('h1')} ${sha1('b1')} Mail/cur/one\n`;
  const b = `${sha1('h2')} ${sha1('b2')} Mail/cur/two with space \xe9\r\n`;
  const upper = `${sha1('h3').toUpperCase()} ${sha1('b3')} Mail/cur/three\n`;
  const buf = Buffer.from(`xx${a}${b}${upper}${a}${a.slice(0, 50)}`, 'latin1');
  const hashes = Buffer.alloc(40 * 8);
  const lineStart = new Float64Array(8);
  let r = decode(buf, 2, buf.length, hashes, lineStart, 1, 1000);
  t.same(r, { count: 2, stop: 2 + a.length + b.length, names: ['Mail/cur/one', 'Mail/cur/two with space \xe9\r'] }, 'stops at the upper-case line');
  t.equal(hashes.toString('hex', 40, 120), sha1('h1') + sha1('b1') + sha1('h2') + sha1('b2'), 'hashes at entry 1 and 2');
  t.same([...lineStart.subarray(1, 3)], [1002, 1002 + a.length], 'file offsets (base + index in buf)');
  r = decode(buf, r.stop + upper.length, buf.length, hashes, lineStart, 3, 0);
  t.same(r, { count: 1, stop: 2 + a.length + b.length + upper.length + a.length, names: ['Mail/cur/one'] }, 'stops before an incomplete line');
  t.same(decode(buf, 2, buf.length, hashes, lineStart, 7, 0).count, 1, 'stops when the arrays are full');
  t.same(decode(buf, 2, 2, hashes, lineStart, 0, 0), { count: 0, stop: 2, names: [] }, 'nothing to read');
  for (const line of [
    `${sha1('h')} ${sha1('b')} \n`, // no name
    `${sha1('h')}  ${sha1('b')} x\n`, // a space too many
    `${sha1('h').slice(1)}g ${sha1('b')} x\n`, // not hex
    `${sha1('h')}\t${sha1('b')} x\n`,
    'short\n',
  ]) t.equal(decode(Buffer.from(line, 'latin1'), 0, line.length, hashes, lineStart, 0, 0).count, 0, `not canonical: ${JSON.stringify(line.slice(36))}`);
  t.throws(() => decode(buf, 0, buf.length + 1, hashes, lineStart, 0, 0), TypeError, 'end past the buffer');
});

t.test('the diff engine: binary hashes, adopted memory, growth, writeDb with and without copied runs', async (t) => {
  const hex = (c: string): Buffer => Buffer.from(H(c), 'hex');
  // A previous snapshot with binary hashes (what the scan gives), with spare room behind it.
  const names = ['o0', 'o1', 'o2'];
  const room = Buffer.alloc(40 * 64);
  for (let i = 0; i < 3; i++) { hex(`${i}`).copy(room, 40 * i); hex(`${i + 5}`).copy(room, 40 * i + 20); }
  const given = room.subarray(0, 120);
  const adopted = new DiffEngine({ names, hashes: given }, { adopt: true });
  t.equal(adopted.hashes.buffer, given.buffer, 'adopt: the given memory is used, not copied');
  t.equal(adopted.names, names, 'adopt: the names array itself');
  t.same([adopted.header(1), adopted.body(1)], [H('1'), H('6')]);
  const copied = new DiffEngine({ names, hashes: given });
  t.not(copied.hashes.buffer, given.buffer, 'without adopt: a copy');
  t.same([copied.header(2), copied.body(2)], [H('2'), H('7')], 'the copy has the hashes');
  const small = new DiffEngine({ names, hashes: Buffer.from(given) }, { adopt: true });
  t.same([small.header(0), small.body(0), small.header(2)], [H('0'), H('5'), H('2')], 'adopt without room: copied into a bigger table');

  // 40 new files on top of 3 old ones (the table starts at 16 entries): every one kept, in order.
  const e = new DiffEngine({ names: names.slice(), hashes: Buffer.from(given) });
  e.unchanged(0);
  t.equal(e.file('o1', H('1'), H('6')), null, 'same hashes: nothing to say');
  const hexOf = (i: number): string => (i + 256).toString(16).repeat(14).slice(0, 40);
  const adds: string[] = [];
  for (let i = 0; i < 40; i++) adds.push(formatCommand(e.file(`n${i}`, hexOf(i), hexOf(i + 100))!));
  t.same(adds, Array.from({ length: 40 }, (_, i) => `ADD n${i} ${hexOf(i)} ${hexOf(i + 100)}`), 'ADDs with the hashes given');
  t.equal(names.length, 3, 'the caller\'s names are not touched without adopt');
  t.same([...e.deletes()].map(formatCommand), [`DELETE o2 ${H('2')} ${H('7')}`]);
  t.equal(e.survivorCount(), 42);
  const want = [...e.dbLines()].join('');
  t.equal(want.split('\n')[0], `${H('0')} ${H('5')} o0`);
  t.equal(want.split('\n').length, 43);
  const all: Buffer[] = [];
  e.writeDb((p) => all.push(Buffer.from(p)));
  t.equal(Buffer.concat(all).toString('latin1'), want, 'writeDb writes the lines of dbLines');
  // With copyOld, runs of unchanged old entries are left to it, in order with the pieces.
  const parts: string[] = [];
  e.writeDb((p) => parts.push(Buffer.from(p).toString('latin1')), (a, b) => parts.push(`[${a},${b})`));
  t.same(parts[0], '[0,2)', 'the run of unchanged old entries first');
  t.equal(parts.slice(1).join(''), want.split('\n').slice(2).join('\n'), 'then the new lines');

  // Runs are cut where an old entry is not kept; the new db-file of a run that kept nothing is empty.
  const g = new DiffEngine(db(['a', '1', '1'], ['b', '2', '2'], ['c', '3', '3'], ['d', '4', '4'], ['e', '5', '5']));
  for (const n of ['a', 'b', 'd', 'e']) g.unchanged(g.lookup(n));
  const runs: string[] = [];
  g.writeDb((p) => runs.push(`${p.length}`), (a, b) => runs.push(`[${a},${b})`));
  t.same(runs, ['[0,2)', '[3,5)'], 'runs [a,b) of kept entries, nothing else');
  const none: Buffer[] = [];
  new DiffEngine(db(['a', '1', '1'])).writeDb((p) => none.push(p));
  t.same(none, [], 'nothing kept, nothing written');

  // More than the 1 MiB writing buffer, and a line longer than it.
  const big = new DiffEngine(db());
  const long = `Mail/cur/${'L'.repeat(1 << 20)}`;
  const pad = 'p'.repeat(200);
  for (let i = 0; i < 4000; i++) big.file(`Mail/cur/${pad}${i}`, hexOf(i % 200), hexOf(i));
  big.file(long, H('a'), H('b'));
  big.file('Mail/cur/last', H('c'), H('d'));
  const pieces: Buffer[] = [];
  big.writeDb((p) => pieces.push(Buffer.from(p)));
  t.ok(pieces.length >= 3 && pieces.every((p) => p.length <= (1 << 20) + 200), `written in pieces of at most ~1 MiB (${pieces.length})`);
  t.ok(Buffer.concat(pieces).equals(Buffer.from([...big.dbLines()].join(''), 'latin1')), 'the same bytes as dbLines');

  // fileAt on the engine's own table (a renamed file whose hashes are an old entry's).
  const r = new DiffEngine(db(['a', '1', '2']));
  t.same(formatCommand(r.fileAt('b', r.hashes, 0)!), `MOVE a ${H('1')} ${H('2')} TO b`);
  t.same(formatCommand(r.fileAt('c', r.hashes, 0)!), `COPY b ${H('1')} ${H('2')} TO c`, 'the MOVE target is the next source');
});

t.test('the diff engine: many entries sharing a body, sources picked as upstream', async (t) => {
  // Old entries with one body and different headers; the files renamed one after the
  // other, in reverse order, then copies: every MOVE finds its own source by header.
  const n = 40;
  const prev = db(...Array.from({ length: n }, (_, i) => [`o${i}`, (i % 16).toString(16), 'f'] as [string, string, string]));
  // Headers repeat every 16: give each a distinct header instead.
  const headers = Array.from({ length: n }, (_, i) => `${i}`.padStart(40, '0'));
  const p2: DbEntries = { names: prev.names, headers, bodies: prev.bodies };
  const cur: CurrentFile[] = [];
  for (let i = n - 1; i >= 0; i--) cur.push({ name: `m${i}`, header: headers[i], body: H('f') });
  for (let i = 0; i < n; i++) cur.push({ name: `c${i}`, header: headers[i], body: H('f') });
  cur.push({ name: 'x', header: H('9'), body: H('f') });
  const out = [...diff(p2, cur)].map(formatCommand);
  t.same(out.slice(0, n), Array.from({ length: n }, (_, k) => `MOVE o${n - 1 - k} ${headers[n - 1 - k]} ${H('f')} TO m${n - 1 - k}`), 'each MOVE from its own source');
  t.same(out.slice(n, 2 * n), Array.from({ length: n }, (_, i) => `COPY m${i} ${headers[i]} ${H('f')} TO c${i}`), 'copies from the MOVE targets');
  t.equal(out[2 * n], `COPYBODY m0 ${H('f')} TO x ${H('9')}`, 'a new header on that body: COPYBODY from the most recent entry with it');
  t.equal(out.length, 2 * n + 1, 'no DELETE: every old entry moved');
});

t.test('the diff engine: what its survivors of the mutation run missed', async (t) => {
  // adopt also takes a snapshot with hex hashes (its names array).
  const names = ['a', 'b'];
  const fromHex = new DiffEngine({ names, headers: [H('1'), H('3')], bodies: [H('2'), H('4')] }, { adopt: true });
  t.equal(fromHex.names, names);
  t.same([fromHex.header(1), fromHex.body(1)], [H('3'), H('4')]);
  // Spare room of exactly 16 entries is enough to adopt.
  const room = Buffer.alloc(40 * 18);
  const given = room.subarray(0, 80);
  t.equal(new DiffEngine({ names: ['x', 'y'], hashes: given }, { adopt: true }).hashes.buffer, given.buffer, 'room for n + 16 entries: adopted');
  t.equal(fromHex.lookup('nope'), -1, 'an unknown name is -1');
  t.equal(fromHex.lookup('b'), 1);

  // An unchanged file must be in the previous snapshot.
  t.throws(() => run(db(['a', '1', '2']), [{ name: 'z', unchanged: true }]), { message: 'unchanged file z is not in the previous snapshot' });

  // --no-move: the source seen under its own name is COPYed and never deleted.
  t.same(run(db(['a', '1', '2']), [f('a', '1', '2'), f('b', '1', '2')], { noMove: true }), ['COPY a 1 2 TO b']);
  // The old content of a replaced file, found under another name: a MOVE from it, even if the
  // name is "still there" (it is, with other content); the db keeps the new content only.
  const g = diff(db(['a', '1', '2']), [f('a', '3', '4'), f('b', '1', '2')], {}, () => true);
  const cmds: string[] = [];
  let r = g.next();
  for (; r.done !== true; r = g.next()) cmds.push(formatCommand(r.value).replace(/([0-9a-f])\1{39}/g, '$1'));
  t.same(cmds, ['REPLACE a 1 2 WITH 3 4', 'MOVE a 1 2 TO b']);
  t.same([...r.value.dbLines()].map((l) => l.replace(/([0-9a-f])\1{39}/g, '$1')), ['3 4 a\n', '1 2 b\n'], 'one line per name');
  // The new content of a replaced file is not a source (new entries are not in the body index, upstream B8).
  t.same(run(db(['a', '1', '2']), [f('a', '3', '4'), f('b', '3', '4')]), ['REPLACE a 1 2 WITH 3 4', 'ADD b 3 4']);

  // More distinct bodies than the smallest body table: looked up, not probed forever.
  const many = db(...Array.from({ length: 40 }, (_, i) => [`o${i}`, '1', ''] as [string, string, string]));
  const bodies = Array.from({ length: 40 }, (_, i) => `${i}`.padStart(40, 'b'));
  const out = [...diff({ names: many.names, headers: many.headers, bodies }, [{ name: 'n', header: H('9'), body: H('8') }, { name: 'm', header: H('1'), body: bodies[39] }])].map(formatCommand);
  t.same(out.slice(0, 2), [`ADD n ${H('9')} ${H('8')}`, `MOVE o39 ${H('1')} ${bodies[39]} TO m`]);

  // A MOVE target appended after the body index's first capacity is still a link of its body's chain.
  const prev = { names: ['o0', 'o1'], headers: [H('a'), H('b')], bodies: [H('f'), H('f')] };
  const cur: CurrentFile[] = [];
  for (let i = 0; i < 20; i++) cur.push({ name: `x${i}`, header: H('c'), body: `${i}`.padStart(40, 'e') });
  cur.push({ name: 'm0', header: H('b'), body: H('f') }, { name: 'm1', header: H('a'), body: H('f') });
  t.same([...diff(prev, cur)].map(formatCommand).slice(20), [`MOVE o1 ${H('b')} ${H('f')} TO m0`, `MOVE o0 ${H('a')} ${H('f')} TO m1`], 'found behind the MOVE target');

  // writeDb: latin1 names (short and longer than the buffer), exact pieces.
  const e = new DiffEngine(db(['k0', '1', '1'], ['k1', '2', '2']));
  e.unchanged(0);
  e.unchanged(1);
  const long = `Mail/cur/\xe9${'L'.repeat(1 << 20)}\xff`;
  e.file('Mail/cur/\xe9t\xe9 \xff', H('3'), H('4'));
  e.file(long, H('5'), H('6'));
  e.file('Mail/cur/z', H('7'), H('8'));
  const pieces: string[] = [];
  e.writeDb((p) => pieces.push(Buffer.from(p).toString('latin1')));
  t.same(pieces.map((p) => p.length), [2 * 85 + 83 + 14, 83 + long.length, 83 + 10], 'a piece, the long line alone, the rest: none empty');
  t.equal(pieces.join(''), [...e.dbLines()].join(''), 'latin1 bytes, one per character');
  t.ok(pieces[0].endsWith(`${H('3')} ${H('4')} Mail/cur/\xe9t\xe9 \xff\n`));
  // A run of kept old entries that reaches their end is not taken beyond it.
  const parts: string[] = [];
  e.writeDb((p) => parts.push(`${p.length}`), (a, b) => parts.push(`[${a},${b})`));
  t.same(parts.slice(0, 2), ['[0,2)', `${83 + 14}`], 'the run, then the new lines');
});
