import { formatErrorTags, type ErrorTags } from './tags.js';
import { formatJournalLine, type JournalEntry } from './journal.js';

/**
 * The stderr log of smd-server / smd-client, in upstream's line format
 * (`INFO: `, `ERROR: `, `WARNING: `, `PROGRESS: `, `TRACE: `, `TAGS: `). The wrappers
 * (smd-pull/push) and smd-loop parse these lines.
 */
export interface SessionLog {
  /** `INFO: ...`, shown only when verbose. */
  info(message: string): void;
  /** `ERROR: ...`, always shown. */
  error(message: string): void;
  /** `WARNING: ...`, always shown: something the user should know that did not fail the run. */
  warn(message: string): void;
  /** `PROGRESS: ...`, shown only when verbose. */
  progress(message: string): void;
  /** A complete `TAGS: ...` line, always shown. */
  tags(line: string): void;
  /** `JOURNAL: {...}`: one applied action (smd-client), always written. */
  journal(entry: JournalEntry): void;
}

/** Journal lines are written in batches of about this many bytes (or after JOURNAL_FLUSH_MS). */
const JOURNAL_BATCH = 64 * 1024;
const JOURNAL_FLUSH_MS = 200;

/** A SessionLog writing lines to a stream (stderr by default). */
export function streamLog(verbose: boolean, out: { write(s: string): unknown } = process.stderr): SessionLog & { flush(): void } {
  // Journal lines (one per message) are batched; any other line flushes them first, so the order is kept.
  let batch = '';
  let timer: NodeJS.Timeout | null = null;
  const flush = (): void => {
    if (timer !== null) { clearTimeout(timer); timer = null; }
    if (batch !== '') { const b = batch; batch = ''; out.write(b); }
  };
  const write = (s: string): void => { flush(); out.write(s); };
  process.once('exit', flush);
  return {
    flush,
    info: (m) => { if (verbose) write(`INFO: ${m}\n`); },
    error: (m) => { write(m.split('\n').map((l) => `ERROR: ${l}\n`).join('')); },
    warn: (m) => { write(m.split('\n').map((l) => `WARNING: ${l}\n`).join('')); },
    progress: (m) => { if (verbose) write(`PROGRESS: ${m}\n`); },
    tags: (l) => { write(`${l}\n`); },
    journal: (e) => {
      batch += `${formatJournalLine(e)}\n`;
      if (batch.length >= JOURNAL_BATCH) flush();
      else if (timer === null) { timer = setTimeout(flush, JOURNAL_FLUSH_MS); timer.unref(); }
    },
  };
}

/** Logs an error the way upstream does: ERROR lines, then the TAGS line. */
export function logFailure(log: SessionLog, message: string, tags: ErrorTags): void {
  log.error(message);
  log.tags(formatErrorTags(tags));
}
