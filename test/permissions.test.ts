/**
 * Permission errors, for real: every process here runs as the unprivileged
 * test user (helpers/unprivileged.ts), on temp Maildirs that user owns, so
 * `chmod 0` / `chmod a-w` deny what they say (as root they deny nothing).
 *
 * Server side: mddiff and smd-server scanning an unreadable folder or file,
 * a requested file that became unreadable, a db-file that cannot be written.
 * pull/push: the same seen from smd-pull/smd-push, plus the client-side
 * cases whose behaviour is right today. Client-side cases that are not right
 * yet are `todo` (they report, they do not fail): see the list at the end.
 */
import t, { type Test } from 'tap';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WireReader, WireWriter, PROTOCOL_VERSION } from '@smd/protocol';
import { MDDIFF, ROOT } from './helpers/maildir-fixture.js';
import { BIN, deliver, remoteConfig, tmpFiles, treeObject, writeConfig } from './helpers/sync-fixture.js';
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
    // Logged as INFO only: the client skips it and says so (WARNING ... skipped).
    t.match(e.stderr, /^INFO: Not sending Mail\/cur\/c:2,S: cannot open Mail\/cur\/c:2,S: EACCES \(changed by a mail program since the scan: the next run takes it\)$/m);
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

/** Two HOMEs (local, remote) owned by the test user, reached through the fake ssh of sync-fixture. */
function homes(t: Test): { local: string; remote: string; env: NodeJS.ProcessEnv } {
  const base = ownedTempDir(t, 'smd-perm-sync-');
  const local = join(base, 'local');
  const remote = join(base, 'remote');
  const fakeBin = join(base, 'fakebin');
  for (const d of [local, remote, fakeBin]) mkdirSync(d, { recursive: true });
  writeFileSync(join(fakeBin, 'ssh'), `#!/bin/sh\nshift\ncd "${remote}" || exit 255\nHOME="${remote}" exec sh -c "$*"\n`, { mode: 0o755 });
  writeConfig(local, 'default', remoteConfig());
  giveToTestUser(base);
  const env: NodeJS.ProcessEnv = { PATH: `${fakeBin}:${BIN}:${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: local, USER: testUser().name, LANG: 'C.UTF-8' };
  return { local, remote, env };
}

/** Delivers as root, then hands the files to the test user. */
function deliverOwned(home: string, folder: string): string {
  const rel = deliver(home, folder);
  giveToTestUser(home);
  return rel;
}

const pullAs = (h: { local: string; env: NodeJS.ProcessEnv }, args: string[] = ['-s']) => runAs(join(BIN, 'smd-pull'), args, { cwd: h.local, env: h.env });
const pushAs = (h: { local: string; env: NodeJS.ProcessEnv }, args: string[] = ['-s']) => runAs(join(BIN, 'smd-push'), args, { cwd: h.local, env: h.env });

t.test('smd-pull / smd-push as an unprivileged user: server-side permissions', async (t) => {
  t.test('pull: an unreadable server folder fails the run with mddiff TAGS; nothing is lost; readable again, it converges', async (t) => {
    const h = homes(t);
    deliverOwned(h.remote, 'Mail');
    deliverOwned(h.remote, 'Mail/.Real');
    const first = await pullAs(h);
    t.equal(first.status, 0, first.stdout + first.stderr);
    deliverOwned(h.remote, 'Mail/.Real');
    const before = treeObject(join(h.local, 'Mail'));
    chmodSync(join(h.remote, 'Mail/.Real'), 0);
    const r = await pullAs(h);
    t.equal(r.status, 1);
    t.match(r.stdout, /^smd-client: ERROR: mddiff failed: Unable to open directory Mail\/\.Real: EACCES$/m);
    // upstream's classification of any "Unable to open directory" (no retry action: smd-loop does not spin on it)
    t.match(r.stdout, /^default: smd-client@localhost: TAGS: error::context\(mddiff\) probable-cause\(directory-disappeared\) human-intervention\(avoidable\) $/m);
    t.match(r.stdout, /^smd-pull default: FAILED after/m);
    t.notMatch(r.stdout + r.stderr, NO_STACK);
    t.same(treeObject(join(h.local, 'Mail')), before, 'the local tree is unchanged');
    chmodSync(join(h.remote, 'Mail/.Real'), 0o755);
    const again = await pullAs(h);
    t.equal(again.status, 0, again.stdout);
    t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')), 'converged');
  });

  t.test('pull: an unreadable server message is skipped (not deleted, not copied); readable again, it arrives', async (t) => {
    const h = homes(t);
    deliverOwned(h.remote, 'Mail');
    const hidden = deliverOwned(h.remote, 'Mail');
    chmodSync(join(h.remote, hidden), 0);
    const r = await pullAs(h, ['-v']);
    t.equal(r.status, 0, r.stdout);
    t.match(r.stdout, /^smd-pull default: done in [\d.]+ s: 1 new, 0 deleted/m);
    t.notOk(existsSync(join(h.local, hidden)), 'the unreadable message did not travel');
    chmodSync(join(h.remote, hidden), 0o644);
    const again = await pullAs(h);
    t.equal(again.status, 0, again.stdout);
    t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')), 'converged');
  });

  t.test('pull: a server message unreadable after it was synchronized: the client copy is kept', async (t) => {
    const h = homes(t);
    const m = deliverOwned(h.remote, 'Mail');
    t.equal((await pullAs(h)).status, 0);
    chmodSync(join(h.remote, m), 0);
    const r = await pullAs(h);
    t.equal(r.status, 0, r.stdout);
    t.match(r.stdout, /: 0 new, 0 deleted/);
    t.ok(existsSync(join(h.local, m)), 'not deleted on the client');
  });

  t.test('pull: the server cannot write its db-file: mddiff TAGS (necessary), no db change on either side', async (t) => {
    const h = homes(t);
    deliverOwned(h.remote, 'Mail');
    t.equal((await pullAs(h)).status, 0);
    deliverOwned(h.remote, 'Mail');
    const localDb = readFileSync(join(h.local, '.smd/laptop__Mail.db.txt'));
    chmodSync(join(h.remote, '.smd'), 0o500);
    const r = await pullAs(h);
    chmodSync(join(h.remote, '.smd'), 0o700);
    t.equal(r.status, 1);
    t.match(r.stdout, new RegExp(`^smd-client: ERROR: mddiff failed: cannot write ${h.remote}/\\.smd/laptop__Mail\\.db\\.txt\\.new: EACCES`, 'm'));
    t.match(r.stdout, /^default: smd-client@localhost: TAGS: error::context\(mddiff\) probable-cause\(unknown\) human-intervention\(necessary\) $/m);
    t.notMatch(r.stdout + r.stderr, NO_STACK);
    t.same(readFileSync(join(h.local, '.smd/laptop__Mail.db.txt')), localDb, 'the client db-file is unchanged');
    t.same(readdirSync(join(h.remote, '.smd')).filter((f) => /\.new|tmp/.test(f)), [], 'no .new or temp file on the server');
    const again = await pullAs(h);
    t.equal(again.status, 0, again.stdout);
    t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')), 'converged');
  });

  t.test('push: an unreadable local folder fails the run before anything is sent', async (t) => {
    const h = homes(t);
    deliverOwned(h.local, 'Mail');
    deliverOwned(h.local, 'Mail/.Real');
    t.equal((await pushAs(h)).status, 0);
    deliverOwned(h.local, 'Mail/.Real');
    const remoteBefore = treeObject(join(h.remote, 'Mail'));
    chmodSync(join(h.local, 'Mail/.Real'), 0);
    const r = await pushAs(h);
    chmodSync(join(h.local, 'Mail/.Real'), 0o755);
    t.equal(r.status, 1);
    t.match(r.stdout + r.stderr, /Unable to open directory Mail\/\.Real: EACCES/);
    t.notMatch(r.stdout + r.stderr, NO_STACK);
    t.same(treeObject(join(h.remote, 'Mail')), remoteBefore, 'the remote tree is unchanged');
    const again = await pushAs(h);
    t.equal(again.status, 0, again.stdout);
    t.same(treeObject(join(h.remote, 'Mail')), treeObject(join(h.local, 'Mail')), 'converged');
  });
});

t.test('smd-pull as an unprivileged user: client-side permissions that are right today', async (t) => {
  t.test('a read-only tmp/: receive/bad-directory-permission with display-permissions, nothing placed', async (t) => {
    const h = homes(t);
    deliverOwned(h.remote, 'Mail');
    t.equal((await pullAs(h)).status, 0);
    deliverOwned(h.remote, 'Mail');
    const before = treeObject(join(h.local, 'Mail'));
    chmodSync(join(h.local, 'Mail/tmp'), 0o555);
    const r = await pullAs(h);
    chmodSync(join(h.local, 'Mail/tmp'), 0o755);
    t.equal(r.status, 1);
    const tmp = `${h.local}/Mail/tmp`;
    t.ok(r.stdout.includes(`smd-client: ERROR: Unable to create a temporary file in ${tmp}: Permission denied\n`), r.stdout);
    t.ok(r.stdout.includes(`default: smd-client@localhost: TAGS: error::context(receive) probable-cause(bad-directory-permission) human-intervention(necessary) suggested-actions(display-permissions("${tmp}"))\n`), r.stdout);
    t.notMatch(r.stdout + r.stderr, NO_STACK);
    t.same(treeObject(join(h.local, 'Mail')), before);
    t.equal((await pullAs(h)).status, 0, 'writable again: converges');
  });

  t.test('a read-only cur/ and a DELETE: delete-message/bad-directory-permission, the message stays', async (t) => {
    const h = homes(t);
    const m = deliverOwned(h.remote, 'Mail');
    t.equal((await pullAs(h)).status, 0);
    unlinkSync(join(h.remote, m));
    const cur = `${h.local}/Mail/cur`;
    chmodSync(cur, 0o555);
    const r = await pullAs(h);
    chmodSync(cur, 0o755);
    t.equal(r.status, 1);
    t.ok(r.stdout.includes(`smd-client: ERROR: Failed to delete ${h.local}/${m}: Permission denied\n`), r.stdout);
    t.ok(r.stdout.includes(`default: smd-client@localhost: TAGS: error::context(delete-message) probable-cause(bad-directory-permission) human-intervention(necessary) suggested-actions(display-permissions("${cur}"))\n`), r.stdout);
    t.notMatch(r.stdout + r.stderr, NO_STACK);
    t.ok(existsSync(join(h.local, m)), 'still there');
    const again = await pullAs(h);
    t.match(again.stdout, /: 0 new, 1 deleted/, 'writable again: the deletion goes through');
  });

  t.test('a read-only cur/ and a flag change (MOVE): move-message/bad-directory-permission', async (t) => {
    const h = homes(t);
    const m = deliverOwned(h.remote, 'Mail');
    t.equal((await pullAs(h)).status, 0);
    renameSync(join(h.remote, m), join(h.remote, `${m}S`));
    const cur = `${h.local}/Mail/cur`;
    chmodSync(cur, 0o555);
    const r = await pullAs(h);
    chmodSync(cur, 0o755);
    t.equal(r.status, 1);
    t.ok(r.stdout.includes(`smd-client: ERROR: Failed to move ${h.local}/${m} to ${h.local}/${m}S: Permission denied\n`), r.stdout);
    t.ok(r.stdout.includes(`default: smd-client@localhost: TAGS: error::context(move-message) probable-cause(bad-directory-permission) human-intervention(necessary) suggested-actions(display-permissions("${cur}"))\n`), r.stdout);
    t.notMatch(r.stdout + r.stderr, NO_STACK);
    t.ok(existsSync(join(h.local, m)), 'the old name is still there');
    t.equal((await pullAs(h)).status, 0);
    t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')), 'converged');
  });
});

/*
 * Client-side placement failures (issue 8 section 4, fixed by the lead on
 * main): the message names the file and strerror, the TAGS say
 * mail-addition/bad-directory-permission with display-permissions of the
 * folder. (Upstream says "Failed to copy ...", context copy-message.)
 * The unwritable ~/.smd case is not fixed yet: its assertions are `todo`
 * (reported as "not ok # TODO", not failing the suite).
 */
const LOCK_TODO = { todo: 'lead/args: the lock file write fails with "internal error", a stack trace and exit 70 today' };

t.test('client-side permission failures', async (t) => {
  const expectPlacementFailure = (t: Test, out: string, dir: string, file: string): void => {
    t.ok(out.includes(`smd-client: ERROR: Failed to store the received message ${file}: Permission denied\n`), `names the file and the cause: ${out}`);
    t.ok(out.includes(`TAGS: error::context(mail-addition) probable-cause(bad-directory-permission) human-intervention(necessary) suggested-actions(display-permissions("${dir}"))\n`),
      'mail-addition/bad-directory-permission TAGS, pointing at the folder');
    t.notMatch(out, /Internal error/i, 'not an internal error');
    t.notMatch(out, NO_STACK, 'no stack trace');
  };

  t.test('pull into a read-only cur/: a new message cannot be placed', async (t) => {
    const h = homes(t);
    deliverOwned(h.remote, 'Mail');
    t.equal((await pullAs(h)).status, 0);
    const m = deliverOwned(h.remote, 'Mail');
    const cur = `${h.local}/Mail/cur`;
    chmodSync(cur, 0o555);
    const r = await pullAs(h);
    chmodSync(cur, 0o755);
    t.equal(r.status, 1, 'the run fails');
    expectPlacementFailure(t, r.stdout + r.stderr, cur, join(h.local, m));
    t.notOk(existsSync(join(h.local, m)), 'not placed');
    t.same(tmpFiles(join(h.local, 'Mail')), [], 'no temp file left');
    t.equal((await pullAs(h)).status, 0, 'writable again: converges');
    t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')));
  });

  t.test('push to a remote read-only cur/: the remote client reports the same', async (t) => {
    const h = homes(t);
    deliverOwned(h.local, 'Mail');
    t.equal((await pushAs(h)).status, 0);
    const m = deliverOwned(h.local, 'Mail');
    const cur = `${h.remote}/Mail/cur`;
    chmodSync(cur, 0o555);
    const r = await pushAs(h);
    chmodSync(cur, 0o755);
    t.equal(r.status, 1, 'the run fails');
    // The remote client runs in the remote HOME and names the file relative to it.
    expectPlacementFailure(t, r.stdout + r.stderr, cur, m);
    t.notOk(existsSync(join(h.remote, m)), 'not placed');
    t.same(tmpFiles(join(h.remote, 'Mail')), [], 'no temp file left');
    t.equal((await pushAs(h)).status, 0, 'writable again: converges');
    t.same(treeObject(join(h.remote, 'Mail')), treeObject(join(h.local, 'Mail')));
  });

  t.test('an unwritable ~/.smd (r-x for its owner): a message naming it, no stack trace, exit 1', async (t) => {
    const h = homes(t);
    deliverOwned(h.remote, 'Mail');
    t.equal((await pullAs(h)).status, 0, 'a first pull made ~/.smd and its folders');
    const m = deliverOwned(h.remote, 'Mail');
    chmodSync(join(h.local, '.smd'), 0o500);
    const r = await pullAs(h);
    chmodSync(join(h.local, '.smd'), 0o700);
    const out = r.stdout + r.stderr;
    t.not(r.status, 0, 'the run fails');
    t.equal(r.status, 1, 'exit 1', LOCK_TODO);
    t.match(out, new RegExp(`${h.local}/\\.smd.*[Pp]ermission denied`), 'names ~/.smd and the cause', LOCK_TODO);
    t.notMatch(out, /internal error/i, 'not an internal error', LOCK_TODO);
    t.notMatch(out, NO_STACK, 'no stack trace', LOCK_TODO);
    t.notOk(existsSync(join(h.local, m)), 'nothing synchronized');
  });
});
