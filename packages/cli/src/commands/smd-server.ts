/**
 * smd-server [options] ENDPOINT MAILBOX... (upstream section 4): serves the
 * diff of MAILBOX against the db-file agreed with ENDPOINT on stdin/stdout.
 *
 * As upstream, options are recognised only while more than two arguments
 * remain, so a mailbox named like an option still works in last position.
 */
import { mkdirSync, realpathSync } from 'node:fs';
import { dirname, join, resolve, relative, isAbsolute } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { AtomicFileWriter, decodeArgument, fromUtf8, type ByteString } from '@smd/maildir';
import { dbFileName } from '@smd/snapshot';
import { streamLog } from '@smd/protocol';
import { runServer } from '@smd/server';
import { joinWords } from '@smd/shell';
import { parseCommandLine } from '../args/index.js';
import { SMD_SERVER } from '../args/specs.js';
import { idleTimeoutFromEnv } from '../idle-timeout.js';

const tilde = (f: string, home: string): string => (f === '~' ? home : f.startsWith('~/') ? join(home, f.slice(2)) : f);

/** What the server session talks to: the client's streams, a log stream, the environment, a stop signal. */
export interface ServerIo {
  readonly input: Readable;
  readonly output: Writable;
  /** Where the log lines go (stderr of the command). */
  readonly stderr: { write(s: string): unknown };
  readonly env: NodeJS.ProcessEnv;
  /** Stops the session: its connection is closed (the client sees the server gone, as after a kill). */
  readonly signal?: AbortSignal;
}

export async function main(argv: string[]): Promise<number> {
  return runServerCommand(argv, { input: process.stdin, output: process.stdout, stderr: process.stderr, env: process.env });
}

/**
 * smd-server with its command line, on the given streams: the command
 * itself, and smd-push's local half (run inside the smd-push process: one Node
 * start-up less, and no relay of the mail it sends).
 */
export async function runServerCommand(argv: string[], io: ServerIo): Promise<number> {
  const a = await parseCommandLine(SMD_SERVER, argv);
  if (typeof a === 'number') return a;
  const p = {
    verbose: a.flag('verbose') || a.flag('dry-run'), dryRun: a.flag('dry-run'), noDelete: a.flag('no-delete'), noMove: a.flag('no-move'),
    excludes: a.values('exclude'), follow: a.values('follow'), overrideDb: a.value('override-db') ?? null, stopAfterDiff: a.flag('stop-after-diff'),
    getCmdline: a.flag('get-mddiff-cmdline'), dumpStdin: a.value('dump-stdin') ?? null, listenFirst: a.flag('listen-first'),
    endpoint: a.args[0], mailboxes: a.args.slice(1),
  };
  const home = io.env.HOME ?? '';
  if (home === '') { io.stderr.write('smd-server: HOME is not set\n'); return 2; }
  mkdirSync(join(home, '.smd'), { recursive: true, mode: 0o700 });

  if (p.dumpStdin !== null) return dumpStdin(resolve(tilde(p.dumpStdin, home)), join(home, '.smd'), io);

  const mailboxes: ByteString[] = p.mailboxes.map((m) => decodeArgument(fromUtf8(m)));
  const excludes: ByteString[] = p.excludes.map((g) => decodeArgument(fromUtf8(g)));
  const db = p.overrideDb !== null ? tilde(p.overrideDb, home) : dbFileName(home, p.endpoint, p.mailboxes);

  if (p.getCmdline) {
    const words = ['mddiff', ...(p.dryRun ? ['-d'] : []), '--db-file', db, ...p.excludes.flatMap((g) => ['--exclude', g]),
      ...p.follow.flatMap((f) => ['--follow', f]),
      ...(p.noDelete ? ['-n'] : []), ...(p.noMove ? ['--no-move'] : []), ...p.mailboxes];
    io.output.write(`${joinWords(words)}\n`);
    return 0;
  }

  const idle = idleTimeoutFromEnv(io.env);
  if (typeof idle === 'string') { io.stderr.write(`smd-server: ${idle}\n`); return 2; }
  const stop = (): void => { io.input.destroy(); io.output.destroy(); };
  io.signal?.addEventListener('abort', stop, { once: true });
  const log = streamLog(p.verbose, io.stderr);
  try {
    return await runServer({
      idleTimeoutMs: idle,
      input: io.input, output: io.output, log, endpoint: p.endpoint,
      mailboxes, dbFile: db, excludes, follow: p.follow.map((f) => decodeArgument(fromUtf8(f))), dryRun: p.dryRun, noDelete: p.noDelete, noMove: p.noMove,
      stopAfterDiff: p.stopAfterDiff, listenFirst: p.listenFirst,
      cleanup: p.overrideDb !== null ? [db, `${db}.mtime`, `${db}.new`, `${db}.mtime.new`, `${db}.stat-cache`, `${db}.stat-cache.new`] : [],
    });
  } finally {
    io.signal?.removeEventListener('abort', stop);
    log.flush();
  }
}

/**
 * --dump-stdin: used by smd-uniform-names to upload a scratch db-file. Only
 * files under ~/.smd/ may be written (upstream let it overwrite any file,
 * e.g. ~/.ssh/authorized_keys: section 8, S3).
 */
async function dumpStdin(target: string, smdDir: string, io: ServerIo): Promise<number> {
  const rel = relative(smdDir, target);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
    io.stderr.write(`smd-server: --dump-stdin only writes files under ${smdDir}/, not ${target}\n`);
    return 2;
  }
  mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
  // A symlink inside ~/.smd/ must not lead the write elsewhere.
  const realRel = relative(realpathSync(smdDir), realpathSync(dirname(target)));
  if (realRel.startsWith('..') || isAbsolute(realRel)) {
    io.stderr.write(`smd-server: --dump-stdin only writes files under ${smdDir}/, and ${dirname(target)} leads outside it\n`);
    return 2;
  }
  // A db-sized upload: an AtomicFileWriter, which also removes what a killed upload left.
  const w = new AtomicFileWriter(target, 0o600);
  try {
    for await (const chunk of io.input) w.write(chunk as Buffer);
    w.commit();
  } finally {
    w.abort();
  }
  return 0;
}
