/**
 * The protections of issue 11, end to end with the real programs: the
 * mass-deletion brake (pull and push, the flag, the threshold, an empty
 * root, -n) and Ctrl-C (both sides stop, nothing half-applied).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, deliver, messageCount, remoteConfig, smd, tmpFiles, treeObject, twoHomes, writeConfig } from './helpers/sync-fixture.js';

async function newRecords(env: NodeJS.ProcessEnv): Promise<number> {
  const r = await smd('smd-log', ['--json'], env);
  return r.stdout.split('\n').filter((l) => l !== '' && (JSON.parse(l) as { action: string }).action === 'new').length;
}

t.test('the mass-deletion brake: refused, nothing deleted; the flag lets it through; the threshold; an empty root; -n', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  const inbox: string[] = [];
  for (let i = 0; i < 30; i++) inbox.push(deliver(h.remote, 'Mail'));
  const work: string[] = [];
  for (let i = 0; i < 10; i++) work.push(deliver(h.remote, 'Mail/.Work'));
  t.equal((await smd('smd-pull', [], h.env)).status, 0);
  const before = treeObject(join(h.local, 'Mail'));
  const db = join(h.local, '.smd', 'laptop__Mail.db.txt');
  const dbBefore = readFileSync(db, 'latin1');

  // 90% of the server's messages vanish, and one arrives.
  for (const m of [...inbox.slice(0, 27), ...work.slice(0, 9)]) unlinkSync(join(h.remote, m));
  const arrived = deliver(h.remote, 'Mail');
  const refused = await smd('smd-pull', ['-s'], h.env);
  t.equal(refused.status, 1, 'exit non-zero');
  t.match(refused.stdout, /TAGS: error::context\(delete-messages\) probable-cause\(mass-deletion\) human-intervention\(necessary\) suggested-actions\(run\(smd-pull --allow-mass-delete default\)\)/);
  t.match(refused.stdout, /Mass deletion held: this run would delete 36 of the 40 messages of the mailbox \(90%, more than 50%\); 27 of the 30 messages of Mail \(90%, more than 50%\)\./);
  t.match(refused.stdout, /smd-client: ERROR: {3}Mail: 27 of 30 \(e\.g\. \S+, \S+, \S+\)\n/, 'counts per folder and a few names');
  t.match(refused.stdout, /smd-client: ERROR: {3}Mail\/\.Work: 9 of 10 /);
  t.match(refused.stdout, /let them through once with: smd-pull --allow-mass-delete default/);
  t.match(refused.stdout, /MASS_DELETE_THRESHOLD=<percent> in ~\/\.smd\/config\.default/);
  t.match(refused.stdout, /smd-pull default: FAILED after .*; applied before stopping: 1 new, 0 deleted/);
  const now = treeObject(join(h.local, 'Mail'));
  for (const [k, v] of Object.entries(before)) if (now[k] !== v) t.fail(`${k} was deleted`);
  t.ok(existsSync(join(h.local, arrived)), 'the rest of the changes was applied');
  t.equal(readFileSync(db, 'latin1'), dbBefore, 'the db-file did not move: the next run sees the same deletions');
  t.notOk(existsSync(join(h.remote, '.smd', 'laptop__Mail.db.txt.new')), 'the server dropped its new db-file');

  const allowed = await smd('smd-pull', ['--allow-mass-delete'], h.env);
  t.equal(allowed.status, 0, allowed.stdout);
  t.match(allowed.stdout, /done in .*: 0 new, 36 deleted/);
  t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')), 'with the flag: applied');

  // A higher threshold in the configuration lets 80% through.
  const more: string[] = [];
  for (let i = 0; i < 26; i++) more.push(deliver(h.remote, 'Mail'));
  t.equal((await smd('smd-pull', [], h.env)).status, 0);
  for (const m of more.slice(0, 24)) unlinkSync(join(h.remote, m));
  writeConfig(h.local, 'default', remoteConfig({ MASS_DELETE_THRESHOLD: '85' }));
  const raised = await smd('smd-pull', [], h.env);
  t.equal(raised.status, 0, `24 of 31 (77%) with MASS_DELETE_THRESHOLD=85: ${raised.stdout}`);
  t.match(raised.stdout, / 24 deleted/);

  // The server's root empty (an unmounted disk): held whatever the threshold; -n deletes nothing and passes.
  writeConfig(h.local, 'default', remoteConfig({ MASS_DELETE_THRESHOLD: 'off' }));
  rmSync(join(h.remote, 'Mail'), { recursive: true });
  mkdirSync(join(h.remote, 'Mail'));
  const kept = treeObject(join(h.local, 'Mail'));
  const empty = await smd('smd-pull', [], h.env);
  t.equal(empty.status, 1, 'never "all of it"');
  t.match(empty.stdout, /every message of the mailbox Mail \(7\): is its disk mounted, its path right\?/);
  t.same(treeObject(join(h.local, 'Mail')), kept, 'nothing deleted');
  const nodel = await smd('smd-pull', ['-n'], h.env);
  t.equal(nodel.status, 0, `-n: no deletion at all, as upstream: ${nodel.stdout}`);
  t.same(treeObject(join(h.local, 'Mail')), kept);
});

t.test('the brake on a push: this host\'s root is empty, the server keeps everything', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  for (let i = 0; i < 5; i++) deliver(h.local, 'Mail');
  t.equal((await smd('smd-push', [], h.env)).status, 0);
  const server = treeObject(join(h.remote, 'Mail'));
  for (const f of readdirSync(join(h.local, 'Mail/cur'))) unlinkSync(join(h.local, 'Mail/cur', f));
  const r = await smd('smd-push', ['-s'], h.env);
  t.equal(r.status, 1);
  t.match(r.stdout, /default: smd-client@fakehost: TAGS: error::context\(delete-messages\) probable-cause\(mass-deletion\) .*suggested-actions\(run\(smd-push --allow-mass-delete default\)\)/);
  t.same(treeObject(join(h.remote, 'Mail')), server, 'nothing deleted on the server');
});

/**
 * smd-pull or smd-push through an ssh wrapper that slows the mail down, signalled with SIGINT (its whole process
 * group, as a terminal's Ctrl-C) once `arrived` holds 10 messages. The remote side runs in a session of its own (as
 * behind a real ssh): the Ctrl-C reaches only the local command, whose in-process half must stop the transfer itself.
 */
async function interruptedSync(t: { teardown(fn: () => void): void }, h: ReturnType<typeof twoHomes>, cmd: 'smd-pull' | 'smd-push', arrived: string): Promise<{ sent: boolean; code: number | string | null; out: string }> {
  const throttle = join(h.local, 'throttle.js');
  writeFileSync(throttle, "process.stdin.on('data', (d) => { process.stdin.pause(); process.stdout.write(d, () => setTimeout(() => process.stdin.resume(), 20)); });\n");
  const slowed = `"${process.execPath}" "${throttle}"`;
  const remote = `cd "${h.remote}" && HOME="${h.remote}" sh -c "$0"`;
  // A pull slows the server's output, a push the client's input.
  const pipeline = cmd === 'smd-pull' ? `${remote} | ${slowed}` : `${slowed} | (${remote})`;
  const slowSsh = join(h.local, 'slow-ssh');
  writeFileSync(slowSsh, `#!/bin/sh\nshift\nexec setsid sh -c '${pipeline}' "$*"\n`);
  chmodSync(slowSsh, 0o755);
  const child = spawn(join(BIN, cmd), [], { env: { ...h.env, SMD_SSH: slowSsh }, cwd: h.local, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr.resume();
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  t.teardown(() => { try { process.kill(-(child.pid as number), 'SIGKILL'); } catch { /* all gone */ } });
  let sent = false;
  for (let i = 0; i < 600 && !sent; i++) {
    await new Promise((r) => setTimeout(r, 100));
    if (messageCount(arrived) >= 10) { process.kill(-(child.pid as number), 'SIGINT'); sent = true; }
  }
  const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('hung'), 60_000))]);
  return { sent, code, out };
}

t.test('Ctrl-C: both sides stop, nothing half-applied, the summary says so; the rerun converges', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  for (let i = 0; i < 150; i++) deliver(h.remote, 'Mail', { size: 60_000 });
  const remote = treeObject(join(h.remote, 'Mail'));
  const { sent, code, out } = await interruptedSync(t, h, 'smd-pull', join(h.local, 'Mail'));
  t.ok(sent, 'interrupted in the middle of the transfer');
  t.equal(code, 130, 'exit 130 (interrupted by SIGINT)');
  t.match(out, /smd-pull default: INTERRUPTED after [\d.]+ s; applied before stopping \(each change complete\): \d+ new/);
  const partial = treeObject(join(h.local, 'Mail'));
  t.ok(Object.keys(partial).length < 150, `only part arrived (${Object.keys(partial).length})`);
  for (const [k, v] of Object.entries(partial)) if (v !== remote[k]) t.fail(`${k} is not whole`);
  t.same(tmpFiles(h.local), [], 'no partial file left');
  t.notOk(existsSync(join(h.local, '.smd', 'lock')), 'the lock is released');
  const rerun = await smd('smd-pull', [], h.env);
  t.equal(rerun.status, 0, rerun.stdout);
  t.same(treeObject(join(h.local, 'Mail')), remote, 'converged');
  t.equal(await newRecords(h.env), 150, 'every message is in the journal once, interrupted run included');
});

t.test('Ctrl-C during a push (smd-server runs inside smd-push): it stops, the server keeps only whole messages; the rerun converges', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  mkdirSync(join(h.remote, 'Mail'), { recursive: true });
  for (let i = 0; i < 150; i++) deliver(h.local, 'Mail', { size: 60_000 });
  const local = treeObject(join(h.local, 'Mail'));
  const { sent, code, out } = await interruptedSync(t, h, 'smd-push', join(h.remote, 'Mail'));
  t.ok(sent, 'interrupted in the middle of the transfer');
  t.equal(code, 130, 'exit 130 (interrupted by SIGINT)');
  t.match(out, /smd-push default: INTERRUPTED after [\d.]+ s/);
  t.notMatch(out, /internal error|\n\s+at /, 'no internal error, no stack trace');
  const partial = treeObject(join(h.remote, 'Mail'));
  t.ok(Object.keys(partial).length < 150, `only part arrived (${Object.keys(partial).length})`);
  for (const [k, v] of Object.entries(partial)) if (v !== local[k]) t.fail(`${k} is not whole`);
  t.same(tmpFiles(h.remote), [], 'no partial file left on the server');
  t.notOk(existsSync(join(h.local, '.smd', 'lock')), 'the lock is released');
  const rerun = await smd('smd-push', [], h.env);
  t.equal(rerun.status, 0, rerun.stdout);
  t.same(treeObject(join(h.remote, 'Mail')), local, 'converged');
});

