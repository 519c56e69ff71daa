import t from 'tap';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, unlinkSync, copyFileSync, writeFileSync, openSync, writeSync, closeSync, statSync, linkSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, makeMaildir, writeMessage, setAge, sha1, mddiff, mddiffCommit, MDDIFF } from './helpers/maildir-fixture.js';

const ops = (lines: string[]): string[] => lines.map((l) => l.split(' ')[0]);

t.test('diff runs on a real Maildir', async (t) => {
  const d = tempDir(t);
  makeMaildir(join(d, 'Mail'), '', '.Foo Bar');
  writeMessage(d, 'Mail/cur/a', { header: 'Subject: a', body: 'body a\n' });
  writeMessage(d, 'Mail/cur/b', { header: 'Subject: b', body: 'body b\n' });
  writeMessage(d, 'Mail/new/c', { header: 'Subject: c', body: 'body c\n' });
  writeMessage(d, 'Mail/.Foo Bar/cur/d 1', { header: 'Subject: d', body: 'body d\n' });
  writeMessage(d, 'Mail/cur/nohdr', { content: 'no blank line\n' });
  writeMessage(d, 'Mail/cur/empty', { content: '' });

  let r = mddiffCommit(d, ['Mail']);
  t.equal(r.status, 0, 'first run');
  t.same(ops(r.lines), ['ADD', 'ADD', 'ADD', 'ADD']);
  t.ok(r.lines.includes(`ADD Mail/cur/a ${sha1('Subject: a\n\n')} ${sha1('body a\n')}`));
  t.ok(r.lines.includes(`ADD Mail/.Foo%20Bar/cur/d%201 ${sha1('Subject: d\n\n')} ${sha1('body d\n')}`), 'names with spaces printed %20');
  t.match(r.stderr, /warning \[\w+\]: malformed file 'Mail\/cur\/nohdr', no header/);
  t.match(readFileSync(join(d, 'db.txt'), 'latin1'), / Mail\/.Foo Bar\/cur\/d 1\n/, 'raw names in the db-file');
  t.match(readFileSync(join(d, 'db.txt.mtime'), 'latin1'), /^\d+$/);

  r = mddiffCommit(d, ['Mail']);
  t.same(r.lines, [], 'second run: nothing');
  t.equal(r.status, 0);

  renameSync(join(d, 'Mail/cur/a'), join(d, 'Mail/cur/a:2,S'));
  r = mddiffCommit(d, ['Mail']);
  t.same(r.lines, [`MOVE Mail/cur/a ${sha1('Subject: a\n\n')} ${sha1('body a\n')} TO Mail/cur/a:2,S`], 'rename → MOVE');

  copyFileSync(join(d, 'Mail/cur/b'), join(d, 'Mail/cur/b2'));
  r = mddiffCommit(d, ['Mail']);
  t.same(r.lines, [`COPY Mail/cur/b ${sha1('Subject: b\n\n')} ${sha1('body b\n')} TO Mail/cur/b2`], 'copy → COPY');

  writeMessage(d, 'Mail/cur/b2', { header: 'Subject: b2', body: 'body b\n', ago: -5 });
  r = mddiffCommit(d, ['Mail']);
  t.same(r.lines, [`REPLACEHEADER Mail/cur/b2 ${sha1('Subject: b\n\n')} ${sha1('body b\n')} WITH ${sha1('Subject: b2\n\n')}`]);

  writeMessage(d, 'Mail/new/c', { header: 'Subject: c', body: 'body c changed\n', ago: -5 });
  r = mddiffCommit(d, ['Mail']);
  t.same(r.lines, [`REPLACE Mail/new/c ${sha1('Subject: c\n\n')} ${sha1('body c\n')} WITH ${sha1('Subject: c\n\n')} ${sha1('body c changed\n')}`]);

  writeMessage(d, 'Mail/cur/e', { header: 'Subject: other', body: 'body d\n' });
  r = mddiffCommit(d, ['Mail']);
  t.same(r.lines, [`COPYBODY Mail/.Foo%20Bar/cur/d%201 ${sha1('body d\n')} TO Mail/cur/e ${sha1('Subject: other\n\n')}`]);

  unlinkSync(join(d, 'Mail/cur/b'));
  writeMessage(d, 'Mail/new/f', { header: 'Subject: f', body: 'f\n' });
  r = mddiff(d, ['-d', 'Mail']);
  t.same(ops(r.lines), ['ADD', 'DELETE'], 'delete → DELETE last');
  t.equal(r.lines[1], `DELETE Mail/cur/b ${sha1('Subject: b\n\n')} ${sha1('body b\n')}`);
  t.notOk(existsSync(join(d, 'db.txt.new')) || existsSync(join(d, 'db.txt.mtime.new')), 'dry-run writes no .new');
  t.same(mddiff(d, ['-n', '-d', 'Mail']).lines.map((l) => l.split(' ')[0]), ['ADD'], '-n');

  renameSync(join(d, 'Mail/cur/e'), join(d, 'Mail/cur/e:2,S'));
  r = mddiff(d, ['-d', '--no-move', 'Mail']);
  t.same(ops(r.lines).sort(), ['ADD', 'COPY', 'DELETE', 'DELETE'], '--no-move: COPY + DELETE');
  r = mddiff(d, ['-d', '-n', '--no-move', 'Mail']);
  t.same(ops(r.lines).sort(), ['ADD', 'COPY', 'DELETE'], '-n --no-move: the old name is still deleted');
  t.match(r.lines.find((l) => l.startsWith('DELETE')), /^DELETE Mail\/cur\/e /);

  // Excludes (%-decoded, whole path) and several roots.
  r = mddiff(d, ['-d', '--exclude', 'Mail/.Foo%20Bar', 'Mail']);
  t.ok(r.lines.some((l) => l.startsWith('DELETE Mail/.Foo%20Bar/cur/d%201')), 'excluded folder: its messages are DELETEs');
  r = mddiff(d, ['-d', '--db-file', 'other.db', '--exclude', '*/cur', 'Mail/.Foo Bar/', 'Mail/new']);
  t.same(r.lines.filter((l) => l.startsWith('ADD')).map((l) => l.split(' ')[1]).sort(), ['Mail/new/c', 'Mail/new/f'], 'exclude */cur: only the Mail/new root is left');
  r = mddiff(d, ['-d', '--db-file', 'other.db', 'Mail/.Foo%20Bar/', 'Mail/new']);
  t.same(r.lines.map((l) => l.split(' ')[1]).slice(0, 1), ['Mail/.Foo%20Bar/cur/d%201'], 'roots in argument order, one / stripped');
  t.equal(r.lines.length, 3);

  // A corrupt or foreign stat cache is ignored (upstream db-files have none).
  mddiffCommit(d, ['Mail']);
  writeFileSync(join(d, 'db.txt.stat-cache'), 'smd-stat-cache 1 garbage\n1 2\n');
  t.same(mddiff(d, ['-d', 'Mail']).lines, [], 'corrupt stat cache: still nothing to do');

  // B13: same name, older mtime, other content (cp -p): re-read thanks to the stat cache.
  mddiffCommit(d, ['Mail']);
  writeMessage(d, 'Mail/cur/b2', { header: 'Subject: b2', body: 'same size!\n', ago: 5000 });
  r = mddiff(d, ['-d', 'Mail']);
  t.same(ops(r.lines), ['REPLACE'], 'B13 fixed');
});

t.test('a big db-file: the diff and the db-file are the same whether folders are listed + stat\'ed on worker threads or not', async (t) => {
  const d = tempDir(t);
  const folders = ['', '.A', '.B', '.B.C', '.D'];
  makeMaildir(join(d, 'Mail'), ...folders);
  // 1,000 messages: a db-file over 100 KB, which makes the scan list + stat on the pool.
  const where = (i: number): string => `Mail/${folders[i % 5]}${i % 5 === 0 ? '' : '/'}${i % 7 === 0 ? 'new' : 'cur'}`;
  for (let i = 0; i < 1000; i++) writeMessage(d, `${where(i)}/${1700000000 + i}.M${i}.host:2,S`, { header: `Subject: ${i}`, body: `body ${i % 900}\n` });
  t.equal(mddiffCommit(d, ['Mail']).lines.length, 1000);
  t.ok(statSync(join(d, 'db.txt')).size > 100_000, 'the db-file is big enough for the pool');
  // Every kind of change at once.
  for (let i = 0; i < 1000; i += 10) renameSync(join(d, `${where(i)}/${1700000000 + i}.M${i}.host:2,S`), join(d, `${where(i)}/${1700000000 + i}.M${i}.host:2,RS`));
  for (let i = 3; i < 1000; i += 50) unlinkSync(join(d, `${where(i)}/${1700000000 + i}.M${i}.host:2,S`));
  for (let i = 7; i < 1000; i += 100) writeMessage(d, `${where(i)}/${1700000000 + i}.M${i}.host:2,S`, { header: `Subject: ${i} edited`, body: `body ${i % 900}\n`, ago: -5 });
  for (let i = 0; i < 30; i++) writeMessage(d, `Mail/.A/new/new${i}`, { header: `Subject: new ${i}`, body: `new body ${i}\n` });
  copyFileSync(join(d, `${where(11)}/${1700000000 + 11}.M11.host:2,S`), join(d, 'Mail/.D/cur/copy'));
  const run = (threads: string | undefined, native = true): { out: string; db: Buffer; cache: Buffer } => {
    const env: NodeJS.ProcessEnv = { ...process.env, SMD_NATIVE: native ? '1' : '0' };
    if (threads === undefined) delete env.SMD_SCAN_THREADS; else env.SMD_SCAN_THREADS = threads;
    const r = spawnSync(process.execPath, [MDDIFF, 'Mail'], { cwd: d, env, encoding: 'latin1' });
    t.equal(r.status, 0, r.stderr);
    return { out: r.stdout, db: readFileSync(join(d, 'db.txt.new')), cache: readFileSync(join(d, 'db.txt.stat-cache.new')) };
  };
  const pooled = run(undefined);
  const verbose = spawnSync(process.execPath, [MDDIFF, '-v', '-d', 'Mail'], { cwd: d, env: { ...process.env, SMD_SCAN_THREADS: '1' }, encoding: 'latin1' });
  t.match(verbose.stderr, /listing 10 mail folders on 1 worker thread/, 'with threads, the pool lists the folders');
  const ahead = spawnSync(process.execPath, [MDDIFF, '-v', '-d', 'Mail'], { cwd: d, encoding: 'latin1' });
  if (process.env.SMD_NATIVE === '0') t.notMatch(ahead.stderr, /native thread/, 'SMD_NATIVE=0: no native thread');
  else t.match(ahead.stderr, /listing 10 mail folders ahead on 1 native thread/, 'by default, a native thread lists + stats the folders ahead');
  const single = run('0');
  const one = run('1');
  const two = run('2');
  // The same without the native lister: plain fs calls, no listing ahead.
  const fs = run(undefined, false);
  t.equal(fs.out, pooled.out, 'same diff without the native lister');
  t.ok(fs.db.equals(pooled.db), 'same db-file without the native lister');
  t.ok(fs.cache.equals(pooled.cache) && single.cache.equals(pooled.cache), 'same stat cache (same inodes, sizes, mtimes) either way');
  const ops = pooled.out.split('\n').filter((l) => l !== '').map((l) => l.split(' ')[0]);
  const count = (op: string): number => ops.filter((o) => o === op).length;
  t.same([count('MOVE'), count('DELETE'), count('REPLACEHEADER'), count('ADD'), count('COPY')], [100, 20, 10, 30, 1], 'every change found');
  t.equal(pooled.out, single.out, 'same diff as on one thread');
  t.equal(one.out, single.out, 'same diff with one worker');
  t.equal(two.out, single.out, 'same diff with two workers');
  t.ok(pooled.db.equals(single.db) && one.db.equals(single.db) && two.db.equals(single.db), 'same db-file');
  // The db-file as the engine would write it from scratch: the survivors in old order, then the new entries.
  const old = readFileSync(join(d, 'db.txt'), 'latin1').split('\n').filter((l) => l !== '');
  const changed = new Set(pooled.out.split('\n').filter((l) => /^(MOVE|DELETE|REPLACEHEADER)/.test(l)).map((l) => decodeURIComponent(l.split(' ')[1])));
  const survivors = old.filter((l) => !changed.has(l.slice(82)));
  t.same(pooled.db.toString('latin1').split('\n').slice(0, survivors.length), survivors, 'unchanged lines kept in order');
  t.equal(pooled.db.toString('latin1').split('\n').length - 1, survivors.length + 100 + 10 + 30 + 1, 'then one line per new entry');
});

t.test('the new db-file is canonical: upper-case hex and a missing last newline are rewritten, not copied', async (t) => {
  const d = tempDir(t);
  makeMaildir(join(d, 'Mail'), '');
  const lines = [];
  for (let i = 0; i < 5; i++) {
    writeMessage(d, `Mail/cur/${i}`, { header: `Subject: ${i}`, body: `b${i}\n` });
    lines.push(`${sha1(`Subject: ${i}\n\n`)} ${sha1(`b${i}\n`)} Mail/cur/${i}`);
  }
  const expected = lines.map((l) => `${l}\n`).join('');
  const variants: [string, string][] = [
    ['upper-case hex', lines.map((l, i) => `${i === 2 ? l.slice(0, 81).toUpperCase() + l.slice(81) : l}\n`).join('')],
    ['no final newline', lines.join('\n')],
    ['canonical', expected],
  ];
  for (const [what, db] of variants) {
    writeFileSync(join(d, 'db.txt'), db);
    writeFileSync(join(d, 'db.txt.mtime'), String(Math.floor(Date.now() / 1000)));
    const r = mddiff(d, ['Mail']);
    t.same(r.lines, [], `${what}: no change`);
    t.equal(readFileSync(join(d, 'db.txt.new'), 'latin1'), expected, `${what}: db.new is canonical`);
  }
});

t.test('db.new copies the surviving lines of a db-file over 1 MiB, in order, across its read blocks', async (t) => {
  const d = tempDir(t);
  makeMaildir(join(d, 'Mail'), '');
  const lines: string[] = [];
  const kept: string[] = [];
  for (let k = 0; k < 12000; k++) {
    if (k % 40 === 7) {
      const name = `Mail/cur/${k}.keep:2,S`;
      writeMessage(d, name, { header: `Subject: ${k}`, body: `kept ${k}\n` });
      lines.push(`${sha1(`Subject: ${k}\n\n`)} ${sha1(`kept ${k}\n`)} ${name}\n`);
      kept.push(lines[lines.length - 1]);
    } else {
      lines.push(`${sha1(`h${k}`)} ${sha1(`b${k}`)} Mail/cur/${k}.gone-with-a-longer-name-to-pass-one-mebibyte:2,S\n`);
    }
  }
  writeFileSync(join(d, 'db.txt'), lines.join(''));
  writeFileSync(join(d, 'db.txt.mtime'), String(Math.floor(Date.now() / 1000)));
  t.ok(statSync(join(d, 'db.txt')).size > 1 << 20, 'the db-file is over 1 MiB');
  const r = mddiff(d, ['Mail']);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.lines.length, 12000 - kept.length, 'every other line is a DELETE');
  t.equal(readFileSync(join(d, 'db.txt.new'), 'latin1'), kept.join(''), 'db.new holds the kept lines, in order');
});

t.test('bad input', async (t) => {
  const d = tempDir(t);
  makeMaildir(join(d, 'Mail'), '');
  writeMessage(d, 'Mail/cur/a', {});
  let r = mddiff(d, ['Mail', 'Missing']);
  t.equal(r.status, 1);
  t.match(r.stdout, /^ERROR .*Missing/m);
  t.match(r.stderr, /^error \[\w+\]: .*Missing/m);
  writeFileSync(join(d, 'db.txt'), `${sha1('a')} ${sha1('b')} Mail/cur/x\nbroken line\n`);
  r = mddiff(d, ['Mail']);
  t.equal(r.status, 1);
  t.match(r.stdout, /^ERROR db\.txt: malformed line 2: /m, 'names file and line');
  t.notOk(existsSync(join(d, 'db.txt.new')));
  r = mddiff(d, ['--help']);
  t.equal(r.status, 0);
  t.match(r.stdout, /Usage: mddiff/);
  t.equal(mddiff(d, ['--bogus', 'Mail']).status, 1);
  t.equal(mddiff(d, []).status, 1);
  t.match(mddiff(d, []).stdout, /Usage/);
});

t.test('helper modes', async (t) => {
  const d = tempDir(t);
  makeMaildir(join(d, 'Mail'), '', '.A', '.B');
  writeMessage(d, 'Mail/cur/a', { header: 'H: 1', body: 'x\n' });
  writeMessage(d, 'Mail/cur/nohdr', { content: 'nothing' });
  writeMessage(d, 'Mail/cur/empty', { content: '' });
  let r = mddiff(d, ['-l', '--exclude', 'Mail/.B', 'Mail']);
  t.same(r.lines.sort(), ['Mail/.A/cur', 'Mail/.A/new', 'Mail/cur', 'Mail/new']);
  r = mddiff(d, ['--sha1sum', 'Mail/cur/a']);
  t.same(r.lines, [`${sha1('H: 1\n\nx\n')}  Mail/cur/a`]);
  t.equal(mddiff(d, ['--sha1sum', 'Mail']).status, 1, 'not a regular file');
  t.equal(mddiff(d, ['--mkdir-p', 'x/y/z']).status, 0);
  t.ok(statSync(join(d, 'x/y/z')).isDirectory());
  t.equal(mddiff(d, ['--mkfifo', 'fifo']).status, 0);
  t.ok(statSync(join(d, 'fifo')).isFIFO());

  // Hash server on the fifo.
  const child = spawn(process.execPath, [MDDIFF, 'fifo'], { cwd: d, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => { out += b.toString('latin1'); });
  const fd = openSync(join(d, 'fifo'), 'w');
  writeSync(fd, 'Mail/cur/a\nMail/cur/empty\nMail/cur/nohdr\n');
  closeSync(fd);
  const code = await new Promise<number | null>((res) => child.once('close', res));
  t.equal(out, `${sha1('H: 1\n\n')} ${sha1('x\n')}\n${sha1('')} ${sha1('')}\nERROR malformed file 'Mail/cur/nohdr', no header\n`);
  t.equal(code, 1);

  // Symlink server.
  execFileSync(process.execPath, [MDDIFF, '--mkfifo', 'fifo2'], { cwd: d });
  const sl = spawn(process.execPath, [MDDIFF, '-s', 'fifo2'], { cwd: d, stdio: ['ignore', 'pipe', 'pipe'] });
  let sout = '';
  sl.stdout.on('data', (b: Buffer) => { sout += b.toString('latin1'); });
  const fd2 = openSync(join(d, 'fifo2'), 'w');
  writeSync(fd2, `${d}/Mail/cur\nwork/area/link\n`);
  closeSync(fd2);
  t.equal(await new Promise<number | null>((res) => sl.once('close', res)), 0);
  t.equal(sout, 'OK\n');
  t.equal(readFileSync(join(d, 'work/area/link/a'), 'latin1'), 'H: 1\n\nx\n');
});

t.test('a MOVE source is "gone" only if its folder was listed whole without it (a cur/ with a subfolder comes in two pieces)', async (t) => {
  const d = tempDir(t);
  makeMaildir(join(d, 'Mail'), '', '.B');
  const cur = join(d, 'Mail/cur');
  for (let i = 0; i < 40; i++) writeMessage(d, `Mail/cur/f${i}`, { header: `Subject: ${i}`, body: `body ${i}\n` });
  execFileSync('mkdir', ['-p', join(cur, 'sub/cur')]);
  writeMessage(d, 'Mail/.B/cur/b', { header: 'Subject: b', body: 'b\n' });
  t.equal(mddiffCommit(d, ['Mail']).lines.length, 41);
  const order = (): string[] => execFileSync('ls', ['-U', cur], { encoding: 'latin1' }).split('\n').filter((x) => x !== '');
  const sub = order().indexOf('sub');
  const after = order().slice(sub + 1).find((x) => x.startsWith('f'));
  t.ok(sub > 0 && after !== undefined, 'files on both sides of the subfolder in readdir order');
  // A copy of `after` under a name listed before the subfolder: its source is listed (and still
  // there) only in the second piece of cur/, after the copy is diffed.
  let copy: string | undefined;
  for (let k = 0; k < 200 && copy === undefined; k++) {
    copyFileSync(join(cur, after!), join(cur, `c${k}`));
    if (order().indexOf(`c${k}`) < order().indexOf('sub')) copy = `c${k}`; else unlinkSync(join(cur, `c${k}`));
  }
  t.ok(copy !== undefined, 'a name that lands before the subfolder');
  // Enough new messages in the subfolder that the scan settles the copy (it reads ahead up to
  // 1,024 files) while it walks the subfolder, before the second piece of cur/.
  for (let i = 0; i < 1100; i++) writeFileSync(join(cur, `sub/cur/n${i}`), `Subject: n${i}

new ${i}
`);
  let r = mddiff(d, ['-d', 'Mail']);
  r.lines = r.lines.filter((l) => !l.startsWith('ADD Mail/cur/sub/cur/n'));
  t.same(r.lines.map((l) => l.replace(/ [0-9a-f]{40}/g, '')), [`COPY Mail/cur/${after} TO Mail/cur/${copy}`], 'still there: COPY, not MOVE');
  // A hard link instead: the same inode, so it is settled as soon as the walk meets it, in the
  // first piece; its source is in the last one: still there, COPY.
  unlinkSync(join(cur, copy!));
  linkSync(join(cur, after!), join(cur, copy!));
  r = mddiff(d, ['-d', 'Mail']);
  r.lines = r.lines.filter((l) => !l.startsWith('ADD Mail/cur/sub/cur/n'));
  t.same(r.lines.map((l) => l.replace(/ [0-9a-f]{40}/g, '')), [`COPY Mail/cur/${after} TO Mail/cur/${copy}`], 'a hard link met before its source: COPY');
  // Renamed instead (the source is gone from both pieces): MOVE; and across folders too.
  unlinkSync(join(cur, copy!));
  renameSync(join(cur, after!), join(cur, copy!));
  renameSync(join(d, 'Mail/.B/cur/b'), join(cur, 'b-moved'));
  r = mddiff(d, ['-d', 'Mail']);
  r.lines = r.lines.filter((l) => !l.startsWith('ADD Mail/cur/sub/cur/n'));
  t.same(r.lines.map((l) => l.replace(/ [0-9a-f]{40}/g, '')).sort(), [`MOVE Mail/.B/cur/b TO Mail/cur/b-moved`, `MOVE Mail/cur/${after} TO Mail/cur/${copy}`].sort());
});

t.test('a db-file reads the same with and without the native decoder: mixed lines, 1 MiB blocks, errors', async (t) => {
  const d = tempDir(t);
  makeMaildir(join(d, 'Mail'), '');
  for (let i = 0; i < 5; i++) writeMessage(d, `Mail/cur/m${i}`, { header: `Subject: ${i}`, body: `body ${i}\n` });
  t.equal(mddiffCommit(d, ['Mail']).lines.length, 5);
  // One surviving line in upper case: db.new must be rewritten (canonical), not copied.
  const canonical = readFileSync(join(d, 'db.txt'), 'latin1');
  const mine = canonical.replace(/^[0-9a-f]{40}/, (h) => h.toUpperCase());
  const rows: string[] = [];
  for (let i = 0; i < 14000; i++) {
    const h = sha1(`h${i}`);
    const name = `Mail/.Old/cur/${i} ${'\xe9'.repeat(i % 7)}${'n'.repeat(i % 40)}:2,S`;
    rows.push(`${i % 997 === 5 ? h.toUpperCase() : h} ${sha1(`b${i % 3000}`)} ${name}\n`);
  }
  const body = mine + rows.join('');
  t.ok(body.length > 1.5 * (1 << 20), 'over one read block');
  const run = (native: boolean): { status: number | null; out: string; err: string; db: string | null } => {
    for (const f of ['db.txt.new', 'db.txt.mtime.new', 'db.txt.stat-cache.new']) if (existsSync(join(d, f))) unlinkSync(join(d, f));
    const r = spawnSync(process.execPath, [MDDIFF, 'Mail'], { cwd: d, env: { ...process.env, SMD_NATIVE: native ? '1' : '0' }, encoding: 'latin1', maxBuffer: 64 << 20 });
    return { status: r.status, out: r.stdout, err: r.stderr, db: existsSync(join(d, 'db.txt.new')) ? readFileSync(join(d, 'db.txt.new'), 'latin1') : null };
  };
  const cases: Array<[string, string]> = [
    ['mixed lines', body],
    ['no last newline', body.slice(0, -1)],
    ['malformed first line', `${'z'.repeat(40)} x\n${body}`],
    ['malformed line after the first block', (() => { const at = body.indexOf('\n', 1 << 20) + 1; return `${body.slice(0, at)}${sha1('x')} ${sha1('y')}\n${body.slice(at)}`; })()],
    ['malformed last line', `${body}${sha1('x')} ZZ name\n`],
  ];
  for (const [what, content] of cases) {
    writeFileSync(join(d, 'db.txt'), content, 'latin1');
    const js = run(false);
    const native = run(true);
    t.same(native, js, `${what}: same output, errors and db.new`);
    if (what.startsWith('malformed')) t.match(js.err, /malformed line \d+/, `${what}: an error naming the line`);
    else {
      t.equal(js.status, 0, `${what}: ${js.out.split('\n').filter((l) => l.startsWith('DELETE')).length} DELETEs`);
      t.equal(js.db, canonical, `${what}: db.new is the 5 messages, in lower case`);
    }
  }
});

t.test('a copy met before its source, which is being re-read (same mtime, new inode): the source is still there, COPY', async (t) => {
  const d = tempDir(t);
  makeMaildir(join(d, 'Mail'), '');
  const cur = join(d, 'Mail/cur');
  for (let i = 0; i < 10; i++) writeMessage(d, `Mail/cur/m${i}`, { header: `Subject: ${i}`, body: `body ${i}\n` });
  t.equal(mddiffCommit(d, ['Mail']).lines.length, 10);
  // `cp -p` of m5 over itself: another inode, the same mtime, so the stat cache sends it to be re-read.
  const src = join(cur, 'm5');
  const { atime, mtime } = statSync(src);
  copyFileSync(src, join(d, 'tmp-m5'));
  utimesSync(join(d, 'tmp-m5'), atime, mtime);
  renameSync(join(d, 'tmp-m5'), src);
  const order = (): string[] => execFileSync('ls', ['-U', cur], { encoding: 'latin1' }).split('\n').filter((x) => x !== '');
  let copy: string | undefined;
  for (let k = 0; k < 200 && copy === undefined; k++) {
    copyFileSync(src, join(cur, `c${k}`));
    if (order().indexOf(`c${k}`) < order().indexOf('m5')) copy = `c${k}`; else unlinkSync(join(cur, `c${k}`));
  }
  t.ok(copy !== undefined, 'a copy listed before its source');
  const r = mddiff(d, ['-d', 'Mail']);
  t.same(r.lines.map((l) => l.replace(/ [0-9a-f]{40}/g, '')), [`COPY Mail/cur/m5 TO Mail/cur/${copy}`]);
});
