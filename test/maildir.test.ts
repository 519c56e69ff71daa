import t from 'tap';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync, chmodSync, readFileSync, readdirSync, opendirSync, statSync, utimesSync, rmSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  fnmatch, walkMaildir, walkMaildirFolders, walkMailFolders, readMessageFile, MaildirWalkError, encodeName, decodeName, decodeArgument,
  writeFileAtomic, fsyncDir, AtomicFileWriter, removeStaleTemps, isProcessRunning, hashMessage, EMPTY_SHA1, findRenamed, HashPool, listDirectoryStat, prefetchMailFolders,
} from '@smd/maildir';
import { nativeLister, nativeFolderQueue, type NativeListing } from '@smd/native';
import { tempDir, makeMaildir, writeMessage, bpath, sha1, ROOT } from './helpers/maildir-fixture.js';
import { giveToTestUser, ownedTempDir, runAs } from './helpers/unprivileged.js';

const names = (root: string, opts: Parameters<typeof walkMaildir>[1] = {}): string[] => {
  return [...walkMaildir([root], opts)].map((c) => c.path.slice(root.length));
};

t.test('fnmatch, flags 0', async (t) => {
  t.ok(fnmatch('Mail/.Spam*', 'Mail/.Spam/cur'), '* matches /');
  t.ok(fnmatch('Mail/?Spam', 'Mail/.Spam'), '? matches a leading dot');
  t.ok(fnmatch('*', '.hidden/x'));
  t.notOk(fnmatch('b', 'a/b'), 'whole string');
  t.ok(fnmatch('a[bc]d', 'acd'));
  t.notOk(fnmatch('a[!bc]d', 'acd'));
  t.ok(fnmatch('a[^bc]d', 'axd'));
  t.ok(fnmatch('a[a-c]d', 'abd'));
  t.ok(fnmatch('a[]]d', 'a]d'));
  t.ok(fnmatch('a[[:digit:]]', 'a7'));
  t.ok(fnmatch('a[', 'a['), 'unterminated [ is literal');
  t.ok(fnmatch('a\\*', 'a*'));
  t.notOk(fnmatch('a\\*', 'ab'));
  t.ok(fnmatch('M.il/(x)+', 'M.il/(x)+'), 'regexp metacharacters are literal');
  t.ok(fnmatch('Mail/foo & bar', 'Mail/foo & bar'));
  t.ok(fnmatch('caf\xe9*', 'caf\xe9/cur'), 'bytes');
});

t.test('tree walk', async (t) => {
  const d = tempDir(t);
  const M = join(d, 'Mail');
  makeMaildir(M, '', '.Foo', '.Foo.Bar', 'sub/deep');
  writeMessage(M, 'cur/a', {});
  writeMessage(M, 'new/b', {});
  writeMessage(M, 'tmp/c', {});
  writeMessage(M, 'notmail', {});
  writeMessage(M, '.Foo/cur/d', {});
  writeMessage(M, '.Foo.Bar/new/e', {});
  writeMessage(M, 'sub/deep/cur/f', {});
  writeMessage(M, 'cur/x/new/g', {}); // cur/new are walked recursively, as upstream
  writeMessage(M, 'cur/tmp/new/h', {}); // tmp at any depth is skipped
  writeMessage(M, 'cur/.hidden', {});
  writeMessage(M, 'cur/dovecot-uidlist', {});
  writeMessage(M, 'cur/maildirfolder', {});
  writeMessage(M, 'new/subscriptions', {});
  writeMessage(M, '.notmuch/cur/n', {});
  writeMessage(M, 'cur/line\nbreak', {});
  const warnings: string[] = [];
  const got = names(M, { onWarning: (w) => warnings.push(w) }).sort();
  t.same(got, ['/.Foo.Bar/new/e', '/.Foo/cur/d', '/cur/a', '/cur/x/new/g', '/new/b', '/sub/deep/cur/f'].sort());
  t.match(warnings.join('\n'), /newline/);

  // By folder: the same files in the same order, also around a subfolder inside cur/.
  const M2 = join(d, 'Mail2');
  makeMaildir(M2, '', '.A');
  for (let i = 0; i < 20; i++) writeMessage(M2, `cur/m${i}`, {});
  writeMessage(M2, 'cur/x/new/g', {});
  writeMessage(M2, 'cur/.hidden', {});
  writeMessage(M2, '.A/new/n', {});
  const byFolder = [...walkMaildirFolders([M2])].flatMap((l) => l.entries.map((e) => `${l.dir}/${e}`));
  t.same(byFolder, [...walkMaildir([M2])].map((c) => c.path), 'walkMaildirFolders = walkMaildir');
  t.equal(byFolder.length, 22);

  // Readdir order, not sorted: compare with `ls -U` (directory order).
  const lsu = execFileSync('ls', ['-U', join(M, 'cur')], { encoding: 'latin1' }).split('\n').filter((x) => x !== '' && !x.startsWith('.'));
  const files = [...walkMaildir([M])].filter((c) => c.dir === `${M}/cur`).map((c) => c.entry);
  t.same(files, lsu.filter((x) => files.includes(x)), 'order of ls -U');

  // One trailing slash stripped; names built as root + '/' + ...
  const withSlash = [...walkMaildir([`${M}/`])].map((c) => c.path);
  t.ok(withSlash.every((p) => p.startsWith(`${M}/`) && !p.startsWith(`${M}//`)));

  // Excludes: whole path, every directory including the root.
  t.same(names(M, { excludes: [`${M}/.Foo*`] }).sort(), ['/cur/a', '/cur/x/new/g', '/new/b', '/sub/deep/cur/f'].sort());
  t.same(names(M, { excludes: ['.Foo'] }).length, 6, 'a relative pattern does not match the full path');
  t.same(names(M, { excludes: [M] }), [], 'root excluded');
  t.same(names(M, { excludes: ['*/cur'] }).sort(), ['/.Foo.Bar/new/e', '/new/b'], '* matches /, files never matched');

  // Several roots in argument order.
  const two = [...walkMaildir([`${M}/.Foo`, `${M}/.Foo.Bar`])].map((c) => c.path);
  t.same(two, [`${M}/.Foo/cur/d`, `${M}/.Foo.Bar/new/e`]);

  // -l
  const prev = process.cwd();
  process.chdir(d);
  try {
    const folders = [...walkMailFolders(['Mail'], { excludes: ['Mail/.Foo.Bar'] })].sort();
    t.same(folders, ['Mail/.Foo/cur', 'Mail/.Foo/new', 'Mail/cur', 'Mail/new', 'Mail/sub/deep/cur', 'Mail/sub/deep/new']);
  } finally {
    process.chdir(prev);
  }
});

t.test('bad entries: symlinks, loops, unreadable folders, missing root', async (t) => {
  const d = tempDir(t);
  const M = join(d, 'Mail');
  makeMaildir(M, '', '.Real');
  writeMessage(M, 'cur/a', {});
  writeMessage(M, '.Real/cur/r', {});
  writeMessage(d, 'outside/cur/o', {});
  symlinkSync(join(d, 'nowhere'), join(M, 'dangling'));
  symlinkSync(join(M, 'cur/a'), join(M, 'cur/link-to-file'));
  symlinkSync(M, join(M, '.Real/loop'));
  const warnings: string[] = [];
  const got = names(M, { onWarning: (w) => warnings.push(w) }).sort();
  t.same(got, ['/.Real/cur/r', '/cur/a'], 'bad links skipped');
  t.match(warnings.join('\n'), /dangling/);
  t.match(warnings.join('\n'), /does not point to a directory/);
  t.match(warnings.join('\n'), /loop/);

  // A folder symlink is followed only where it stays inside the mailboxes, or leads where the user allowed.
  symlinkSync(join(M, '.Real'), join(M, '.Alias'));
  t.same(names(M, {}).sort(), ['/.Alias/cur/r', '/.Real/cur/r', '/cur/a'], 'a symlink to a folder of the mailbox is followed');
  symlinkSync(join(d, 'outside'), join(M, '.Linked'));
  t.throws(() => names(M, {}), { name: 'MaildirWalkError', message: /\.Linked is a symbolic link to .*outside, outside the mailboxes: it is not followed .*FOLLOW_LOCAL/ },
    'a symlink leading out of the mailbox stops the walk, naming the link');
  t.same(names(M, { follow: [join(d, 'outside')] }).sort(), ['/.Alias/cur/r', '/.Linked/cur/o', '/.Real/cur/r', '/cur/a'], 'followed where allowed');
  t.throws(() => names(M, { follow: [join(d, 'outside', 'cur')] }), /\.Linked is a symbolic link/, 'a link to the parent of an allowed directory is not allowed');
  mkdirSync(join(d, 'outside2', 'cur'), { recursive: true });
  mkdirSync(join(d, 'outside2', 'new'), { recursive: true });
  symlinkSync(join(d, 'outside2', 'cur'), join(M, '.Real', 'cur2'));
  t.throws(() => names(M, { follow: [join(d, 'outside')] }), /cur2 is a symbolic link to .*outside2\/cur, outside the mailboxes/, 'any depth, any link');
  rmSync(join(M, '.Real', 'cur2'));
  // A link whose name is not UTF-8 (a ByteString byte 0xe9): JS realpathSync used to lose it,
  // so the link looked dangling, was never checked, and the walk went out through it.
  const latin1Link = Buffer.from(join(M, '.Caf\xe9'), 'latin1');
  symlinkSync(join(d, 'outside2'), latin1Link);
  t.throws(() => names(M, { follow: [join(d, 'outside')] }), { name: 'MaildirWalkError', message: /\.Caf\ufffd is a symbolic link to .*outside2, outside the mailboxes/ },
    'a link with a name that is not UTF-8 leading out stops the walk too');
  rmSync(latin1Link);
  symlinkSync(join(M, '.Real'), latin1Link);
  t.ok(names(M, { follow: [join(d, 'outside')] }).includes('/.Caf\xe9/cur/r'), 'and one that stays inside is followed');
  rmSync(latin1Link);

  t.throws(() => [...walkMaildir([join(d, 'missing')])], MaildirWalkError, 'missing root');
  writeFileSync(join(d, 'file'), 'x');
  t.throws(() => [...walkMaildir([join(d, 'file')])], /not a directory/);

  // An unreadable folder: as root chmod denies nothing, so the walk runs in a
  // child process as the unprivileged test user, on a tree that user owns.
  const u = ownedTempDir(t);
  const U = join(u, 'Mail');
  makeMaildir(U, '', '.Real');
  writeMessage(U, '.Real/cur/r', {});
  giveToTestUser(u);
  chmodSync(join(U, '.Real'), 0);
  const walkUrl = pathToFileURL(join(ROOT, 'packages/maildir/dist/index.js')).href;
  const script = `import(${JSON.stringify(walkUrl)}).then(({ walkMaildir }) => {
    try { console.log('listed ' + [...walkMaildir([${JSON.stringify(U)}])].length); } catch (e) { console.log(e.name + ': ' + e.message); }
  });`;
  const r = await runAs(process.execPath, ['-e', script], { cwd: u, env: { PATH: process.env.PATH } });
  t.equal(r.stdout, `MaildirWalkError: Unable to open directory ${U}/.Real: EACCES\n`, r.stderr);
});

t.test('hashing matches sha1sum of the split parts', async (t) => {
  const d = tempDir(t);
  const cases: Array<[string, string | Buffer]> = [
    ['plain', 'Subject: a\nFrom: b\n\nbody a\n'],
    ['empty-body', 'Subject: a\n\n'],
    ['starts-blank', '\nSubject: a\n\nbody\n'],
    ['crlf', 'Subject: a\r\nFrom: b\r\n\r\nbody\r\n'],
    ['crlf-then-lflf', 'Subject: a\r\n\r\nbody\n\nmore\n'],
    ['binary', Buffer.concat([Buffer.from('X: \xff\xfe\n\n', 'latin1'), Buffer.alloc(3 << 20, 0xab)])],
    // Around the 1 MiB read buffer: whole-file fast path, exactly full, one byte over.
    ...[-1, 0, 1].map((k): [string, Buffer] => [`mib${k}`, Buffer.concat([Buffer.from('X: y\n\n'), Buffer.alloc((1 << 20) + k - 6, 0x61)])]),
    ['lflf-at-the-end', Buffer.concat([Buffer.from('X: y\n'), Buffer.alloc((1 << 20) - 7, 0x62), Buffer.from('\n\n')])],
  ];
  for (const [n, content] of cases) {
    const p = writeMessage(d, `cur/${n}`, { content });
    const buf = readFileSync(p);
    let split = buf.indexOf('\n\n');
    split = split >= 0 ? split + 2 : buf.indexOf('\r\n\r\n') + 4;
    const size = buf.length;
    // Independent computation: head -c / tail -c piped to sha1sum.
    const hs = execFileSync('sh', ['-c', `head -c ${split} "$1" | sha1sum`, 'sh', p.toString('latin1')], { encoding: 'latin1' }).slice(0, 40);
    const bs = execFileSync('sh', ['-c', `tail -c ${size - split} "$1" | sha1sum`, 'sh', p.toString('latin1')], { encoding: 'latin1' }).slice(0, 40);
    const f = readMessageFile(p.toString('latin1'));
    t.equal(f.kind, 'message', n);
    if (f.kind === 'message') t.same([f.hashes.header, f.hashes.body], [hs, size === split ? EMPTY_SHA1 : bs], n);
  }
  t.equal(readMessageFile(writeMessage(d, 'cur/nohdr', { content: 'no header here\n' }).toString('latin1')).kind, 'noheader');
  t.equal(readMessageFile(writeMessage(d, 'cur/empty', { content: '' }).toString('latin1')).kind, 'empty');
  t.equal(readMessageFile(join(d, 'cur/missing')).kind, 'gone');
  t.same(hashMessage(Buffer.from('Subject: a\n\nbody a\n')), { header: sha1('Subject: a\n\n'), body: sha1('body a\n') });

  // The worker pool gives the same results as this thread.
  const pool = new HashPool(2, 2);
  const files = cases.map(([n]) => join(d, 'cur', n));
  const tickets = files.map((f) => pool.submit(f));
  pool.flush();
  for (let i = 0; i < files.length; i++) t.same(pool.result(tickets[i]), readMessageFile(files[i]), `pool ${files[i]}`);
  pool.close();
});

t.test('names: encoding round trip, odd bytes, renamed-file lookup', async (t) => {
  const d = tempDir(t);
  const odd = ['with space:2,S', '100%:2,', 'caf\xe9\xff:2,', 'a&b;c'];
  for (const n of odd) writeMessage(d, `Mail/cur/${n}`, { body: n });
  const got = [...walkMaildir([join(d, 'Mail')])].map((c) => c.entry).sort();
  t.same(got, odd.slice().sort(), 'raw bytes survive the walk');
  for (const n of odd) {
    t.equal(decodeName(encodeName(n)), n);
    t.equal(decodeArgument(encodeName(n)), n);
  }
  t.equal(encodeName('a b%c'), 'a%20b%25c');
  // A file renamed by a mail program between listing and open.
  const found = findRenamed({ path: `${d}/Mail/cur/with space:2,`, dir: `${d}/Mail/cur`, entry: 'with space:2,' });
  t.same(found, [`${d}/Mail/cur/with space:2,S`]);
  writeMessage(d, 'Mail/cur/123.host:2,RS', {});
  t.same(findRenamed({ path: `${d}/Mail/new/123.host`, dir: `${d}/Mail/new`, entry: '123.host' }), [`${d}/Mail/cur/123.host:2,RS`], 'new -> cur');
});

t.test('atomic writes', async (t) => {
  const d = tempDir(t);
  const f = join(d, 'x');
  writeFileAtomic(f, 'one');
  writeFileAtomic(f, Buffer.from('two'));
  t.equal(readFileSync(f, 'utf8'), 'two');
  fsyncDir(d);
  t.same(spawnSync('ls', [d], { encoding: 'utf8' }).stdout.trim().split('\n'), ['x'], 'no temp file left');
  mkdirSync(join(d, 'sub'));
  t.throws(() => writeFileAtomic(join(d, 'nodir', 'y'), 'z'));
});

/** A directory listed and stat'ed with plain fs calls, in the shape of a NativeListing (for comparison). */
function fsListing(dir: string): { names: string[]; kinds: number[]; stats: number[] } {
  const d = opendirSync(Buffer.from(dir, 'latin1'), { encoding: 'latin1' } as never);
  const out = { names: [] as string[], kinds: [] as number[], stats: [] as number[] };
  for (let e: Dirent | null; (e = d.readSync()) !== null;) {
    const kind = e.isFile() ? 1 : e.isDirectory() ? 2 : e.isSymbolicLink() ? 3 : 0;
    out.names.push(e.name as unknown as string);
    out.kinds.push(kind);
    const st = kind === 1 ? statSync(Buffer.from(`${dir}/${e.name}`, 'latin1')) : null;
    out.stats.push(st?.ino ?? NaN, st?.size ?? NaN, st?.mtimeMs ?? NaN);
  }
  d.closeSync();
  return out;
}

const plain = (l: NativeListing | undefined): unknown => l && { names: l.names, kinds: [...l.kinds], stats: l.stats && [...l.stats] };

t.test('the native lister (@smd/native) is built, and lists and stats exactly as fs does', async (t) => {
  const list = nativeLister();
  if (process.env.SMD_NATIVE === '0') {
    t.equal(list, null, 'SMD_NATIVE=0 turns it off');
    return;
  }
  // npm ci builds it with node-gyp; a silent fall-back to fs would only be slower, so say it here.
  t.not(list, null, 'packages/native/build/Release/smd_native.node loads (npm ci builds it)');
  if (list === null) return;
  const d = tempDir(t);
  const dir = join(d, 'cur');
  mkdirSync(dir);
  writeFileSync(join(dir, '1700000000.M1.host:2,S'), 'Subject: a\n\nbody\n');
  writeFileSync(join(dir, 'with space %41'), 'x'.repeat(12345));
  writeFileSync(Buffer.from(`${dir}/caf\xe9-latin1`, 'latin1'), 'raw byte name');
  writeFileSync(join(dir, 'fractional'), 'y');
  utimesSync(join(dir, 'fractional'), 1700000000.123456, 1700000000.987654);
  writeFileSync(join(dir, 'old'), 'z');
  utimesSync(join(dir, 'old'), 1e6, 1e6);
  mkdirSync(join(dir, 'sub'));
  symlinkSync('1700000000.M1.host:2,S', join(dir, 'link-to-file'));
  symlinkSync('sub', join(dir, 'link-to-dir'));
  symlinkSync('nowhere', join(dir, 'dangling'));
  t.equal(spawnSync('mkfifo', [join(dir, 'fifo')]).status, 0);
  for (let i = 0; i < 300; i++) writeFileSync(join(dir, `m${i}`), `${i}`); // more than one getdents buffer

  const want = fsListing(dir);
  const got = list(dir, true)!;
  t.same(plain(got), want, 'names in readdir order, kinds, and ino/size/mtimeMs of the regular files (NaN for the rest)');
  t.equal(got.names.filter((n) => n === '.' || n === '..').length, 0, 'no . and ..');
  const frac = got.names.indexOf('fractional');
  t.equal(got.stats![3 * frac + 2], statSync(join(dir, 'fractional')).mtimeMs, 'sub-millisecond mtimes fold to the same double as Node\'s');
  t.same(plain(list(dir, false)), { ...want, stats: null }, 'without stat: no stats');
  t.same(plain(listDirectoryStat(dir, true)), want, 'listDirectoryStat goes through it');

  t.equal(list(join(d, 'missing'), true), undefined, 'a missing directory: undefined (JS then lists it)');
  t.throws(() => listDirectoryStat(join(d, 'missing'), true), { code: 'ENOENT' }, 'and listDirectoryStat throws fs\'s error');
  t.throws(() => listDirectoryStat(join(dir, 'old'), false), { code: 'ENOTDIR' });
  const empty = join(d, 'empty');
  mkdirSync(empty);
  t.same(plain(list(empty, true)), { names: [], kinds: [], stats: [] }, 'an empty directory');
});

t.test('the native folder queue lists ahead and hands each folder out once, in any order', async (t) => {
  if (nativeLister() === null) { t.pass('native lister off (SMD_NATIVE=0)'); return; }
  const d = tempDir(t);
  const dirs: string[] = [];
  for (let k = 0; k < 6; k++) {
    const dir = join(d, `f${k}`, 'cur');
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 20 * k; i++) writeFileSync(join(dir, `m${i}`), `${k}/${i}`);
    dirs.push(dir);
  }
  for (const threads of [0, 1, 2]) {
    const q = nativeFolderQueue([...dirs, join(d, 'missing'), `${d}/nul\0byte`], true, threads)!;
    t.ok(q !== null);
    for (const k of [5, 0, 3, 1, 4, 2]) t.same(plain(q.take(k)), fsListing(dirs[k]), `threads ${threads}: folder ${k}`);
    t.equal(q.take(0), undefined, 'a folder is handed out once');
    t.equal(q.take(6), undefined, 'a folder that cannot be listed: undefined');
    t.equal(q.take(7), undefined, 'a path with a NUL byte: undefined');
    t.equal(q.take(99), undefined, 'out of range: undefined');
    q.close();
    q.close();
    t.equal(q.take(1), undefined, 'closed: nothing');
  }
  // Closed with folders not taken (a scan that failed half-way): the threads stop, nothing leaks into later calls.
  const q = nativeFolderQueue(dirs, true, 2)!;
  q.close();
  t.same(plain(nativeLister()!(dirs[1], true)), fsListing(dirs[1]));

  // prefetchMailFolders: the cur/new folders of the trees, in walk order; one that vanished since is listed (and fails) on the spot.
  makeMaildir(join(d, 'Mail'), '', '.A', '.B');
  writeMessage(d, 'Mail/.A/cur/x', { header: 'Subject: x', body: 'x\n' });
  const ahead = prefetchMailFolders([join(d, 'Mail')], {}, 1)!;
  t.ok(ahead !== null);
  t.same(plain(ahead.list(join(d, 'Mail/.A/cur'))), fsListing(join(d, 'Mail/.A/cur')));
  ahead.close();
  // No thread: nothing is listed before the walk asks; a folder gone by then fails as fs fails.
  const lazy = prefetchMailFolders([join(d, 'Mail')], {}, 0)!;
  rmSync(join(d, 'Mail/.B'), { recursive: true });
  t.throws(() => lazy.list(join(d, 'Mail/.B/new')), { code: 'ENOENT' }, 'a folder that cannot be listed: fs\'s error');
  mkdirSync(join(d, 'Mail/.C/cur'), { recursive: true });
  t.same(plain(lazy.list(join(d, 'Mail/.C/cur'))), { names: [], kinds: [], stats: [] }, 'a folder made since is listed on the spot');
  lazy.close();
});

t.test('stale temporary files of killed writers are removed, nothing else', async (t) => {
  const d = tempDir(t);
  const db = join(d, 'laptop__Mail.db.txt');
  // A pid that surely does not run any more: a child that exited.
  const dead = spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim();
  const live = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => { live.kill('SIGKILL'); });
  const sentinel = join(d, 'sentinel');
  writeFileSync(sentinel, 'keep me');
  const files: Record<string, 'removed' | 'kept'> = {
    [`laptop__Mail.db.txt.new.tmp.${dead}.abc123`]: 'removed',
    [`laptop__Mail.db.txt.new.tmp.${live.pid}.abc123`]: 'kept', // its writer still runs
    [`laptop__Mail.db.txt.new.tmp.${process.pid}.zz9`]: 'kept', // ours
    [`other__Mail.db.txt.new.tmp.${dead}.abc123`]: 'kept', // another db-file's: its own writer cleans it
    [`laptop__Mail.db.txt.new.${dead}.tmp`]: 'kept', // not the pattern
    [`laptop__Mail.db.txt.new.tmp.${dead}.ABC`]: 'kept',
    [`laptop__Mail.db.txt.new.tmp.${dead}.abc123.x`]: 'kept',
  };
  for (const n of Object.keys(files)) writeFileSync(join(d, n), 'x'.repeat(1000));
  symlinkSync(sentinel, join(d, `laptop__Mail.db.txt.new.tmp.${dead}.link1`));
  mkdirSync(join(d, `laptop__Mail.db.txt.new.tmp.${dead}.dir1`));
  const w = new AtomicFileWriter(`${db}.new`);
  w.write('line\n');
  w.commit();
  const left = new Set(readdirSync(d));
  for (const [n, fate] of Object.entries(files)) t.equal(left.has(n) ? 'kept' : 'removed', fate, `${n}: ${fate}`);
  t.ok(left.has(`laptop__Mail.db.txt.new.tmp.${dead}.link1`) && left.has(`laptop__Mail.db.txt.new.tmp.${dead}.dir1`), 'a symlink or directory is never removed');
  t.equal(readFileSync(sentinel, 'utf8'), 'keep me');
  t.equal(readFileSync(`${db}.new`, 'utf8'), 'line\n', 'the write itself');
  // The function on its own, for the other writers of a path (the db-file patch uses an AtomicFileWriter too).
  writeFileSync(join(d, `laptop__Mail.db.txt.tmp.${dead}.q1`), 'x');
  t.same(removeStaleTemps(db), [`laptop__Mail.db.txt.tmp.${dead}.q1`]);
  t.ok(isProcessRunning(process.pid) && isProcessRunning(live.pid!) && !isProcessRunning(Number(dead)));
});
