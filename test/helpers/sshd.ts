/**
 * A real OpenSSH server on 127.0.0.1 for tests (no other network).
 *
 * `startSshd()` builds, in a fresh temp directory:
 * - a host key (`ssh-keygen -t ed25519`), a client key, an authorized_keys
 *   and an sshd_config: ListenAddress 127.0.0.1, a free port, PidFile in the
 *   temp dir, StrictModes no, UsePAM no, public keys only, PermitRootLogin yes
 *   (tests run as root), no agent/X11/TCP forwarding;
 * - `home`: the CLIENT side HOME: `.ssh/config` with the alias
 *   `sshConfigAlias` (HostName 127.0.0.1, Port, User = current user,
 *   IdentityFile, IdentitiesOnly, UserKnownHostsFile, BatchMode,
 *   StrictHostKeyChecking yes), `.ssh/id_ed25519(.pub)`, and `.ssh/known_hosts`
 *   holding the server key as `[127.0.0.1]:PORT ssh-ed25519 ...`;
 * - `remoteHome`: the HOME the REMOTE login sees (default: a fresh temp dir).
 *
 * It starts `/usr/sbin/sshd -D -e -f CONFIG` (creating /run/sshd), waits until
 * the port accepts connections, and `stop()` kills it by pid and removes the
 * temp directory. Without sshd installed it throws (tests fail, never skip).
 *
 * How HOME and PATH reach the remote side (OpenSSH logs in as root with
 * root's passwd HOME and cds there; ForceCommand or `command=` keys are not
 * used, the remote command runs exactly as sent):
 * - sshd_config `SetEnv HOME=<remoteHome> SMD_TEST_HOME=<remoteHome>
 *   PATH=<remoteBin>:<repo bin>:<node dir>:/usr/local/bin:/usr/bin:/bin`
 *   (SetEnv overrides the passwd values);
 * - the working directory cannot be changed that way (sshd always cds to the
 *   passwd home), so `remoteBin` holds one wrapper per `bin/` program:
 *   `cd "$HOME" && exec <repo>/bin/<program> "$@"`. A remote `smd-server` /
 *   `smd-client` therefore starts in remoteHome, like upstream's login does.
 *   smd-pull/push choose the remote program directory with `SMD_REMOTE_BIN`,
 *   which `env` sets to `remoteBin`.
 *
 * OpenSSH's `ssh` ignores $HOME (it reads the passwd home's ~/.ssh), so
 * `env.PATH` starts with `clientBin`, holding an `ssh` wrapper that runs
 * `/usr/bin/ssh -F <home>/.ssh/config "$@"`: a plain `ssh <alias>` (or the
 * default SSH of smd-pull) works from `env` without touching SMD_SSH.
 * The built-in ssh2 client reads `$HOME/.ssh` itself, so `env.HOME = home`
 * is enough for it. `env` has no SSH_AUTH_SOCK (no agent leaks in).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SSHD = '/usr/sbin/sshd';
/** The repository's bin directory, from this file's location. */
export const REPO_BIN = fileURLToPath(new URL('../../bin/', import.meta.url)).replace(/\/$/, '');

export interface TestSshd {
  readonly port: number;
  readonly host: '127.0.0.1';
  /** Client-side HOME (.ssh/config, id_ed25519(.pub), known_hosts). */
  readonly home: string;
  /** The HOME (and working directory, through remoteBin) of remote commands. */
  readonly remoteHome: string;
  /** The Host alias in `home/.ssh/config`. */
  readonly sshConfigAlias: string;
  readonly sshConfigFile: string;
  readonly knownHostsFile: string;
  /** Client private key path. */
  readonly clientKey: string;
  /** The server's public host key line (`ssh-ed25519 AAAA... comment`). */
  readonly hostKeyPub: string;
  /** Wrappers (`cd "$HOME" && exec <repo bin>/<program>`), first on the remote PATH. */
  readonly remoteBin: string;
  /** Holds the `ssh` wrapper (`ssh -F <config>`), first on env.PATH. */
  readonly clientBin: string;
  /** Environment to run ssh / smd with: HOME, PATH, SMD_REMOTE_BIN; no SSH_AUTH_SOCK. */
  readonly env: NodeJS.ProcessEnv;
  /**
   * Adds a client key whose authorized_keys line starts with `options` (e.g.
   * `command="..."`), and the Host `alias` in `home/.ssh/config` that logs in
   * with it (otherwise like `sshConfigAlias`). sshd reads authorized_keys at
   * every login: it works at once.
   */
  addClientKey(alias: string, options: string): void;
  /**
   * Gives the server a new host key (as a reinstalled server, or a
   * man-in-the-middle, would present): writes it, makes sshd reload (SIGHUP)
   * and waits until it presents it. known_hosts keeps the old one. Resolves
   * to the new public key line.
   */
  regenerateHostKey(): Promise<string>;
  /** sshd's own log (-e) so far, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** HOME for the remote side; default: a new directory in the temp dir (removed by stop()). */
  remoteHome?: string;
  /** Host alias to write in the client config (default `smd-test-sshd`). */
  alias?: string;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect({ host: '127.0.0.1', port });
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function keygen(path: string, comment: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path], { stdio: 'ignore' });
}

export async function startSshd(opts: SshdOptions = {}): Promise<TestSshd> {
  if (!existsSync(SSHD)) {
    throw new Error(`${SSHD} not found: the transport tests need OpenSSH's server (apt-get install -y openssh-server)`);
  }
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), 'smd-sshd-'));
  chmodSync(dir, 0o755);
  const srv = join(dir, 'server');
  const home = join(dir, 'home');
  const sshDir = join(home, '.ssh');
  const remoteHome = opts.remoteHome ?? join(dir, 'remote-home');
  const remoteBin = join(dir, 'remote-bin');
  const clientBin = join(dir, 'client-bin');
  for (const d of [srv, sshDir, remoteHome, remoteBin, clientBin]) mkdirSync(d, { recursive: true, mode: 0o700 });
  const alias = opts.alias ?? 'smd-test-sshd';
  const user = userInfo().username;

  const hostKey = join(srv, 'ssh_host_ed25519_key');
  keygen(hostKey, 'smd-test-host');
  const clientKey = join(sshDir, 'id_ed25519');
  keygen(clientKey, 'smd-test-client');
  const authorizedKeys = join(srv, 'authorized_keys');
  writeFileSync(authorizedKeys, readFileSync(`${clientKey}.pub`), { mode: 0o600 });
  const hostKeyPub = readFileSync(`${hostKey}.pub`, 'utf8').trim();

  for (const name of readdirSync(REPO_BIN)) {
    writeFileSync(join(remoteBin, name), `#!/bin/sh\ncd "$HOME" || exit 1\nexec '${join(REPO_BIN, name)}' "$@"\n`, { mode: 0o755 });
  }
  const remotePath = [remoteBin, REPO_BIN, dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':');

  const sshdLog: Buffer[] = [];
  let child: ChildProcess | null = null;
  let port = 0;
  const sshdConfig = join(srv, 'sshd_config');
  for (let attempt = 0; attempt < 5 && child === null; attempt++) {
    port = await freePort();
    writeFileSync(sshdConfig, [
      'ListenAddress 127.0.0.1',
      `Port ${port}`,
      `PidFile ${join(srv, 'sshd.pid')}`,
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      'StrictModes no',
      'UsePAM no',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin yes',
      'PermitUserEnvironment no',
      'AllowAgentForwarding no',
      'AllowTcpForwarding no',
      'X11Forwarding no',
      'PrintMotd no',
      'UseDNS no',
      'MaxStartups 64',
      'MaxSessions 64',
      'LogLevel INFO',
      `SetEnv HOME=${remoteHome} SMD_TEST_HOME=${remoteHome} PATH=${remotePath}`,
      '',
    ].join('\n'), { mode: 0o600 });
    const c = spawn(SSHD, ['-D', '-e', '-f', sshdConfig], { stdio: ['ignore', 'ignore', 'pipe'] });
    c.stderr!.on('data', (b: Buffer) => { sshdLog.push(b); });
    let exited = false;
    c.once('exit', () => { exited = true; });
    c.once('error', () => { exited = true; });
    const deadline = Date.now() + 10_000;
    let up = false;
    while (!exited && Date.now() < deadline) {
      if (await canConnect(port)) { up = true; break; }
      await sleep(30);
    }
    if (up) child = c;
    else if (!exited) { c.kill('SIGKILL'); }
  }
  if (child === null) {
    const log = Buffer.concat(sshdLog).toString();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`sshd did not start on 127.0.0.1:\n${log}`);
  }
  const sshd = child;

  const sshConfigFile = join(sshDir, 'config');
  const knownHostsFile = join(sshDir, 'known_hosts');
  const hostBlock = (name: string, key: string): string => [
    `Host ${name}`,
    '  HostName 127.0.0.1',
    `  Port ${port}`,
    `  User ${user}`,
    `  IdentityFile ${key}`,
    '  IdentitiesOnly yes',
    `  UserKnownHostsFile ${knownHostsFile}`,
    '  GlobalKnownHostsFile /dev/null',
    '  StrictHostKeyChecking yes',
    '  BatchMode yes',
    '  LogLevel ERROR',
    '',
  ].join('\n');
  writeFileSync(sshConfigFile, hostBlock(alias, clientKey), { mode: 0o600 });
  writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${hostKeyPub}\n`, { mode: 0o600 });
  writeFileSync(join(clientBin, 'ssh'), `#!/bin/sh\nexec /usr/bin/ssh -F '${sshConfigFile}' "$@"\n`, { mode: 0o755 });

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    PATH: [clientBin, REPO_BIN, process.env.PATH ?? '/usr/bin:/bin'].join(':'),
    SMD_REMOTE_BIN: remoteBin,
  };
  delete env.SSH_AUTH_SOCK;
  delete env.SMD_SSH;

  let stopped: Promise<void> | null = null;
  return {
    port,
    host: '127.0.0.1',
    home,
    remoteHome,
    sshConfigAlias: alias,
    sshConfigFile,
    knownHostsFile,
    clientKey,
    hostKeyPub,
    remoteBin,
    clientBin,
    env,
    addClientKey(name: string, options: string) {
      const key = join(sshDir, `id_${name}`);
      keygen(key, `smd-test-${name}`);
      appendFileSync(authorizedKeys, `${options} ${readFileSync(`${key}.pub`, 'utf8')}`);
      appendFileSync(sshConfigFile, hostBlock(name, key));
    },
    async regenerateHostKey() {
      rmSync(hostKey, { force: true });
      rmSync(`${hostKey}.pub`, { force: true });
      keygen(hostKey, 'smd-test-host-new');
      const pub = readFileSync(`${hostKey}.pub`, 'utf8').trim();
      const blob = pub.split(/\s+/)[1]!;
      sshd.kill('SIGHUP');
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        let scanned = '';
        try {
          scanned = execFileSync('ssh-keyscan', ['-T', '2', '-t', 'ed25519', '-p', String(port), '127.0.0.1'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
        } catch { /* not listening again yet */ }
        if (scanned.includes(blob)) return pub;
        await sleep(100);
      }
      throw new Error(`sshd did not come back with its new host key:\n${Buffer.concat(sshdLog).toString().slice(-2000)}`);
    },
    log: () => Buffer.concat(sshdLog).toString(),
    stop() {
      stopped ??= (async () => {
        if (sshd.exitCode === null && sshd.signalCode === null) {
          const gone = new Promise<void>((r) => sshd.once('exit', () => r()));
          sshd.kill('SIGTERM');
          await Promise.race([gone, sleep(5000)]);
          if (sshd.exitCode === null && sshd.signalCode === null) sshd.kill('SIGKILL');
        }
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
