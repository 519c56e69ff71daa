/**
 * smd-uniform-names [ENDPOINT] (upstream 6.10): before the first sync of two
 * hosts that hold the same messages under different file names, writes
 * `~/smd-rename.sh`, a script of `mv` lines giving the local files the
 * server's names, so that the first smd-pull transfers nothing.
 *
 * 1. refuse if the endpoint's db-file exists (the hosts were synced already);
 * 2. lock, reset the workarea as smd-push does (`workarea/<remote name>` ->
 *    `$HOME/<local name>`) and hash the local mailbox, under remote names,
 *    into `~/.smd/rename-db` (our mddiff);
 * 3. upload it: `smd-server --dump-stdin ~/.smd/rename-db` on the server;
 * 4. a pull-like session: remote `smd-server --no-move --stop-after-diff
 *    --override-db ~/.smd/rename-db` (every differently named message is a
 *    COPY + DELETE of the local name), local `smd-client --rename-only`
 *    (turns those into `mv` lines);
 * 5. remove `~/.smd/rename-db*`.
 */
import { spawn } from 'node:child_process';
import {
  createReadStream, existsSync, readdirSync, readFileSync, renameSync, unlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import { percentEncodeUnsafe } from '@smd/shell';
import { dbFileName } from '@smd/snapshot';
import { type EndpointConfig, type SmdHome, runBanner } from '@smd/endpoint';
import { classifyRemoteExit, startRemote, type RemoteProcess, type TransportFailure, type TransportSpec } from '@smd/transport';
import { OWN_BIN, remoteCommand, transportFor } from './remote.js';
import { buildReport } from './report.js';
import { eachLine } from './plumbing.js';
import { argvWord, followArgs, linkLocalFolders, localFollowDirs, resetWorkarea } from './workarea.js';
import { openEndpoint, say } from './endpoint.js';
import { failureContext, RunLogs, runPair, startFailure } from './pair.js';
import { parseCommandLine } from '../args/index.js';
import { SMD_UNIFORM_NAMES } from '../args/specs.js';


export interface UniformOptions { endpoint: string; verbose: boolean; showTags: boolean }

/** `[-v] [-s] [ENDPOINT]`; a usage error is exit 1 (like smd-pull). */
export async function parseUniformArgs(argv: string[]): Promise<UniformOptions | { exit: number }> {
  const a = await parseCommandLine(SMD_UNIFORM_NAMES, argv);
  if (typeof a === 'number') return { exit: a };
  return { endpoint: a.args[0] ?? 'default', verbose: a.flag('verbose'), showTags: a.flag('verbose') || a.flag('show-tags') };
}

/** smd-uniform-names: the whole run. Resolves to the exit code. */
export async function runUniformNames(argv: string[]): Promise<number> {
  const parsed = await parseUniformArgs(argv);
  if ('exit' in parsed) return parsed.exit;
  const o = parsed;
  const opened = openEndpoint({
    program: 'smd-uniform-names', endpoint: o.endpoint, showTags: o.showTags,
    check: (home, config) => {
      const db = dbFileName(home.home, config.clientName, config.mailboxRemote.map(argvWord));
      return existsSync(db)
        ? `${db} exists: endpoint "${o.endpoint}" has been synchronized already, and smd-uniform-names is only meant for the very first synchronization (renaming files now would confuse the next smd-pull/smd-push).`
        : null;
    },
  });
  if (typeof opened === 'number') return opened;
  const { home, config, lock } = opened;
  const env = process.env;
  try {
    return await uniformLocked(o, home, config, env);
  } finally {
    removeRenameDb(home);
    lock.release();
  }
}

async function uniformLocked(o: UniformOptions, home: SmdHome, config: EndpointConfig, env: NodeJS.ProcessEnv): Promise<number> {
  const started = Date.now();
  const ep = o.endpoint;
  const cruft = resetWorkarea(home);
  if (cruft !== null) { say(`ERROR: ${cruft}`); return 1; }
  process.chdir(home.home);
  if (config.localhostWithoutLocalSync) {
    say('WARNING: SERVERNAME is localhost but SMDCLIENTOPTS has no -l: using ssh anyway');
  }
  removeRenameDb(home);

  const logs = new RunLogs(home.clientLog(ep), home.serverLog(ep), runBanner('smd-uniform-names', ep), o.verbose);
  let failed = false;
  let transport: TransportFailure | null = null;
  let via = 'ssh';
  try {
    const verbose = o.verbose || config.debug;
    const v = verbose ? ['-v'] : [];
    // the programs %-decode their globs: encoded, a glob needs no shell quoting (see remoteWords)
    const excludeArgs = (globs: string[]): string[] => globs.flatMap((g) => ['--exclude', percentEncodeUnsafe(g)]);
    const mailboxes = config.mailboxRemote.map(argvWord);
    const spec = transportFor(config, home, env);
    via = spec.kind;
    const remoteServer = remoteCommand('smd-server', config, env);
    const remoteDb = '~/.smd/rename-db';

    // 1. the local mailbox, under remote names, hashed into ~/.smd/rename-db
    say(`Hashing the local mailbox (${config.mailboxLocalRaw})...`);
    const built = await linkLocalFolders(home, config);
    if (built !== null) { logs.localLine(`ERROR: ${built}`); failed = true; return finish(); }
    const hashed = await hashLocal(home, [...excludeArgs(config.excludeLocal), ...followArgs(localFollowDirs(home, config, true)), ...mailboxes], logs);
    if (hashed !== null) { logs.localLine(`ERROR: ${hashed}`); failed = true; return finish(); }

    // 2. uploaded to the server
    say(`Uploading the list of local messages to ${config.serverName}...`);
    const uploaded = await upload(spec, [...remoteServer, '--dump-stdin', remoteDb, config.clientName, ...mailboxes], home.renameDb, logs);
    if (uploaded !== true) { failed = true; transport = uploaded === false ? null : uploaded; return finish(); }

    // 3. the server diffs its mailbox against it, the client turns renames into mv lines
    say(`Comparing with the messages on ${config.serverName}...`);
    const serverArgv = [...remoteServer, ...excludeArgs(config.excludeRemote), ...followArgs(config.followRemote), ...v, '--no-move', '--stop-after-diff',
      '--override-db', remoteDb, config.clientName, ...mailboxes];
    const clientArgv = [join(OWN_BIN, 'smd-client'), '--listen-first', ...v, ...followArgs(localFollowDirs(home, config, false)), ...config.smdClientOpts, '--rename-only',
      '--override-db', home.renameDb, '-t', config.translatorRL.command, config.clientName, ...mailboxes];
    const codes = await runPair({
      localArgv: clientArgv, cwd: home.workarea, env, spec, remoteArgv: serverArgv, logs, clientIsLocal: true,
      tee: config.debug ? { sent: home.c2sLog(ep), received: home.s2cLog(ep) } : undefined,
    });
    failed = codes.local !== 0 || codes.remote !== 0;
    transport = codes.transport;
    return finish();
  } finally {
    logs.close();
  }

  function finish(): number {
    const anyTags = [...logs.local, ...logs.remote].some((l) => l.startsWith('TAGS:'));
    const report = buildReport({
      direction: 'pull', endpoint: ep, serverName: config.serverName, failed, verbose: o.verbose,
      showTags: o.showTags && (failed || anyTags), remoteLog: logs.remote, localLog: logs.local, transport, via,
    });
    for (const l of report.lines) say(l);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (failed) {
      say(`smd-uniform-names ${ep}: FAILED after ${seconds} s (details above and in ~/.smd/log/); nothing was renamed`);
      return 1;
    }
    const script = join(home.home, 'smd-rename.sh');
    say(`smd-uniform-names ${ep}: done in ${seconds} s: ${renameCount(script)} rename(s) written to ${script}`);
    say(`Inspect ${script}, run it (sh ${script}), then run smd-pull${ep === 'default' ? '' : ` ${ep}`}.`);
    return 0;
  }
}

/** The number of mv/cp lines of the script (for the summary). */
function renameCount(script: string): string {
  try {
    return String(readFileSync(script, 'latin1').split('\n').filter((l) => l.startsWith('mv ') || l.startsWith('cp ')).length);
  } catch {
    return '?';
  }
}

/** Removes ~/.smd/rename-db and every rename-db.* file next to it. */
function removeRenameDb(home: SmdHome): void {
  let names: string[];
  try { names = readdirSync(home.dir); } catch { return; }
  for (const n of names) {
    if (n !== 'rename-db' && !n.startsWith('rename-db.')) continue;
    try { unlinkSync(join(home.dir, n)); } catch { /* gone already */ }
  }
}

/**
 * Our mddiff over the workarea (remote names) with `--db-file ~/.smd/rename-db`;
 * its `.new` becomes the rename-db. Returns an error message, or null.
 */
function hashLocal(home: SmdHome, args: string[], logs: RunLogs): Promise<string | null> {
  return new Promise((resolve) => {
    const argv = [join(OWN_BIN, 'mddiff'), '--db-file', home.renameDb, ...args];
    const child = spawn(process.execPath, argv, { cwd: home.workarea, stdio: ['ignore', 'pipe', 'pipe'] });
    let error: string | null = null;
    const out = eachLine(child.stdout, (l) => { if (error === null && l.startsWith('ERROR')) error = l.slice(6); });
    const err = eachLine(child.stderr, (l) => logs.localLine(`mddiff: ${l}`));
    child.once('error', (e) => resolve(`cannot run mddiff: ${e.message}`));
    child.once('exit', (code, signal) => {
      void Promise.all([out, err]).then(() => {
        if (code !== 0) { resolve(`hashing the local mailbox failed (mddiff exit ${code ?? signal})${error !== null ? `: ${error}` : ''}`); return; }
        try {
          renameSync(`${home.renameDb}.new`, home.renameDb);
        } catch (e) {
          resolve(`mddiff wrote no ${home.renameDb}.new: ${(e as Error).message}`);
          return;
        }
        resolve(null);
      });
    });
  });
}

/**
 * `cat rename-db | smd-server --dump-stdin ~/.smd/rename-db ...` on the server.
 * Resolves to true, or to false / the transport's failure.
 */
async function upload(spec: TransportSpec, argv: string[], file: string, logs: RunLogs): Promise<true | false | TransportFailure> {
  const ctx = failureContext(spec, argv);
  let remote: RemoteProcess;
  try {
    remote = await startRemote(spec, argv);
  } catch (e) {
    logs.remoteLine(`ssh: ${(e as Error).message}`);
    return startFailure(e, ctx);
  }
  const errDone = eachLine(remote.stderr, (l) => logs.remoteLine(l));
  remote.stdout.resume();
  remote.stdin.on('error', () => { /* the exit code tells */ });
  const input = createReadStream(file);
  input.on('error', (e) => { logs.localLine(`ERROR: cannot read ${file}: ${e.message}`); remote.kill(); });
  input.pipe(remote.stdin);
  const exit = await remote.exit;
  await errDone;
  if (exit.code !== 0) {
    const failure = classifyRemoteExit(exit, logs.remote, { ...ctx, started: false });
    if (failure === null) logs.remoteLine(`ERROR: smd-server --dump-stdin failed (exit ${exit.code ?? exit.signal})`);
    return failure ?? false;
  }
  return true;
}
