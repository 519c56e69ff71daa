/** smd-loop's pure core: the `~/.smd/loop` file, the schedule and the retry policy (upstream 6.7). */

export class LoopConfigError extends Error {
  override name = 'LoopConfigError';
  constructor(readonly file: string, readonly line: number | null, readonly reason: string) {
    super(line === null ? `${file}: ${reason}` : `${file}:${line}: ${reason}`);
  }
}

export interface LoopEntry {
  /** minutes between pulls (0: never) */
  pull: number;
  /** minutes between pushes (0: never) */
  push: number;
  endpoint: string;
  line: number;
}

export type LoopJobKind = 'pull' | 'push';

export interface LoopJob {
  kind: LoopJobKind;
  endpoint: string;
  /** program and arguments: `smd-pull -s <endpoint>` / `smd-push -s <endpoint>` */
  program: 'smd-pull' | 'smd-push';
  args: string[];
  /** identity of the job in the failure set */
  key: string;
}

/**
 * Parses `~/.smd/loop`: lines whose first non-blank character is `#` and blank lines are
 * ignored; other lines are `pull-minutes push-minutes endpoint`. A file where nothing is
 * ever scheduled is an error (upstream would spin without sleeping, B9).
 */
export function parseLoopConfig(text: string, file: string): LoopEntry[] {
  const entries: LoopEntry[] = [];
  const lines = text.split('\n');
  for (let k = 0; k < lines.length; k++) {
    const l = lines[k].trim();
    if (l === '' || l.startsWith('#')) continue;
    const f = l.split(/\s+/);
    if (f.length !== 3) throw new LoopConfigError(file, k + 1, `expected "pull-minutes push-minutes endpoint", got "${l}"`);
    const [p, q, endpoint] = f;
    if (!/^[0-9]+$/.test(p) || !/^[0-9]+$/.test(q)) throw new LoopConfigError(file, k + 1, `minutes must be whole numbers (0 disables): "${l}"`);
    if (endpoint.includes('/') || endpoint === '.' || endpoint === '..') throw new LoopConfigError(file, k + 1, `invalid endpoint name "${endpoint}"`);
    entries.push({ pull: Number(p), push: Number(q), endpoint, line: k + 1 });
  }
  if (!entries.some((e) => e.pull > 0 || e.push > 0)) throw new LoopConfigError(file, null, 'nothing to do: no line schedules a pull or a push (all frequencies are 0)');
  return entries;
}

function job(kind: LoopJobKind, endpoint: string): LoopJob {
  const program = kind === 'pull' ? 'smd-pull' : 'smd-push';
  return { kind, endpoint, program, args: ['-s', endpoint], key: `${program} -s ${endpoint}` };
}

/** Jobs of pass `t` (t starts at 1): per line in file order, pull (when t mod pull == 0) then push. */
export function jobsForPass(entries: readonly LoopEntry[], t: number): LoopJob[] {
  const jobs: LoopJob[] = [];
  for (const e of entries) {
    if (e.pull > 0 && t % e.pull === 0) jobs.push(job('pull', e.endpoint));
    if (e.push > 0 && t % e.push === 0) jobs.push(job('push', e.endpoint));
  }
  return jobs;
}

export interface PassPlan {
  jobs: LoopJob[];
  /** sleep one minute after this pass: once anything has run (this pass or before) */
  sleepAfter: boolean;
}

/**
 * Upstream's schedule: passes before the first job ever runs are not slept, so the first
 * scheduled job starts immediately; afterwards every pass is followed by one minute.
 */
export function planPass(entries: readonly LoopEntry[], t: number, ranBefore: boolean): PassPlan {
  const jobs = jobsForPass(entries, t);
  return { jobs, sleepAfter: ranBefore || jobs.length > 0 };
}

/** The output asks for a retry: a TAGS line with both `human-intervention(avoidable)` and `suggested-actions(retry)`. */
export function isTransientFailure(output: string): boolean {
  for (const line of output.split('\n')) {
    if (line.includes('TAGS:') && line.includes('human-intervention(avoidable)') && /suggested-actions\([^\n]*\bretry\b/.test(line)) return true;
  }
  return false;
}

export type FailureDecision = 'retry' | 'fail';

/**
 * A failed job gets one more chance (at its next slot) when its output asks for a retry
 * and it is not already in the failure set; otherwise it is reported. Pure: the caller
 * adds the key to its set on 'retry' and removes it on the next success.
 */
export function decideFailure(job: Pick<LoopJob, 'key'>, output: string, failures: ReadonlySet<string>): FailureDecision {
  return isTransientFailure(output) && !failures.has(job.key) ? 'retry' : 'fail';
}
