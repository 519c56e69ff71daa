/**
 * smd-pull / smd-push end to end, part 2: folder names — local mode, the
 * translators (TRANSLATOR_LR/RL, Maildir++ vs "Folder/" layouts),
 * smd-check-conf's round trip, non-ASCII mailbox names. Same fixtures as
 * sync.test.ts (split so each file stays well under tap's per-file timeout).
 */
import t from 'tap';
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deliver, remoteConfig, smd, treeObject, twoHomes, writeConfig } from './helpers/sync-fixture.js';

t.test('local mode: no ssh, a second mailbox on the same machine, translators', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', {
    SERVERNAME: 'localhost', CLIENTNAME: 'backup', MAILBOX: '', SMDCLIENTOPTS: '-l',
    MAILBOX_REMOTE: 'Mail', MAILBOX_LOCAL: 'Backup/Mail',
    TRANSLATOR_RL: 'smd-translate -m move -d RL default', TRANSLATOR_LR: 'smd-translate -m move -d LR default',
  });
  const msgs: string[] = [];
  for (let i = 0; i < 10; i++) msgs.push(deliver(h.local, 'Mail'));
  deliver(h.local, 'Mail/.Lists');
  const env = { ...h.env, PATH: `${join(h.local, 'nossh')}:${h.env.PATH}` };
  mkdirSync(join(h.local, 'nossh'));
  writeFileSync(join(h.local, 'nossh', 'ssh'), '#!/bin/sh\necho "ssh must not be used in local mode" >&2\nexit 255\n');
  chmodSync(join(h.local, 'nossh', 'ssh'), 0o755);
  const pull = await smd('smd-pull', [], env);
  t.equal(pull.status, 0, pull.stdout + pull.stderr);
  t.same(treeObject(join(h.local, 'Backup/Mail')), treeObject(join(h.local, 'Mail')));
  unlinkSync(join(h.local, 'Backup', msgs[0]));
  deliver(h.local, 'Backup/Mail/.Lists');
  const push = await smd('smd-push', [], env);
  t.equal(push.status, 0, push.stdout + push.stderr);
  t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.local, 'Backup/Mail')));
});

t.test('translators between Maildir++ ".Folder" and "Folder/" layouts', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', {
    SERVERNAME: 'fakehost', CLIENTNAME: 'laptop', MAILBOX: '',
    MAILBOX_REMOTE: 'Maildir', MAILBOX_LOCAL: 'Mail',
    TRANSLATOR_RL: 'smd-translate -m oimap-dovecot -d RL default', TRANSLATOR_LR: 'smd-translate -m oimap-dovecot -d LR default',
  });
  deliver(h.remote, 'Maildir');
  const work = deliver(h.remote, 'Maildir/.Work');
  const pull = await smd('smd-pull', [], h.env);
  t.equal(pull.status, 0, pull.stdout);
  t.ok(existsSync(join(h.local, work.replace('Maildir/.Work', 'Mail/Work'))), '.Work became Work/');
  t.notMatch(pull.stdout, /translating:/, 'not verbose: no translating lines');
  deliver(h.local, 'Mail/Work');
  const push = await smd('smd-push', [], h.env);
  t.equal(push.status, 0, push.stdout);
  t.equal(Object.keys(treeObject(join(h.remote, 'Maildir/.Work'))).length, 2, 'the new local message reached .Work');
  t.notMatch(push.stdout, /translating:/);

  // verbose and dry runs print upstream's lines, one per translated folder
  const lines = (out: string): string[] => out.split('\n').filter((l) => l.startsWith('translating:')).sort();
  deliver(h.remote, 'Maildir/.Lists');
  const dryPull = await smd('smd-pull', ['-d'], h.env);
  t.equal(dryPull.status, 0, dryPull.stdout);
  t.same(lines(dryPull.stdout), ['translating: Maildir/.Lists/cur -> Mail/Lists/cur'], 'dry-run pull');
  const vPull = await smd('smd-pull', ['-v'], h.env);
  t.equal(vPull.status, 0, vPull.stdout);
  t.ok(lines(vPull.stdout).includes('translating: Maildir/.Lists/cur -> Mail/Lists/cur'), 'verbose pull');
  t.ok(lines(vPull.stdout).every((l) => /^translating: Maildir\/\.Lists\/(cur|new|tmp) -> Mail\/Lists\/(cur|new|tmp)$/.test(l)), lines(vPull.stdout).join('\n'));
  const vPush = await smd('smd-push', ['-v'], h.env);
  t.equal(vPush.status, 0, vPush.stdout);
  t.same(lines(vPush.stdout), [
    'translating: Mail/Lists/cur -> Maildir/.Lists/cur', 'translating: Mail/Lists/new -> Maildir/.Lists/new',
    'translating: Mail/Work/cur -> Maildir/.Work/cur', 'translating: Mail/Work/new -> Maildir/.Work/new',
    'translating: Mail/cur -> Maildir/cur', 'translating: Mail/new -> Maildir/new',
  ], 'verbose push: every local folder');
  t.same(lines((await smd('smd-push', ['-d'], h.env)).stdout), lines(vPush.stdout), 'dry-run push');
});

t.test('a mailbox with a non-ASCII name (MAILBOX="Boîte"): pull and push reach the same folder, the db-file has the name in UTF-8', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig({ MAILBOX: 'Boîte' }));
  deliver(h.remote, 'Boîte');
  const pull = await smd('smd-pull', [], h.env);
  t.equal(pull.status, 0, pull.stdout);
  t.same(treeObject(join(h.local, 'Boîte')), treeObject(join(h.remote, 'Boîte')), 'pulled into Boîte');
  t.ok(existsSync(join(h.local, '.smd', 'laptop__Boîte.db.txt')), 'the db-file name is the UTF-8 text');
  deliver(h.local, 'Boîte');
  const push = await smd('smd-push', [], h.env);
  t.equal(push.status, 0, push.stdout);
  t.same(treeObject(join(h.remote, 'Boîte')), treeObject(join(h.local, 'Boîte')), 'pushed into the same folder');
  t.same(readdirSync(h.remote).filter((n) => n.startsWith('Bo')), ['Boîte'], 'no second, mis-encoded folder');
});

t.test('smd-check-conf lists both sides and checks the translators round trip', async (t) => {
  const h = twoHomes(t);
  const vars = {
    SERVERNAME: 'fakehost', CLIENTNAME: 'laptop', MAILBOX: '', MAILBOX_REMOTE: 'Maildir', MAILBOX_LOCAL: 'Mail',
    TRANSLATOR_RL: 'smd-translate -m oimap-dovecot -d RL default', TRANSLATOR_LR: 'smd-translate -m oimap-dovecot -d LR default',
  };
  writeConfig(h.local, 'default', vars);
  deliver(h.local, 'Mail/Work');
  deliver(h.remote, 'Maildir/.Lists');
  const ok = await smd('smd-check-conf', [], h.env);
  t.equal(ok.status, 0, ok.stdout);
  t.match(ok.stdout, /Mail\/Work\/cur -> Maildir\/\.Work\/cur -> Mail\/Work\/cur/);
  t.match(ok.stdout, /Maildir\/\.Lists\/cur -> Mail\/Lists\/cur -> Maildir\/\.Lists\/cur/);
  t.match(ok.stdout, /Endpoint default configuration file successfully checked/);
  t.match(ok.stdout, /^Local mailboxes translated to remote and back:\n {3}Mail\/Work\/(cur|new) -> /m, "upstream's table");

  // the flags every command takes
  const flags = await smd('smd-check-conf', ['-v', '-s', '-d', '-n', 'default'], h.env);
  t.equal(flags.status, 0, flags.stdout + flags.stderr);
  t.match(flags.stdout, /TRANSLATOR_LR: smd-translate -m oimap-dovecot -d LR default/, '-v shows the translators');
  t.match(flags.stdout, /successfully checked/);
  const tpl = await smd('smd-check-conf', ['-t', 'other'], h.env);
  t.equal(tpl.status, 0, tpl.stdout);
  t.ok(existsSync(join(h.local, '.smd', 'config.other')), '-t writes the template');
  t.equal((await smd('smd-check-conf', ['-x'], h.env)).status, 1, 'unknown option');

  // a round trip that does not come back: upstream's lines
  writeConfig(h.local, 'default', { ...vars, TRANSLATOR_RL: 'smd-translate -m move -d RL default' });
  const bad = await smd('smd-check-conf', [], h.env);
  t.equal(bad.status, 1, bad.stdout);
  t.match(bad.stdout, /\n {3}Mail\/Work\/(cur|new) -> Maildir\/\.Work\/\1 -> Mail\/\.Work\/\1\nFailed round trip check: Mail\/Work\/\1 -> Mail\/\.Work\/\1\n {3}echo "Mail\/Work\/\1" \| smd-translate -m oimap-dovecot -d LR default -> Maildir\/\.Work\/\1\n {3}echo "Maildir\/\.Work\/\1" \| smd-translate -m move -d RL default -> Mail\/\.Work\/\1\n/);
  t.notMatch(bad.stdout, /successfully checked/);

  // a translator that fails: ERROR in the table
  writeConfig(h.local, 'default', { ...vars, TRANSLATOR_LR: 'smd-translate -m nodots -d LR default' });
  deliver(h.local, 'Mail/a.b');
  const failing = await smd('smd-check-conf', [], h.env);
  t.equal(failing.status, 1, failing.stdout);
  t.match(failing.stdout, /\n {3}Mail\/a\.b\/(cur|new) -> ERROR -> ERROR\nFailed round trip check: Mail\/a\.b\/\1 -> ERROR\n/);
  t.match(failing.stdout, /\nERROR: translator "smd-translate -m nodots -d LR default" failed on "Mail\/a\.b\/(cur|new)"/, 'and why');
  const script = join(h.local, 'answers-error');
  writeFileSync(script, '#!/bin/sh\nwhile read l; do echo ERROR; done\n');
  chmodSync(script, 0o755);
  writeConfig(h.local, 'default', { ...vars, TRANSLATOR_RL: script });
  rmSync(join(h.local, 'Mail/a.b'), { recursive: true });
  const back = await smd('smd-check-conf', [], h.env);
  t.equal(back.status, 1, back.stdout);
  t.match(back.stdout, /\n {3}Mail\/Work\/(cur|new) -> Maildir\/\.Work\/\1 -> ERROR\nFailed round trip check: Mail\/Work\/\1 -> ERROR\n/, 'the way back fails');
});

/** Processes of the group `pgid` that are not zombies (from /proc). */