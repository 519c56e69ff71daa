/**
 * smd-client [options] ENDPOINT MAILBOX... (upstream spec 5)
 *
 * Reads the changes from the server on stdin, applies them to the Maildirs
 * (names relative to the cwd), talks back on stdout; logs on stderr.
 */
import { homedir } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { decodeArgument, fromUtf8 } from '@smd/maildir';
import { streamLog } from '@smd/protocol';
import { dbFileName } from '@smd/snapshot';
import { DEFAULT_BRAKE, parseBrakePercent, runClient } from '@smd/client';
import { parseCommandLine } from '../args/index.js';
import { SMD_CLIENT } from '../args/specs.js';
import { idleTimeoutFromEnv } from '../idle-timeout.js';

/** What the client session talks to: the server's streams, a log stream, the environment, a stop signal. */
export interface ClientIo {
  readonly input: Readable;
  readonly output: Writable;
  /** Where the log lines go (stderr of the command). */
  readonly stderr: { write(s: string): unknown };
  readonly env: NodeJS.ProcessEnv;
  /** Ctrl-C / kill: the session stops cleanly (ABORT to the server). */
  readonly signal: AbortSignal;
}

export async function main(argv: string[]): Promise<number> {
  process.stdout.on('error', () => { /* EPIPE: the session reports the network error */ });
  // Ctrl-C / kill: the session stops cleanly (ABORT to the server) instead of dying mid-way.
  const interrupt = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => interrupt.abort(sig);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return runClientCommand(argv, { input: process.stdin, output: process.stdout, stderr: process.stderr, env: process.env, signal: interrupt.signal });
}

/**
 * smd-client with its command line, on the given streams: the command itself,
 * and smd-pull's local half (run inside the smd-pull process: one Node start-up less,
 * and the server's bytes reach the client without a relay).
 */
export async function runClientCommand(argv: string[], io: ClientIo): Promise<number> {
  const parsed = await parseCommandLine(SMD_CLIENT, argv);
  if (typeof parsed === 'number') return parsed;
  const a = {
    verbose: parsed.flag('verbose') || parsed.flag('dry-run'), dryRun: parsed.flag('dry-run'), localSync: parsed.flag('local-sync'),
    translator: parsed.value('translator') ?? null, renameOnly: parsed.flag('rename-only'), overrideDb: parsed.value('override-db') ?? null,
    follow: parsed.values('follow'), listenFirst: parsed.flag('listen-first'), endpoint: parsed.args[0], mailboxes: parsed.args.slice(1),
    allowMassDelete: parsed.flag('allow-mass-delete'),
  };
  const threshold = parsed.value('mass-delete-threshold');
  const massDeletePercent = threshold === undefined ? DEFAULT_BRAKE.percent : parseBrakePercent(threshold);
  if (massDeletePercent === 'invalid') {
    io.stderr.write(`smd-client: --mass-delete-threshold ${threshold}: a percentage 0-100 or "off" is needed\n`);
    return 2;
  }
  const home = io.env.HOME ?? homedir();
  const dbFile = a.overrideDb !== null ? a.overrideDb.replace(/^~(?=\/|$)/, home) : dbFileName(home, a.endpoint, a.mailboxes);
  const idle = idleTimeoutFromEnv(io.env);
  if (typeof idle === 'string') { io.stderr.write(`smd-client: ${idle}\n`); return 2; }
  const log = streamLog(a.verbose, io.stderr);
  try {
    return await runClient({
      idleTimeoutMs: idle,
      input: io.input,
      output: io.output,
      log,
      endpoint: a.endpoint,
      mailboxes: a.mailboxes.map((m) => decodeArgument(fromUtf8(m))),
      follow: a.follow.map((f) => decodeArgument(fromUtf8(f))),
      listenFirst: a.listenFirst,
      dbFile,
      dryRun: a.dryRun,
      localSync: a.localSync,
      translator: a.translator,
      renameOnly: a.renameOnly,
      home,
      massDelete: { allow: a.allowMassDelete, percent: massDeletePercent },
      signal: io.signal,
    });
  } finally {
    // The journal lines still batched: the caller reads the log when this resolves.
    log.flush();
  }
}
