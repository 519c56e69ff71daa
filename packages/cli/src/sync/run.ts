import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  SmdHome, loadEndpointConfig, ConfigMissingError, ConfigError, configTemplate, writeTemplate, validateEndpointName,
  Lock, LockBusyError, SYNC_LOCK_PROGRAMS, runHooks, describeHookFailure,
  type EndpointConfig,
} from '@smd/endpoint';
import { startRemote, type RemoteProcess } from '@smd/transport';
import { OWN_BIN, remoteBinDir, transportFor } from './remote.js';
import { parseSyncArgs, type SyncOptions } from './options.js';
import { buildReport, programs, summaryLine } from './report.js';
import { connect, eachLine } from './plumbing.js';
import { killLater, linkLocalFolders, resetWorkarea } from './workarea.js';
import { ProgressView } from './progress.js';

export type Direction = 'pull' | 'push';


const say = (line: string): void => { process.stdout.write(`${line}\n`); };

/** smd-pull / smd-push: the whole run. Resolves to the exit code. */
export async function runSync(direction: Direction, argv: string[]): Promise<number> {
  const parsed = await parseSyncArgs(direction, argv);
  if (parsed.kind === 'exit') return parsed.code;
  const o = parsed.options;
  const env = process.env;
  const badName = validateEndpointName(o.endpoint);
  if (badName !== null) { say(`ERROR: ${badName}`); return 1; }
  let home: SmdHome;
  try {
    home = SmdHome.fromEnv(env);
    home.ensure();
  } catch (e) {
    say(`ERROR: ${(e as Error).message}`);
    return 1;
  }
  let config: EndpointConfig;
  try {
    config = loadEndpointConfig(home, o.endpoint, { env });
  } catch (e) {
    if (e instanceof ConfigMissingError) {
      writeTemplate(home.config(o.endpoint), configTemplate(o.endpoint));
      say(`No config file found for endpoint "${o.endpoint}": a template was written to ${home.config(o.endpoint)}.`);
      say(`Edit it, then run smd-${direction}${o.endpoint === 'default' ? '' : ` ${o.endpoint}`} again.`);
      return o.templateOnly ? 0 : 1;
    }
    if (e instanceof ConfigError) { say(`ERROR: ${e.message}`); return 1; }
    throw e;
  }
  if (o.templateOnly) return 0;
  let lock: Lock;
  try {
    lock = Lock.acquire(home.lock, { programs: SYNC_LOCK_PROGRAMS });
  } catch (e) {
    if (e instanceof LockBusyError) {
      say(`ERROR: Already running (${e.message})`);
      say(`ERROR: If this is not the case, remove ${home.lock} by hand`);
      if (o.showTags) say(`${o.endpoint}: smd-${direction}@localhost: TAGS: error::context(locking) probable-cause(another-instance-running) human-intervention(necessary) suggested-actions(run(rm ${home.lock}))`);
      return 1;
    }
    throw e;
  }
  try {
    return await syncLocked(direction, o, home, config, env);
  } finally {
    lock.release();
  }
}

async function syncLocked(direction: Direction, o: SyncOptions, home: SmdHome, config: EndpointConfig, env: NodeJS.ProcessEnv): Promise<number> {
  const started = Date.now();
  const ep = o.endpoint;
  const clientLogPath = home.clientLog(ep);
  const serverLogPath = home.serverLog(ep);
  truncate(clientLogPath);
  truncate(serverLogPath);

  const cruft = resetWorkarea(home);
  if (cruft !== null) { say(`ERROR: ${cruft}`); return 1; }
  process.chdir(home.home);

  if (config.localhostWithoutLocalSync) {
    say('WARNING: SERVERNAME is localhost but SMDCLIENTOPTS has no -l: using ssh anyway');
  }

  const pre = await runHooks(home, 'pre', direction, ep, 0, clientLogPath, env);
  if (pre.failure !== null) {
    say(`ERROR: ${describeHookFailure(pre.failure)} (hooks should not fail); nothing was synchronized`);
    return 1;
  }

  const verboseChildren = o.verbose || config.debug;
  const childFlags = [...(verboseChildren ? ['-v'] : []), ...(o.dryRun ? ['-d'] : [])];
  const mailboxes = config.mailboxRemote;
  const excludeArgs = (globs: string[]): string[] => globs.flatMap((g) => ['--exclude', g]);
  const serverArgs = (excl: string[]): string[] => [
    ...excludeArgs(excl), ...childFlags, ...(o.noDelete ? ['-n'] : []), ...config.smdServerOpts, config.clientName, ...mailboxes,
  ];
  // On a terminal the progress line is drawn from the client's PROGRESS lines, which need -v.
  const clientFlags = !verboseChildren && ProgressView.wanted(o.verbose, o.showTags) ? ['-v', ...childFlags] : childFlags;
  const clientArgs = (translator: string | null): string[] => [
    ...clientFlags, ...config.smdClientOpts, ...(translator !== null ? ['-t', translator] : []), config.clientName, ...mailboxes,
  ];

  let localArgv: string[];
  let remoteArgv: string[];
  const prog = programs(direction);
  if (direction === 'pull') {
    localArgv = [join(OWN_BIN, 'smd-client'), ...clientArgs(config.translatorRL.command)];
    remoteArgv = [join(remoteBinDir(env), 'smd-server'), ...serverArgs(config.excludeRemote)];
  } else {
    const built = await linkLocalFolders(home, config);
    if (built !== null) { say(`ERROR: ${built}`); return 1; }
    localArgv = [join(OWN_BIN, 'smd-server'), ...serverArgs(config.excludeLocal)];
    remoteArgv = [join(remoteBinDir(env), 'smd-client'), ...clientArgs(null)];
  }

  const spec = transportFor(config, home, env);

  const localLog = openSync(clientLogPath, 'a', 0o600);
  const remoteLog = openSync(serverLogPath, 'a', 0o600);
  const localLines: string[] = [];
  const remoteLines: string[] = [];
  const progress = new ProgressView(direction, o.verbose, o.showTags);
  let failed = false;
  try {
    const local = spawn(process.execPath, localArgv, { cwd: home.workarea, stdio: ['pipe', 'pipe', 'pipe'], env });
    const localExit = new Promise<number>((resolve) => {
      local.once('error', (e) => { localLines.push(`ERROR: cannot start ${prog.local}: ${e.message}`); resolve(127); });
      local.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
    let remote: RemoteProcess;
    try {
      remote = await startRemote(spec, remoteArgv);
    } catch (e) {
      local.kill('SIGTERM');
      await localExit;
      const msg = `ssh: ${(e as Error).message}`;
      writeSync(remoteLog, `${msg}\n`);
      remoteLines.push(msg);
      failed = true;
      return await finish();
    }
    const debug = config.debug;
    const c2s = debug ? home.c2sLog(ep) : null;
    const s2c = debug ? home.s2cLog(ep) : null;
    // Traffic logs are named by protocol direction: client-to-server and server-to-client.
    connect(local.stdout, remote.stdin, direction === 'pull' ? c2s : s2c);
    connect(remote.stdout, local.stdin, direction === 'pull' ? s2c : c2s);
    const clientIsLocal = direction === 'pull';
    const localDone = eachLine(local.stderr, (l) => {
      writeSync(localLog, `${l}\n`);
      localLines.push(l);
      if (clientIsLocal) progress.line(l);
    });
    const remoteDone = eachLine(remote.stderr, (l) => {
      writeSync(remoteLog, `${l}\n`);
      remoteLines.push(l);
      if (!clientIsLocal) progress.line(l);
    });
    const [lc, rc] = await Promise.all([
      localExit.then((c) => { killLater(() => remote.kill()); return c; }),
      remote.exit.then((r) => { killLater(() => local.kill('SIGTERM')); return r.code ?? 255; }),
    ]);
    await Promise.all([localDone, remoteDone]);
    failed = lc !== 0 || rc !== 0;
    return await finish();
  } finally {
    progress.clear();
    closeSync(localLog);
    closeSync(remoteLog);
  }

  async function finish(): Promise<number> {
    progress.clear();
    const post = await runHooks(home, 'post', direction, ep, failed ? 1 : 0, clientLogPath, env);
    if (post.failure !== null) {
      say(`ERROR: ${describeHookFailure(post.failure)} (hooks should not fail)`);
      failed = true;
    }
    const report = buildReport({
      direction, endpoint: ep, serverName: config.serverName, failed, verbose: o.verbose, showTags: o.showTags,
      remoteLog: remoteLines, localLog: localLines,
    });
    for (const l of report.lines) say(l);
    say(summaryLine(direction, ep, failed, report.stats, (Date.now() - started) / 1000));
    return failed ? 1 : 0;
  }
}


function truncate(path: string): void {
  closeSync(openSync(path, 'w', 0o600));
}
