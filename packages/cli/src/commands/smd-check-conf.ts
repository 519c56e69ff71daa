/**
 * smd-check-conf [ENDPOINT] (upstream 6.8): checks an endpoint's config by
 * listing the mail folders on both sides and checking that the translators
 * map each one there and back to itself.
 */
import { decodeArgument, fromUtf8, toUtf8, type ByteString } from '@smd/maildir';
import { listMailFolders } from '@smd/snapshot';
import { createTranslator, type EndpointConfig, type SmdHome, type Translator } from '@smd/endpoint';
import { startRemote } from '@smd/transport';
import { remoteCommand, transportFor } from '../sync/remote.js';
import { openEndpoint, say } from '../sync/endpoint.js';
import { VERSION } from '../launch.js';

const USAGE = `Usage: smd-check-conf [ENDPOINT]

Checks ~/.smd/config.ENDPOINT (default: "default"): lists the mail folders on
both hosts and checks that TRANSLATOR_LR and TRANSLATOR_RL map every folder
there and back to itself.
`;


export async function main(argv: string[]): Promise<number> {
  let endpoint = 'default';
  for (const a of argv) {
    if (a === '-h' || a === '--help') { process.stdout.write(USAGE); return 0; }
    if (a === '--version') { say(VERSION); return 0; }
    if (a.startsWith('-')) { process.stderr.write(`smd-check-conf: unknown option ${a}\n${USAGE}`); return 1; }
    endpoint = a;
  }
  const env = process.env;
  const opened = openEndpoint({
    program: 'smd-check-conf', endpoint,
    check: (_home, config) => (config.serverName === '' ? 'SERVERNAME is not set' : config.clientName === '' ? 'CLIENTNAME is not set' : null),
  }, env);
  if (typeof opened === 'number') return opened;
  const { home, config, lock } = opened;
  const lr = createTranslator(config.translatorLR.command, { cwd: home.home, env });
  const rl = createTranslator(config.translatorRL.command, { cwd: home.home, env });
  try {
    process.chdir(home.home);
    say('Local folders:');
    const localRoots = config.mailboxLocal.map((m) => decodeArgument(fromUtf8(m)));
    let local: ByteString[] = [];
    try {
      local = [...listMailFolders(localRoots, config.excludeLocal.map((g) => decodeArgument(fromUtf8(g))))];
    } catch {
      say(`Error while listing the content of ${config.mailboxLocalRaw}, skipping`);
    }
    if (!(await roundTrips(local, lr, rl))) return 1;

    say('Remote folders:');
    const remote = await listRemote(config, home, env);
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

/** Prints `   M -> there(M) -> back(there(M))` per folder; false at the first mismatch. */
async function roundTrips(folders: ByteString[], there: Translator, back: Translator): Promise<boolean> {
  for (const m of folders) {
    const t = await there.translate(m);
    const b = await back.translate(t);
    say(`   ${toUtf8(m)} -> ${toUtf8(t)} -> ${toUtf8(b)}`);
    if (b !== m) {
      say(`ERROR: the translators do not map ${toUtf8(m)} back to itself (got ${toUtf8(b)})`);
      return false;
    }
  }
  return true;
}

/** `mddiff -l` on the other host; null if it failed. */
async function listRemote(config: EndpointConfig, home: SmdHome, env: NodeJS.ProcessEnv): Promise<ByteString[] | null> {
  const argv = [...remoteCommand('mddiff', config, env), ...config.excludeRemote.flatMap((g) => ['--exclude', g]), '-l', ...config.mailboxRemote];
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
