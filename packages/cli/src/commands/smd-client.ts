/**
 * smd-client [options] ENDPOINT MAILBOX... (upstream spec 5)
 *
 * Reads the changes from the server on stdin, applies them to the Maildirs
 * (names relative to the cwd), talks back on stdout; logs on stderr.
 */
import { homedir } from 'node:os';
import { decodeArgument, fromUtf8 } from '@smd/maildir';
import { streamLog } from '@smd/protocol';
import { dbFileName } from '@smd/snapshot';
import { DEFAULT_BRAKE, parseBrakePercent, runClient } from '@smd/client';
import { VERSION } from '../launch.js';
import { idleTimeoutFromEnv } from '../idle-timeout.js';

const USAGE = `Usage: smd-client [options] ENDPOINT MAILBOX...

Applies the changes sent by smd-server (on stdin) to the local MAILBOXes.

Options:
  -v, --verbose          progress and information on stderr
  -d, --dry-run          change nothing, report what would be done (implies -v)
  -l, --local-sync       do not patch nor rename the db-file (the server owns it)
  -t, --translator CMD   remote→local folder name translator (workarea mode)
      --rename-only      write ~/smd-rename.sh instead of synchronizing
      --override-db F    use F as the db-file (~ is the home directory)
      --listen-first     read the server's protocol line before sending ours,
                         and speak upstream's protocol 1.3 to an upstream
                         smd-server (smd-pull passes it to its local client)
      --follow DIR       a folder symlink may lead into DIR (repeatable;
                         %20 = space; default: only into the mailboxes)
      --allow-mass-delete          apply deletions the mass-deletion brake would hold
      --mass-delete-threshold=P    hold deletions of more than P% of a folder (default 50; off)
  -h, --help             this help
      --version          print the version
`;

interface Args {
  verbose: boolean;
  dryRun: boolean;
  localSync: boolean;
  translator: string | null;
  renameOnly: boolean;
  overrideDb: string | null;
  follow: string[];
  listenFirst: boolean;
  allowMassDelete: boolean;
  massDeletePercent: number | null;
  endpoint: string;
  mailboxes: string[];
}

/** Options are recognised only while more than two arguments remain (upstream's rule). */
function parse(argv: string[]): Args | 'help' | 'version' | string {
  const a: Args = { verbose: false, dryRun: false, localSync: false, translator: null, renameOnly: false, overrideDb: null, follow: [], listenFirst: false,
    allowMassDelete: false, massDeletePercent: DEFAULT_BRAKE.percent, endpoint: '', mailboxes: [] };
  let i = 0;
  if (argv.length === 1 && (argv[0] === '-h' || argv[0] === '--help')) return 'help';
  if (argv.length === 1 && argv[0] === '--version') return 'version';
  while (argv.length - i > 2 && argv[i].startsWith('-')) {
    const x = argv[i++];
    switch (x) {
      case '-v': case '--verbose': a.verbose = true; break;
      case '-d': case '--dry-run': a.dryRun = true; a.verbose = true; break;
      case '-l': case '--local-sync': a.localSync = true; break;
      case '--rename-only': a.renameOnly = true; break;
      case '--listen-first': a.listenFirst = true; break;
      case '--allow-mass-delete': a.allowMassDelete = true; break;
      case '-h': case '--help': return 'help';
      case '--version': return 'version';
      case '-t': case '--translator': case '--override-db': case '--follow': {
        const v = argv[i++];
        if (v === undefined || v === '') return `${x} needs an argument`;
        if (x === '--override-db') a.overrideDb = v; else if (x === '--follow') a.follow.push(v); else a.translator = v;
        break;
      }
      default: {
        if (x.startsWith('--mass-delete-threshold=')) {
          const p = parseBrakePercent(x.slice(x.indexOf('=') + 1));
          if (p === 'invalid') return `${x}: a percentage 0-100 or "off" is needed`;
          a.massDeletePercent = p;
          break;
        }
        return `unknown option ${x}`;
      }
    }
  }
  const rest = argv.slice(i);
  if (rest.length < 2) return 'ENDPOINT and at least one MAILBOX are needed';
  a.endpoint = rest[0];
  a.mailboxes = rest.slice(1);
  return a;
}

export async function main(argv: string[]): Promise<number> {
  const a = parse(argv);
  if (a === 'help') { process.stdout.write(USAGE); return 0; }
  if (a === 'version') { process.stdout.write(`smd-client ${VERSION}\n`); return 0; }
  if (typeof a === 'string') { process.stderr.write(`smd-client: ${a}\n${USAGE}`); return 2; }
  const home = process.env.HOME ?? homedir();
  const dbFile = a.overrideDb !== null ? a.overrideDb.replace(/^~(?=\/|$)/, home) : dbFileName(home, a.endpoint, a.mailboxes);
  const idle = idleTimeoutFromEnv(process.env);
  if (typeof idle === 'string') { process.stderr.write(`smd-client: ${idle}\n`); return 2; }
  process.stdout.on('error', () => { /* EPIPE: the session reports the network error */ });
  // Ctrl-C / kill: the session stops cleanly (ABORT to the server) instead of dying mid-way.
  const interrupt = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => interrupt.abort(sig);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return runClient({
    idleTimeoutMs: idle,
    input: process.stdin,
    output: process.stdout,
    log: streamLog(a.verbose),
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
    massDelete: { allow: a.allowMassDelete, percent: a.massDeletePercent },
    signal: interrupt.signal,
  });
}
