import { spawn, type ChildProcess } from 'node:child_process';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { RotatingLog, RUN_LOG_ROTATION } from '@smd/endpoint';
import { JOURNAL_PREFIX } from '@smd/protocol';
import {
  classifyRemoteExit, describeFailure, startRemote, TransportError,
  type FailureContext, type RemoteProcess, type TransportFailure, type TransportSpec,
} from '@smd/transport';
import { connect, eachLine, LineSplitter, teeTo } from './plumbing.js';
import { killLater } from './workarea.js';

/**
 * The two log files of a run (`client.<ep>.log` for the local program,
 * `server.<ep>.log` for the remote one) and the lines the final report
 * needs. Each run appends after a banner line; the files rotate by size
 * (`.1`, `.2`, ...), so earlier runs stay readable. PROGRESS/TRACE lines
 * only go to the files, so memory does not grow with the length of a run;
 * so do INFO lines unless the report shows them (`keepInfo`, -v): a first
 * pull of a million messages logs two million of them (~1 GB held).
 * JOURNAL lines go to neither (the run journal has them).
 */
export class RunLogs {
  readonly local: string[] = [];
  readonly remote: string[] = [];
  private readonly localLog: RotatingLog;
  private readonly remoteLog: RotatingLog;

  /** `banner`: the first line of this run in both files. Hooks also append to the client log. */
  constructor(localPath: string, remotePath: string, banner: string, private readonly keepInfo: boolean) {
    this.localLog = new RotatingLog(localPath, RUN_LOG_ROTATION);
    this.remoteLog = new RotatingLog(remotePath, RUN_LOG_ROTATION);
    this.localLog.line(banner);
    this.remoteLog.line(banner);
  }

  localLine(l: string): void { if (l.startsWith(JOURNAL_PREFIX)) return; this.localLog.line(l); if (this.kept(l)) this.local.push(l); }
  remoteLine(l: string): void { if (l.startsWith(JOURNAL_PREFIX)) return; this.remoteLog.line(l); if (this.kept(l)) this.remote.push(l); }
  close(): void { this.localLog.close(); this.remoteLog.close(); }

  private kept(l: string): boolean {
    return !l.startsWith('PROGRESS: ') && !l.startsWith('TRACE: ') && (this.keepInfo || !l.startsWith('INFO: '));
  }
}

/**
 * Stops a running pair from outside (Ctrl-C): `interrupt` passes the signal
 * to the local program, which stops cleanly (smd-client sends ABORT; the
 * other side then ends by itself); `kill` ends both at once.
 */
export class PairControl {
  private local: LocalHandle | null = null;
  private remote: RemoteProcess | null = null;
  private signalled: NodeJS.Signals | null = null;
  private killed = false;

  interrupt(sig: NodeJS.Signals): void {
    this.signalled = sig;
    this.local?.kill(sig);
  }

  kill(): void {
    this.killed = true;
    this.local?.kill('SIGKILL');
    this.remote?.kill();
  }

  /** @internal runPair registers what it started. */
  attach(local: LocalHandle | null, remote: RemoteProcess | null): void {
    if (local !== null) this.local = local;
    if (remote !== null) this.remote = remote;
    if (this.killed) this.kill();
    else if (this.signalled !== null) this.local?.kill(this.signalled);
  }
}

/** The local program as PairControl stops it: a child process, or a session running in this process. */
type LocalHandle = Pick<ChildProcess, 'kill'>;

/**
 * The local half run in this process (smd-pull's smd-client): its command
 * line, the streams of the remote program, a sink for its log lines and the
 * signal that stops it cleanly. Resolves to its exit code.
 */
export type InProcessProgram = (argv: string[], io: {
  input: Readable; output: Writable; stderr: { write(s: string): unknown }; env: NodeJS.ProcessEnv; signal: AbortSignal;
}) => Promise<number>;

export interface PairOptions {
  /** the local program: node script + arguments, run with `cwd` */
  localArgv: string[];
  /** run the local program in this process instead (argv without the script); null: spawn it */
  inProcess?: InProcessProgram | null;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** the remote program, through the transport */
  spec: TransportSpec;
  remoteArgv: string[];
  logs: RunLogs;
  /** DEBUG traffic logs: bytes sent to the remote program, bytes received from it */
  tee?: { sent: string | null; received: string | null };
  /** every stderr line of the program that runs smd-client (for the progress line) */
  onClientLine?: (line: string) => void;
  clientIsLocal: boolean;
  control?: PairControl;
}

/**
 * Exit codes of the two programs (127: could not start; 255: the connection
 * failed), and the transport's failure when the remote program could not be
 * reached or kept (ssh's own error, classified).
 */
export interface PairResult { local: number; remote: number; transport: TransportFailure | null }

/** Who the transport was reaching, for the words of a failure. */
export function failureContext(spec: TransportSpec, remoteArgv: readonly string[]): FailureContext {
  return { host: spec.kind === 'local' ? 'localhost' : spec.host, program: remoteArgv[0] ?? '?' };
}

/** A transport that could not even start the remote program. */
export function startFailure(e: unknown, ctx: FailureContext): TransportFailure {
  return e instanceof TransportError ? describeFailure(e.kind, ctx, [e.message]) : describeFailure('unknown', ctx, [String(e)]);
}

/**
 * Runs a local program and a remote one connected stdout-to-stdin both ways,
 * their stderr in the logs; resolves when both have finished. When one ends,
 * the other gets a grace period before it is stopped.
 */
export async function runPair(o: PairOptions): Promise<PairResult> {
  if (o.inProcess != null) return runInProcessPair(o, o.inProcess);
  const local = spawn(process.execPath, o.localArgv, { cwd: o.cwd, stdio: ['pipe', 'pipe', 'pipe'], env: o.env });
  const localExit = new Promise<number>((resolve) => {
    local.once('error', (e) => { o.logs.localLine(`ERROR: cannot start ${o.localArgv[0]}: ${e.message}`); resolve(127); });
    local.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  o.control?.attach(local, null);
  let remote: RemoteProcess;
  try {
    remote = await startRemote(o.spec, o.remoteArgv);
  } catch (e) {
    local.kill('SIGTERM');
    await localExit;
    o.logs.remoteLine(`ssh: ${(e as Error).message}`);
    return { local: 1, remote: 255, transport: startFailure(e, failureContext(o.spec, o.remoteArgv)) };
  }
  o.control?.attach(null, remote);
  connect(local.stdout, remote.stdin, o.tee?.sent ?? null);
  connect(remote.stdout, local.stdin, o.tee?.received ?? null);
  // Once the remote program has spoken, the connection worked: a later failure is the link's.
  let started = false;
  remote.stdout.once('data', () => { started = true; });
  const localDone = eachLine(local.stderr, (l) => {
    o.logs.localLine(l);
    if (o.clientIsLocal) o.onClientLine?.(l);
  });
  const remoteDone = eachLine(remote.stderr, (l) => {
    o.logs.remoteLine(l);
    if (!o.clientIsLocal) o.onClientLine?.(l);
  });
  const [lc, rexit] = await Promise.all([
    localExit.then((c) => { killLater(() => remote.kill()); return c; }),
    remote.exit.then((r) => { killLater(() => local.kill('SIGTERM')); return r; }),
  ]);
  await Promise.all([localDone, remoteDone]);
  const transport = classifyRemoteExit(rexit, o.logs.remote, { ...failureContext(o.spec, o.remoteArgv), started });
  return { local: lc, remote: rexit.code ?? 255, transport };
}

/**
 * runPair with the local program run in this process on the remote
 * program's streams: the same logs, exit codes and stops, without a second
 * Node start-up nor a relay of every byte through this process.
 */
async function runInProcessPair(o: PairOptions, run: InProcessProgram): Promise<PairResult> {
  const [script, ...args] = o.localArgv;
  const name = (script ?? 'local program').split('/').pop()!;
  let remote: RemoteProcess;
  try {
    remote = await startRemote(o.spec, o.remoteArgv);
  } catch (e) {
    o.logs.remoteLine(`ssh: ${(e as Error).message}`);
    return { local: 1, remote: 255, transport: startFailure(e, failureContext(o.spec, o.remoteArgv)) };
  }
  const stop = new AbortController();
  // Ctrl-C asks the session to stop cleanly, as a signal does the smd-client process; a kill ends the connection.
  o.control?.attach({ kill: (sig?: NodeJS.Signals | number) => { if (sig === 'SIGKILL') remote.kill(); else stop.abort(sig); return true; } }, remote);
  let started = false;
  remote.stdout.once('data', () => { started = true; });
  const swallow = (): void => { /* EPIPE & co: the session reports the network error */ };
  remote.stdout.on('error', swallow);
  remote.stdin.on('error', swallow);
  // Through a pass-through (or the tee), which can be unpiped once the session ends: then the remote program's
  // output is drained into nothing, as when a local process exits (the remote one reads our ABORT instead of
  // blocking on replies nobody reads).
  const input = o.tee?.received != null ? teeTo(o.tee.received) : new PassThrough();
  input.on('error', swallow);
  remote.stdout.pipe(input);
  let output: Writable = remote.stdin;
  if (o.tee?.sent != null) {
    const t = teeTo(o.tee.sent);
    t.on('error', swallow);
    t.pipe(remote.stdin);
    output = t;
  }
  // Its log lines, as they would come from its stderr.
  const stderr = new LineSplitter((l) => {
    o.logs.localLine(l);
    if (o.clientIsLocal) o.onClientLine?.(l);
  });
  const remoteDone = eachLine(remote.stderr, (l) => {
    o.logs.remoteLine(l);
    if (!o.clientIsLocal) o.onClientLine?.(l);
  });
  // As with a local process: once the remote program ended, the local one gets a grace period before it is stopped.
  void remote.exit.then(() => killLater(() => stop.abort('SIGTERM')));
  // The local program's names are relative to its working directory (the workarea).
  const cwd = process.cwd();
  let lc: number;
  let entered = false;
  try {
    process.chdir(o.cwd);
    entered = true;
  } catch (e) {
    // What spawning it there would have said.
    stderr.write(`ERROR: cannot start ${name} in ${o.cwd}: ${(e as Error).message}\n`);
  }
  if (!entered) lc = 127;
  else {
    try {
      lc = await run(args, { input, output, stderr, env: o.env, signal: stop.signal });
    } catch (e) {
      stderr.write(`${name}: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
      lc = 70;
    } finally {
      process.chdir(cwd);
    }
  }
  stderr.end();
  // What a process's exit does to its pipes: EOF to the remote program, and its output drained into nothing.
  output.end();
  remote.stdout.unpipe(input);
  input.resume();
  input.end();
  remote.stdout.resume();
  killLater(() => remote.kill());
  const rexit = await remote.exit;
  await remoteDone;
  const transport = classifyRemoteExit(rexit, o.logs.remote, { ...failureContext(o.spec, o.remoteArgv), started });
  return { local: lc, remote: rexit.code ?? 255, transport };
}
