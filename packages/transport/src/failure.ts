import type { RemoteExit } from './types.js';

/**
 * Why the remote program could not be reached or kept, as far as ssh's own
 * messages (or the ssh2 client's errors) tell.
 */
export type TransportFailureKind =
  /** the server's host key is not in known_hosts */
  | 'host-key-unknown'
  /** known_hosts records another key for the host: maybe a man-in-the-middle */
  | 'host-key-changed'
  /** the key is marked @revoked */
  | 'host-key-revoked'
  /** the server accepted none of our keys */
  | 'auth-refused'
  /** logged in, but the remote program is not there (exit 127/126 of the remote shell) */
  | 'remote-program-missing'
  /** the key's `command=` (smd-restricted-shell) refused the remote command */
  | 'remote-command-refused'
  | 'connection-refused'
  | 'timeout'
  /** the connection was closed or reset, at start or during the run */
  | 'connection-reset'
  /** the host name does not resolve */
  | 'dns'
  /** no route, network down */
  | 'unreachable'
  /** bad SSH/SMD_SSH value, unusable ~/.ssh/config, an option the ssh2 client does not support */
  | 'config'
  /** ssh (or the local program) could not be started */
  | 'spawn'
  /** ssh failed and did not say anything we recognise */
  | 'unknown';

/** Only these go away by themselves: smd-loop retries them. Everything else needs the user. */
const TRANSIENT: ReadonlySet<TransportFailureKind> = new Set(['connection-refused', 'timeout', 'connection-reset', 'dns', 'unreachable']);

export function isTransient(kind: TransportFailureKind): boolean {
  return TRANSIENT.has(kind);
}

export interface TransportFailure {
  readonly kind: TransportFailureKind;
  /** network trouble that a later run may not meet (smd-loop retries it) */
  readonly transient: boolean;
  /** what happened, in words for the user */
  readonly summary: string;
  /** what the user should do; null for transient failures (retrying is the action) */
  readonly action: string | null;
  /** the transport's own last words (ssh's last stderr lines, or the ssh2 client's error) */
  readonly details: readonly string[];
}

/** Who was being reached: the ssh destination and the remote program. */
export interface FailureContext {
  readonly host: string;
  readonly program: string;
}

/** Lines of smd's own programs in the remote stderr; everything else there is ssh's (or the remote shell's). */
const OWN_LINE = /^(ERROR|TAGS|INFO|PROGRESS|TRACE|WARNING|DEBUG)\b/;

/** OpenSSH's messages (and the ssh2 client's), in the order they decide: host key first, then login, then network. */
const PATTERNS: readonly [TransportFailureKind, RegExp][] = [
  ['host-key-revoked', /REVOKED HOST KEY|is marked as revoked|host key for .* is REVOKED/i],
  ['host-key-changed', /REMOTE HOST IDENTIFICATION HAS CHANGED|POSSIBLE DNS SPOOFING|host key for .* has changed/i],
  ['host-key-unknown', /Host key verification failed|No \S+ host key is known for|authenticity of host .* can't be established/i],
  ['auth-refused', /Permission denied \(|Too many authentication failures|Authentication failed|no more authentication methods/i],
  ['connection-refused', /Connection refused/i],
  ['dns', /Could not resolve hostname|Name or service not known|Temporary failure in name resolution|nodename nor servname|ENOTFOUND|EAI_AGAIN/],
  ['timeout', /timed out|Timeout, server .* not responding|ETIMEDOUT/i],
  ['unreachable', /Network is unreachable|No route to host|EHOSTUNREACH|ENETUNREACH/i],
  ['connection-reset', /Connection reset|closed by remote host|Connection closed by|Broken pipe|connection lost|ECONNRESET|EPIPE/i],
];
const MISSING = /not found|No such file or directory|Permission denied|cannot execute|Is a directory/i;
const RESTRICTED = /^smd-restricted-shell: refused: (.*)$/;

/** The kind ssh's messages point at, or null. */
export function sshFailureKind(lines: readonly string[]): TransportFailureKind | null {
  for (const [kind, re] of PATTERNS) if (lines.some((l) => re.test(l))) return kind;
  return null;
}

/**
 * Whether the remote program's end was a transport failure, and which. `lines`:
 * the remote stderr (ssh's messages mixed with the program's; ours are told
 * apart by their prefixes). `started`: bytes came from the remote program, so
 * the connection worked until then. Null when the program itself ended (its
 * own errors and TAGS tell the rest).
 */
export function classifyRemoteExit(
  exit: RemoteExit, lines: readonly string[], ctx: FailureContext & { started: boolean },
): TransportFailure | null {
  const said = lines.filter((l) => l.trim() !== '' && !OWN_LINE.test(l));
  const last = said.slice(-5);
  if (!exit.connectionFailed) {
    if (ctx.started) return null;
    // the remote shell's "not found" (127) or "cannot execute" (126): smd is not installed there
    if ((exit.code === 127 || exit.code === 126) && said.some((l) => MISSING.test(l))) {
      return describeFailure('remote-program-missing', ctx, last);
    }
    const refused = said.map((l) => RESTRICTED.exec(l)).find((m) => m !== null);
    if (exit.code === 1 && refused != null) return describeFailure('remote-command-refused', ctx, [refused[0]]);
    return null;
  }
  return describeFailure(sshFailureKind(said) ?? (ctx.started ? 'connection-reset' : 'unknown'), ctx, last);
}

/** The failure of a given kind, in words. */
export function describeFailure(kind: TransportFailureKind, ctx: FailureContext, details: readonly string[]): TransportFailure {
  const h = ctx.host;
  const [summary, action] = ((): [string, string | null] => {
    switch (kind) {
      case 'host-key-unknown':
        return [`the host key of ${h} is not known (it is not in known_hosts)`,
          `check its fingerprint with the server's administrator, then record it: run "ssh ${h}" once and answer yes`];
      case 'host-key-changed':
        return [`the host key of ${h} has CHANGED: someone may be intercepting the connection (man-in-the-middle), or the server's key was replaced`,
          'ask the server\'s administrator whether its key changed; only then remove the old key from known_hosts (ssh-keygen -R) and record the new one after checking its fingerprint'];
      case 'host-key-revoked':
        return [`the host key of ${h} is marked as revoked in known_hosts`, 'do not connect; tell the server\'s administrator'];
      case 'auth-refused':
        return [`${h} refused the login: it accepts none of the keys offered`,
          `check that your public key is in ~/.ssh/authorized_keys on the server and that ssh offers it (ssh-agent, or IdentityFile in ~/.ssh/config); "ssh -v ${h} true" shows what is tried`];
      case 'remote-program-missing':
        return [`${ctx.program} was not found on ${h}`, `install smd on ${h} (${ctx.program} must be there)`];
      case 'remote-command-refused':
        return [`smd-restricted-shell on ${h} refused to run ${ctx.program} with these arguments`,
          'change the configuration here (the message says what was refused), or what that key may run on the server'];
      case 'connection-refused':
        return [`${h} refused the connection (no sshd listening, or the wrong port)`, null];
      case 'timeout':
        return [`the connection to ${h} timed out`, null];
      case 'connection-reset':
        return [`the connection to ${h} was closed or reset`, null];
      case 'dns':
        return [`the host name of ${h} could not be resolved`, null];
      case 'unreachable':
        return [`${h} cannot be reached (no network?)`, null];
      case 'config':
        return ['the ssh command or its configuration cannot be used', 'fix what the message says'];
      case 'spawn':
        return ['ssh could not be started', 'install OpenSSH\'s client, or fix the SSH / SMD_SSH command'];
      case 'unknown':
        return [`ssh failed before ${ctx.program} could start`, `run "ssh -v ${h} true" to see why`];
      default: {
        const never: never = kind;
        return [String(never), null];
      }
    }
  })();
  return { kind, transient: isTransient(kind), summary, action, details };
}
