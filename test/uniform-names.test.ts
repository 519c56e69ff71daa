/**
 * smd-uniform-names end to end: two HOMEs holding the same messages under
 * different file names (fake ssh), the rename script, then a pull that
 * transfers nothing.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { deliver, remoteConfig, smd, treeObject, twoHomes, writeConfig } from './helpers/sync-fixture.js';

/** Copies `<from>/<rel>` to `<to>/<rel with folder mapped>` under another file name. */
function copyRenamed(from: string, to: string, rel: string, rename: (base: string) => string, folder: (dir: string) => string = (d) => d): string {
  const target = join(folder(dirname(rel)), rename(basename(rel)));
  mkdirSync(join(to, dirname(target)), { recursive: true });
  for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(to, dirname(dirname(target)), d), { recursive: true });
  copyFileSync(join(from, rel), join(to, target));
  return target;
}

const smdFiles = (home: string): string[] => readdirSync(join(home, '.smd')).filter((n) => n.startsWith('rename-db'));

t.test('same messages under different names: rename script, then a pull transfers nothing', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  const remote: string[] = [];
  for (let i = 0; i < 8; i++) remote.push(deliver(h.remote, 'Mail', { flags: i % 2 === 0 ? 'S' : '' }));
  remote.push(deliver(h.remote, 'Mail', { sub: 'new' }));
  remote.push(deliver(h.remote, 'Mail/.Work'));
  const local: string[] = [];
  for (const [i, rel] of remote.entries()) {
    // Another unique part (an IMAP re-download) and, for some, other flags.
    local.push(copyRenamed(h.remote, h.local, rel, (b) => {
      const other = b.replace('testhost', `otherhost${i}`);
      return i % 3 === 0 && other.includes(':2,') ? other.replace(/:2,.*$/, ':2,RS') : other;
    }));
  }
  t.notSame(Object.keys(treeObject(join(h.local, 'Mail'))), Object.keys(treeObject(join(h.remote, 'Mail'))), 'names differ');

  const un = await smd('smd-uniform-names', [], h.env);
  t.equal(un.status, 0, un.stdout + un.stderr);
  const script = join(h.local, 'smd-rename.sh');
  t.ok(existsSync(script), 'script written');
  t.match(un.stdout, new RegExp(`10 rename\\(s\\) written to ${script.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  t.match(un.stdout, /Inspect .*smd-rename\.sh.*then run smd-pull/);
  const text = readFileSync(script, 'utf8');
  t.equal(text.split('\n').filter((l) => l.startsWith('mv ')).length, 10, text);
  t.same(smdFiles(h.local), [], 'local rename-db* removed');
  t.same(smdFiles(h.remote), [], 'remote rename-db* removed');
  t.notOk(existsSync(join(h.local, '.smd', 'laptop__Mail.db.txt')), 'no db-file created');
  for (const rel of local) t.ok(existsSync(join(h.local, rel)), 'nothing renamed before the script runs');
  t.ok(existsSync(join(h.local, '.smd', 'log', 'client.default.log')), 'client log');

  const sh = spawnSync('sh', [script], { cwd: h.local, encoding: 'utf8' });
  t.equal(sh.status, 0, sh.stderr);
  t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')), 'the script gave the local files the server names');

  const pull = await smd('smd-pull', ['-s'], h.env);
  t.equal(pull.status, 0, pull.stdout);
  t.match(pull.stdout, /smd-client@localhost: TAGS: stats::new-mails\(0\), del-mails\(0\)/, 'nothing transferred');
  t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')));

  // Now there is a db-file: refused.
  const again = await smd('smd-uniform-names', [], h.env);
  t.equal(again.status, 1);
  t.match(again.stdout, /laptop__Mail\.db\.txt exists/);
});

t.test('translators; a message only on the server is left for smd-pull', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', {
    SERVERNAME: 'fakehost', CLIENTNAME: 'laptop', MAILBOX: '',
    MAILBOX_REMOTE: 'Maildir', MAILBOX_LOCAL: 'Mail',
    TRANSLATOR_RL: 'smd-translate -m oimap-dovecot -d RL default', TRANSLATOR_LR: 'smd-translate -m oimap-dovecot -d LR default',
  });
  const toLocal = (d: string): string => d.replace(/^Maildir\/\.Work/, 'Mail/Work').replace(/^Maildir/, 'Mail');
  const shared = [deliver(h.remote, 'Maildir'), deliver(h.remote, 'Maildir/.Work', { flags: 'S' }), deliver(h.remote, 'Maildir/.Work')];
  for (const rel of shared) copyRenamed(h.remote, h.local, rel, (b) => b.replace('testhost', 'imaphost'), toLocal);
  const onlyRemote = deliver(h.remote, 'Maildir/.Work');
  writeFileSync(join(h.local, 'smd-rename.sh'), 'stale\n');

  const un = await smd('smd-uniform-names', ['-v'], h.env);
  t.equal(un.status, 0, un.stdout + un.stderr);
  const text = readFileSync(join(h.local, 'smd-rename.sh'), 'utf8');
  const mv = text.split('\n').filter((l) => l.startsWith('mv '));
  t.equal(mv.length, 3, text);
  t.ok(mv.every((l) => l.includes(`${h.local}/Mail/`) && !l.includes('Maildir')), 'local (translated) paths');
  t.notMatch(text, basename(onlyRemote), 'the server-only message is not in the script');
  t.equal(spawnSync('sh', [join(h.local, 'smd-rename.sh')]).status, 0);

  const pull = await smd('smd-pull', ['-s'], h.env);
  t.equal(pull.status, 0, pull.stdout);
  t.match(pull.stdout, /stats::new-mails\(1\), del-mails\(0\)/, 'only the server-only message is transferred');
  const remoteTree = treeObject(join(h.remote, 'Maildir'));
  const localTree = treeObject(join(h.local, 'Mail'));
  t.same(Object.fromEntries(Object.entries(remoteTree).map(([k, v]) => [toLocal(`Maildir/${k}`).slice('Mail/'.length), v])), localTree);
  t.ok(existsSync(join(h.local, toLocal(onlyRemote))));
});

t.test('refused when the db-file exists; missing config; failures are reported', async (t) => {
  const h = twoHomes(t);
  const none = await smd('smd-uniform-names', [], h.env);
  t.equal(none.status, 1);
  t.match(none.stdout, /template was written/);

  writeConfig(h.local, 'default', remoteConfig());
  deliver(h.local, 'Mail');
  writeFileSync(join(h.local, '.smd', 'laptop__Mail.db.txt'), '');
  const refused = await smd('smd-uniform-names', [], h.env);
  t.equal(refused.status, 1);
  t.match(refused.stdout, /laptop__Mail\.db\.txt exists/);
  t.notOk(existsSync(join(h.local, 'smd-rename.sh')));
  t.notOk(existsSync(join(h.local, '.smd', 'lock')), 'no lock left');

  // The server has no such mailbox: the run fails, with the server's error.
  const other = twoHomes(t);
  writeConfig(other.local, 'default', remoteConfig());
  deliver(other.local, 'Mail');
  const failed = await smd('smd-uniform-names', [], other.env);
  t.equal(failed.status, 1, failed.stdout);
  t.match(failed.stdout, /FAILED/);
  t.match(failed.stdout, /ERROR: .*Mail/, "the error is shown");
  t.same(smdFiles(other.local), [], 'rename-db* removed after a failure');
});
