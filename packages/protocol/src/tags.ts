/**
 * TAGS lines: the machine-readable outcome smd-client/smd-server print on
 * stderr and smd-loop parses. Grammar as upstream's (see protocol.md).
 */
export interface ErrorTags {
  readonly context: string;
  readonly probableCause: string;
  readonly humanIntervention: 'necessary' | 'avoidable';
  /** e.g. `retry`, `run(mv -n a b)`, `display-mail("/abs/path")` */
  readonly suggestedActions?: readonly string[];
}

export interface StatsTags {
  readonly newMails: number;
  readonly delMails: number;
  readonly bytesReceived: number;
  /** Size of the db-file patch received at COMMIT (upstream's name for it). */
  readonly xdeltaReceived: number;
}

/** `TAGS: error::...` exactly as upstream formats it (trailing space when there are no actions). */
export function formatErrorTags(t: ErrorTags): string {
  const base = `TAGS: error::context(${t.context}) probable-cause(${t.probableCause}) human-intervention(${t.humanIntervention}) `;
  const acts = t.suggestedActions ?? [];
  return acts.length > 0 ? `${base}suggested-actions(${acts.join(' ')})` : base;
}

export function formatStatsTags(s: StatsTags): string {
  return `TAGS: stats::new-mails(${s.newMails}), del-mails(${s.delMails}), bytes-received(${s.bytesReceived}), xdelta-received(${s.xdeltaReceived})`;
}

/** Messages a run skipped (they changed during it; the next run takes them). Printed only when N > 0. */
export function formatSkippedTags(skipped: number): string {
  return `TAGS: stats::skipped-mails(${skipped})`;
}

/**
 * Dry-run report of the messages that would have been fetched: their
 * number (upstream listed every name, which made a 5,000-message dry run
 * print a 250,000-character line; the names are in the journal lines).
 */
export function formatTransferredTags(count: number): string {
  return `TAGS: stats::mail-transferred(${count} messages)`;
}

/** True when a TAGS error line says the failure is transient (smd-loop retries these). */
export function isRetryable(tagsLine: string): boolean {
  return tagsLine.includes('human-intervention(avoidable)') && /suggested-actions\([^\n]*\bretry\b/.test(tagsLine);
}

/** A failure that carries its TAGS; what the user reads is `message`. */
export class TaggedError extends Error {
  constructor(message: string, readonly tags: ErrorTags, readonly exitCode: number) {
    super(message);
    this.name = 'TaggedError';
  }
}
