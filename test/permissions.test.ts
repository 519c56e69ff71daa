/**
 * Permission errors, for real: every process here runs as the unprivileged
 * test user (helpers/unprivileged.ts), on temp Maildirs that user owns, so
 * `chmod 0` / `chmod a-w` deny what they say (as root they deny nothing).
 *
 * mddiff and smd-server scanning an unreadable folder or file, a read-only
 * Maildir, a requested file that became unreadable, a db-file that cannot be
 * written. (The same seen from smd-pull/smd-push: permissions-sync.test.ts.)
 */
import t, { type Test } from 'tap';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WireReader, WireWriter, PROTOCOL_VERSION } from '@smd/protocol';
import { MDDIFF, ROOT } from './helpers/maildir-fixture.js';
import { giveToTestUser, ownedTempDir, runAs, spawnAs, testUser } from './helpers/unprivileged.js';

const EMPTY = 'da39a3ee5e6b4b0d3255bfef95601890afd80709';
const SERVER = join(ROOT, 'bin', 'smd-server');
/** No stack trace reaches a user for an environment fault. */
const NO_STACK = /\bat (?:[\w.<>[\] ]+ \()?(?:node:|file:|\/)[^\s()]*:\d+:\d+\)?/;

t.test('the permission tests really run unprivileged', async (t) => {
  const u = testUser();
  t.not(u.uid, 0, `user ${u.name} is not root`);
  const d = ownedTempDir(t);
  writeFileSync(join(d, 'secret'), 'x');
  chmodSync(join(d, 'secret'), 0);
  const r = await runAs('/bin/cat', [join(d, 'secret')], { cwd: d, env: { PATH: '/usr/bin:/bin' } });
  t.not(r.status, 0, 'chmod 0 denies reading');
  t.match(r.stderr, /Permission denied/);
  const id = await runAs('/usr/bin/id', ['-u'], { cwd: d, env: { PATH: '/usr/bin:/bin' } });
  t.equal(id.stdout.trim(), String(u.uid), 'processes run as the test user');
});

/** A Maildir `Mail` (INBOX + .Real) with messages, owned by the test user, in a fresh dir. */
function serverTree(t: Test): { dir: string; names: string[] } {
  const dir = ownedTempDir(t);
  const names = ['Mail/cur/a:2,S', 'Mail/cur/c:2,S', 'Mail/.Real/cur/b:2,S'];
  for (const f of ['Mail', 'Mail/.Real']) for (const s of ['cur', 'new', 'tmp']) mkdirSync(join(dir, f, s), { recursive: true });
  for (const n of names) writeFileSync(join(dir, n), `Subject: ${n}\n\nbody of ${n}\n`);
  mkdirSync(join(dir, 'home', '.smd'), { recursive: true });
  giveToTestUser(dir);
  return { dir, names };
}

const mddiffAs = (cwd: string, args: string[]) => runAs(process.execPath, [MDDIFF, ...args], { cwd, env: { PATH: process.env.PATH, HOME: join(cwd, 'home') } });

t.test('mddiff as an unprivileged user', async (t) => {
  t.test('an unreadable folder: ERROR line on stdout, error on stderr, exit 1, no db-file written', async (t) => {
    const { dir } = serverTree(t);
    chmodSync(join(dir, 'Mail/.Real'), 0);
    const r = await mddiffAs(dir, ['--db-file', 'db.txt', 'Mail']);
    t.equal(r.status, 1);
    t.match(r.stdout, /^ERROR Unable to open directory Mail\/\.Real: EACCES$/m);
    t.match(r.stderr, /^error \[mddiff\]: Unable to open directory Mail\/\.Real: EACCES$/m);
    t.notOk(existsSync(join(dir, 'db.txt.new')), 'no db-file .new from a failed scan');
  });

  t.test('an unreadable cur/ (searchable, not listable): the same ERROR', async (t) => {
    const { dir } = serverTree(t);
    chmodSync(join(dir, 'Mail/.Real/cur'), 0o311);
    const r = await mddiffAs(dir, ['--db-file', 'db.txt', 'Mail']);
    t.equal(r.status, 1);
    t.match(r.stdout, /^ERROR Unable to open directory Mail\/\.Real\/cur: EACCES$/m);
  });

  t.test('an unreadable message: a warning, skipped, the rest is listed and recorded', async (t) => {
    const { dir, names } = serverTree(t);
    chmodSync(join(dir, 'Mail/cur/c:2,S'), 0);
    const r = await mddiffAs(dir, ['--db-file', 'db.txt', 'Mail']);
    t.equal(r.status, 0, r.stderr);
    t.match(r.stderr, /^warning \[mddiff\]: cannot read 'Mail\/cur\/c:2,S' \(EACCES\), skipped$/m);
    const added = r.stdout.split('\n').filter((l) => l.startsWith('ADD ')).map((l) => l.split(' ')[1]).sort();
    t.same(added, names.filter((n) => !n.includes('/c:')).sort(), 'the readable messages are ADDed');
    const db = readFileSync(join(dir, 'db.txt.new'), 'latin1');
    t.notMatch(db, /c:2,S/, 'the skipped message is not in the db-file');
  });

  t.test('a read-only Maildir is scanned normally (the server only reads)', async (t) => {
    const { dir, names } = serverTree(t);
    for (const n of names) chmodSync(join(dir, n), 0o444);
    for (const d of ['Mail/cur', 'Mail/.Real/cur', 'Mail/new', 'Mail/.Real/new', 'Mail/tmp', 'Mail/.Real/tmp', 'Mail/.Real', 'Mail']) chmodSync(join(dir, d), 0o555);
    const r = await mddiffAs(dir, ['--db-file', 'db.txt', 'Mail']);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout.split('\n').filter((l) => l.startsWith('ADD ')).length, names.length);
  });

  t.test('the db-file cannot be written: ERROR naming it, exit 1', async (t) => {
    const { dir } = serverTree(t);
    mkdirSync(join(dir, 'ro'));
    giveToTestUser(join(dir, 'ro'));
    chmodSync(join(dir, 'ro'), 0o555);
    const r = await mddiffAs(dir, ['--db-file', 'ro/db.txt', 'Mail']);
    t.equal(r.status, 1);
    t.match(r.stdout, /^ERROR cannot write ro\/db\.txt\.new: EACCES: permission denied/m);
    t.match(r.stderr, /^error \[mddiff\]: cannot write ro\/db\.txt\.new: EACCES/m);
    t.same(readdirSync(join(dir, 'ro')), [], 'nothing left in the read-only folder');
  });
});

/** smd-server as the test user, driven by a scripted client. */
function serverSession(dir: string, args: string[]) {
  const child = spawnAs(SERVER, args, { cwd: dir, env: { PATH: process.env.PATH, HOME: join(dir, 'home') } });
  let stderr = '';
  child.stderr!.setEncoding('latin1').on('data', (d: string) => { stderr += d; });
  child.stdin!.on('error', () => { /* it may exit first */ });
  const exit = new Promise<{ code: number | null; stderr: string }>((res) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('close', (code) => { clearTimeout(timer); res({ code, stderr }); });
  });
  const r = new WireReader(child.stdout!);
  const w = new WireWriter(child.stdin!);
  const handshakeAndDiff = async (): Promise<string[]> => {
    await w.line(`protocol ${PROTOCOL_VERSION}`);
    await w.line(`dbfile ${EMPTY} -`);
    await w.flush();
    await r.readLine();
    await r.readLine();
    const lines: string[] = [];
    for (let l = await r.readLine(); l !== null && l !== 'END'; l = await r.readLine()) lines.push(l);
    return lines;
  };
  return { child, r, w, exit, handshakeAndDiff };
}

t.test('smd-server as an unprivileged user', async (t) => {
  t.test('an unreadable folder: the diff carries the ERROR line, COMMIT is refused with ABORT (exit 4), no db-file', async (t) => {
    const { dir } = serverTree(t);
    chmodSync(join(dir, 'Mail/.Real'), 0);
    const s = serverSession(dir, ['laptop', 'Mail']);
    const diff = await s.handshakeAndDiff();
    t.ok(diff.includes('ERROR Unable to open directory Mail/.Real: EACCES'), `ERROR line in the diff: ${JSON.stringify(diff)}`);
    await s.w.line('COMMIT');
    await s.w.flush();
    t.equal(await s.r.readLine(), 'ABORT', 'a diff with an ERROR is never committed');
    s.child.stdin!.end();
    const e = await s.exit;
    t.equal(e.code, 4);
    t.match(e.stderr, /^ERROR: The client committed a diff that contained an ERROR: refusing$/m);
    t.notOk(existsSync(join(dir, 'home/.smd/laptop__Mail.db.txt.new')), 'no .new db-file');
  });

  t.test('a message made unreadable after the scan: ABORT for it, the session goes on, the next GET is served', async (t) => {
    const { dir } = serverTree(t);
    const s = serverSession(dir, ['-v', 'laptop', 'Mail']);
    const diff = await s.handshakeAndDiff();
    t.equal(diff.length, 3, 'three ADDs');
    chmodSync(join(dir, 'Mail/cur/c:2,S'), 0);
    await s.w.line('GET Mail/cur/c:2,S');
    await s.w.line('GET Mail/cur/a:2,S');
    await s.w.flush();
    t.equal(await s.r.readLine(), 'ABORT', 'the unreadable message is refused (upstream exits without a word: B11)');
    t.equal((await s.r.readChunk()).toString('latin1'), 'Subject: Mail/cur/a:2,S\n\nbody of Mail/cur/a:2,S\n', 'the next request is served');
    await s.w.line('ABORT');
    await s.w.flush();
    s.child.stdin!.end();
    const e = await s.exit;
    t.equal(e.code, 5, 'client ABORT');
    // Not a mail program at work: a WARNING (shown by smd-pull/push on success too), with the reason.
    t.ok(e.stderr.includes(`WARNING: Not sending Mail/cur/c:2,S: cannot open ${dir}/Mail/cur/c:2,S: Permission denied; it is left out until this is fixed\n`), e.stderr);
    t.notMatch(e.stderr, NO_STACK);
  });

  t.test('its db-file cannot be written (~/.smd read-only): ERROR in the diff, never committed', async (t) => {
    const { dir } = serverTree(t);
    // The db-file exists (a later sync), ~/.smd is r-x for its owner only.
    writeFileSync(join(dir, 'home/.smd/laptop__Mail.db.txt'), '');
    giveToTestUser(join(dir, 'home'));
    chmodSync(join(dir, 'home/.smd'), 0o500);
    const s = serverSession(dir, ['laptop', 'Mail']);
    const diff = await s.handshakeAndDiff();
    const err = diff.find((l) => l.startsWith('ERROR '));
    t.match(err, new RegExp(`^ERROR cannot write ${dir}/home/\\.smd/laptop__Mail\\.db\\.txt\\.new: EACCES: permission denied`));
    await s.w.line('COMMIT');
    await s.w.flush();
    t.equal(await s.r.readLine(), 'ABORT');
    s.child.stdin!.end();
    t.equal((await s.exit).code, 4);
    chmodSync(join(dir, 'home/.smd'), 0o700);
    t.same(readdirSync(join(dir, 'home/.smd')), ['laptop__Mail.db.txt'], 'no temp file left in ~/.smd');
  });
});
