/**
 * What smd-pull says when ssh cannot reach the server, against a real sshd on
 * 127.0.0.1, with the system ssh and with the built-in ssh2 client: ssh's own
 * words are shown, and only network trouble is tagged for smd-loop to retry;
 * an unknown or changed host key, a refused key and a missing smd need the
 * user. Plus the classifier on OpenSSH's messages (pure).
 */
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { classifyRemoteExit, type RemoteExit, type TransportFailureKind } from '@smd/transport';
import { startSshd, type TestSshd } from './helpers/sshd.js';
import { expectSshFailure, pullFailing } from './helpers/ssh-failure.js';

t.test('OpenSSH messages are classified (pure)', async (t) => {
  const ctx = { host: 'mail', program: '/usr/bin/smd-server', started: false };
  const failed: RemoteExit = { code: 255, signal: null, connectionFailed: true };
  const cases: [string[], TransportFailureKind, boolean][] = [
    [['No ED25519 host key is known for mail and you have requested strict checking.', 'Host key verification failed.'], 'host-key-unknown', false],
    [['@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @', 'Host key for mail has changed and you have requested strict checking.', 'Host key verification failed.'], 'host-key-changed', false],
    [['@       WARNING: REVOKED HOST KEY DETECTED!               @', 'Host key verification failed.'], 'host-key-revoked', false],
    [['user@mail: Permission denied (publickey).'], 'auth-refused', false],
    [['Received disconnect from 1.2.3.4 port 22:2: Too many authentication failures'], 'auth-refused', false],
    [['ssh: connect to host mail port 22: Connection refused'], 'connection-refused', true],
    [['ssh: connect to host mail port 22: Connection timed out'], 'timeout', true],
    [['Connection timed out during banner exchange'], 'timeout', true],
    [['Timeout, server mail not responding.'], 'timeout', true],
    [['kex_exchange_identification: read: Connection reset by peer'], 'connection-reset', true],
    [['Connection to mail closed by remote host.'], 'connection-reset', true],
    [['client_loop: send disconnect: Broken pipe'], 'connection-reset', true],
    [['ssh: Could not resolve hostname mail: Name or service not known'], 'dns', true],
    [['ssh: Could not resolve hostname mail: Temporary failure in name resolution'], 'dns', true],
    [['ssh: connect to host mail port 22: No route to host'], 'unreachable', true],
    [['ssh: connect to host mail port 22: Network is unreachable'], 'unreachable', true],
    [['/root/.ssh/config: line 3: Bad configuration option: foo'], 'unknown', false],
    [[], 'unknown', false],
  ];
  for (const [lines, kind, transient] of cases) {
    const f = classifyRemoteExit(failed, [...lines, 'ERROR: a line of smd itself'], ctx);
    t.equal(f?.kind, kind, lines.join(' | ') || '(ssh said nothing)');
    t.equal(f?.transient, transient);
    t.notOk(f?.details.some((d) => d.startsWith('ERROR')), "smd's own lines are not ssh's words");
  }
  t.equal(classifyRemoteExit(failed, [], { ...ctx, started: true })?.kind, 'connection-reset', 'silent 255 after the program spoke: the link broke');
  const missing = classifyRemoteExit({ code: 127, signal: null, connectionFailed: false }, ['sh: 1: /usr/bin/smd-server: not found'], ctx);
  t.equal(missing?.kind, 'remote-program-missing');
  t.match(missing?.summary, /\/usr\/bin\/smd-server was not found on mail/);
  t.equal(classifyRemoteExit({ code: 127, signal: null, connectionFailed: false }, ['ERROR: x not found'], ctx), null, 'our program\'s own 127? not the shell');
  t.equal(classifyRemoteExit({ code: 3, signal: null, connectionFailed: false }, ['Permission denied (publickey).'], ctx), null, 'the program ended by itself');
  const restricted = classifyRemoteExit({ code: 1, signal: null, connectionFailed: false },
    ['smd-restricted-shell: refused: option --follow of smd-server: --follow directory "/data" is an absolute path'], ctx);
  t.equal(restricted?.kind, 'remote-command-refused');
  t.equal(restricted?.transient, false);
  t.match(restricted?.details, [/--follow directory "\/data" is an absolute path/]);
});

// Each case is a whole smd-pull through sshd (several processes): more than .taprc's 120 s on a loaded machine.
t.setTimeout(300_000);

let sshd: TestSshd;
t.before(async () => { sshd = await startSshd(); });
t.teardown(async () => { await sshd.stop(); });

/** A Host alias like the helper's, with other settings. */
function alias(name: string, settings: Record<string, string>): void {
  const cfg = readFileSync(sshd.sshConfigFile, 'utf8');
  const block = cfg.slice(cfg.indexOf(`Host ${sshd.sshConfigAlias}\n`)).split('\nHost ')[0]!
    .replace(`Host ${sshd.sshConfigAlias}\n`, `Host ${name}\n`)
    .split('\n').map((l) => {
      const key = /^\s+(\S+)/.exec(l)?.[1];
      return key !== undefined && key in settings ? `  ${key} ${settings[key]}` : l;
    }).join('\n');
  appendFileSync(sshd.sshConfigFile, `\n${block}\n`);
}

t.test('each ssh failure, with the system ssh and with ssh2', async (t) => {
  const stranger = join(sshd.home, '.ssh', 'id_stranger');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
  alias('refused-key', { IdentityFile: stranger });
  alias('unknown-host', { UserKnownHostsFile: join(sshd.home, '.ssh', 'empty_known_hosts') });
  writeFileSync(join(sshd.home, '.ssh', 'empty_known_hosts'), '');
  alias('closed-port', { Port: '1' });
  alias('no-such-host', { HostName: 'no-such-host.invalid' });

  for (const via of ['ssh', 'ssh2'] as const) {
    expectSshFailure(t, await pullFailing(t, sshd, 'unknown', via, 'unknown-host'), {
      via, what: /the host key of unknown-host is not known/, said: via === 'ssh' ? /Host key verification failed/ : /SHA256:/, cause: 'host-key-unknown', transient: false,
    });
    expectSshFailure(t, await pullFailing(t, sshd, 'auth', via, 'refused-key'), {
      via, what: /refused-key refused the login/, said: via === 'ssh' ? /Permission denied \(publickey\)/ : /refused every key/, cause: 'auth-refused', transient: false,
    });
    expectSshFailure(t, await pullFailing(t, sshd, 'missing', via, sshd.sshConfigAlias, { ...sshd.env, SMD_REMOTE_BIN: '/nonexistent/bin' }), {
      via, what: /\/nonexistent\/bin\/smd-server was not found on smd-test-sshd/, said: /not found|No such file/, cause: 'remote-program-missing', transient: false,
    });
    expectSshFailure(t, await pullFailing(t, sshd, 'refused', via, 'closed-port'), {
      via, what: /closed-port refused the connection/, said: /Connection refused|ECONNREFUSED/, cause: 'network', transient: true,
    });
    expectSshFailure(t, await pullFailing(t, sshd, 'dns', via, 'no-such-host'), {
      via, what: /the host name of no-such-host could not be resolved/, said: /no-such-host\.invalid|ENOTFOUND|EAI_AGAIN/, cause: 'network', transient: true,
    });
  }
});
