import { join } from 'node:path';
import { percentEncodeUnsafe } from '@smd/shell';
import { runHooks, describeHookFailure, runBanner, rotateNow, JournalWriter, type EndpointConfig, type SmdHome } from '@smd/endpoint';
import { parseJournalLine } from '@smd/protocol';
import { OWN_BIN, remoteCommand, transportFor } from './remote.js';
import { parseSyncArgs, type SyncOptions } from './options.js';
import { buildReport, summaryLine, type Outcome } from './report.js';
import { argvWord, followArgs, linkLocalFolders, localFollowDirs, resetWorkarea, translatingLine } from './workarea.js';
import { openEndpoint, say } from './endpoint.js';
import { PairControl, RunLogs, runPair, type InProcessProgram } from './pair.js';
import { ProgressView } from './progress.js';
import { RunCounter, dryRunLines } from './summary.js';

export type Direction = 'pull' | 'push';

/** smd-pull / smd-push: the whole run. Resolves to the exit code. */
export async function runSync(direction: Direction, argv: string[]): Promise<number> {
  const parsed = await parseSyncArgs(direction, argv);
  if (parsed.kind === 'exit') return parsed.code;
  const o = parsed.options;
  const opened = openEndpoint({ program: `smd-${direction}`, endpoint: o.endpoint, templateOnly: o.templateOnly, showTags: o.showTags });
  if (typeof opened === 'number') return opened;
  // Ctrl-C (or a kill): the programs are asked to stop cleanly, the run ends with its summary.
  // A second one stops everything at once.
  const stop = new Interruption();
  try {
    return await syncLocked(direction, o, opened.home, opened.config, process.env, stop);
  } finally {
    stop.close();
    opened.lock.release();
  }
}

/** SIGINT / SIGTERM during a run. */
class Interruption {
  readonly control = new PairControl();
  signal: NodeJS.Signals | null = null;
  private readonly handler = (sig: NodeJS.Signals): void => {
    if (this.signal === null) { this.signal = sig; this.control.interrupt(sig); } else this.control.kill();
  };

  constructor() {
    process.on('SIGINT', this.handler);
    process.on('SIGTERM', this.handler);
  }

  /** The exit code of an interrupted run (the shell's convention: 128 + the signal). */
  get exitCode(): number { return this.signal === 'SIGTERM' ? 143 : 130; }

  close(): void {
    process.off('SIGINT', this.handler);
    process.off('SIGTERM', this.handler);
  }
}

async function syncLocked(direction: Direction, o: SyncOptions, home: SmdHome, config: EndpointConfig, env: NodeJS.ProcessEnv,
  stop: Interruption): Promise<number> {
  const started = Date.now();
  const ep = o.endpoint;
  // Both logs are appended to, a banner per run, and rotated by size (upstream's smd-push appended forever, smd-pull truncated).
  const logs = new RunLogs(home.clientLog(ep), home.serverLog(ep), runBanner(`smd-${direction}`, ep), o.verbose);
  const journal = new JournalWriter(home, ep, direction);
  const counts = new RunCounter();
  const progress = new ProgressView(direction, ep, o.verbose, o.showTags);
  let failed = false;
  try {
    const cruft = resetWorkarea(home);
    if (cruft !== null) { say(`ERROR: ${cruft}`); return 1; }
    process.chdir(home.home);
    if (config.localhostWithoutLocalSync) say('WARNING: SERVERNAME is localhost but SMDCLIENTOPTS has no -l: using ssh anyway');

    const pre = await runHooks(home, 'pre', direction, ep, 0, home.clientLog(ep), env);
    if (pre.failure !== null) {
      say(`ERROR: ${describeHookFailure(pre.failure)} (hooks should not fail); nothing was synchronized`);
      return 1;
    }

    const verboseChildren = o.verbose || config.debug;
    const childFlags = [...(verboseChildren ? ['-v'] : []), ...(o.dryRun ? ['-d'] : [])];
    const mailboxes = config.mailboxRemote.map(argvWord);
    // Where folder symlinks may lead (besides the mailboxes): remote ones as written (relative to the
    // remote $HOME, the remote cwd); local ones made absolute (the local program runs in the workarea).
    // The programs %-decode their globs: encoded, a glob needs no shell quoting on its way (see remoteWords).
    const serverArgs = (excludes: string[], follow: string[]): string[] => [
      ...excludes.flatMap((g) => ['--exclude', percentEncodeUnsafe(g)]), ...followArgs(follow), ...childFlags, ...(o.noDelete ? ['-n'] : []), ...config.smdServerOpts,
      config.clientName, ...mailboxes,
    ];
    // On a terminal the progress line is drawn from the client's PROGRESS lines, which need -v.
    const clientFlags = !verboseChildren && ProgressView.wanted(o.verbose, o.showTags) ? ['-v', ...childFlags] : childFlags;
    const brake = [
      ...(o.allowMassDelete ? ['--allow-mass-delete'] : []),
      ...(config.massDeleteThreshold !== null ? ['--mass-delete-threshold', config.massDeleteThreshold] : []),
    ];
    const clientArgs = (translator: string | null, follow: string[]): string[] => [
      ...clientFlags, ...brake, ...followArgs(follow), ...config.smdClientOpts, ...(translator !== null ? ['-t', translator] : []), config.clientName, ...mailboxes,
    ];

    let localArgv: string[];
    let remoteArgv: string[];
    let inProcess: InProcessProgram | null = null;
    if (direction === 'pull') {
      // smd-client runs in this process (loaded only for a pull): one Node start-up less, and no relay of the server's bytes.
      inProcess = (await import('../commands/smd-client.js')).runClientCommand;
      // The local program listens first: the remote one may be upstream's, which speaks first and only its own protocol.
      localArgv = [join(OWN_BIN, 'smd-client'), '--listen-first', ...clientArgs(config.translatorRL.command, localFollowDirs(home, config, false))];
      remoteArgv = [...remoteCommand('smd-server', config, env), ...serverArgs(config.excludeRemote, config.followRemote)];
    } else {
      // The local mailbox is scanned under the server's folder names, through workarea links.
      // upstream's verbose (and dry-run) lines, one per translated folder
      const linked = await linkLocalFolders(home, config, o.verbose ? (local, remote) => say(translatingLine(local, remote)) : undefined);
      if (linked !== null) { say(`ERROR: ${linked}`); return 1; }
      // The workarea links lead into the local mailbox: those may be followed.
      // smd-server runs in this process, like smd-client for a pull.
      inProcess = (await import('../commands/smd-server.js')).runServerCommand;
      localArgv = [join(OWN_BIN, 'smd-server'), '--listen-first', ...serverArgs(config.excludeLocal, localFollowDirs(home, config, true))];
      remoteArgv = [...remoteCommand('smd-client', config, env), ...clientArgs(null, config.followRemote)];
    }

    // Traffic logs are named by protocol direction: client-to-server and server-to-client.
    const c2s = config.debug ? home.c2sLog(ep) : null;
    const s2c = config.debug ? home.s2cLog(ep) : null;
    // Each run writes them anew (they hold whole mails); the previous run's stay as .1.
    for (const f of [c2s, s2c]) if (f !== null) rotateNow(f, 1);
    // The local program's idle timeout comes from the config (the remote one keeps its default).
    const childEnv = config.idleTimeout !== null ? { ...env, SMD_IDLE_TIMEOUT: String(config.idleTimeout) } : env;
    const spec = transportFor(config, home, childEnv);
    // What the client applied, line by line: into the journal (a dry run only counts).
    const onClientLine = (l: string): void => {
      const e = parseJournalLine(l);
      if (e === null) { progress.line(l); return; }
      counts.add(e);
      if (e.dryRun !== true) journal.append(e);
    };
    progress.start();
    const codes = stop.signal !== null ? { local: 1, remote: 1, transport: null } : await runPair({
      localArgv, inProcess, cwd: home.workarea, env: childEnv, spec, remoteArgv, logs,
      tee: direction === 'pull' ? { sent: c2s, received: s2c } : { sent: s2c, received: c2s },
      clientIsLocal: direction === 'pull', onClientLine, control: stop.control,
    });
    failed = codes.local !== 0 || codes.remote !== 0;
    progress.clear();
    journal.flush();

    const post = await runHooks(home, 'post', direction, ep, failed || stop.signal !== null ? 1 : 0, home.clientLog(ep),
      { ...env, SMD_RUN_JOURNAL: journal.runFile });
    if (post.failure !== null) {
      say(`ERROR: ${describeHookFailure(post.failure)} (hooks should not fail)`);
      failed = true;
    }
    const outcome: Outcome = stop.signal !== null ? 'interrupted' : failed ? 'failed' : 'done';
    const report = buildReport({
      direction, endpoint: ep, serverName: config.serverName, failed: outcome === 'failed', verbose: o.verbose, showTags: o.showTags,
      remoteLog: logs.remote, localLog: logs.local, transport: codes.transport, via: spec.kind,
    });
    for (const l of report.lines) say(l);
    const who = `smd-${direction} ${ep}`;
    if (o.dryRun && outcome === 'done') for (const l of dryRunLines(who, counts)) say(l);
    say(summaryLine(direction, ep, outcome, report.stats, (Date.now() - started) / 1000, counts.any || journal.count > 0 ? counts.total : null, o.dryRun));
    return outcome === 'interrupted' ? stop.exitCode : failed ? 1 : 0;
  } finally {
    progress.clear();
    journal.close();
    logs.close();
  }
}
