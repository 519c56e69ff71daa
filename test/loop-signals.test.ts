/**
 * smd-loop's signals and controls, with real processes: SIGUSR1 and `--now` wake it (and
 * never open Node's inspector), one instance per user, SIGTERM stops a sync cleanly. And
 * the systemd units of the project pass systemd-analyze verify.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers/maildir-fixture.js';
import { deliver, remoteConfig, smd, tree, treeObject, twoHomes, writeConfig } from './helpers/sync-fixture.js';
import { count, gate, listeningSocketsOf, loopLog, messages, processesOf, startLoop, until } from './helpers/loop-fixture.js';

// Real syncs under a loaded 2-core machine take seconds each.
t.setTimeout(400_000);

t.test('SIGUSR1 and --now sync at once (never the inspector); one instance per user', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  writeConfig(h.local, 'other', remoteConfig({ CLIENTNAME: 'laptop-other', MAILBOX: 'Other' }));
  deliver(h.remote, 'Mail');
  deliver(h.remote, 'Other');
  // Slots every 500 s: whatever runs after the first slots was woken.
  writeFileSync(join(h.local, '.smd', 'loop'), '500 0 default\n500 0 other\n');
  mkdirSync(join(h.local, '.smd', 'log'), { recursive: true });
  writeFileSync(join(h.local, '.smd', 'log', 'loop.log'), 'a line of an earlier run\n');
  const loop = startLoop({ ...h.env, SMD_LOOP_MINUTE_SECONDS: '1' }, t);
  t.ok(await until(() => count(loopLog(h), /succeeded$/) === 2), 'the first slots ran');
  t.match(loopLog(h), /^a line of an earlier run\n/, 'loop.log is appended to');

  const m = deliver(h.remote, 'Mail');
  const signalled = Date.now();
  loop.child.kill('SIGUSR1');
  t.ok(await until(() => existsSync(join(h.local, m))), 'SIGUSR1 synced at once');
  t.comment(`the message arrived ${((Date.now() - signalled) / 1000).toFixed(1)} s after SIGUSR1 (the next slot was 500 s away)`);
  t.ok(await until(() => count(loopLog(h), /succeeded$/) === 4), 'every endpoint');
  t.match(loopLog(h), /woken: syncing every endpoint now/);
  t.same(listeningSocketsOf(loop.pid), [], 'no inspector port was opened');
  t.notMatch(loop.output(), /Debugger listening/);

  const o = deliver(h.remote, 'Other');
  const asked = Date.now();
  const now = await smd('smd-loop', ['--now', 'other'], h.env);
  const answered = Date.now();
  t.equal(now.status, 0, now.stderr);
  t.match(now.stdout, new RegExp(`smd-loop \\(pid ${loop.pid}\\) syncs other now`));
  t.ok(await until(() => existsSync(join(h.local, o))), '--now other synced at once');
  t.comment(`--now answered after ${((answered - asked) / 1000).toFixed(1)} s, the message arrived after ${((Date.now() - asked) / 1000).toFixed(1)} s`);
  t.ok(await until(() => count(loopLog(h), /smd-pull -s other succeeded$/) === 3), 'the pull of other ran');
  const woken = loopLog(h).split(/woken: syncing other now\n/)[1] ?? '';
  t.notMatch(woken, /running smd-pull -s default/, 'only that endpoint (default comes first in the file)');

  const unknown = await smd('smd-loop', ['--now', 'nope'], h.env);
  t.equal(unknown.status, 1);
  t.match(unknown.stderr, /schedules nothing for the endpoint "nope"/);
  const second = await smd('smd-loop', [], h.env);
  t.equal(second.status, 1, 'a second smd-loop refuses to run');
  t.match(second.stderr, new RegExp(`another smd-loop is running \\(pid ${loop.pid}\\)`));
  t.equal(loop.code(), undefined, 'the first one runs on');

  loop.child.kill('SIGINT');
  t.equal(await loop.exited, 0, 'SIGINT: exit 0');
  t.notOk(existsSync(join(h.local, '.smd', 'loop.lock')), 'the lock is released');
  const none = await smd('smd-loop', ['--now'], h.env);
  t.equal(none.status, 1);
  t.match(none.stderr, /no smd-loop is running/);
});

t.test('SIGTERM in the middle of a sync: the sync stops cleanly, exit 0, nothing lost', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  writeFileSync(join(h.local, '.smd', 'loop'), '1 0 default\n');
  const total = 400;
  for (let i = 0; i < total; i++) deliver(h.remote, 'Mail', { size: 3000 });
  const g = gate(h, { slow: true });
  const loop = startLoop({ ...g.env, SMD_LOOP_MINUTE_SECONDS: '1' }, t);
  t.ok(await until(() => messages(join(h.local, 'Mail')) >= 5), 'the pull is under way');
  loop.child.kill('SIGTERM');
  t.equal(await loop.exited, 0, 'exit 0');
  const got = messages(join(h.local, 'Mail'));
  t.ok(got < total, `stopped in the middle (${got} of ${total})`);
  const log = loopLog(h);
  t.match(log, /stopping \(SIGTERM\): smd-pull -s default is asked to stop/);
  t.match(log, /smd-pull -s default stopped/);
  t.same(processesOf(h.local), [], 'no process of the sync is left');
  t.notOk(existsSync(join(h.local, '.smd', 'lock')), 'the sync lock is released');
  t.notOk(existsSync(join(h.local, '.smd', 'loop.lock')), 'the loop lock is released');
  const remote = tree(join(h.remote, 'Mail'));
  const broken = [...tree(join(h.local, 'Mail'))].filter(([name, sum]) => remote.get(name) !== sum).map(([name]) => name);
  t.same(broken, [], 'every message fetched is whole');
  const again = await smd('smd-pull', [], h.env);
  t.equal(again.status, 0, again.stdout);
  t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')), 'the next pull completes the mailbox');
});

t.test('the systemd units pass systemd-analyze verify', async (t) => {
  const units = ['smd-loop.service', 'smd-pull@.service', 'smd-pull@.timer', 'smd-push@.service', 'smd-push@.timer'];
  for (const u of units) t.ok(existsSync(join(ROOT, 'systemd', u)), u);
  const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) { t.comment('systemd-analyze is not installed: the units are not verified'); return; }
  // Without --user: no user manager runs here (no systemd as PID 1); the checks of the files are the same.
  const r = spawnSync('systemd-analyze', ['verify', ...units.map((u) => join(ROOT, 'systemd', u))], { encoding: 'utf8', cwd: join(ROOT, 'systemd') });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stderr.trim(), '', 'not even a warning');
});
