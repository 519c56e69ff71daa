/**
 * smd-server [options] ENDPOINT MAILBOX... (upstream section 4): serves the
 * diff of MAILBOX against the db-file agreed with ENDPOINT on stdin/stdout.
 *
 * As upstream, options are recognised only while more than two arguments
 * remain, so a mailbox named like an option still works in last position.
 */
import { mkdirSync, realpathSync } from 'node:fs';
import { dirname, join, resolve, relative, isAbsolute } from 'node:path';
import { AtomicFileWriter, decodeArgument, fromUtf8, type ByteString } from '@smd/maildir';
import { dbFileName } from '@smd/snapshot';
import { streamLog } from '@smd/protocol';
import { runServer } from '@smd/server';
import { joinWords } from '@smd/shell';
import { VERSION } from '../launch.js';
import { idleTimeoutFromEnv } from '../idle-timeout.js';

const USAGE = `Usage: smd-server [options] ENDPOINT MAILBOX...

Computes the changes of MAILBOX since the last sync with ENDPOINT and serves
them, and the messages, to smd-client on stdin/stdout (see protocol.md).

  -v, --verbose            log INFO and PROGRESS lines on stderr
  -d, --dry-run            change nothing (implies -v)
  -n, --no-delete          do not report deleted messages
      --no-move            report a renamed message as COPY + DELETE
      --exclude GLOB       skip folders matching GLOB (repeatable; %20 = space)
      --follow DIR         a folder symlink may lead into DIR (repeatable;
                           %20 = space; default: only into the mailboxes)
      --override-db FILE   use FILE as the db-file (~ is $HOME)
      --stop-after-diff    exit after sending the changes
      --listen-first       read the client's protocol line before sending ours,
                           and speak upstream's protocol 1.3 to an upstream
                           smd-client (smd-push passes it to its local server)
      --get-mddiff-cmdline print the equivalent mddiff command line and exit
      --dump-stdin FILE    copy stdin to FILE (only under ~/.smd/) and exit
  -h, --help               this help
      --version            print the version
`;

interface Parsed {
  verbose: boolean; dryRun: boolean; noDelete: boolean; noMove: boolean;
  excludes: string[]; follow: string[]; overrideDb: string | null; stopAfterDiff: boolean; getCmdline: boolean; dumpStdin: string | null;
  listenFirst: boolean; endpoint: string; mailboxes: string[];
}

function parse(argv: string[]): Parsed | string {
  const p: Parsed = {
    verbose: false, dryRun: false, noDelete: false, noMove: false, excludes: [], follow: [], overrideDb: null,
    stopAfterDiff: false, getCmdline: false, dumpStdin: null, listenFirst: false, endpoint: '', mailboxes: [],
  };
  const a = [...argv];
  while (a.length > 2 && a[0].startsWith('-')) {
    const o = a.shift() as string;
    const value = (): string => {
      const v = a.shift();
      if (v === undefined) throw new Error(`${o} needs a value`);
      return v;
    };
    switch (o) {
      case '-v': case '--verbose': p.verbose = true; break;
      case '-d': case '--dry-run': p.dryRun = true; p.verbose = true; break;
      case '-n': case '--no-delete': p.noDelete = true; break;
      case '--no-move': p.noMove = true; break;
      case '--exclude': p.excludes.push(value()); break;
      case '--follow': p.follow.push(value()); break;
      case '--override-db': p.overrideDb = value(); break;
      case '--stop-after-diff': p.stopAfterDiff = true; break;
      case '--listen-first': p.listenFirst = true; break;
      case '--get-mddiff-cmdline': p.getCmdline = true; break;
      case '--dump-stdin': p.dumpStdin = value(); break;
      default: return `unknown option ${o}`;
    }
  }
  if (a.length < 2) return 'ENDPOINT and at least one MAILBOX are needed';
  p.endpoint = a[0];
  p.mailboxes = a.slice(1);
  return p;
}

const tilde = (f: string, home: string): string => (f === '~' ? home : f.startsWith('~/') ? join(home, f.slice(2)) : f);

export async function main(argv: string[]): Promise<number> {
  if (argv.length === 1 && (argv[0] === '-h' || argv[0] === '--help')) { process.stdout.write(USAGE); return 0; }
  if (argv.length === 1 && argv[0] === '--version') { process.stdout.write(`${VERSION}\n`); return 0; }
  let p: Parsed | string;
  try { p = parse(argv); } catch (e) { p = (e as Error).message; }
  if (typeof p === 'string') { process.stderr.write(`smd-server: ${p}\n${USAGE}`); return 2; }
  const home = process.env.HOME ?? '';
  if (home === '') { process.stderr.write('smd-server: HOME is not set\n'); return 2; }
  mkdirSync(join(home, '.smd'), { recursive: true, mode: 0o700 });

  if (p.dumpStdin !== null) return dumpStdin(resolve(tilde(p.dumpStdin, home)), join(home, '.smd'));

  const mailboxes: ByteString[] = p.mailboxes.map((m) => decodeArgument(fromUtf8(m)));
  const excludes: ByteString[] = p.excludes.map((g) => decodeArgument(fromUtf8(g)));
  const db = p.overrideDb !== null ? tilde(p.overrideDb, home) : dbFileName(home, p.endpoint, p.mailboxes);

  if (p.getCmdline) {
    const words = ['mddiff', ...(p.dryRun ? ['-d'] : []), '--db-file', db, ...p.excludes.flatMap((g) => ['--exclude', g]),
      ...p.follow.flatMap((f) => ['--follow', f]),
      ...(p.noDelete ? ['-n'] : []), ...(p.noMove ? ['--no-move'] : []), ...p.mailboxes];
    process.stdout.write(`${joinWords(words)}\n`);
    return 0;
  }

  const idle = idleTimeoutFromEnv(process.env);
  if (typeof idle === 'string') { process.stderr.write(`smd-server: ${idle}\n`); return 2; }
  return runServer({
    idleTimeoutMs: idle,
    input: process.stdin, output: process.stdout, log: streamLog(p.verbose), endpoint: p.endpoint,
    mailboxes, dbFile: db, excludes, follow: p.follow.map((f) => decodeArgument(fromUtf8(f))), dryRun: p.dryRun, noDelete: p.noDelete, noMove: p.noMove,
    stopAfterDiff: p.stopAfterDiff, listenFirst: p.listenFirst,
    cleanup: p.overrideDb !== null ? [db, `${db}.mtime`, `${db}.new`, `${db}.mtime.new`, `${db}.stat-cache`, `${db}.stat-cache.new`] : [],
  });
}

/**
 * --dump-stdin: used by smd-uniform-names to upload a scratch db-file. Only
 * files under ~/.smd/ may be written (upstream let it overwrite any file,
 * e.g. ~/.ssh/authorized_keys: section 8, S3).
 */
async function dumpStdin(target: string, smdDir: string): Promise<number> {
  const rel = relative(smdDir, target);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
    process.stderr.write(`smd-server: --dump-stdin only writes files under ${smdDir}/, not ${target}\n`);
    return 2;
  }
  mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
  // A symlink inside ~/.smd/ must not lead the write elsewhere.
  const realRel = relative(realpathSync(smdDir), realpathSync(dirname(target)));
  if (realRel.startsWith('..') || isAbsolute(realRel)) {
    process.stderr.write(`smd-server: --dump-stdin only writes files under ${smdDir}/, and ${dirname(target)} leads outside it\n`);
    return 2;
  }
  // A db-sized upload: an AtomicFileWriter, which also removes what a killed upload left.
  const w = new AtomicFileWriter(target, 0o600);
  try {
    for await (const chunk of process.stdin) w.write(chunk as Buffer);
    w.commit();
  } finally {
    w.abort();
  }
  return 0;
}
