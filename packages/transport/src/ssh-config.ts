import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { hostname as localHostName } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { TransportError } from './errors.js';
import { patternListMatch, wildcardMatch } from './pattern.js';
import { splitCommandWords } from './ssh-command.js';

/** What the built-in client needs to know about one destination, from ssh_config. */
export interface SshHostConfig {
  /** The destination as given, without `user@`. */
  readonly alias: string;
  readonly hostName: string;
  readonly user: string;
  readonly port: number;
  /** IdentityFile values (expanded); empty when none was configured. */
  readonly identityFiles: readonly string[];
  readonly identitiesOnly: boolean;
  /** IdentityAgent: undefined = use SSH_AUTH_SOCK, null = `none`, else a socket path. */
  readonly identityAgent: string | null | undefined;
  readonly userKnownHostsFiles: readonly string[];
  readonly globalKnownHostsFiles: readonly string[];
  readonly hostKeyAlias: string | null;
  readonly connectTimeoutSec: number | null;
  readonly serverAliveIntervalSec: number | null;
  readonly serverAliveCountMax: number | null;
}

export interface ResolveOptions {
  /** The local home: `~` and %d, and where `.ssh/config` lives. */
  home: string;
  /** The local user name (%u, and the default remote user). */
  localUser: string;
  /** Config files in order (user's first, then the system one); missing ones are skipped. */
  files: readonly string[];
  env?: NodeJS.ProcessEnv;
}

/** The ssh_config keys the built-in client applies (besides Host, Match and Include). */
export const SSH2_HONOURED_KEYS = [
  'HostName', 'User', 'Port', 'IdentityFile', 'IdentitiesOnly', 'IdentityAgent', 'UserKnownHostsFile',
  'GlobalKnownHostsFile', 'HostKeyAlias', 'ConnectTimeout', 'ServerAliveInterval', 'ServerAliveCountMax',
] as const;

/**
 * Keys that change nothing for an smd session (no terminal, no forwarding, no
 * prompt, host keys always checked strictly), so they may stay in a config the
 * system ssh also reads.
 */
export const SSH2_IGNORED_KEYS = [
  'AddKeysToAgent', 'BatchMode', 'ChannelTimeout', 'CheckHostIP', 'ClearAllForwardings', 'Compression', 'ConnectionAttempts',
  'ControlMaster', 'ControlPath', 'ControlPersist', 'DynamicForward', 'EnableEscapeCommandline', 'EscapeChar',
  'ExitOnForwardFailure', 'FingerprintHash', 'ForkAfterAuthentication', 'ForwardAgent', 'ForwardX11',
  'ForwardX11Timeout', 'ForwardX11Trusted', 'GatewayPorts', 'GSSAPIAuthentication', 'GSSAPIDelegateCredentials',
  'HashKnownHosts', 'HostbasedAuthentication', 'IgnoreUnknown', 'IPQoS', 'KbdInteractiveAuthentication',
  'KbdInteractiveDevices', 'ChallengeResponseAuthentication', 'LocalForward', 'LogLevel', 'LogVerbose',
  'NoHostAuthenticationForLocalhost', 'NumberOfPasswordPrompts', 'ObscureKeystrokeTiming', 'PasswordAuthentication',
  'PermitLocalCommand', 'PermitRemoteOpen', 'PreferredAuthentications', 'PubkeyAuthentication', 'RekeyLimit',
  'RemoteForward', 'RequestTTY', 'SendEnv', 'SessionType', 'StdinNull', 'StreamLocalBindMask',
  'StreamLocalBindUnlink', 'StrictHostKeyChecking', 'SyslogFacility', 'Tag', 'TCPKeepAlive', 'UpdateHostKeys',
  'UseKeychain', 'VisualHostKey', 'XAuthLocation',
] as const;

/** Keys that are harmless with one value (OpenSSH's "off"); with any other they are refused. */
const HARMLESS_VALUE: Readonly<Record<string, string>> = {
  proxycommand: 'none', proxyjump: 'none', remotecommand: 'none', canonicalizehostname: 'no', addressfamily: 'any',
  verifyhostkeydns: 'no', tunnel: 'no', pkcs11provider: 'none', securitykeyprovider: 'internal', knownhostscommand: 'none',
};

const lower = (keys: readonly string[]): Set<string> => new Set(keys.map((k) => k.toLowerCase()));
const HONOURED = lower(SSH2_HONOURED_KEYS);
const IGNORED = lower(SSH2_IGNORED_KEYS);
/** Keys OpenSSH knows that the built-in client cannot apply: refusing beats connecting another way than the user asked. */
const UNSUPPORTED = lower([
  'ProxyCommand', 'ProxyJump', 'ProxyUseFdpass', 'LocalCommand', 'RemoteCommand', 'CanonicalizeHostname',
  'CanonicalDomains', 'CanonicalizeFallbackLocal', 'CanonicalizeMaxDots', 'CanonicalizePermittedCNAMEs',
  'AddressFamily', 'BindAddress', 'BindInterface', 'CertificateFile', 'PKCS11Provider', 'SecurityKeyProvider',
  'KnownHostsCommand', 'VerifyHostKeyDNS', 'Tunnel', 'TunnelDevice', 'SetEnv', 'Ciphers', 'MACs', 'KexAlgorithms',
  'HostKeyAlgorithms', 'PubkeyAcceptedAlgorithms', 'PubkeyAcceptedKeyTypes', 'HostbasedAcceptedAlgorithms',
  'HostbasedKeyTypes', 'CASignatureAlgorithms', 'GSSAPIKexAlgorithms', 'RequiredRSASize', 'RevokedHostKeys',
]);

interface State {
  alias: string;
  opts: Map<string, string[]>;
  /** where each key of `opts` was set (file:line, and its spelling there) */
  where: Map<string, { at: string; key: string }>;
  identityFiles: string[];
  localUser: string;
  home: string;
  depth: number;
}

/** Resolves a destination (`alias` or `user@alias`) through ssh_config files: first value wins. */
export function resolveSshHost(destination: string, o: ResolveOptions): SshHostConfig {
  if (destination === '' || destination.startsWith('-')) throw new TransportError('config', `bad ssh destination: ${JSON.stringify(destination)}`);
  const at = destination.lastIndexOf('@');
  const givenUser = at >= 0 ? destination.slice(0, at) : null;
  const alias = at >= 0 ? destination.slice(at + 1) : destination;
  if (alias === '') throw new TransportError('config', `bad ssh destination: ${JSON.stringify(destination)}`);
  const st: State = { alias, opts: new Map(), where: new Map(), identityFiles: [], localUser: o.localUser, home: o.home, depth: 0 };
  for (const f of o.files) if (existsSync(f)) readConfigFile(f, st, dirname(f));

  const first = (k: string): string | undefined => st.opts.get(k)?.[0];
  refuseUnsupported(st);
  const hostNameRaw = first('hostname') ?? alias;
  const hostName = expandTokens(hostNameRaw, { h: alias, '%': '%' }, 'HostName');
  const user = givenUser ?? first('user') ?? o.localUser;
  const port = parseNumber(first('port') ?? '22', 'Port');
  if (port < 1 || port > 65535) throw new TransportError('config', `bad Port ${port} for ${alias}`);
  const tokens: Record<string, string> = {
    '%': '%', d: o.home, u: o.localUser, h: hostName, r: user, p: String(port), n: alias,
    l: localHostName().split('.')[0] ?? '', L: localHostName().split('.')[0] ?? '', i: String(process.getuid?.() ?? ''),
  };
  const path = (v: string, what: string): string => expandTilde(expandTokens(v, tokens, what), o.home);
  const agentRaw = first('identityagent');
  let identityAgent: string | null | undefined;
  if (agentRaw === undefined) identityAgent = undefined;
  else if (agentRaw.toLowerCase() === 'none') identityAgent = null;
  else if (agentRaw === 'SSH_AUTH_SOCK') identityAgent = undefined;
  else if (agentRaw.startsWith('$')) identityAgent = o.env?.[agentRaw.slice(1)] ?? null;
  else identityAgent = path(agentRaw, 'IdentityAgent');
  const yes = (k: string): boolean => (first(k) ?? 'no').toLowerCase() === 'yes';
  const num = (k: string): number | null => { const v = first(k); return v === undefined ? null : parseNumber(v, k); };
  return {
    alias,
    hostName,
    user,
    port,
    identityFiles: st.identityFiles.filter((f) => f.toLowerCase() !== 'none').map((f) => path(f, 'IdentityFile')),
    identitiesOnly: yes('identitiesonly'),
    identityAgent,
    userKnownHostsFiles: (st.opts.get('userknownhostsfile') ?? ['~/.ssh/known_hosts', '~/.ssh/known_hosts2'])
      .filter((f) => f.toLowerCase() !== 'none').map((f) => path(f, 'UserKnownHostsFile')),
    globalKnownHostsFiles: (st.opts.get('globalknownhostsfile') ?? ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'])
      .filter((f) => f.toLowerCase() !== 'none').map((f) => path(f, 'GlobalKnownHostsFile')),
    hostKeyAlias: first('hostkeyalias') ?? null,
    connectTimeoutSec: num('connecttimeout'),
    serverAliveIntervalSec: num('serveraliveinterval'),
    serverAliveCountMax: num('serveralivecountmax'),
  };
}

function parseNumber(v: string, what: string): number {
  if (!/^\d+$/.test(v)) throw new TransportError('config', `bad ${what} value in ssh_config: ${v}`);
  return Number(v);
}

export function expandTilde(p: string, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return join(home, p.slice(2));
  if (p.startsWith('~')) throw new TransportError('config', `~user paths are not supported in ssh_config: ${p}`);
  return p;
}

export function expandTokens(v: string, tokens: Record<string, string>, what: string): string {
  return v.replace(/%(.)/g, (all, t: string) => {
    const r = tokens[t];
    if (r === undefined) throw new TransportError('config', `unsupported token ${all} in ${what} (${v})`);
    return r;
  });
}

function readConfigFile(file: string, st: State, baseDir: string): void {
  if (st.depth > 16) throw new TransportError('config', `ssh_config Include nested too deeply at ${file}`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TransportError('config', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  let active = true; // lines before the first Host/Match apply to every host
  const lines = text.split(/\r?\n/);
  for (let ln = 0; ln < lines.length; ln++) {
    const line = lines[ln]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([^\s=]+)\s*(?:=\s*)?(.*)$/.exec(line);
    if (m === null) continue;
    const key = m[1]!.toLowerCase();
    let args: string[];
    try {
      args = splitCommandWords(m[2]!);
    } catch (e) {
      throw new TransportError('config', `${file}:${ln + 1}: ${(e as Error).message}`);
    }
    const where = `${file}:${ln + 1}`;
    if (key === 'host') {
      active = patternListMatch(args, st.alias);
      continue;
    }
    if (key === 'match') {
      active = matchCriteria(args, st, where);
      continue;
    }
    if (!active) continue;
    if (key === 'include') {
      for (const a of args) {
        let p = expandTilde(a, st.home);
        if (!isAbsolute(p)) p = join(baseDir, p);
        for (const f of globFiles(p)) {
          st.depth++;
          readConfigFile(f, st, baseDir);
          st.depth--;
        }
      }
      continue;
    }
    if (args.length === 0) continue;
    if (key === 'identityfile') { st.identityFiles.push(args[0]!); continue; }
    if (!st.opts.has(key)) {
      st.opts.set(key, args);
      st.where.set(key, { at: where, key: m[1]! });
    }
  }
}

/**
 * Every key that applies to the host must be one the built-in client honours
 * or may ignore; any other is refused with where it is set, rather than
 * silently connecting in another way than the system ssh would. Keys unknown
 * to us too are refused like OpenSSH refuses them, unless IgnoreUnknown names them.
 */
function refuseUnsupported(st: State): void {
  const ignoreUnknown = (st.opts.get('ignoreunknown')?.[0] ?? '').split(',').filter((p) => p !== '');
  for (const [key, args] of st.opts) {
    if (HONOURED.has(key) || IGNORED.has(key)) continue;
    const harmless = HARMLESS_VALUE[key];
    if (harmless !== undefined && (args[0] ?? '').toLowerCase() === harmless) continue;
    if (!UNSUPPORTED.has(key) && harmless === undefined && patternListMatch(ignoreUnknown, key)) continue;
    const w = st.where.get(key)!;
    throw new TransportError('config',
      `${w.at}: ${w.key} (for ${st.alias}) is not supported by the built-in ssh client (TRANSPORT=ssh2): use the system ssh (TRANSPORT=ssh), or remove it for this host`);
  }
}

/** Include's wildcards: in the last path component only (enough for `config.d/*.conf`). */
function globFiles(p: string): string[] {
  const base = basename(p);
  if (!/[*?]/.test(base)) return existsSync(p) ? [p] : [];
  const dir = dirname(p);
  let names: string[];
  try { names = readdirSync(dir); } catch { return []; }
  return names.filter((n) => wildcardMatch(base, n)).sort().map((n) => join(dir, n));
}

function matchCriteria(args: string[], st: State, where: string): boolean {
  if (args.length === 0) throw new TransportError('config', `${where}: Match without criteria`);
  let result = true;
  for (let i = 0; i < args.length; i++) {
    let crit = args[i]!.toLowerCase();
    const neg = crit.startsWith('!');
    if (neg) crit = crit.slice(1);
    let ok: boolean;
    if (crit === 'all') ok = true;
    else if (crit === 'canonical' || crit === 'final') ok = true;
    else {
      const val = args[++i];
      if (val === undefined) throw new TransportError('config', `${where}: Match ${crit} needs an argument`);
      const list = val.split(',');
      const hostNow = st.opts.get('hostname')?.[0] ?? st.alias;
      switch (crit) {
        case 'host': ok = patternListMatch(list, hostNow); break;
        case 'originalhost': ok = patternListMatch(list, st.alias); break;
        case 'user': ok = patternListMatch(list, st.opts.get('user')?.[0] ?? st.localUser); break;
        case 'localuser': ok = patternListMatch(list, st.localUser); break;
        default:
          throw new TransportError('config', `${where}: Match ${crit} is not supported by the built-in ssh client: use the system ssh instead`);
      }
    }
    if (neg) ok = !ok;
    if (!ok) result = false;
  }
  return result;
}
