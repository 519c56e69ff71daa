import t from 'tap';
import { readFileSync, writeFileSync, existsSync, mkdirSync, rmSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  diff, DiffEngine, diffMaildir, formatCommand, readDbFile, writeDbNew, commitDbFile, discardDbNew, dbFingerprint, dbFileName, DbFileError,
  readDbMtime, forEachLine, dbLine, type DbEntries, type DiffCommand, type CurrentFile,
} from '@smd/snapshot';
import { nativeDbLineDecoder } from '@smd/native';
import { tempDir, sha1, makeMaildir, writeMessage } from './helpers/maildir-fixture.js';

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

t.test('db-file round trip, malformed lines, mtime, commit/discard, fingerprint', async (t) => {
  const d = tempDir(t);
  const F = join(d, 'db.txt');
  t.equal(readDbFile(F), null, 'missing');
  const name = 'Mail/cur/with space and \xe9\xff bytes:2,S';
  const line = `${sha1('h')} ${sha1('b')} ${name}\n`;
  const sha = writeDbNew(F, [line, `${H('a')} ${H('b')} x\n`], 1795367844);
  t.equal(readFileSync(`${F}.new`, 'latin1'), `${line}${H('a')} ${H('b')} x\n`, 'raw names, one line each');
  t.equal(readFileSync(`${F}.mtime.new`, 'latin1'), '1795367844', 'no trailing newline');
  t.equal(sha, sha1(readFileSync(`${F}.new`)));
  t.notOk(existsSync(F), 'F itself untouched');
  commitDbFile(F);
  t.notOk(existsSync(`${F}.new`));
  t.equal(readDbMtime(F), 1795367844);
  const back = readDbFile(F)!;
  t.same(back.names, [name, 'x']);
  t.same(back.headers, [sha1('h'), H('a')]);
  t.equal(back.sha1, sha1(readFileSync(F)));
  t.same(dbFingerprint(F), { db: sha1(readFileSync(F)), dbNew: null });
  writeDbNew(F, [], 5);
  t.same(dbFingerprint(F).dbNew, sha1(''));
  discardDbNew(F);
  t.notOk(existsSync(`${F}.new`) || existsSync(`${F}.mtime.new`));
  const G = join(d, 'created.txt');
  t.same(dbFingerprint(G, { create: false }), { db: sha1(''), dbNew: null });
  t.notOk(existsSync(G));
  dbFingerprint(G);
  t.ok(existsSync(G), 'created empty');

  // A long db-file read across buffer boundaries.
  const big = join(d, 'big.txt');
  const rows: string[] = [];
  for (let i = 0; i < 30000; i++) rows.push(`${sha1(`h${i}`)} ${sha1(`b${i}`)} Mail/cur/${'n'.repeat(i % 50)} ${i}:2,S\n`);
  writeFileSync(big, rows.join(''), 'latin1');
  const r = readDbFile(big)!;
  t.equal(r.names.length, 30000);
  t.equal(r.names[29999], `Mail/cur/${'n'.repeat(29999 % 50)} 29999:2,S`);

  const bad = join(d, 'bad.txt');
  writeFileSync(bad, `${line}${line}${H('a')} only-two\n${line}`, 'latin1');
  t.throws(() => readDbFile(bad), { name: 'DbFileError', line: 3, message: `${bad}: malformed line 3: 2 != 3 fields. Please remove this db file.` });
  writeFileSync(bad, `${'z'.repeat(40)} ${H('a')} name\n`);
  t.throws(() => readDbFile(bad), DbFileError, 'invalid hex');
  writeFileSync(`${F}.mtime`, 'soon');
  t.throws(() => readDbMtime(F), DbFileError);
});

t.test('dbFileName', async (t) => {
  t.equal(dbFileName('/home/u', 'laptop', ['Mail']), '/home/u/.smd/laptop__Mail.db.txt');
  t.equal(dbFileName('/home/u', 'a/b/', ['Mail/', 'x/y%20z/']), '/home/u/.smd/a_b__Mail___x_y_20z.db.txt');
  t.equal(dbFileName('/h', 'ep', ['Mail/']), '/h/.smd/ep__Mail.db.txt');
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
  for (let i = 0; i < 12000; i++) big.file(`Mail/cur/${i}`, hexOf(i % 200), hexOf(i));
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

/** A real scan in-process (what mddiff runs), in `dir`: its commands, its result, and its warnings. */
function scanIn(dir: string, dbFile: string, between?: () => void): { cmds: string[]; ok: boolean; warnings: string[] } {
  const prev = process.cwd();
  process.chdir(dir);
  const warnings: string[] = [];
  try {
    const it = diffMaildir({ roots: ['Mail'], dbFile, threads: 0, onWarning: (w) => warnings.push(w) });
    const cmds: string[] = [];
    let s = it.next();
    for (; s.done !== true; s = it.next()) {
      cmds.push(formatCommand(s.value));
      // After the last DELETE and before the db-file is written.
      if (s.value.op === 'DELETE') between?.();
    }
    return { cmds, ok: s.value.ok, warnings };
  } finally {
    process.chdir(prev);
  }
}

t.test('the db-file as the scan reads it: canonical lines copied, others rewritten, every refusal', async (t) => {
  const d = tempDir(t, 'smd-dbscan-');
  const F = join(d, 'db.txt');
  const msg = (n: string): { h: string; b: string } => ({ h: sha1(`Subject: ${n}\n\n`), b: sha1(`body ${n}\n`) });
  const put = (n: string): void => { writeMessage(d, `Mail/cur/${n}`, { header: `Subject: ${n}`, body: `body ${n}\n` }); };
  const line = (n: string, upper = false): string => {
    const { h, b } = msg(n);
    return `${upper ? h.toUpperCase() : h} ${b} Mail/cur/${n}\n`;
  };
  makeMaildir(d, 'Mail');
  for (const n of ['a', 'b', 'c', 'd']) put(n);
  const mtime = (): void => writeFileSync(`${F}.mtime`, String(Math.floor(Date.now() / 1000)));

  // No db-file: the first run.
  let r = scanIn(d, F);
  t.same(r.warnings, [`no db file ${F}, this is the first run`]);
  t.equal(r.cmds.length, 4);
  t.same(readFileSync(`${F}.new`, 'latin1').split('\n').filter((l) => l !== '').sort(), ['a', 'b', 'c', 'd'].map((n) => line(n).slice(0, -1)).sort());

  // A canonical db-file: unchanged lines are copied as they are (the order of the file, not of the walk).
  const canonical = line('d') + line('b') + line('a') + line('c') + line('gone');
  writeFileSync(F, canonical, 'latin1');
  mtime();
  r = scanIn(d, F);
  t.same(r.cmds, [`DELETE Mail/cur/gone ${msg('gone').h} ${msg('gone').b}`]);
  t.equal(readFileSync(`${F}.new`, 'latin1'), line('d') + line('b') + line('a') + line('c'), 'the kept lines, in db order');

  // The db-file changes between reading and writing: its lines are not copied from the new file.
  writeFileSync(F, canonical, 'latin1');
  rmSync(`${F}.stat-cache`, { force: true });
  r = scanIn(d, F, () => writeFileSync(F, 'x'.repeat(canonical.length), 'latin1'));
  t.equal(readFileSync(`${F}.new`, 'latin1'), line('d') + line('b') + line('a') + line('c'), 'rebuilt from what was read');

  // Upper-case hex (legal) and a last line without '\n': read, and written canonical.
  writeFileSync(F, line('d', true) + line('b') + line('a') + line('c') + line('gone').slice(0, -1), 'latin1');
  rmSync(`${F}.stat-cache`, { force: true });
  r = scanIn(d, F);
  t.same(r.cmds, [`DELETE Mail/cur/gone ${msg('gone').h} ${msg('gone').b}`], 'the upper-case line is the same message; the last line is read whole');
  t.equal(readFileSync(`${F}.new`, 'latin1'), line('d') + line('b') + line('a') + line('c'), 'written in lower case');
  writeFileSync(F, line('d') + line('b') + line('a') + line('c').slice(0, -1), 'latin1');
  rmSync(`${F}.stat-cache`, { force: true });
  r = scanIn(d, F);
  t.same(r.cmds, []);
  t.equal(readFileSync(`${F}.new`, 'latin1'), line('d') + line('b') + line('a') + line('c'), 'a last line without \'\\n\' gets one');

  // More lines than the first guess from the size (short names), and a name longer than the read buffer.
  const many = Array.from({ length: 3000 }, (_, i) => `${sha1(`h${i}`)} ${sha1(`b${i}`)} Mail/cur/${i}\n`).join('');
  const huge = `Mail/cur/${'n'.repeat(1_100_000)}`;
  writeFileSync(F, line('a') + many + `${sha1('hh')} ${sha1('bb')} ${huge}\n` + line('b'), 'latin1');
  rmSync(`${F}.stat-cache`, { force: true });
  r = scanIn(d, F);
  t.equal(r.cmds.length, 3003, 'every line read');
  t.same(r.cmds.slice(0, 2).sort(), ['c', 'd'].map((n) => `ADD Mail/cur/${n} ${msg(n).h} ${msg(n).b}`), 'the files new to the db');
  t.equal(r.cmds[2], `DELETE Mail/cur/0 ${sha1('h0')} ${sha1('b0')}`);
  t.equal(r.cmds[3001], `DELETE Mail/cur/2999 ${sha1('h2999')} ${sha1('b2999')}`, 'the hashes of the last short line');
  t.ok(r.cmds[3002] === `DELETE ${huge} ${sha1('hh')} ${sha1('bb')}`, 'the long line, whole');
  const written = readFileSync(`${F}.new`, 'latin1');
  t.equal(written.slice(0, 2 * line('a').length), line('a') + line('b'), 'the kept lines copied, the second from beyond the first 1 MiB read');
  t.same(written.slice(2 * line('a').length).split(/(?<=\n)/).sort(), [line('c'), line('d')], 'then the new ones');

  // Refusals: the exact message, nothing written.
  const refused = (text: string | null, message: string, what: string): void => {
    rmSync(`${F}.new`, { force: true });
    if (text !== null) writeFileSync(F, text, 'latin1');
    const x = scanIn(d, F);
    t.same(x.cmds, [`ERROR ${message}`], what);
    t.equal(x.ok, false);
    t.notOk(existsSync(`${F}.new`), `${what}: nothing written`);
  };
  refused(line('a') + `${msg('b').h} ${msg('b').b}\n`, `${F}: malformed line 2: 2 != 3 fields. Please remove this db file.`, 'no name');
  refused(line('a') + line('b') + `${msg('b').h}  ${msg('b').b} x\n`, `${F}: malformed line 3: invalid SHA-1. Please remove this db file.`, 'two spaces');
  refused(`${msg('b').h.slice(1)}g ${msg('b').b} x\n`, `${F}: malformed line 1: invalid SHA-1. Please remove this db file.`, 'not hex');
  refused(`${msg('b').h} ${msg('b').b.slice(1)}G x\n`, `${F}: malformed line 1: invalid SHA-1. Please remove this db file.`, 'not hex in the body hash');
  refused(`${msg('b').h}x${msg('b').b} x\n`, `${F}: malformed line 1: 2 != 3 fields. Please remove this db file.`, 'no first space');
  refused(`${msg('b').h} ${msg('b').b}x x\n`, `${F}: malformed line 1: invalid SHA-1. Please remove this db file.`, 'no second space');
  refused('short\n', `${F}: malformed line 1: 1 != 3 fields. Please remove this db file.`, 'short');
  refused(`${line('a').slice(0, -1)}`.slice(0, 82), `${F}: malformed line 1: 2 != 3 fields. Please remove this db file.`, '82 bytes: no name');
  rmSync(F);
  mkdirSync(F);
  refused(null, `${F}: cannot read: EISDIR: illegal operation on a directory, read`, 'a directory');
  rmSync(F, { recursive: true });
  writeFileSync(F, line('a'), 'latin1');
  writeFileSync(`${F}.mtime`, 'soon');
  refused(null, `${F}.mtime: malformed mtime file. Please remove this db file.`, 'bad .mtime');
  rmSync(`${F}.mtime`);
  mkdirSync(`${F}.mtime`);
  refused(null, `${F}.mtime: cannot read: EISDIR: illegal operation on a directory, read`, 'unreadable .mtime');
});

t.test('db-file helpers: readDbMtime, readDbFile, forEachLine, commit, discard, fingerprint', async (t) => {
  const d = tempDir(t, 'smd-dbhelp-');
  const F = join(d, 'db.txt');
  t.equal(readDbMtime(F), null, 'no .mtime');
  writeFileSync(`${F}.mtime`, ' 17\n');
  t.equal(readDbMtime(F), 17, 'spaces and a newline around the number');
  for (const bad of ['', '1.5', '-3', '12a', 'x 1']) {
    writeFileSync(`${F}.mtime`, bad);
    t.throws(() => readDbMtime(F), { name: 'DbFileError', message: `${F}.mtime: malformed mtime file. Please remove this db file.`, file: `${F}.mtime` }, JSON.stringify(bad));
  }
  rmSync(`${F}.mtime`);
  mkdirSync(`${F}.mtime`);
  t.throws(() => readDbMtime(F), { name: 'DbFileError', message: /^.*\.mtime: cannot read: EISDIR/ });
  rmSync(`${F}.mtime`, { recursive: true });

  mkdirSync(F);
  t.throws(() => readDbFile(F), { name: 'DbFileError', message: `${F}: cannot read: EISDIR: illegal operation on a directory, read`, file: F });
  rmSync(F, { recursive: true });
  const h = H('A');
  writeFileSync(F, `${h} ${H('b')} upper\n${H('c')} ${H('d')} last`, 'latin1');
  t.same(readDbFile(F), { names: ['upper', 'last'], headers: [H('a'), H('c')], bodies: [H('b'), H('d')], sha1: sha1(readFileSync(F)) }, 'lower-cased; the last line without \\n');
  for (const [text, why] of [[`${H('a')}x${H('b')} n\n`, '2 != 3 fields'], [`${H('a')} ${H('b')}x n\n`, 'invalid SHA-1'], [`${H('a')} ${'g'.repeat(40)} n\n`, 'invalid SHA-1'], [`${H('a')} ${H('b')} \n`.slice(0, 82), '2 != 3 fields']]) {
    writeFileSync(F, text, 'latin1');
    t.throws(() => readDbFile(F), { message: `${F}: malformed line 1: ${why}. Please remove this db file.`, line: 1 }, JSON.stringify(text.slice(38)));
  }

  // forEachLine: lines, their numbers and offsets, across reads and a line longer than the buffer.
  const long = 'y'.repeat(3 << 20);
  writeFileSync(F, `a\n\nbc\n${long}\nlast`, 'latin1');
  const seen: string[] = [];
  const sha = forEachLine(F, (buf, s, e, no, off) => seen.push(`${no}@${off}:${e - s}:${buf.toString('latin1', s, Math.min(e, s + 2))}`));
  t.same(seen, ['1@0:1:a', '2@2:0:', '3@3:2:bc', `4@6:${long.length}:yy`, `5@${7 + long.length}:4:la`]);
  t.equal(sha, sha1(readFileSync(F)));
  writeFileSync(F, '');
  t.equal(forEachLine(F, () => t.fail('no line in an empty file')), sha1(''));

  // commit and discard move or remove exactly the scan's files.
  writeFileSync(`${F}.new`, 'n');
  writeFileSync(`${F}.mtime.new`, '5');
  writeFileSync(`${F}.stat-cache.new`, 's');
  commitDbFile(F);
  t.same([readFileSync(F, 'latin1'), readFileSync(`${F}.mtime`, 'latin1'), readFileSync(`${F}.stat-cache`, 'latin1')], ['n', '5', 's']);
  t.notOk(existsSync(`${F}.new`) || existsSync(`${F}.mtime.new`) || existsSync(`${F}.stat-cache.new`));
  writeFileSync(`${F}.new`, 'm');
  commitDbFile(F);
  t.same([readFileSync(F, 'latin1'), readFileSync(`${F}.mtime`, 'latin1')], ['m', '5'], 'without .mtime.new: the old .mtime stays');
  t.throws(() => commitDbFile(F), { code: 'ENOENT' }, 'no .new: an error');
  mkdirSync(`${F}.stat-cache.new`);
  writeFileSync(`${F}.new`, 'k');
  writeFileSync(join(`${F}.stat-cache.new`, 'x'), '');
  t.throws(() => commitDbFile(F), { code: /EISDIR|ENOTDIR|ENOTEMPTY|EEXIST/ }, 'another error than ENOENT is thrown');
  rmSync(`${F}.stat-cache.new`, { recursive: true });
  writeFileSync(`${F}.new`, 'k');
  writeFileSync(`${F}.stat-cache.new`, 'k');
  discardDbNew(F);
  t.notOk(existsSync(`${F}.new`) || existsSync(`${F}.stat-cache.new`), 'discarded');
  discardDbNew(F);
  mkdirSync(`${F}.new`);
  t.throws(() => discardDbNew(F), { code: 'EISDIR' }, 'another error than ENOENT is thrown');
  rmSync(`${F}.new`, { recursive: true });

  // writeDbNew: a producer that fails leaves nothing.
  t.throws(() => writeDbNew(F, (function* () { yield 'a\n'; throw new Error('boom'); })(), 1), /boom/);
  t.notOk(existsSync(`${F}.new`) || existsSync(`${F}.mtime.new`), 'nothing left by a failed write');
  t.same(readdirSync(d).filter((n) => n.includes('tmp')), [], 'no temporary file either');

  // The fingerprint creates F only when asked, and never truncates it.
  const G = join(d, 'g.txt');
  writeFileSync(G, 'abc');
  t.same(dbFingerprint(G), { db: sha1('abc'), dbNew: null });
  t.equal(readFileSync(G, 'latin1'), 'abc');
  t.equal(dbLine(H('a'), H('b'), 'n m'), `${H('a')} ${H('b')} n m\n`);
});
