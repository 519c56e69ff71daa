/**
 * The run journal for people (smd-log): records grouped by run, one line
 * per message. Pure: records in, lines out.
 */
import type { JournalRecord } from '@smd/endpoint';
import { formatBytes } from './report.js';
import { countEntries, describeCounts } from './summary.js';

/** `2026-12-01 21:28:46` in the local time zone. */
export function localTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/**
 * `--since` values: an ISO date or date-time (`2026-12-01`, `2026-12-01 10:00`),
 * or an age: `30m`, `2h`, `3d`, `1w`. Null when not understood.
 */
export function parseSince(v: string, now: number = Date.now()): number | null {
  const age = /^(\d+)\s*([mhdw])$/.exec(v.trim());
  if (age !== null) {
    const unit = { m: 60, h: 3600, d: 86400, w: 7 * 86400 }[age[2] as 'm' | 'h' | 'd' | 'w'];
    return now - Number(age[1]) * unit * 1000;
  }
  if (!/^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?$/.test(v.trim())) return null;
  // A date without a time is local midnight (Date.parse would take UTC).
  const [date, time] = v.trim().split(/[ T]/);
  const [y, mo, d] = date.split('-').map(Number);
  const [h, mi, s] = (time ?? '00:00:00').split(':').map(Number);
  const t = new Date(y, mo - 1, d, h, mi, s ?? 0).getTime();
  return Number.isNaN(t) ? null : t;
}

/** The records of the last run (the run of the last record). */
export function lastRun(records: readonly JournalRecord[]): JournalRecord[] {
  if (records.length === 0) return [];
  const run = records[records.length - 1].run;
  return records.filter((r) => r.run === run);
}

function detail(r: JournalRecord): string {
  const parts: string[] = [];
  if (r.flags !== undefined) parts.push(`${r.flags.from || '-'} → ${r.flags.to || '-'}`);
  else if (r.previous !== undefined && r.action !== 'flags') parts.push(`from ${r.previous}`);
  const who = [r.subject !== undefined ? `"${r.subject}"` : null, r.sender ?? null].filter((x) => x !== null).join(' — ');
  if (who !== '') parts.push(who);
  if (r.size !== undefined) parts.push(formatBytes(r.size));
  if (r.note !== undefined) parts.push(`(${r.note})`);
  return parts.join('  ');
}

/** The readable table: a header line per run, then its records. */
export function journalTable(records: readonly JournalRecord[]): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < records.length) {
    const run = records[i].run;
    let j = i;
    while (j < records.length && records[j].run === run) j++;
    const group = records.slice(i, j);
    const c = countEntries(group);
    out.push(`== smd-${group[0].direction} ${group[0].endpoint}, ${localTime(run)}: ${describeCounts(c.total)}`);
    const width = Math.min(30, Math.max(...group.map((r) => r.folder.length)));
    for (const r of group) {
      out.push(`  ${localTime(r.time).slice(11)}  ${r.action.padEnd(8)} ${r.folder.padEnd(width)}  ${basename(r.path)}  ${detail(r)}`.trimEnd());
    }
    i = j;
  }
  return out;
}

const basename = (p: string): string => p.slice(p.lastIndexOf('/') + 1);
