/**
 * Drop-in use with a real OpenSSH sshd on 127.0.0.1: smd-restricted-shell as
 * the `command=` of a key in authorized_keys (pull, push, uniform-names, over
 * ssh and ssh2), and an SSH wrapper that runs its arguments itself.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isTransientFailure } from '@smd/endpoint';
import { REPO_BIN, startSshd, type TestSshd } from './helpers/sshd.js';
import { deliver, smd, treeObject, writeConfig } from './helpers/sync-fixture.js';

// Each case is a whole smd-pull through sshd (several processes): more than .taprc's 120 s on a loaded machine.
t.setTimeout(300_000);

let sshd: TestSshd;
t.before(async () => { sshd = await startSshd(); });
t.teardown(async () => { await sshd.stop(); });

t.test('through smd-restricted-shell as the command= of the key (ssh and ssh2)', async (t) => {
  sshd.addClientKey('smd-restricted', `command="${join(REPO_BIN, 'smd-restricted-shell')}",restrict`);
  // The restricted shell only runs the programs of its own installation.
  const env = { ...sshd.env, SMD_REMOTE_BIN: REPO_BIN };
  const other = spawnSync('ssh', ['smd-restricted', 'cat', '/etc/hostname'], { env, encoding: 'utf8', timeout: 60_000 });
  t.equal(other.status, 1, 'command= is in force');
  t.match(other.stderr, /smd-restricted-shell: refused: "cat" is not allowed/);

  for (const transport of ['ssh', 'ssh2'] as const) {
    const mailbox = `Restricted-${transport}`;
    writeConfig(sshd.home, `rs-${transport}`, { SERVERNAME: 'smd-restricted', CLIENTNAME: `rs-${transport}`, MAILBOX: mailbox, TRANSPORT: transport });
    for (let i = 0; i < 3; i++) deliver(sshd.remoteHome, mailbox);
    deliver(sshd.remoteHome, `${mailbox}/.Work`);
    // the allowed program really runs: the messages arrive
    const pull = await smd('smd-pull', ['-s', `rs-${transport}`], env);
    t.equal(pull.status, 0, `${transport} pull: ${pull.stdout}\n${sshd.log().slice(-1500)}`);
    t.match(pull.stdout, /stats::new-mails\(4\)/);
    t.same(treeObject(join(sshd.home, mailbox)), treeObject(join(sshd.remoteHome, mailbox)), `${transport}: pulled`);
    deliver(sshd.home, `${mailbox}/.Sent`);
    const push = await smd('smd-push', [`rs-${transport}`], env);
    t.equal(push.status, 0, `${transport} push: ${push.stdout}`);
    t.same(treeObject(join(sshd.remoteHome, mailbox)), treeObject(join(sshd.home, mailbox)), `${transport}: pushed`);
  }

  // what the restricted shell refuses is reported as such (not as a network error), and not retried
  writeConfig(sshd.home, 'rs-refused', { SERVERNAME: 'smd-restricted', CLIENTNAME: 'rs-refused', MAILBOX: 'Restricted-ssh', FOLLOW_REMOTE: '/srv/elsewhere' });
  const refused = await smd('smd-pull', ['-s', 'rs-refused'], env);
  t.equal(refused.status, 1);
  t.match(refused.stdout, /smd-server: ERROR: ssh: smd-restricted-shell on smd-restricted refused to run/);
  t.match(refused.stdout, /ssh said: smd-restricted-shell: refused: --follow directory "\/srv\/elsewhere" is an absolute path/);
  t.match(refused.stdout, /TAGS: error::context\(ssh\) probable-cause\(remote-command-refused\) human-intervention\(necessary\)/);
  t.notOk(isTransientFailure(refused.stdout), 'smd-loop does not retry it');

  // smd-uniform-names uploads to and reads ~/.smd/rename-db: the restricted shell's only exception
  const remoteMsgs = [0, 1, 2].map(() => deliver(sshd.remoteHome, 'Uniform'));
  for (const rel of remoteMsgs) {
    const renamed = join(sshd.home, dirname(rel), basename(rel).replace('testhost', 'otherhost'));
    mkdirSync(dirname(renamed), { recursive: true });
    for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(sshd.home, 'Uniform', d), { recursive: true });
    copyFileSync(join(sshd.remoteHome, rel), renamed);
  }
  writeConfig(sshd.home, 'uniform', { SERVERNAME: 'smd-restricted', CLIENTNAME: 'uniform', MAILBOX: 'Uniform' });
  const un = await smd('smd-uniform-names', ['uniform'], env);
  t.equal(un.status, 0, `${un.stdout}\n${un.stderr}`);
  t.match(un.stdout, /3 rename\(s\) written/);
  t.equal(readFileSync(join(sshd.home, 'smd-rename.sh'), 'utf8').split('\n').filter((l) => l.startsWith('mv ')).length, 3);
  t.notOk(existsSync(join(sshd.remoteHome, '.smd', 'rename-db')), 'the remote rename-db is removed');
});

t.test('pull and push through an SSH wrapper that runs its arguments itself', async (t) => {
  // SSH=wrapper HOST PROGRAM ARGS...: no shell reads the words, each must arrive as it is
  const wrapper = join(sshd.home, 'exec-wrapper');
  writeFileSync(wrapper, `#!/bin/sh\nshift\ncd '${sshd.remoteHome}' && HOME='${sshd.remoteHome}' exec "$@"\n`, { mode: 0o755 });
  writeConfig(sshd.home, 'wrapped', { SERVERNAME: 'the-server', CLIENTNAME: 'wrapped', MAILBOX: 'Wrapped', EXCLUDE: 'Wrapped/.Spam*', SSH: wrapper });
  deliver(sshd.remoteHome, 'Wrapped');
  deliver(sshd.remoteHome, 'Wrapped/.Work');
  deliver(sshd.remoteHome, 'Wrapped/.Spam');
  const pull = await smd('smd-pull', ['-s', 'wrapped'], sshd.env);
  t.equal(pull.status, 0, pull.stdout);
  t.match(pull.stdout, /stats::new-mails\(2\)/, 'the exclude glob reached smd-server intact');
  t.notOk(existsSync(join(sshd.home, 'Wrapped', '.Spam')), 'excluded folder not pulled');
  deliver(sshd.home, 'Wrapped/.Sent');
  const push = await smd('smd-push', ['wrapped'], sshd.env);
  t.equal(push.status, 0, push.stdout);
  const remote = treeObject(join(sshd.remoteHome, 'Wrapped'));
  const withoutSpam = Object.fromEntries(Object.entries(remote).filter(([k]) => !k.startsWith('.Spam/')));
  t.same(treeObject(join(sshd.home, 'Wrapped')), withoutSpam, 'converged (the excluded folder left alone)');
});
