/**
 * The mass-deletion brake (pure): the DELETEs of a run are held until the
 * whole diff is known, then judged against what the mailbox held at the
 * last sync. Too many, or every message of a mailbox root (an unmounted
 * disk, a wrong path look exactly like that to the scan), and none is
 * applied: the run ends asking a person.
 */
import type { ByteString } from '@smd/maildir';
import type { ErrorTags } from '@smd/protocol';

export interface BrakeLimits {
  /**
   * Deleting more than this percentage of the messages of the mailbox, or
   * of one folder, holds the deletions; null: only the "all of a root" rule.
   */
  readonly percent: number | null;
  /** Folders (and mailboxes) holding fewer messages are not judged by percentage. */
  readonly minMessages: number;
}

export const DEFAULT_BRAKE: BrakeLimits = { percent: 50, minMessages: 20 };

export interface FolderDeletions {
  readonly folder: ByteString;
  /** Messages the run would delete there. */
  readonly deletes: number;
  /** Messages it held at the last sync. */
  readonly total: number;
}

export interface BrakeVerdict {
  readonly held: boolean;
  /** Why, one sentence each (empty when not held). */
  readonly reasons: readonly string[];
  /** Folders with deletions, most deletions first. */
  readonly folders: readonly FolderDeletions[];
  readonly deletes: number;
  readonly total: number;
}

const rootOf = (folder: ByteString, roots: readonly ByteString[]): ByteString | null =>
  roots.find((r) => folder === r || folder.startsWith(`${r}/`)) ?? null;

const pct = (n: number, of: number): string => `${Math.round((100 * n) / Math.max(1, of))}%`;

/**
 * Judges the deletions of a run. `deletes`: per folder, the messages that
 * would be deleted; `totals`: per folder, the messages at the last sync (the
 * db-file); `show` turns a name into text for the reasons.
 */
export function judgeDeletions(
  deletes: ReadonlyMap<ByteString, number>, totals: ReadonlyMap<ByteString, number>, roots: readonly ByteString[],
  limits: BrakeLimits, show: (n: ByteString) => string = (n) => n,
): BrakeVerdict {
  const folders: FolderDeletions[] = [...deletes]
    .filter(([, n]) => n > 0)
    .map(([folder, n]) => ({ folder, deletes: n, total: Math.max(n, totals.get(folder) ?? 0) }))
    .sort((a, b) => b.deletes - a.deletes || (a.folder < b.folder ? -1 : 1));
  let deleting = 0;
  for (const f of folders) deleting += f.deletes;
  let total = 0;
  for (const n of totals.values()) total += n;
  total = Math.max(total, deleting);
  const reasons: string[] = [];
  if (deleting === 0) return { held: false, reasons, folders, deletes: 0, total };

  for (const r of roots) {
    let had = 0;
    let gone = 0;
    for (const [folder, n] of totals) if (rootOf(folder, [r]) !== null) had += n;
    for (const f of folders) if (rootOf(f.folder, [r]) !== null) gone += f.deletes;
    if (had > 0 && gone >= had) {
      reasons.push(`every message of the mailbox ${show(r)} (${had}): is its disk mounted, its path right?`);
    }
  }
  const p = limits.percent;
  if (p !== null) {
    const over = (n: number, of: number): boolean => of >= limits.minMessages && n * 100 > p * of;
    if (over(deleting, total)) reasons.push(`${deleting} of the ${total} messages of the mailbox (${pct(deleting, total)}, more than ${p}%)`);
    for (const f of folders) {
      if (over(f.deletes, f.total)) reasons.push(`${f.deletes} of the ${f.total} messages of ${show(f.folder)} (${pct(f.deletes, f.total)}, more than ${p}%)`);
    }
  }
  return { held: reasons.length > 0, reasons, folders, deletes: deleting, total };
}

/** How many folder lines and example names the refusal shows. */
const SHOWN_FOLDERS = 10;
const SHOWN_NAMES = 3;

/**
 * The refusal: what would have been deleted (counts per folder, a few
 * names) and how to let it through. `@@COMMAND@@` and `@@ENDPOINT@@` are
 * replaced by smd-pull / smd-push (they know which command and endpoint).
 */
export function brakeRefusal(v: BrakeVerdict, examples: ReadonlyMap<ByteString, readonly ByteString[]>, show: (n: ByteString) => string): { message: string; tags: ErrorTags } {
  const lines = [
    `Mass deletion held: this run would delete ${v.reasons.join('; ')}.`,
    'Nothing was deleted (the other changes were applied). What would have been deleted:',
  ];
  for (const f of v.folders.slice(0, SHOWN_FOLDERS)) {
    const names = (examples.get(f.folder) ?? []).slice(0, SHOWN_NAMES).map((n) => show(n.slice(n.lastIndexOf('/') + 1)));
    lines.push(`  ${show(f.folder)}: ${f.deletes} of ${f.total}${names.length > 0 ? ` (e.g. ${names.join(', ')})` : ''}`);
  }
  if (v.folders.length > SHOWN_FOLDERS) lines.push(`  ... and ${v.folders.length - SHOWN_FOLDERS} more folder(s)`);
  lines.push('If these deletions are wanted, let them through once with: @@COMMAND@@ --allow-mass-delete @@ENDPOINT@@');
  lines.push('(the limit is MASS_DELETE_THRESHOLD=<percent> in ~/.smd/config.@@ENDPOINT@@, default 50; -n never deletes anything).');
  return {
    message: lines.join('\n'),
    tags: {
      context: 'delete-messages', probableCause: 'mass-deletion', humanIntervention: 'necessary',
      suggestedActions: ['run(@@COMMAND@@ --allow-mass-delete @@ENDPOINT@@)'],
    },
  };
}

/** Parses `MASS_DELETE_THRESHOLD` / `--mass-delete-threshold`: a percentage 0-100, or `off` (only the "all of a root" rule). */
export function parseBrakePercent(v: string): number | null | 'invalid' {
  if (v === 'off') return null;
  if (!/^\d{1,3}$/.test(v)) return 'invalid';
  const n = Number(v);
  return n <= 100 ? n : 'invalid';
}
