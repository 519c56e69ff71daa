/**
 * smd-log [--last] [--since WHEN] [--json] [ENDPOINT]
 *
 * Shows the run journal of ENDPOINT (~/.smd/log/journal.ENDPOINT.jsonl):
 * what every smd-pull / smd-push changed, message by message.
 */
import { SmdHome, readJournal, validateEndpointName } from '@smd/endpoint';
import { journalTable, lastRun, parseSince } from '../sync/journal-view.js';
import { VERSION } from '../launch.js';

const USAGE = `Usage: smd-log [--last] [--since WHEN] [--json] [ENDPOINT]

Shows what smd-pull and smd-push changed, one line per message, from the
run journal ~/.smd/log/journal.ENDPOINT.jsonl. ENDPOINT defaults to "default".

Options:
  -l, --last          only the last run that changed something
  -S, --since WHEN    only records from WHEN on: 2026-12-01, "2026-12-01 10:00",
                      or an age: 30m, 2h, 3d, 1w
  -j, --json          the records as JSON Lines (one object per message)
  -h, --help          this help
      --version       print the version
`;

interface Args { endpoint: string; last: boolean; since: number | null; json: boolean }

function parse(argv: string[]): Args | 'help' | 'version' | string {
  const a: Args = { endpoint: 'default', last: false, since: null, json: false };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    if (x === '-h' || x === '--help') return 'help';
    if (x === '--version') return 'version';
    if (x === '-l' || x === '--last') { a.last = true; continue; }
    if (x === '-j' || x === '--json') { a.json = true; continue; }
    if (x === '-S' || x === '--since' || x.startsWith('--since=')) {
      const v = x.startsWith('--since=') ? x.slice(8) : argv[++i];
      if (v === undefined) return `${x} needs a value`;
      const t = parseSince(v);
      if (t === null) return `--since ${v}: not a date (2026-12-01, "2026-12-01 10:00") nor an age (30m, 2h, 3d, 1w)`;
      a.since = t;
      continue;
    }
    if (x.startsWith('-')) return `unknown option ${x}`;
    a.endpoint = x;
  }
  return a;
}

export async function main(argv: string[]): Promise<number> {
  const a = parse(argv);
  if (a === 'help') { process.stdout.write(USAGE); return 0; }
  if (a === 'version') { process.stdout.write(`smd-log ${VERSION}\n`); return 0; }
  if (typeof a === 'string') { process.stderr.write(`smd-log: ${a}\n${USAGE}`); return 1; }
  const bad = validateEndpointName(a.endpoint);
  if (bad !== null) { process.stderr.write(`smd-log: ${bad}\n`); return 1; }
  let home: SmdHome;
  try { home = SmdHome.fromEnv(); } catch (e) { process.stderr.write(`smd-log: ${(e as Error).message}\n`); return 1; }
  let records = readJournal(home, a.endpoint);
  if (a.since !== null) {
    const since = a.since;
    records = records.filter((r) => Date.parse(r.time) >= since);
  }
  if (a.last) records = lastRun(records);
  if (a.json) {
    process.stdout.write(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    return 0;
  }
  if (records.length === 0) {
    process.stdout.write(`No change recorded for endpoint "${a.endpoint}"${a.since !== null ? ' in that time' : ''} (${home.journal(a.endpoint)}).\n`);
    return 0;
  }
  process.stdout.write(journalTable(records).map((l) => `${l}\n`).join(''));
  return 0;
}
