/**
 * Counts of what a run did (or, dry, would do), from the client's journal
 * entries, and the words the summary lines use for them. Pure.
 */
import type { JournalAction, JournalEntry } from '@smd/protocol';

export type ActionCounts = Record<JournalAction, number>;

export interface RunCounts {
  readonly total: ActionCounts;
  /** Per folder (as the journal names it), in order of first appearance. */
  readonly folders: ReadonlyMap<string, ActionCounts>;
  /** Bytes of the messages whose size is known (received, or read here). */
  readonly bytes: number;
}

const zero = (): ActionCounts => ({ new: 0, deleted: 0, moved: 0, flags: 0, copied: 0, header: 0, replaced: 0, kept: 0, held: 0 });

/** Counts entries as they arrive (a run may have a million). */
export class RunCounter implements RunCounts {
  readonly total = zero();
  readonly folders = new Map<string, ActionCounts>();
  bytes = 0;

  add(e: JournalEntry): void {
    this.total[e.action]++;
    let f = this.folders.get(e.folder);
    if (f === undefined) { f = zero(); this.folders.set(e.folder, f); }
    f[e.action]++;
    if (e.size !== undefined && e.action === 'new') this.bytes += e.size;
  }

  /** Whether anything was counted. */
  get any(): boolean { return anything(this.total); }
}

export function countEntries(entries: Iterable<JournalEntry>): RunCounts {
  const c = new RunCounter();
  for (const e of entries) c.add(e);
  return c;
}

/** `N new, N deleted` always; the other kinds when there are any. */
export function describeCounts(c: ActionCounts): string {
  const parts = [`${c.new} new`, `${c.deleted} deleted`];
  if (c.flags > 0) parts.push(`${c.flags} flag change${c.flags === 1 ? '' : 's'}`);
  if (c.moved > 0) parts.push(`${c.moved} moved`);
  if (c.copied > 0) parts.push(`${c.copied} copied`);
  if (c.header + c.replaced > 0) parts.push(`${c.header + c.replaced} replaced`);
  if (c.kept > 0) parts.push(`${c.kept} kept (deleted there, but changed here)`);
  if (c.held > 0) parts.push(`${c.held} deletion${c.held === 1 ? '' : 's'} held by the mass-deletion brake`);
  return parts.join(', ');
}

const anything = (c: ActionCounts): boolean => Object.values(c).some((n) => n > 0);

/** How many folders the dry-run summary lists. */
const FOLDER_LINES = 10;

/**
 * The lines a dry run ends with before its summary line: per folder what
 * would be done (the busiest first), instead of one line per message.
 */
export function dryRunLines(who: string, c: RunCounts): string[] {
  const busy = [...c.folders].filter(([, n]) => anything(n))
    .sort((a, b) => sum(b[1]) - sum(a[1]) || (a[0] < b[0] ? -1 : 1));
  if (busy.length === 0) return [`${who}: dry run: nothing to do`];
  const width = Math.min(40, Math.max(...busy.slice(0, FOLDER_LINES).map(([f]) => f.length)));
  const out = [`${who}: dry run, nothing was changed; per folder, the run would apply:`];
  for (const [folder, n] of busy.slice(0, FOLDER_LINES)) out.push(`  ${folder.padEnd(width)}  ${describeCounts(n)}`);
  if (busy.length > FOLDER_LINES) out.push(`  ... and ${busy.length - FOLDER_LINES} more folder(s)`);
  return out;
}

const sum = (c: ActionCounts): number => Object.values(c).reduce((a, b) => a + b, 0);
