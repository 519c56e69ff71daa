/**
 * Permission errors seen from smd-pull / smd-push, for real: every process
 * runs as the unprivileged test user (helpers/unprivileged.ts) on temp HOMEs
 * it owns (as root chmod denies nothing). Server-side faults (unreadable
 * folder or message, unwritable ~/.smd) and client-side ones (read-only
 * tmp/ and cur/ with an ADD, a DELETE, a MOVE, on pull and on push; an
 * unwritable client ~/.smd), exact messages and TAGS. (mddiff and
 * smd-server alone: permissions.test.ts.)
 */
import t, { type Test } from 'tap';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, deliver, remoteConfig, tmpFiles, treeObject, writeConfig } from './helpers/sync-fixture.js';
import { giveToTestUser, ownedTempDir, runAs, testUser } from './helpers/unprivileged.js';

/** No stack trace reaches a user for an environment fault. */
const NO_STACK = /\bat (?:[\w.<>[\] ]+ \()?(?:node:|file:|\/)[^\s()]*:\d+:\d+\)?/;

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
    deliverOwned(h.remote, 'Mail'); // stays: deleting every message of a mailbox is held by the mass-deletion brake
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
 * An unwritable ~/.smd: the lock cannot be written; the message names it and strerror.
 */

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
    expectPlacementFailure(t, r.stdout + r.stderr, cur, join(h.remote, m));
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
    t.equal(r.status, 1, 'exit 1');
    t.match(out, new RegExp(`ERROR: cannot take the lock ${h.local}/\\.smd/lock: Permission denied`), 'names ~/.smd and the cause');
    t.ok(out.includes(`TAGS: error::context(locking) probable-cause(bad-directory-permission) human-intervention(necessary) suggested-actions(display-permissions("${h.local}/.smd"))`), 'locking TAGS pointing at ~/.smd');
    t.notMatch(out, /internal error/i, 'not an internal error');
    t.notMatch(out, NO_STACK, 'no stack trace');
    t.notOk(existsSync(join(h.local, m)), 'nothing synchronized');
  });
});
