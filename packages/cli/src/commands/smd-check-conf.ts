/**
 * smd-check-conf [-v] [-s] [-t] [-d] [-n] [ENDPOINT] (upstream 6.8): checks an
 * endpoint's config by listing the mail folders on both sides and checking
 * that the translators map each one there and back to itself, printing
 * upstream's table (`   M -> there(M) -> back(there(M))`, `Failed round trip check`).
 * It takes smd-pull's flags: -s prints the TAGS of a failure, -t only writes the
 * template, -d and -n change nothing (nor does the check).
 */
import { decodeArgument, fromUtf8, toUtf8, type ByteString } from '@smd/maildir';
import { listMailFolders } from '@smd/snapshot';
import { createTranslator, type EndpointConfig, type SmdHome, type Translator } from '@smd/endpoint';
import { startRemote } from '@smd/transport';
import { remoteCommand, transportFor } from '../sync/remote.js';
import { openEndpoint, say } from '../sync/endpoint.js';
import { argvWord } from '../sync/workarea.js';
import { parseCommandLine } from '../args/index.js';
import { SMD_CHECK_CONF } from '../args/specs.js';

export async function main(argv: string[]): Promise<number> {
  const args = await parseCommandLine(SMD_CHECK_CONF, argv);
  if (typeof args === 'number') return args;
  const endpoint = args.args[0] ?? 'default';
  const verbose = args.flag('verbose') || args.flag('dry-run');
  const env = process.env;
  const opened = openEndpoint({
    program: 'smd-check-conf', endpoint, templateOnly: args.flag('template-only'), showTags: verbose || args.flag('show-tags'),
    check: (_home, config) => (config.serverName === '' ? 'SERVERNAME is not set' : config.clientName === '' ? 'CLIENTNAME is not set' : null),
  }, env);
  if (typeof opened === 'number') return opened;
  const { home, config, lock } = opened;
  const lr = createTranslator(config.translatorLR.command, { cwd: home.home, env });
  const rl = createTranslator(config.translatorRL.command, { cwd: home.home, env });
  try {
    process.chdir(home.home);
    if (verbose) {
      say(`TRANSLATOR_LR: ${config.translatorLR.command}`);
      say(`TRANSLATOR_RL: ${config.translatorRL.command}`);
    }
    say('Local mailboxes translated to remote and back:');
    const localRoots = config.mailboxLocal.map((m) => decodeArgument(m));
    let local: ByteString[] | null = null;
    try {
      local = [...listMailFolders(localRoots, config.excludeLocal.map((g) => decodeArgument(fromUtf8(g))))];
    } catch {
      say(`Error while listing the content of ${config.mailboxLocalRaw}, skipping`);
    }
    if (local !== null && !(await roundTrips(local, lr, rl))) return 1;

    say('');
    say('Remote mailboxes translated to local and back:');
    const remote = await listRemote(config, home, env, verbose);
    if (remote === null) say(`Error while listing the content of ${config.mailboxRemoteRaw}, skipping`);
    else if (!(await roundTrips(remote, rl, lr))) return 1;
    say(`Endpoint ${endpoint} configuration file successfully checked`);
    return 0;
  } catch (e) {
    say(`ERROR: ${(e as Error).message}`);
    return 1;
  } finally {
    await lr.close();
    await rl.close();
    lock.release();
  }
}

/** One folder's trip: its name, the name there, and back (null: the translator failed). */
export interface RoundTrip {
  name: ByteString;
  there: ByteString | null;
  back: ByteString | null;
  /** why a translator failed */
  error?: string;
}

/**
 * Upstream's lines for one folder: `   M -> MM -> MMM`, and when MMM is not M,
 * `Failed round trip check: M -> MMM` with the two `echo | translator` commands
 * that reproduce it. A failed translation shows as ERROR.
 */
export function roundTripLines(r: RoundTrip, thereCommand: string, backCommand: string): { lines: string[]; ok: boolean } {
  const show = (n: ByteString | null): string => (n === null ? 'ERROR' : toUtf8(n));
  const m = show(r.name);
  const mm = show(r.there);
  const mmm = show(r.there === null ? null : r.back);
  const lines = [`   ${m} -> ${mm} -> ${mmm}`];
  const ok = r.back !== null && r.there !== null && r.back === r.name;
  if (!ok) {
    lines.push(`Failed round trip check: ${m} -> ${mmm}`);
    lines.push(`   echo "${m}" | ${thereCommand} -> ${mm}`);
    lines.push(`   echo "${mm}" | ${backCommand} -> ${mmm}`);
    if (r.error !== undefined) lines.push(`ERROR: ${r.error}`);
  }
  return { lines, ok };
}

/** Prints the table; false at the first folder that does not come back to itself. */
async function roundTrips(folders: ByteString[], there: Translator, back: Translator): Promise<boolean> {
  for (const name of folders) {
    const r: RoundTrip = { name, there: null, back: null };
    try {
      r.there = await there.translate(name);
      r.back = await back.translate(r.there);
    } catch (e) {
      r.error = (e as Error).message;
    }
    const { lines, ok } = roundTripLines(r, there.command, back.command);
    for (const l of lines) say(l);
    if (!ok) return false;
  }
  return true;
}

/** `mddiff -l` on the other host; null if it failed. */
async function listRemote(config: EndpointConfig, home: SmdHome, env: NodeJS.ProcessEnv, verbose: boolean): Promise<ByteString[] | null> {
  const argv = [...remoteCommand('mddiff', config, env), ...config.excludeRemote.flatMap((g) => ['--exclude', g]), '-l', ...config.mailboxRemote.map(argvWord)];
  if (verbose) say(`Listing the remote folders on ${config.serverName}: ${argv.join(' ')}`);
  let remote;
  try {
    remote = await startRemote(transportFor(config, home, env), argv);
  } catch (e) {
    say(`ERROR: ${(e as Error).message}`);
    return null;
  }
  remote.stdin.end();
  const out: Buffer[] = [];
  remote.stdout.on('data', (d: Buffer) => out.push(d));
  remote.stderr.resume();
  const ended = new Promise<void>((r) => { remote.stdout.once('end', () => r()); remote.stdout.once('error', () => r()); });
  const [exit] = await Promise.all([remote.exit, ended]);
  if (exit.code !== 0) return null;
  return Buffer.concat(out).toString('latin1').split('\n').filter((l) => l !== '');
}
