import { readFileSync } from 'node:fs';
import { findOnPath as findProgram, isExecutableFile, splitCommandWords } from '@smd/transport';
import { splitFields } from '@smd/shell';
import { join, isAbsolute } from 'node:path';
import { type ByteString, fromUtf8 } from '@smd/maildir';
import { ConfigError, parseShellAssignments, shellVariables } from './shell.js';
import type { SmdHome } from './home.js';

export { ConfigError };

/**
 * Every variable upstream's config files may set (REMOTESMDSERVER and REMOTESMDCLIENT are
 * the variables upstream's scripts set before they source the config), plus ours (SSH, TRANSPORT, IDLE_TIMEOUT, FOLLOW_*, MASS_DELETE_THRESHOLD).
 */
export const CONFIG_VARIABLES = [
  'SERVERNAME', 'CLIENTNAME', 'MAILBOX', 'MAILBOX_LOCAL', 'MAILBOX_REMOTE',
  'TRANSLATOR_RL', 'TRANSLATOR_LR', 'EXCLUDE', 'EXCLUDE_LOCAL', 'EXCLUDE_REMOTE',
  'SMDCLIENTOPTS', 'SMDSERVEROPTS', 'DEBUG', 'SSH', 'TRANSPORT', 'IDLE_TIMEOUT',
  'FOLLOW_LOCAL', 'FOLLOW_REMOTE', 'REMOTESMDSERVER', 'REMOTESMDCLIENT', 'MASS_DELETE_THRESHOLD',
] as const;
export type ConfigVariable = (typeof CONFIG_VARIABLES)[number];

export type TransportKind = 'ssh' | 'ssh2';

/** A translator command after resolution (upstream's `resolve_translator`). */
export interface ResolvedTranslator {
  /** as written in the config ('' when unset) */
  raw: string;
  /** the shell command to run (`cat` when unset) */
  command: string;
  /** `cat`: identity, no process needed */
  identity: boolean;
}

/** A parsed and validated `~/.smd/config.<endpoint>`. */
export interface EndpointConfig {
  endpoint: string;
  file: string;
  /** value of every variable assigned in the file (after expansion, before post-processing) */
  raw: Record<string, string>;
  serverName: string;
  clientName: string;
  /** MAILBOX after stripping one trailing `/` ('' in translator mode) */
  mailbox: string;
  /** MAILBOX_LOCAL (or MAILBOX) with one trailing `/` stripped, as a single string */
  mailboxLocalRaw: string;
  mailboxRemoteRaw: string;
  /** roots split on whitespace, still %-encoded (decode with decodeArgument) */
  mailboxLocal: ByteString[];
  mailboxRemote: ByteString[];
  /** true when MAILBOX is empty and the four *_LOCAL/_REMOTE/TRANSLATOR_* variables are used */
  translatorMode: boolean;
  translatorLR: ResolvedTranslator;
  translatorRL: ResolvedTranslator;
  /** globs, split on whitespace, still %-encoded */
  exclude: ByteString[];
  excludeLocal: ByteString[];
  excludeRemote: ByteString[];
  smdClientOpts: string[];
  smdServerOpts: string[];
  debug: boolean;
  /** IDLE_TIMEOUT: seconds the local program waits for a silent peer (null: the programs' default) */
  idleTimeout: number | null;
  /**
   * FOLLOW_LOCAL / FOLLOW_REMOTE: directories (relative to $HOME or absolute, still %-encoded)
   * a folder symlink inside the mailbox may lead into, here / on the server
   */
  followLocal: ByteString[];
  followRemote: ByteString[];
  /** ssh command words (default `['ssh']`) */
  ssh: string[];
  transport: TransportKind;
  /** REMOTESMDSERVER / REMOTESMDCLIENT as command words: how the other host runs smd-server / smd-client (null: unset) */
  remoteSmdServer: string[] | null;
  remoteSmdClient: string[] | null;
  /** SERVERNAME=localhost and `-l` in SMDCLIENTOPTS: no ssh at all */
  localSync: boolean;
  /** SERVERNAME=localhost without `-l`: upstream warns and uses real ssh */
  localhostWithoutLocalSync: boolean;
  /** MASS_DELETE_THRESHOLD: a percentage 0-100 or `off` (null: unset, the client's default) */
  massDeleteThreshold: string | null;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** resolve TRANSLATOR_* against $HOME and PATH (default true; smd-translate skips it) */
  resolveTranslators?: boolean;
}

/** Splits a list variable the way upstream's `$VAR` did (white space; quotes are not interpreted). */
export function splitList(value: string): string[] {
  return splitFields(value);
}

/** Strips exactly one trailing `/` from the whole value (as upstream's sed did). */
export function stripTrailingSlash(value: string): string {
  return value.endsWith('/') ? value.slice(0, -1) : value;
}

/** Looks a command name up on PATH; returns its path or null. */
export function findOnPath(cmd: string, env: NodeJS.ProcessEnv = process.env): string | null {
  return findProgram(cmd, env.PATH);
}

/**
 * upstream's resolve_translator: empty → `cat`; absolute path → as is; else
 * `$HOME/<command>` when its first word is executable there; else the command when its
 * first word is on PATH; else an error.
 */
export function resolveTranslator(raw: string, home: string, env: NodeJS.ProcessEnv, file: string, variable: string): ResolvedTranslator {
  const t = raw.trim();
  if (t === '') return { raw, command: 'cat', identity: true };
  if (t === 'cat') return { raw, command: 'cat', identity: true };
  if (isAbsolute(t)) return { raw, command: t, identity: false };
  const first = t.split(/\s+/)[0];
  if (home !== '' && isExecutableFile(join(home, first))) return { raw, command: join(home, t), identity: false };
  if (!first.includes('/') && findOnPath(first, env) !== null) return { raw, command: t, identity: false };
  throw new ConfigError(file, null, `${variable}: translator "${first}" not found (neither an absolute path, nor executable in $HOME, nor on PATH)`);
}

/** Parses config text (see shell.ts for the accepted syntax) and applies upstream's post-processing. */
export function parseEndpointConfig(text: string, file: string, endpoint: string, opts: LoadOptions = {}): EndpointConfig {
  const env = opts.env ?? process.env;
  const assignments = parseShellAssignments(text, file, env);
  const vars = shellVariables(assignments);
  const raw: Record<string, string> = Object.fromEntries(vars);
  const get = (k: ConfigVariable): string => vars.get(k) ?? '';
  const lineOf = (k: string): number | null => {
    let l: number | null = null;
    for (const a of assignments) if (a.name === k) l = a.line;
    return l;
  };
  const bad = (k: string | null, why: string): never => { throw new ConfigError(file, k === null ? null : lineOf(k), why); };

  const mailbox = stripTrailingSlash(get('MAILBOX'));
  const four = ['MAILBOX_LOCAL', 'MAILBOX_REMOTE', 'TRANSLATOR_LR', 'TRANSLATOR_RL'] as const;
  const setFour = four.filter((k) => get(k).trim() !== '');
  let translatorMode = false;
  if (splitList(mailbox).length > 0) {
    if (setFour.length > 0) bad(setFour[0], `MAILBOX and ${setFour.join(', ')} are both set: either set MAILBOX only, or leave MAILBOX empty and set MAILBOX_LOCAL, MAILBOX_REMOTE, TRANSLATOR_LR and TRANSLATOR_RL`);
  } else {
    if (setFour.length === 0) bad(null, 'MAILBOX is empty: set MAILBOX, or MAILBOX_LOCAL, MAILBOX_REMOTE, TRANSLATOR_LR and TRANSLATOR_RL');
    if (setFour.length < 4) bad(null, `MAILBOX is empty and ${four.filter((k) => !setFour.includes(k)).join(', ')} not set: MAILBOX_LOCAL, MAILBOX_REMOTE, TRANSLATOR_LR and TRANSLATOR_RL go together`);
    translatorMode = true;
  }
  const mailboxLocalRaw = translatorMode ? stripTrailingSlash(get('MAILBOX_LOCAL')) : mailbox;
  const mailboxRemoteRaw = translatorMode ? stripTrailingSlash(get('MAILBOX_REMOTE')) : mailbox;
  for (const [k, v] of [['MAILBOX_LOCAL', mailboxLocalRaw], ['MAILBOX_REMOTE', mailboxRemoteRaw]] as const) {
    if (v.includes('..')) bad(translatorMode ? k : 'MAILBOX', "Mailbox names can't contain ..");
  }

  const home = env.HOME ?? '';
  const resolve = opts.resolveTranslators ?? true;
  const tr = (k: 'TRANSLATOR_LR' | 'TRANSLATOR_RL'): ResolvedTranslator => {
    const r = get(k);
    if (!resolve) return { raw: r, command: r.trim() === '' ? 'cat' : r.trim(), identity: r.trim() === '' || r.trim() === 'cat' };
    try {
      return resolveTranslator(r, home, env, file, k);
    } catch (e) {
      if (e instanceof ConfigError) bad(k, e.reason);
      throw e;
    }
  };

  const exclude = splitList(get('EXCLUDE'));
  const excludeLocal = vars.has('EXCLUDE_LOCAL') ? splitList(get('EXCLUDE_LOCAL')) : exclude;
  const excludeRemote = vars.has('EXCLUDE_REMOTE') ? splitList(get('EXCLUDE_REMOTE')) : exclude;

  const idleRaw = get('IDLE_TIMEOUT').trim();
  if (idleRaw !== '' && (!/^[0-9]+$/.test(idleRaw) || Number(idleRaw) === 0)) bad('IDLE_TIMEOUT', `IDLE_TIMEOUT must be a positive number of seconds, not "${idleRaw}"`);

  const transportRaw = get('TRANSPORT').trim();
  if (transportRaw !== '' && transportRaw !== 'ssh' && transportRaw !== 'ssh2') bad('TRANSPORT', `TRANSPORT must be "ssh" or "ssh2", not "${transportRaw}"`);
  const massDelete = get('MASS_DELETE_THRESHOLD').trim();
  if (massDelete !== '' && massDelete !== 'off' && !(/^\d{1,3}$/.test(massDelete) && Number(massDelete) <= 100)) {
    bad('MASS_DELETE_THRESHOLD', `MASS_DELETE_THRESHOLD must be a percentage from 0 to 100, or "off", not "${massDelete}"`);
  }
  // The words the ssh transport will run (quotes honoured, see splitCommandWords).
  let ssh: string[] = [];
  try { ssh = splitCommandWords(get('SSH')); } catch (e) { bad('SSH', `SSH: ${(e as Error).message}`); }
  const smdClientOpts = splitList(get('SMDCLIENTOPTS'));
  const serverName = get('SERVERNAME').trim();
  const words = (k: ConfigVariable): string[] | null => (splitList(get(k)).length > 0 ? splitList(get(k)) : null);
  const localhost = serverName === 'localhost';
  const hasL = smdClientOpts.includes('-l') || smdClientOpts.includes('--local-sync');

  return {
    endpoint,
    file,
    raw,
    serverName,
    clientName: get('CLIENTNAME').trim(),
    mailbox,
    mailboxLocalRaw,
    mailboxRemoteRaw,
    mailboxLocal: splitList(mailboxLocalRaw).map(fromUtf8),
    mailboxRemote: splitList(mailboxRemoteRaw).map(fromUtf8),
    translatorMode,
    translatorLR: tr('TRANSLATOR_LR'),
    translatorRL: tr('TRANSLATOR_RL'),
    exclude: exclude.map(fromUtf8),
    excludeLocal: excludeLocal.map(fromUtf8),
    excludeRemote: excludeRemote.map(fromUtf8),
    smdClientOpts,
    smdServerOpts: splitList(get('SMDSERVEROPTS')),
    debug: get('DEBUG').trim() === 'true',
    idleTimeout: idleRaw === '' ? null : Number(idleRaw),
    followLocal: splitList(get('FOLLOW_LOCAL')).map(fromUtf8),
    followRemote: splitList(get('FOLLOW_REMOTE')).map(fromUtf8),
    ssh: ssh.length > 0 ? ssh : ['ssh'],
    transport: transportRaw === 'ssh2' ? 'ssh2' : 'ssh',
    remoteSmdServer: words('REMOTESMDSERVER'),
    remoteSmdClient: words('REMOTESMDCLIENT'),
    localSync: localhost && hasL,
    localhostWithoutLocalSync: localhost && !hasL,
    massDeleteThreshold: massDelete === '' ? null : massDelete,
  };
}

/** Raised when `~/.smd/config.<endpoint>` does not exist (callers write the template). */
export class ConfigMissingError extends Error {
  override name = 'ConfigMissingError';
  constructor(readonly file: string, readonly endpoint: string) {
    super(`No config file found for endpoint "${endpoint}": ${file}`);
  }
}

/** Reads the variables of a config file without post-processing (smd-translate uses this). */
export function readConfigVariables(file: string, env: NodeJS.ProcessEnv = process.env): Map<string, string> {
  return shellVariables(parseShellAssignments(readConfigText(file, file), file, env));
}

function readConfigText(file: string, endpoint: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ConfigMissingError(file, endpoint);
    throw new ConfigError(file, null, `cannot read: ${(e as Error).message}`);
  }
}

/** Loads `~/.smd/config.<endpoint>`. Throws ConfigMissingError or ConfigError. */
export function loadEndpointConfig(home: SmdHome, endpoint: string, opts: LoadOptions = {}): EndpointConfig {
  const file = home.config(endpoint);
  return parseEndpointConfig(readConfigText(file, endpoint), file, endpoint, { env: { ...(opts.env ?? process.env), HOME: (opts.env ?? process.env).HOME ?? home.home }, resolveTranslators: opts.resolveTranslators });
}

/** Endpoint names become file names: refuse what could escape `~/.smd`. */
export function validateEndpointName(name: string): string | null {
  if (name === '' ) return 'the endpoint name is empty';
  if (name.includes('/') || name === '.' || name === '..' || name.includes('\0')) return `invalid endpoint name "${name}"`;
  return null;
}
