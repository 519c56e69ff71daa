/**
 * What smd-client did to one message, as it tells the wrapper that started
 * it: one `JOURNAL: <JSON>` line on stderr per applied action (protocol.md
 * section 11). The client may run on the other host (smd-push), where it
 * cannot write our ~/.smd/log; the wrapper (smd-pull / smd-push) turns
 * these lines into the run journal.
 */

/**
 * - `new`: a message arrived (fetched from the other side);
 * - `deleted`: a message was removed;
 * - `moved`: a message changed folder (maybe its flags too);
 * - `flags`: same folder, only the flags (the name's `:2,` part) changed;
 * - `copied`: a copy of a message appeared under another name;
 * - `header`: the header was replaced, the body kept;
 * - `replaced`: the whole message was replaced;
 * - `kept`: a change of the other side was not applied, so that a message
 *   the user just touched here is not lost (`note` says why);
 * - `held`: a deletion stopped by the mass-deletion brake.
 */
export type JournalAction = 'new' | 'deleted' | 'moved' | 'flags' | 'copied' | 'header' | 'replaced' | 'kept' | 'held';

export const JOURNAL_ACTIONS: readonly JournalAction[] = ['new', 'deleted', 'moved', 'flags', 'copied', 'header', 'replaced', 'kept', 'held'];

/** One applied action. Texts are UTF-8 (names shown as toUtf8 does, invalid bytes as U+FFFD). */
export interface JournalEntry {
  /** ISO 8601 time at which it was applied (the client's clock). */
  readonly time: string;
  readonly action: JournalAction;
  /** The message's path where the client applied it, relative to that host's home (e.g. `Mail/.Work/cur/1.x:2,S`). */
  readonly path: string;
  /** The mail folder of `path` (`Mail/.Work`). */
  readonly folder: string;
  /** For moved / flags / copied: the path it came from. */
  readonly previous?: string;
  /** For flags (and moves that changed them): the flags before and after (`S` → `FRS`). */
  readonly flags?: { readonly from: string; readonly to: string };
  readonly subject?: string;
  /** The `From:` header. */
  readonly sender?: string;
  /** The `Date:` header. */
  readonly date?: string;
  /** Bytes of the message, when known. */
  readonly size?: number;
  /** Why, for `kept` and `held` (and merges). */
  readonly note?: string;
  /** Set by a dry run: nothing was changed, this is what would have been done. */
  readonly dryRun?: boolean;
}

export const JOURNAL_PREFIX = 'JOURNAL: ';

export function formatJournalLine(e: JournalEntry): string {
  return `${JOURNAL_PREFIX}${JSON.stringify(e)}`;
}

/** The entry of a `JOURNAL:` line, or null for any other line or a malformed one (a peer's log is not trusted). */
export function parseJournalLine(line: string): JournalEntry | null {
  if (!line.startsWith(JOURNAL_PREFIX)) return null;
  let v: unknown;
  try {
    v = JSON.parse(line.slice(JOURNAL_PREFIX.length));
  } catch {
    return null;
  }
  return isJournalEntry(v) ? v : null;
}

const optString = (v: unknown): boolean => v === undefined || typeof v === 'string';

export function isJournalEntry(v: unknown): v is JournalEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  if (typeof e.time !== 'string' || typeof e.path !== 'string' || typeof e.folder !== 'string') return false;
  if (!JOURNAL_ACTIONS.includes(e.action as JournalAction)) return false;
  if (!optString(e.previous) || !optString(e.subject) || !optString(e.sender) || !optString(e.date) || !optString(e.note)) return false;
  if (e.size !== undefined && (typeof e.size !== 'number' || !Number.isFinite(e.size) || e.size < 0)) return false;
  if (e.dryRun !== undefined && typeof e.dryRun !== 'boolean') return false;
  if (e.flags !== undefined) {
    const f = e.flags as Record<string, unknown> | null;
    if (typeof f !== 'object' || f === null || typeof f.from !== 'string' || typeof f.to !== 'string') return false;
  }
  return true;
}
