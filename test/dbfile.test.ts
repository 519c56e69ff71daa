/**
 * The db-file of @smd/snapshot (dbfile.ts): written, read, committed,
 * fingerprinted; and read as the scan reads it (readDbFileBinary, the line
 * copier: through a real scan in-process, diffMaildir), with every refusal's
 * message. The test file of the mutation run of dbfile.ts (TESTING.md).
 */
import t from 'tap';
import { readFileSync, writeFileSync, existsSync, mkdirSync, rmSync, readdirSync, statSync, renameSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import {
  readDbFile, writeDbNew, commitDbFile, discardDbNew, dbFingerprint, dbFileName, DbFileError,
  readDbMtime, forEachLine, dbLine,
} from '@smd/snapshot';
import { tempDir, sha1, makeMaildir, writeMessage } from './helpers/maildir-fixture.js';
import { scanIn } from './helpers/dbfile-read-cases.js';

const H = (c: string): string => c.repeat(40);

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
  t.equal(readFileSync(G, 'latin1'), '', 'created empty');

  // A long db-file read across buffer boundaries.
  const big = join(d, 'big.txt');
  const rows: string[] = [];
  for (let i = 0; i < 10000; i++) rows.push(`${sha1(`h${i}`)} ${sha1(`b${i}`)} Mail/cur/${'n'.repeat(i % 50)} ${i}:2,S\n`);
  writeFileSync(big, rows.join(''), 'latin1');
  const r = readDbFile(big)!;
  t.ok(statSync(big).size > 1 << 20, 'more than the 1 MiB read buffer');
  t.equal(r.names.length, 10000);
  t.equal(r.names[9999], `Mail/cur/${'n'.repeat(9999 % 50)} 9999:2,S`);
  t.equal(r.headers[9999], sha1('h9999'));

  const bad = join(d, 'bad.txt');
  writeFileSync(bad, `${line}${line}${H('a')} only-two\n${line}`, 'latin1');
  t.throws(() => readDbFile(bad), { name: 'DbFileError', line: 3, message: `${bad}: malformed line 3: 2 != 3 fields. Please remove this db file.` });
  writeFileSync(bad, `${'z'.repeat(40)} ${H('a')} name\n`);
  t.throws(() => readDbFile(bad), DbFileError, 'invalid hex');
  writeFileSync(`${F}.mtime`, 'soon');
  t.throws(() => readDbMtime(F), DbFileError);
});

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
  const fds = (): number => readdirSync('/proc/self/fd').length;
  const open = fds();
  r = scanIn(d, F);
  t.equal(fds(), open, 'the db-file and its copier closed');
  t.same(r.cmds, [`DELETE Mail/cur/gone ${msg('gone').h} ${msg('gone').b}`]);
  t.equal(readFileSync(`${F}.new`, 'latin1'), line('d') + line('b') + line('a') + line('c'), 'the kept lines, in db order');

  // The db-file changes between reading and writing: its lines are not copied from the new file.
  writeFileSync(F, canonical, 'latin1');
  rmSync(`${F}.stat-cache`, { force: true });
  r = scanIn(d, F, () => writeFileSync(F, 'x'.repeat(canonical.length), 'latin1'));
  t.equal(readFileSync(`${F}.new`, 'latin1'), line('d') + line('b') + line('a') + line('c'), 'rebuilt from what was read');
  // Each part of the identity: the inode (another file, same size and mtime), the size (same mtime), the file gone.
  // Whole-second mtimes, so that a change can put the same one back.
  const kept = line('d') + line('b') + line('a') + line('c');
  const when = Math.floor(Date.now() / 1000) - 100;
  const changes: Array<[string, () => void]> = [
    ['another inode', () => {
      writeFileSync(`${F}.other`, 'y'.repeat(canonical.length), 'latin1');
      utimesSync(`${F}.other`, when, when);
      renameSync(`${F}.other`, F);
    }],
    ['another size', () => {
      writeFileSync(F, 'z'.repeat(canonical.length - 2), 'latin1');
      utimesSync(F, when, when);
    }],
    ['removed', () => rmSync(F)],
  ];
  for (const [what, change] of changes) {
    writeFileSync(F, canonical, 'latin1');
    utimesSync(F, when, when);
    rmSync(`${F}.stat-cache`, { force: true });
    scanIn(d, F, change);
    t.equal(readFileSync(`${F}.new`, 'latin1'), kept, `${what}: rebuilt from what was read`);
  }
  // The same file, other bytes of the same size, the same mtime: it looks unchanged, so its lines are
  // copied from it (which shows that the check above is what stops the copy).
  writeFileSync(F, canonical, 'latin1');
  utimesSync(F, when, when);
  rmSync(`${F}.stat-cache`, { force: true });
  scanIn(d, F, () => {
    writeFileSync(F, canonical.toUpperCase(), 'latin1');
    utimesSync(F, when, when);
  });
  t.equal(readFileSync(`${F}.new`, 'latin1'), canonical.slice(0, kept.length).toUpperCase(), 'copied from the file');

  // Many runs (native, JavaScript, native...): the names stay in file order.
  const alternating = Array.from({ length: 2100 }, (_, i) => {
    const l = `${sha1(`h${i}`)} ${sha1(`b${i}`)} Mail/cur/r${i}\n`;
    return i % 2 === 0 ? l.slice(0, 40).toUpperCase() + l.slice(40) : l;
  }).join('');
  writeFileSync(F, alternating, 'latin1');
  rmSync(`${F}.stat-cache`, { force: true });
  r = scanIn(d, F);
  t.same(r.cmds.filter((c) => c.startsWith('DELETE')).map((c) => c.split(' ')[1]), Array.from({ length: 2100 }, (_, i) => `Mail/cur/r${i}`), 'more than 1024 runs, in order');

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

  // More lines than the first guess from the size (short names): the tables grow.
  const many = Array.from({ length: 1500 }, (_, i) => `${sha1(`h${i}`)} ${sha1(`b${i}`)} Mail/cur/${i}\n`).join('');
  writeFileSync(F, line('a') + many + line('b'), 'latin1');
  t.ok(statSync(F).size / 100 < 1502, 'more lines than size / 100');
  rmSync(`${F}.stat-cache`, { force: true });
  r = scanIn(d, F);
  t.equal(r.cmds.length, 1502, 'every line read');
  t.same(r.cmds.slice(0, 2).sort(), ['c', 'd'].map((n) => `ADD Mail/cur/${n} ${msg(n).h} ${msg(n).b}`), 'the files new to the db');
  t.equal(r.cmds[2], `DELETE Mail/cur/0 ${sha1('h0')} ${sha1('b0')}`);
  t.same(r.cmds.slice(2), Array.from({ length: 1500 }, (_, i) => `DELETE Mail/cur/${i} ${sha1(`h${i}`)} ${sha1(`b${i}`)}`), 'the hashes of every line, across the growth');
  // A name longer than the read buffer: read whole; the lines after it are copied from beyond the first 1 MiB block.
  const huge = `Mail/cur/${'n'.repeat(1_100_000)}`;
  writeFileSync(F, line('a') + `${sha1('hh')} ${sha1('bb')} ${huge}\n` + line('b'), 'latin1');
  rmSync(`${F}.stat-cache`, { force: true });
  r = scanIn(d, F);
  t.ok(r.cmds.length === 3 && r.cmds[2] === `DELETE ${huge} ${sha1('hh')} ${sha1('bb')}`, 'the long line, whole');
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
  const under = join(d, 'plain-file');
  writeFileSync(under, '');
  const x = scanIn(d, join(under, 'db.txt'));
  t.same(x.cmds, [`ERROR ${join(under, 'db.txt')}: cannot read: ENOTDIR: not a directory, stat '${join(under, 'db.txt')}'`], 'a db-file that cannot be looked at is an error, not a first run');
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
  const long = 'y'.repeat(1.5 * (1 << 20));
  writeFileSync(F, `a\n\nbc\n${long}\nlast`, 'latin1');
  const seen: string[] = [];
  const fds = (): number => readdirSync('/proc/self/fd').length;
  const open = fds();
  const sha = forEachLine(F, (buf, s, e, no, off) => seen.push(`${no}@${off}:${e - s}:${buf.toString('latin1', s, Math.min(e, s + 2))}`));
  t.equal(fds(), open, 'the file is closed');
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

t.test('dbFileName', async (t) => {
  t.equal(dbFileName('/home/u', 'laptop', ['Mail']), '/home/u/.smd/laptop__Mail.db.txt');
  t.equal(dbFileName('/home/u', 'a/b/', ['Mail/', 'x/y%20z/']), '/home/u/.smd/a_b__Mail___x_y_20z.db.txt');
  t.equal(dbFileName('/h', 'ep', ['Mail/']), '/h/.smd/ep__Mail.db.txt');
});

t.test('the fingerprints of db-files of several read blocks are the SHA-1 of all their bytes', async (t) => {
  const dir = tempDir(t);
  const db = join(dir, 'big.db.txt');
  // 2.5 MiB: three blocks of the 1 MiB reader, the last one partial.
  const lines: string[] = [];
  for (let i = 0; lines.length * 100 < 2.5 * 1024 * 1024; i++) lines.push(`${H('a')} ${H('b')} Mail/cur/${String(i).padStart(14, '0')}\n`);
  writeFileSync(db, lines.join(''));
  writeFileSync(`${db}.new`, lines.slice(1).join(''));
  const fds = (): number => readdirSync('/proc/self/fd').length;
  const open = fds();
  const fp = dbFingerprint(db);
  t.equal(fds(), open, 'both files closed');
  t.equal(fp.db, sha1(readFileSync(db)), 'db: every byte counted');
  t.equal(fp.dbNew, sha1(readFileSync(`${db}.new`)), '.new: every byte counted');
  rmSync(`${db}.new`);
  t.equal(dbFingerprint(db).dbNew, null, 'no .new: null');
});
