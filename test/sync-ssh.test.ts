/**
 * smd-pull / smd-push through a real OpenSSH sshd on 127.0.0.1, with the
 * system ssh command and with the built-in ssh2 client; the wall time of a
 * no-change ssh2 pull; a regenerated (changed) host key.
 */
import t from 'tap';
import { renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { expectSshFailure, pullFailing } from './helpers/ssh-failure.js';
import { startSshd, type TestSshd } from './helpers/sshd.js';
import { deliver, smd, treeObject, writeConfig } from './helpers/sync-fixture.js';

// Each case is a whole smd-pull through sshd (several processes): more than .taprc's 120 s on a loaded machine.
t.setTimeout(300_000);

let sshd: TestSshd;
t.before(async () => { sshd = await startSshd(); });
t.teardown(async () => { await sshd.stop(); });

for (const transport of ['ssh', 'ssh2'] as const) {
  t.test(`pull and push through sshd with the ${transport} transport`, async (t) => {
    const endpoint = `ep-${transport}`;
    writeConfig(sshd.home, endpoint, { SERVERNAME: sshd.sshConfigAlias, CLIENTNAME: `laptop-${transport}`, MAILBOX: `Mail-${transport}`, TRANSPORT: transport });
    const local = join(sshd.home, `Mail-${transport}`);
    const remote = join(sshd.remoteHome, `Mail-${transport}`);
    const msgs: string[] = [];
    for (let i = 0; i < 15; i++) msgs.push(deliver(sshd.remoteHome, `Mail-${transport}`));
    deliver(sshd.remoteHome, `Mail-${transport}/.Work`, { size: 300_000 });

    const pull = await smd('smd-pull', ['-s', endpoint], sshd.env);
    t.equal(pull.status, 0, pull.status === 0 ? 'first pull succeeds' : `${pull.stdout}\n${pull.stderr}\n${sshd.log().slice(-2000)}`);
    t.match(pull.stdout, /stats::new-mails\(16\)/);
    t.same(treeObject(local), treeObject(remote));

    // On the server: new, deleted, flagged, moved to another folder.
    deliver(sshd.remoteHome, `Mail-${transport}`);
    unlinkSync(join(sshd.remoteHome, msgs[2]));
    renameSync(join(sshd.remoteHome, msgs[3]), join(sshd.remoteHome, `${msgs[3]}FS`));
    renameSync(join(sshd.remoteHome, msgs[4]), join(sshd.remoteHome, msgs[4].replace(`Mail-${transport}/cur`, `Mail-${transport}/.Work/cur`)));
    const changes = await smd('smd-pull', ['-s', endpoint], sshd.env);
    t.equal(changes.status, 0, changes.stdout);
    t.match(changes.stdout, /stats::new-mails\(1\), del-mails\(1\)/, 'one fetched, one deleted, the rest renamed locally');
    t.same(treeObject(local), treeObject(remote));

    // A flag on the server, a deletion and a new message here: push, then pull again.
    renameSync(join(sshd.remoteHome, msgs[0]), join(sshd.remoteHome, `${msgs[0]}S`));
    unlinkSync(join(sshd.home, msgs[1]));
    deliver(sshd.home, `Mail-${transport}/.Sent`);
    const push = await smd('smd-push', [endpoint], sshd.env);
    t.equal(push.status, 0, push.stdout);
    const pull2 = await smd('smd-pull', [endpoint], sshd.env);
    t.equal(pull2.status, 0, pull2.stdout);
    t.same(treeObject(local), treeObject(remote), 'both directions converged');
  });
}

t.test('a no-change ssh2 pull takes about as long as one over the system ssh', async (t) => {
  // ssh2 used to wait ~30 s after every pull for a channel close that never came.
  const best: Record<string, number> = {};
  for (const transport of ['ssh', 'ssh2'] as const) {
    const endpoint = `timed-${transport}`;
    writeConfig(sshd.home, endpoint, { SERVERNAME: sshd.sshConfigAlias, CLIENTNAME: `timed-${transport}`, MAILBOX: `Timed-${transport}`, TRANSPORT: transport });
    for (let i = 0; i < 3; i++) deliver(sshd.remoteHome, `Timed-${transport}`);
    const first = await smd('smd-pull', [endpoint], sshd.env);
    t.equal(first.status, 0, first.stdout);
    for (let run = 0; run < 2; run++) {
      const started = Date.now();
      const r = await smd('smd-pull', [endpoint], sshd.env);
      const ms = Date.now() - started;
      t.equal(r.status, 0, r.stdout);
      best[transport] = Math.min(best[transport] ?? Infinity, ms);
    }
  }
  const bound = 2 * best.ssh! + 5000;
  t.ok(best.ssh2! < bound, `no-change pull: ssh2 ${best.ssh2} ms, ssh ${best.ssh} ms (bound ${bound} ms)`);
});

// Last: it changes the server. (Unknown keys and the other failures: ssh-errors.test.ts.)
t.test('a changed host key (the server key regenerated) is refused on both transports, never retried', async (t) => {
  await sshd.regenerateHostKey();
  for (const via of ['ssh', 'ssh2'] as const) {
    expectSshFailure(t, await pullFailing(t, sshd, 'changed', via, sshd.sshConfigAlias), {
      via, what: /the host key of smd-test-sshd has CHANGED: someone may be intercepting/,
      said: via === 'ssh' ? /Host key verification failed/ : /REMOTE HOST IDENTIFICATION HAS CHANGED.*SHA256:/, cause: 'host-key-changed', transient: false,
    });
  }
});
