/**
 * smd-loop's schedule: which job is due when, the backoff of transient failures, and the
 * endpoints paused until a human fixes them. Pure: the wall-clock time (ms since the
 * epoch) is a parameter, and every step returns a new schedule plus what happened (the
 * shell logs it and tells people).
 *
 * Slots are on a wall-clock grid, so the time jobs take does not shift them, and a job
 * whose slots were missed (the machine slept, a job ran long) runs once, at once. The grid
 * keeps upstream's phase: with `3 10 default` the first pull runs at start, the first push
 * 7 minutes later (upstream's pass counter reaches 10 then).
 */
import { loopJob, type LoopEntry, type LoopJob } from './loop.js';
import { sameProblem, type JobOutcome, type Problem } from './loop-outcome.js';

/** Transient failures are retried after 1, 2, 4, ... minutes, at most this many (or the job's period if longer). */
export const BACKOFF_CAP_MINUTES = 16;
/** A paused endpoint's failed job is tried again this often (or at its period if longer). */
export const PROBE_MINUTES = 30;
/** A wall clock that went back by more than this was set back: the schedule moves with it. */
const CLOCK_SET_BACK_MS = 2000;

export interface ScheduledJob {
  readonly job: LoopJob;
  /** ms between two slots */
  readonly period: number;
  /** one slot of the grid: slots are anchor + k * period */
  readonly anchor: number;
  /** when it runs next (ignored while its endpoint is paused) */
  readonly due: number;
  /** transient failures in a row (0: the last try worked) */
  readonly tries: number;
}

/** An endpoint paused by a failure that needs a human. */
export interface Paused {
  /** index of the failed job, the one tried again (the probe) */
  readonly job: number;
  readonly problem: Problem;
  readonly since: number;
  readonly nextProbe: number;
}

export interface LoopSchedule {
  /** length of a minute in ms */
  readonly minute: number;
  /** in upstream's order: lines of the file in order, the pull of a line before its push */
  readonly jobs: readonly ScheduledJob[];
  /** paused endpoints, by name */
  readonly paused: ReadonlyMap<string, Paused>;
  /** the latest wall-clock time seen */
  readonly seen: number;
}

/** What a finished job changed, for the log and the people. */
export type LoopNote =
  | { kind: 'succeeded'; job: LoopJob }
  /** it worked again after `tries` transient failures */
  | { kind: 'recovered'; job: LoopJob; tries: number }
  /** the probe of a paused endpoint worked: the endpoint syncs again */
  | { kind: 'resolved'; job: LoopJob; problem: Problem; since: number }
  /** the lock was busy: the slot is skipped */
  | { kind: 'busy'; job: LoopJob; next: number }
  /** a transient failure; `first`: the first of a streak (the only one logged in full) */
  | { kind: 'transient'; job: LoopJob; tries: number; next: number; first: boolean }
  /** a failure that needs a human paused the endpoint, or a paused endpoint has a new problem: tell people */
  | { kind: 'paused'; job: LoopJob; problem: Problem; next: number }
  /** the probe of a paused endpoint did not settle it (same problem, busy, transient) */
  | { kind: 'still-paused'; job: LoopJob; next: number };

/** The schedule at start (`now`), `minute` ms per minute. */
export function startSchedule(entries: readonly LoopEntry[], minute: number, now: number): LoopSchedule {
  const periods = entries.flatMap((e) => [e.pull, e.push]).filter((p) => p > 0);
  const first = Math.min(...periods);
  const jobs: ScheduledJob[] = [];
  for (const e of entries) {
    for (const [kind, p] of [['pull', e.pull], ['push', e.push]] as const) {
      if (p <= 0) continue;
      // Upstream runs a job at passes p, 2p, ... and sleeps only after its first job (pass `first`).
      const anchor = now + (p - first) * minute;
      jobs.push({ job: loopJob(kind, e.endpoint), period: p * minute, anchor, due: anchor, tries: 0 });
    }
  }
  return { minute, jobs, paused: new Map(), seen: now };
}

/**
 * Index of the job to run now, or null: the one due the longest, in
 * upstream's order among those due at the same time (a pass's pull before
 * its push). Not simply the first due: when jobs take longer than a slot,
 * the first lines would be due again at every pick and starve the others.
 */
export function dueJob(s: LoopSchedule, now: number): number | null {
  let best: number | null = null;
  let bestAt = Infinity;
  for (let i = 0; i < s.jobs.length; i++) {
    const j = s.jobs[i];
    const p = s.paused.get(j.job.endpoint);
    const at = p === undefined ? j.due : p.job === i ? p.nextProbe : Infinity;
    if (at <= now && at < bestAt) { best = i; bestAt = at; }
  }
  return best;
}

/** When something is due next (the shell sleeps until then, or until woken). */
export function nextWake(s: LoopSchedule): number {
  let t = Infinity;
  for (let i = 0; i < s.jobs.length; i++) {
    const j = s.jobs[i];
    const p = s.paused.get(j.job.endpoint);
    if (p === undefined) t = Math.min(t, j.due);
    else if (p.job === i) t = Math.min(t, p.nextProbe);
  }
  return t;
}

/** The first slot of `j` strictly after `now`. */
export function nextSlot(j: Pick<ScheduledJob, 'anchor' | 'period'>, now: number): number {
  if (now < j.anchor) return j.anchor;
  return j.anchor + (Math.floor((now - j.anchor) / j.period) + 1) * j.period;
}

/** Delay before try `tries` + 1 after `tries` transient failures in a row. */
export function backoff(tries: number, period: number, minute: number): number {
  const cap = Math.max(period, BACKOFF_CAP_MINUTES * minute);
  return Math.min(minute * 2 ** Math.min(Math.max(tries - 1, 0), 30), cap);
}

/** How often a paused endpoint's failed job is tried again. */
export function probeInterval(period: number, minute: number): number {
  return Math.max(period, PROBE_MINUTES * minute);
}

/**
 * Notes the wall-clock time. A clock set back (by more than a moment) moves the whole
 * schedule back with it, or nothing would run until the clock caught up again.
 */
export function observeClock(s: LoopSchedule, now: number): LoopSchedule {
  if (now >= s.seen) return now === s.seen ? s : { ...s, seen: now };
  if (s.seen - now <= CLOCK_SET_BACK_MS) return s;
  const d = now - s.seen;
  const jobs = s.jobs.map((j) => ({ ...j, anchor: j.anchor + d, due: j.due + d }));
  const paused = new Map([...s.paused].map(([e, p]) => [e, { ...p, since: p.since + d, nextProbe: p.nextProbe + d }]));
  return { ...s, jobs, paused, seen: now };
}

/**
 * A wake-up (SIGUSR1, `smd-loop --now [ENDPOINT]`): the jobs of `endpoint` (every
 * endpoint when null) are due now; a paused endpoint has its failed job tried now. Unknown
 * endpoints change nothing.
 */
export function requestNow(s: LoopSchedule, endpoint: string | null, now: number): LoopSchedule {
  const wanted = (e: string): boolean => endpoint === null || e === endpoint;
  const jobs = s.jobs.map((j) => (wanted(j.job.endpoint) && !s.paused.has(j.job.endpoint) ? { ...j, due: Math.min(j.due, now) } : j));
  const paused = new Map([...s.paused].map(([e, p]) => [e, wanted(e) ? { ...p, nextProbe: Math.min(p.nextProbe, now) } : p]));
  return { ...s, jobs, paused };
}

/** The schedule after job `i` finished at `now` with `outcome`. */
export function recordOutcome(s: LoopSchedule, i: number, outcome: JobOutcome, now: number): { schedule: LoopSchedule; note: LoopNote } {
  const j = s.jobs[i];
  const ep = j.job.endpoint;
  const paused = s.paused.get(ep);
  const withJob = (changed: Partial<ScheduledJob>): ScheduledJob[] => s.jobs.map((x, k) => (k === i ? { ...x, ...changed } : x));
  const withPaused = (p: Paused | null): Map<string, Paused> => {
    const m = new Map(s.paused);
    if (p === null) m.delete(ep);
    else m.set(ep, p);
    return m;
  };
  const probe = probeInterval(j.period, s.minute);

  if (paused !== undefined) {
    if (outcome.kind === 'ok') {
      // Fixed. The endpoint's other jobs kept their last due time: missed slots run at once.
      return { schedule: { ...s, jobs: withJob({ due: nextSlot(j, now), tries: 0 }), paused: withPaused(null) }, note: { kind: 'resolved', job: j.job, problem: paused.problem, since: paused.since } };
    }
    if (outcome.kind === 'human' && !sameProblem(outcome.problem, paused.problem)) {
      const next = now + probe;
      return {
        schedule: { ...s, paused: withPaused({ job: i, problem: outcome.problem, since: now, nextProbe: next }) },
        note: { kind: 'paused', job: j.job, problem: outcome.problem, next },
      };
    }
    // Busy: the probe is only postponed to the job's next slot; otherwise to the next probe.
    const next = outcome.kind === 'busy' ? Math.min(nextSlot(j, now), now + probe) : now + probe;
    return { schedule: { ...s, paused: withPaused({ ...paused, nextProbe: next }) }, note: { kind: 'still-paused', job: j.job, next } };
  }

  switch (outcome.kind) {
    case 'ok': {
      const schedule = { ...s, jobs: withJob({ due: nextSlot(j, now), tries: 0 }) };
      return { schedule, note: j.tries > 0 ? { kind: 'recovered', job: j.job, tries: j.tries } : { kind: 'succeeded', job: j.job } };
    }
    case 'busy': {
      const next = nextSlot(j, now);
      return { schedule: { ...s, jobs: withJob({ due: next }) }, note: { kind: 'busy', job: j.job, next } };
    }
    case 'transient': {
      const tries = j.tries + 1;
      const next = now + backoff(tries, j.period, s.minute);
      return { schedule: { ...s, jobs: withJob({ due: next, tries }) }, note: { kind: 'transient', job: j.job, tries, next, first: tries === 1 } };
    }
    case 'human': {
      const next = now + probe;
      return {
        schedule: { ...s, jobs: withJob({ tries: 0 }), paused: withPaused({ job: i, problem: outcome.problem, since: now, nextProbe: next }) },
        note: { kind: 'paused', job: j.job, problem: outcome.problem, next },
      };
    }
  }
}
