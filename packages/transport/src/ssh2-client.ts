import { readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, AuthHandlerMiddleware, ClientChannel, ConnectConfig } from 'ssh2';
import { TransportError } from './errors.js';
import { sshFailureKind, type TransportFailureKind } from './failure.js';
import {
  checkHostKey, fingerprintSha256, keyBlobType, keyTypeLabel, knownHostsName, preferredHostKeyAlgorithms, readKnownHosts,
} from './known-hosts.js';
import { quoteWord } from '@smd/shell';
import { remoteCommandLine } from './ssh-command.js';
import { resolveSshHost, type SshHostConfig } from './ssh-config.js';
import type { RemoteExit, RemoteProcess, TransportSpec } from './types.js';

const { Client, utils } = ssh2;

type Ssh2Spec = Extract<TransportSpec, { kind: 'ssh2' }>;

const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

interface Attempt { label: string; method: AnyAuthMethod }

/** Local account facts used by the built-in client. */
function localAccount(spec: Ssh2Spec): { home: string; user: string; env: NodeJS.ProcessEnv } {
  const env = spec.env ?? process.env;
  let user: string;
  try { user = userInfo().username; } catch { user = env.USER ?? env.LOGNAME ?? 'root'; }
  return { home: spec.home ?? env.HOME ?? homedir(), user, env };
}

/** The resolved ssh_config view of a ssh2 spec (exported for diagnostics and tests). */
export function ssh2HostConfig(spec: Ssh2Spec): SshHostConfig {
  const { home, user, env } = localAccount(spec);
  const files = [join(home, '.ssh', 'config')];
  const sys = spec.systemConfig === undefined ? '/etc/ssh/ssh_config' : spec.systemConfig;
  if (sys !== null) files.push(sys);
  return resolveSshHost(spec.host, { home, localUser: user, files, env });
}

function authAttempts(cfg: SshHostConfig, env: NodeJS.ProcessEnv, home: string): { attempts: Attempt[]; notes: string[] } {
  const attempts: Attempt[] = [];
  const notes: string[] = [];
  const agent = cfg.identityAgent === undefined ? env.SSH_AUTH_SOCK : cfg.identityAgent;
  if (agent && !cfg.identitiesOnly) {
    attempts.push({ label: `agent (${agent})`, method: { type: 'agent', username: cfg.user, agent } });
  }
  const explicit = cfg.identityFiles.length > 0;
  const files = explicit ? cfg.identityFiles : DEFAULT_KEYS.map((k) => join(home, '.ssh', k));
  for (const f of files) {
    let data: Buffer;
    try {
      data = readFileSync(f);
    } catch (e) {
      if (explicit) notes.push(`cannot read identity file ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      continue;
    }
    const parsed = utils.parseKey(data);
    if (parsed instanceof Error) {
      notes.push(`identity file ${f} not usable: ${parsed.message}${/passphrase|encrypted/i.test(parsed.message) ? ' (load it into ssh-agent)' : ''}`);
      continue;
    }
    attempts.push({ label: f, method: { type: 'publickey', username: cfg.user, key: data } });
  }
  return { attempts, notes };
}

/** Runs `argv` on `spec.host` through the built-in ssh2 client. */
export function startSsh2(spec: Ssh2Spec, argv: string[]): Promise<RemoteProcess> {
  const command = remoteCommandLine(argv);
  const { home, env } = localAccount(spec);
  const cfg = ssh2HostConfig(spec);
  const { attempts, notes } = authAttempts(cfg, env, home);
  if (attempts.length === 0) {
    return Promise.reject(new TransportError('auth-refused',
      `no key to offer to ${cfg.user}@${cfg.hostName}: no ssh-agent (SSH_AUTH_SOCK) and no usable identity file${notes.length ? ` (${notes.join('; ')})` : ''}`));
  }
  const khName = knownHostsName(cfg.hostKeyAlias ?? cfg.hostName, cfg.hostKeyAlias !== null ? 22 : cfg.port);
  const khFiles = [...cfg.userKnownHostsFiles, ...cfg.globalKnownHostsFiles];
  const entries = readKnownHosts(khFiles);
  const mainKh = cfg.userKnownHostsFiles[0] ?? khFiles[0] ?? join(home, '.ssh', 'known_hosts');
  const where = `${cfg.user}@${cfg.hostName} port ${cfg.port}`;

  return new Promise<RemoteProcess>((resolve, reject) => {
    const client = new Client();
    let settled = false;
    let hostKeyError: TransportError | null = null;
    const tried: string[] = [];
    const fail = (e: TransportError): void => {
      if (settled) return;
      settled = true;
      client.end();
      reject(e);
    };

    const hostVerifier = (key: Buffer): boolean => {
      const fp = fingerprintSha256(key);
      const label = keyTypeLabel(keyBlobType(key));
      const v = checkHostKey(entries, [khName], key);
      if (v.status === 'ok') return true;
      if (v.status === 'revoked') {
        hostKeyError = new TransportError('host-key-revoked',
          `host key for ${khName} is REVOKED: the server presented ${label} key ${fp}, marked @revoked in ${v.entry.file}:${v.entry.line}; refusing to connect`);
      } else if (v.status === 'changed') {
        const rec = v.recorded.map((e) => `${e.file}:${e.line} (${keyTypeLabel(e.keyType)} ${fingerprintSha256(e.key)})`).join(', ');
        hostKeyError = new TransportError('host-key-changed',
          `REMOTE HOST IDENTIFICATION HAS CHANGED for ${khName}: the server presented ${label} key ${fp}, but ${mainKh} records another key (${rec}). ` +
          'Someone could be eavesdropping on you (man-in-the-middle), or the host key was just changed. Refusing to connect; ' +
          `if the change is legitimate, remove the old entry (ssh-keygen -R ${quoteWord(khName)} -f ${quoteWord(mainKh)}) and add the new key after checking its fingerprint.`);
      } else {
        hostKeyError = new TransportError('host-key-unknown',
          `host key verification failed: ${khName} is not in ${mainKh}; the server presented ${label} key ${fp}. ` +
          `Refusing to connect to an unknown host: check that fingerprint with the server's administrator, then add the key to ${mainKh} (for instance by connecting once with the system ssh).`);
      }
      return false;
    };

    let next = 0;
    const authHandler: AuthHandlerMiddleware = (methodsLeft, _partial, cb) => {
      while (next < attempts.length) {
        const a = attempts[next++]!;
        // methodsLeft is null on the first call; afterwards skip what the server does not take
        if (methodsLeft && !methodsLeft.includes('publickey')) break;
        tried.push(a.label);
        cb(a.method);
        return;
      }
      cb(false as unknown as AnyAuthMethod);
    };

    const conf: ConnectConfig = {
      host: cfg.hostName,
      port: cfg.port,
      username: cfg.user,
      readyTimeout: spec.readyTimeoutMs ?? (cfg.connectTimeoutSec !== null ? cfg.connectTimeoutSec * 1000 : 20_000),
      keepaliveInterval: cfg.serverAliveIntervalSec !== null ? cfg.serverAliveIntervalSec * 1000 : 0,
      keepaliveCountMax: cfg.serverAliveCountMax ?? 3,
      algorithms: { serverHostKey: preferredHostKeyAlgorithms(entries, [khName]) as never },
      hostVerifier,
      authHandler,
    };

    client.on('error', (err: Error & { level?: string; code?: string }) => {
      if (settled) return;
      if (hostKeyError !== null) { fail(hostKeyError); return; }
      if (err.level === 'client-authentication') {
        fail(new TransportError('auth-refused',
          `permission denied for ${where}: the server refused every key offered (${tried.join(', ') || 'none'})${notes.length ? `; ${notes.join('; ')}` : ''}`, { cause: err }));
        return;
      }
      fail(new TransportError(connectFailureKind(err), `cannot connect to ${where}: ${err.message}`, { cause: err }));
    });
    client.on('close', () => {
      if (!settled) fail(hostKeyError ?? new TransportError('connection-reset', `connection to ${where} closed before the session started`));
    });

    client.on('ready', () => {
      client.exec(command, (err, channel) => {
        if (err) { fail(new TransportError('unknown', `cannot run the remote command on ${where}: ${err.message}`, { cause: err })); return; }
        settled = true;
        resolve(wrapChannel(client, channel, `ssh2 ${spec.host} ${command}`));
      });
    });

    try {
      client.connect(conf);
    } catch (e) {
      fail(new TransportError('config', `cannot connect to ${where}: ${(e as Error).message}`, { cause: e }));
    }
  });
}

/**
 * The exec channel as a RemoteProcess. `exit` settles on the exit status, like
 * a child process's 'exit', and never waits for the channel's 'close': ssh2
 * emits that only once the channel's stdout has been read to its end, and a
 * caller whose reader stopped (smd-client exits, its stdin pipe is unpiped)
 * never reads it: every ssh2 pull waited there for the 30 s grace kill.
 * The connection is ended when the channel closes, or once the exit status
 * and the end of the program's output (EOF) have both arrived: what nobody
 * read yet stays readable in `stdout`.
 */
/** What a failed connection attempt was: a socket error's code, ssh2's handshake timeout, or unknown. */
function connectFailureKind(err: Error & { level?: string; code?: string }): TransportFailureKind {
  if (err.level === 'client-timeout') return 'timeout';
  switch (err.code) {
    case 'ECONNREFUSED': return 'connection-refused';
    case 'ETIMEDOUT': return 'timeout';
    case 'ECONNRESET': case 'EPIPE': case 'ECONNABORTED': return 'connection-reset';
    case 'ENOTFOUND': case 'EAI_AGAIN': case 'EAI_NONAME': return 'dns';
    case 'EHOSTUNREACH': case 'ENETUNREACH': case 'ENETDOWN': case 'EHOSTDOWN': return 'unreachable';
    default: return sshFailureKind([err.message]) ?? 'unknown';
  }
}

function wrapChannel(client: InstanceType<typeof Client>, channel: ClientChannel, description: string): RemoteProcess {
  // stderr: the program's own, plus our message if the connection breaks.
  const stderr = new PassThrough();
  channel.stderr.pipe(stderr, { end: false });
  let status: RemoteExit | null = null;
  let connError: string | null = null;
  let killed = false;
  let gone = false; // the channel or the whole connection is closed
  let outputEnded = false; // EOF from the server: everything the program wrote has arrived
  let settled = false;
  let stderrEnded = false;
  let resolveExit!: (e: RemoteExit) => void;
  const exit = new Promise<RemoteExit>((resolve) => { resolveExit = resolve; });

  const update = (): void => {
    if (!settled && (status !== null || gone)) {
      settled = true;
      if (status !== null) resolveExit(status);
      else if (killed) resolveExit({ code: null, signal: 'SIGTERM', connectionFailed: false }); // we ended it: like a local kill
      else resolveExit({ code: 255, signal: null, connectionFailed: true });
    }
    if (settled && !stderrEnded && (outputEnded || gone)) {
      stderrEnded = true;
      if (status === null && !killed) {
        stderr.write(`ssh2: ${connError !== null ? `connection lost: ${connError}` : 'connection closed before the remote program reported its exit status'}\n`);
      }
      stderr.end();
    }
    if (gone || (status !== null && outputEnded)) client.end();
  };

  channel.on('exit', (code: number | null, signal?: string) => {
    status = { code: code ?? null, signal: signal != null ? (signal.startsWith('SIG') ? signal : `SIG${signal}`) : null, connectionFailed: false };
    update();
  });
  channel.on('error', () => {}); // surfaced through `exit`
  channel.stderr.once('end', () => { outputEnded = true; update(); });
  channel.once('close', () => { gone = true; update(); });
  client.on('error', (e: Error) => { connError ??= e.message; });
  client.once('close', () => { gone = true; update(); });

  return {
    stdout: channel,
    stdin: channel,
    stderr,
    exit,
    description,
    kill() {
      if (killed) return;
      killed = true;
      try { channel.signal('TERM'); } catch { /* channel gone */ }
      client.end();
    },
  };
}
