/**
 * smd-pull / smd-push end to end: real programs, real Maildirs in two HOMEs
 * ("this host" and "the server", reached through a fake ssh that runs the
 * command in the other HOME), and local mode (no ssh at all).
 */
import t from 'tap';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { BIN, dbFileLines, deliver, expectedDbLines, messageCount, remoteConfig, smd, tmpFiles, treeObject, twoHomes, writeConfig } from './helpers/sync-fixture.js';

t.test('pull, changes on both sides, push and pull converge (fake ssh)', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  const inbox: string[] = [];
  for (let i = 0; i < 20; i++) inbox.push(deliver(h.remote, 'Mail'));
  for (let i = 0; i < 5; i++) deliver(h.remote, 'Mail/.Work');
  deliver(h.remote, 'Mail', { sub: 'new' });

  const first = await smd('smd-pull', [], h.env);
  t.equal(first.status, 0, `first pull: ${first.stdout}${first.stderr}`);
  t.match(first.stdout, /smd-pull default: done .*26 new/);
  t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')), 'local tree equals remote tree');
  t.ok(existsSync(join(h.local, '.smd', 'laptop__Mail.db.txt')), 'client db-file');
  t.equal(readFileSync(join(h.local, '.smd', 'laptop__Mail.db.txt'), 'latin1'),
    readFileSync(join(h.remote, '.smd', 'laptop__Mail.db.txt'), 'latin1'), 'both db-files agree');
  // Both db-files describe the tree, checked against hashes computed here (not by the product).
  const dbsDescribe = (what: string): void => {
    const want = expectedDbLines(h.remote, 'Mail');
    t.same(dbFileLines(join(h.local, '.smd', 'laptop__Mail.db.txt')), want, `${what}: the client db-file lists the tree`);
    t.same(dbFileLines(join(h.remote, '.smd', 'laptop__Mail.db.txt')), want, `${what}: the server db-file lists the tree`);
  };
  dbsDescribe('first pull');

  // Changes on the server: new, deleted, flagged, moved between folders.
  deliver(h.remote, 'Mail');
  unlinkSync(join(h.remote, inbox[0]));
  renameSync(join(h.remote, inbox[1]), join(h.remote, `${inbox[1]}S`));
  renameSync(join(h.remote, inbox[2]), join(h.remote, inbox[2].replace('Mail/cur', 'Mail/.Work/cur')));
  const second = await smd('smd-pull', ['-s'], h.env);
  t.equal(second.status, 0, `second pull: ${second.stdout}`);
  t.match(second.stdout, /default: smd-client@localhost: TAGS: stats::new-mails\(1\), del-mails\(1\)/);
  t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')));
  dbsDescribe('second pull');

  // Changes here: deleted, flagged, a new message, pushed.
  unlinkSync(join(h.local, inbox[3]));
  renameSync(join(h.local, inbox[4]), join(h.local, `${inbox[4]}RS`));
  deliver(h.local, 'Mail/.Sent');
  const push = await smd('smd-push', [], h.env);
  t.equal(push.status, 0, `push: ${push.stdout}`);
  t.same(treeObject(join(h.remote, 'Mail')), treeObject(join(h.local, 'Mail')), 'server has the local changes');
  dbsDescribe('push');

  const again = await smd('smd-pull', ['-s'], h.env);
  t.equal(again.status, 0);
  t.match(again.stdout, /stats::new-mails\(0\), del-mails\(0\)/, 'nothing left to do');
  t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')));
  t.same(tmpFiles(h.local), [], 'no temporary file left');
});

t.test('excludes, dry run, no-delete', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig({ EXCLUDE: 'Mail/.Spam' }));
  const keep = deliver(h.remote, 'Mail');
  deliver(h.remote, 'Mail/.Spam');
  const pull = await smd('smd-pull', [], h.env);
  t.equal(pull.status, 0, pull.stdout);
  t.notOk(existsSync(join(h.local, 'Mail/.Spam')), 'excluded folder not pulled');

  deliver(h.remote, 'Mail');
  const before = treeObject(join(h.local, 'Mail'));
  const dry = await smd('smd-pull', ['-d'], h.env);
  t.equal(dry.status, 0, dry.stdout);
  t.match(dry.stdout, /mail-transferred\(/);
  t.same(treeObject(join(h.local, 'Mail')), before, 'dry run changed nothing');

  unlinkSync(join(h.remote, keep));
  const nodel = await smd('smd-pull', ['-n'], h.env);
  t.equal(nodel.status, 0, nodel.stdout);
  t.ok(existsSync(join(h.local, keep)), '-n: the deletion was not propagated');
});

t.test('a conflict stops the run with its TAGS line and touches nothing', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  const m = deliver(h.remote, 'Mail');
  t.equal((await smd('smd-pull', [], h.env)).status, 0);
  writeFileSync(join(h.remote, m), 'From: a@example.org\nSubject: changed on the server\n\nserver body\n');
  writeFileSync(join(h.local, m), 'From: a@example.org\nSubject: changed here\n\nlocal body\n');
  const r = await smd('smd-pull', ['-s'], h.env);
  t.equal(r.status, 1);
  t.match(r.stdout, /TAGS: error::context\([a-z-]+\) probable-cause\(concurrent-mailbox-edit\) human-intervention\(necessary\)/);
  t.match(r.stdout, /FAILED/);
  t.equal(readFileSync(join(h.local, m), 'utf8'), 'From: a@example.org\nSubject: changed here\n\nlocal body\n', 'local change kept');
});

t.test('hooks run with their arguments; a failing pre hook stops the run', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  deliver(h.remote, 'Mail');
  const hooks = join(h.local, '.smd', 'hooks');
  mkdirSync(join(hooks, 'pre-pull.d'), { recursive: true });
  mkdirSync(join(hooks, 'post-pull.d'), { recursive: true });
  const record = join(h.local, 'hooks.txt');
  for (const d of ['pre-pull.d', 'post-pull.d']) {
    writeFileSync(join(hooks, d, '10-record'), `#!/bin/sh\necho "$@" >> ${record}\n`);
    chmodSync(join(hooks, d, '10-record'), 0o755);
  }
  writeFileSync(join(hooks, 'pre-pull.d', '20-not-executable'), '#!/bin/sh\nexit 1\n');
  const ok = await smd('smd-pull', [], h.env);
  t.equal(ok.status, 0, ok.stdout);
  t.equal(readFileSync(record, 'utf8'), 'pre pull default 0\npost pull default 0\n');
  writeFileSync(join(hooks, 'pre-pull.d', '30-fail'), '#!/bin/sh\nexit 3\n');
  chmodSync(join(hooks, 'pre-pull.d', '30-fail'), 0o755);
  deliver(h.remote, 'Mail');
  const bad = await smd('smd-pull', [], h.env);
  t.equal(bad.status, 1);
  t.match(bad.stdout, /30-fail failed with exit code 3/);
  t.equal(Object.keys(treeObject(join(h.local, 'Mail'))).length, 1, 'nothing synchronized');
});

t.test('the lock: a running instance is refused, a stale lock is taken over', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  deliver(h.remote, 'Mail');
  mkdirSync(join(h.local, '.smd'), { recursive: true });
  const holder = spawn('bash', ['-c', 'exec -a smd-pull sleep 60'], { stdio: 'ignore' });
  t.teardown(() => { holder.kill('SIGKILL'); });
  await new Promise((r) => setTimeout(r, 200));
  writeFileSync(join(h.local, '.smd', 'lock'), `${holder.pid}\n`);
  const busy = await smd('smd-pull', [], h.env);
  t.equal(busy.status, 1);
  // one line, who holds the lock, and no advice to remove the lock of a live run
  t.same(busy.stdout.split('\n').filter((l) => l !== ''),
    [`ERROR: Already running: smd-pull (pid ${holder.pid}) holds ${join(h.local, '.smd', 'lock')}; wait for it to finish, or stop it (kill ${holder.pid})`]);
  const busyTags = await smd('smd-push', ['-s'], h.env);
  t.equal(busyTags.status, 1);
  t.equal(busyTags.stdout.split('\n').filter((l) => /Already running/.test(l)).length, 1, 'printed once');
  t.match(busyTags.stdout, new RegExp(`default: smd-push@localhost: TAGS: error::context\\(locking\\) probable-cause\\(another-instance-is-running\\) human-intervention\\(necessary\\) suggested-actions\\(run\\(kill ${holder.pid}\\)\\)\n`));
  t.notMatch(busyTags.stdout + busyTags.stderr, /\brm\b|remove/, 'no rm advice');
  t.equal(readFileSync(join(h.local, '.smd', 'lock'), 'utf8'), `${holder.pid}\n`, 'the live lock is untouched');
  holder.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  const stale = await smd('smd-pull', [], h.env);
  t.equal(stale.status, 0, stale.stdout);
  t.match(stale.stdout, /dead instance/);
  t.notOk(existsSync(join(h.local, '.smd', 'lock')), 'lock released');
});

t.test('a dropped connection mid-run, then a rerun converges with nothing lost', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  for (let i = 0; i < 40; i++) deliver(h.remote, 'Mail', { size: 20_000 });
  const cut = await smd('smd-pull', ['-s'], { ...h.env, FAKE_SSH_MAX_BYTES: '300000' });
  t.equal(cut.status, 1, 'the cut run fails');
  t.match(cut.stdout, /human-intervention\(avoidable\) suggested-actions\(retry\)/, 'and says a retry will do');
  const partial = treeObject(join(h.local, 'Mail'));
  const remote = treeObject(join(h.remote, 'Mail'));
  for (const [k, v] of Object.entries(partial)) t.equal(v, remote[k], `partial message ${k} is whole`);
  const rerun = await smd('smd-pull', [], h.env);
  t.equal(rerun.status, 0, rerun.stdout);
  t.same(treeObject(join(h.local, 'Mail')), remote, 'converged');
  t.same(tmpFiles(h.local), []);
});

t.test('missing config: the template is written; -t exits 0', async (t) => {
  const h = twoHomes(t);
  const r = await smd('smd-pull', [], h.env);
  t.equal(r.status, 1);
  t.ok(existsSync(join(h.local, '.smd', 'config.default')));
  t.match(readFileSync(join(h.local, '.smd', 'config.default'), 'utf8'), /SERVERNAME=/);
  rmSync(join(h.local, '.smd', 'config.default'));
  const tpl = await smd('smd-push', ['-t', 'other'], h.env);
  t.equal(tpl.status, 0);
  t.ok(existsSync(join(h.local, '.smd', 'config.other')));
});

t.test('DEBUG=true logs the traffic of both directions', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig({ DEBUG: 'true' }));
  deliver(h.remote, 'Mail');
  const r = await smd('smd-pull', [], h.env);
  t.equal(r.status, 0, r.stdout);
  t.match(readFileSync(join(h.local, '.smd/log/s2c.default.log'), 'latin1'), /^protocol .*\n[^]*END\n/);
  t.match(readFileSync(join(h.local, '.smd/log/c2s.default.log'), 'latin1'), /^protocol [^]*COMMIT\nDONE\n$/);
});

t.test('an upstream user switches: existing config and db-files, nothing is downloaded again', async (t) => {
  const h = twoHomes(t);
  // A config as upstream's template writes it (sourced by sh upstream; parsed here).
  mkdirSync(join(h.local, '.smd'), { recursive: true });
  writeFileSync(join(h.local, '.smd', 'config.default'), [
    '# Upstream-style configuration',
    'SERVERNAME=fakehost',
    'CLIENTNAME=`hostname`-default',
    'MAILBOX="Mail/"',
    'DEBUG=false',
    'EXCLUDE=""',
    '',
  ].join('\n'));
  const names: string[] = [];
  for (let i = 0; i < 8; i++) names.push(deliver(h.remote, 'Mail'));
  // Both hosts already hold the same messages and the db-file upstream wrote after the last sync.
  const lines: string[] = [];
  for (const n of names) {
    const data = readFileSync(join(h.remote, n));
    mkdirSync(join(h.local, n, '..'), { recursive: true });
    writeFileSync(join(h.local, n), data);
    const cut = data.indexOf('\n\n') + 2;
    const sha = (b: Buffer): string => createHash('sha1').update(b).digest('hex');
    lines.push(`${sha(data.subarray(0, cut))} ${sha(data.subarray(cut))} ${n}\n`);
  }
  const host = (await import('node:os')).hostname();
  const dbName = `${host}-default__Mail.db.txt`;
  mkdirSync(join(h.remote, '.smd'), { recursive: true });
  writeFileSync(join(h.remote, '.smd', dbName), lines.join(''));
  writeFileSync(join(h.remote, '.smd', `${dbName}.mtime`), String(Math.floor(Date.now() / 1000) - 10));
  writeFileSync(join(h.local, '.smd', dbName), lines.join(''));
  deliver(h.remote, 'Mail');
  const r = await smd('smd-pull', ['-s'], h.env);
  t.equal(r.status, 0, r.stdout);
  t.match(r.stdout, /stats::new-mails\(1\), del-mails\(0\), bytes-received\(\d{3}\)/, 'only the new message is fetched');
  t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')));
});

function liveInGroup(pgid: number): number {
  let n = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let stat: string;
    try { stat = readFileSync(`/proc/${pid}/stat`, 'latin1'); } catch { continue; }
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') n++;
  }
  return n;
}

t.test('killing smd-pull and its programs mid-transfer loses nothing; the rerun converges', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  for (let i = 0; i < 150; i++) deliver(h.remote, 'Mail', { size: 60_000 });
  const remote = treeObject(join(h.remote, 'Mail'));
  // Slow the link down so that the kill lands in the middle of the transfer.
  const slowSsh = join(h.local, 'slow-ssh');
  const throttle = `${process.execPath} -e "process.stdin.on('data', (d) => { process.stdin.pause(); process.stdout.write(d, () => setTimeout(() => process.stdin.resume(), 20)); })"`;
  writeFileSync(slowSsh, `#!/bin/sh\nshift\ncd "${h.remote}" && HOME="${h.remote}" sh -c "$*" | ${throttle}\n`);
  chmodSync(slowSsh, 0o755);
  const child = spawn(join(BIN, 'smd-pull'), [], { env: { ...h.env, SMD_SSH: slowSsh }, cwd: h.local, stdio: 'ignore', detached: true });
  const exited = new Promise((r) => child.on('exit', r));
  t.teardown(() => { try { process.kill(-(child.pid as number), 'SIGKILL'); } catch { /* all gone */ } });
  let killed = false;
  for (let i = 0; i < 300 && !killed; i++) {
    await new Promise((r) => setTimeout(r, 100));
    if (messageCount(join(h.local, 'Mail')) >= 10) {
      process.kill(-(child.pid as number), 'SIGKILL');
      killed = true;
    }
  }
  await exited;
  // The killed programs may take a moment to die (they stay zombies if nobody reaps them).
  for (let i = 0; i < 100 && liveInGroup(child.pid as number) > 0; i++) await new Promise((r) => setTimeout(r, 50));
  t.ok(killed, 'killed in the middle of the transfer');
  const partial = treeObject(join(h.local, 'Mail'));
  t.ok(Object.keys(partial).length < 150, `only part arrived (${Object.keys(partial).length})`);
  for (const [k, v] of Object.entries(partial)) if (v !== remote[k]) t.fail(`${k} is not whole`);
  const rerun = await smd('smd-pull', [], h.env);
  t.equal(rerun.status, 0, rerun.status === 0 ? 'the rerun succeeds' : rerun.stdout);
  t.same(treeObject(join(h.local, 'Mail')), remote, 'converged');
  t.same(tmpFiles(h.local), [], 'the partial files of the killed run are removed');
});
