import t from 'tap';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  diff, formatCommand, readDbFile, writeDbNew, commitDbFile, discardDbNew, dbFingerprint, dbFileName, DbFileError,
  readDbMtime, type DbEntries, type DiffCommand, type CurrentFile,
} from '@smd/snapshot';
import { nativeDbLineDecoder } from '@smd/native';
import { tempDir, sha1 } from './helpers/maildir-fixture.js';

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
