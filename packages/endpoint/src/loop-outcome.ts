/**
 * What the output of a finished `smd-pull -s` / `smd-push -s` means for smd-loop: it
 * worked, the lock was busy, a transient failure worth retrying, or a problem that needs a
 * human. Pure: reads the text the job printed.
 */

/** A failure that needs a human, as reported to the hook and the desktop. */
export interface Problem {
  /** the error TAGS of the output without the `TAGS: ` prefix, or '' when there is none */
  tags: string;
  /** the ERROR lines of the output (or its last lines when there is none), for people */
  message: string;
}

export type JobOutcome =
  | { kind: 'ok' }
  /** another smd-pull/smd-push (or smd-uniform-names, smd-check-conf) holds `~/.smd/lock` */
  | { kind: 'busy' }
  /** TAGS with `human-intervention(avoidable)` and `suggested-actions(retry)`: try again later */
  | { kind: 'transient' }
  | { kind: 'human'; problem: Problem };

/** Longest message kept for a problem (the whole output is in loop.log). */
const MAX_MESSAGE = 2000;

/** The output asks for a retry: a TAGS line with both `human-intervention(avoidable)` and `suggested-actions(retry)`. */
export function isTransientFailure(output: string): boolean {
  return tagLines(output).some((t) => t.includes('human-intervention(avoidable)') && /suggested-actions\([^\n]*\bretry\b/.test(t));
}

/** The output says the sync lock is held by another instance (`error::context(locking)`). */
export function isLockBusy(output: string): boolean {
  return tagLines(output).some((t) => t.includes('error::context(locking)'));
}

/** Classifies a finished job from its exit status and output. */
export function classifyJob(succeeded: boolean, output: string): JobOutcome {
  if (succeeded) return { kind: 'ok' };
  if (isLockBusy(output)) return { kind: 'busy' };
  if (isTransientFailure(output)) return { kind: 'transient' };
  return { kind: 'human', problem: problemOf(output) };
}

/** The problem a failed job's output reports. */
export function problemOf(output: string): Problem {
  const tags = tagLines(output).find((t) => t.startsWith('error::')) ?? '';
  const lines = output.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.includes('TAGS:'));
  const errors = lines.filter((l) => l.includes('ERROR'));
  let message = (errors.length > 0 ? errors : lines.slice(-3)).join('\n');
  if (message.length > MAX_MESSAGE) message = `${message.slice(0, MAX_MESSAGE)}...`;
  return { tags, message: message === '' ? 'failed without a message' : message };
}

/**
 * Two reports are the same problem when their TAGS are the same (the message may carry
 * varying details); without TAGS, when their messages are.
 */
export function sameProblem(a: Problem, b: Problem): boolean {
  return a.tags !== '' || b.tags !== '' ? a.tags === b.tags : a.message === b.message;
}

/** The text after `TAGS: ` of every TAGS line (prefixes like `default: smd-client@localhost: ` dropped). */
function tagLines(output: string): string[] {
  const out: string[] = [];
  for (const line of output.split('\n')) {
    const k = line.indexOf('TAGS: ');
    if (k >= 0) out.push(line.slice(k + 'TAGS: '.length).trim());
  }
  return out;
}
