import { formatErrorTags, type ErrorTags } from './tags.js';

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
}

/** A SessionLog writing lines to a stream (stderr by default). */
export function streamLog(verbose: boolean, out: { write(s: string): unknown } = process.stderr): SessionLog {
  return {
    info: (m) => { if (verbose) out.write(`INFO: ${m}\n`); },
    error: (m) => { for (const l of m.split('\n')) out.write(`ERROR: ${l}\n`); },
    warn: (m) => { for (const l of m.split('\n')) out.write(`WARNING: ${l}\n`); },
    progress: (m) => { if (verbose) out.write(`PROGRESS: ${m}\n`); },
    tags: (l) => { out.write(`${l}\n`); },
  };
}

/** Logs an error the way upstream does: ERROR lines, then the TAGS line. */
export function logFailure(log: SessionLog, message: string, tags: ErrorTags): void {
  log.error(message);
  log.tags(formatErrorTags(tags));
}
