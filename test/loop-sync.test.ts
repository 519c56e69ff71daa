/**
 * smd-loop keeps going, with real processes: the real smd-pull through the fake ssh of
 * the sync fixture, short "minutes" (SMD_LOOP_MINUTE_SECONDS), waits on log lines and
 * files. A busy lock, a network that is down, a failure that needs a human.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { deliver, remoteConfig, smd, treeObject, twoHomes, writeConfig } from './helpers/sync-fixture.js';
import { count, gate, lines, loopLog, messages, startLoop, until } from './helpers/loop-fixture.js';

// Real syncs under a loaded 2-core machine take seconds each.
t.setTimeout(400_000);

t.test('survives a held lock and a run of network failures, and recovers when the network returns', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  writeFileSync(join(h.local, '.smd', 'loop'), '1 0 default\n');
  for (let i = 0; i < 3; i++) deliver(h.remote, 'Mail');
  const g = gate(h);
  // A manual smd-pull holds the lock: a live process called smd-pull (sleep under that name).
  const fakePull = join(h.local, '..', 'smd-pull');
  symlinkSync('/bin/sleep', fakePull);
  const holder = spawn(fakePull, ['600'], { stdio: 'ignore' });
  t.teardown(() => holder.kill('SIGKILL'));
  writeFileSync(join(h.local, '.smd', 'lock'), `${holder.pid}\n`);

  const loop = startLoop({ ...g.env, SMD_LOOP_MINUTE_SECONDS: '0.3' }, t);
  t.ok(await until(() => count(loopLog(h), /smd-pull -s default skipped: another smd-pull/) >= 2), 'two slots skipped, with a note');
  t.equal(loop.code(), undefined, 'the loop runs on');

  writeFileSync(g.down, '');
  holder.kill('SIGKILL');
  const before = lines(g.calls).length;
  t.ok(await until(() => lines(g.calls).length >= before + 3), 'three tries while the network is down');
  t.equal(count(loopLog(h), /failed with a transient error/), 1, 'the streak is logged once');
  t.equal(messages(join(h.local, 'Mail')), 0);
  t.equal(loop.code(), undefined, 'the loop runs on');

  rmSync(g.down);
  t.ok(await until(() => messages(join(h.local, 'Mail')) === 3), 'synchronized once the network is back');
  t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')));
  t.ok(await until(() => /smd-pull -s default succeeded again after \d+ failed tries/.test(loopLog(h))), 'the recovery is logged');
  const log = loopLog(h);
  t.equal(count(log, /failed with a transient error/), 1, 'still one line for the whole streak');
  t.equal(count(log, /output: .*TAGS: .*probable-cause\(network\)/), 1, 'and the output of its first failure only');
  loop.child.kill('SIGTERM');
  t.equal(await loop.exited, 0, 'SIGTERM: exit 0');
  t.match(loopLog(h), /smd-loop stopped \(SIGTERM\)/);
});

t.test('a failure that needs a human: hook and desktop told once, only that endpoint paused, resumes once fixed', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  writeConfig(h.local, 'other', remoteConfig({ CLIENTNAME: 'laptop-other', MAILBOX: 'Other' }));
  deliver(h.remote, 'Other');
  const m = deliver(h.remote, 'Mail');
  const first = await smd('smd-pull', [], h.env);
  t.equal(first.status, 0, first.stdout);
  const serverEdit = 'From: a@example.org\nSubject: server edit\n\nserver\n';
  writeFileSync(join(h.remote, m), serverEdit);
  writeFileSync(join(h.local, m), 'From: a@example.org\nSubject: local edit\n\nlocal\n');

  const rec = join(h.local, '..', 'hook-calls');
  const hookDir = join(h.local, '.smd', 'hooks', 'needs-human.d');
  mkdirSync(hookDir, { recursive: true });
  writeFileSync(join(hookDir, '10-record'), `#!/bin/sh\nprintf '%s|%s|%s\\n' "$1" "$2" "$3" | tr '\\n' ' ' >> "${rec}"\necho >> "${rec}"\necho hook ran\n`, { mode: 0o755 });
  const desktop = join(h.local, '..', 'desktop');
  mkdirSync(desktop);
  const notified = join(desktop, 'notified');
  writeFileSync(join(desktop, 'notify-send'), `#!/bin/sh\necho "$*" | tr '\\n' ' ' >> "${notified}"\necho >> "${notified}"\n`, { mode: 0o755 });

  // Pulls every 0.5 s; a paused endpoint is probed every 30 minutes = 3 s.
  writeFileSync(join(h.local, '.smd', 'loop'), '5 0 default\n5 0 other\n');
  const env = { ...h.env, PATH: `${desktop}:${h.env.PATH}`, DISPLAY: ':99', DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent', SMD_LOOP_MINUTE_SECONDS: '0.1' };
  const loop = startLoop(env, t);
  t.ok(await until(() => /default is paused/.test(loopLog(h))), 'the endpoint is paused');
  t.ok(await until(() => count(loopLog(h), /smd-pull -s default still fails: default stays paused/) >= 2), 'probed again, twice');
  const o = deliver(h.remote, 'Other');
  t.ok(await until(() => existsSync(join(h.local, o))), 'the other endpoint goes on');
  t.equal(loop.code(), undefined, 'the loop runs on');

  const calls = lines(rec);
  t.equal(calls.length, 1, 'the hook ran once');
  const [ep, tags, message] = calls[0].split('|');
  t.equal(ep, 'default');
  t.match(tags, /^error::context\(replace\) probable-cause\(concurrent-mailbox-edit\) human-intervention\(necessary\)/);
  t.match(message, /modified meanwhile/);
  t.equal(lines(notified).length, 1, 'one desktop notification');
  t.match(lines(notified)[0], /-u critical -a smd-loop smd: default needs you .*modified meanwhile/);
  t.match(loopLog(h), /: hook: hook ran\n/, 'the hook output is in loop.log');
  t.match(loop.output(), /smd-loop: default needs a human: .*modified meanwhile/);

  // The user settles the conflict: the local copy takes the server's version.
  writeFileSync(join(h.local, m), serverEdit);
  t.ok(await until(() => /smd-pull -s default succeeded: default no longer needs a human/.test(loopLog(h))), 'resumes by itself');
  const after = count(loopLog(h), /smd-pull -s default succeeded/);
  t.ok(await until(() => count(loopLog(h), /smd-pull -s default succeeded/) > after), 'and is back on its schedule');
  t.equal(lines(rec).length, 1, 'still one hook run');
  t.equal(lines(notified).length, 1, 'still one notification');
  loop.child.kill('SIGTERM');
  t.equal(await loop.exited, 0);
});

