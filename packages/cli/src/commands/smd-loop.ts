/**
 * smd-loop [-v] [-t]          (upstream 6.7, made a service that runs for days)
 * smd-loop --now [ENDPOINT]   wakes the running smd-loop
 *
 * Runs smd-pull / smd-push (looked up on PATH) as configured in ~/.smd/loop
 * (`pull-minutes push-minutes endpoint` per line), on a wall-clock schedule
 * (@smd/endpoint's loop-schedule: the decisions; this file: processes, signals, files):
 * - a busy lock (a manual smd-pull) skips the slot; a transient failure (TAGS
 *   human-intervention(avoidable) + suggested-actions(retry)) is retried with a capped
 *   backoff, forever, logged once per streak; any other failure needs a human: that
 *   endpoint is paused (the others go on), the hooks of ~/.smd/hooks/needs-human.d/ and
 *   notify-send tell about it once, and its failed job is tried again every 30 minutes
 *   until it works;
 * - SIGUSR1 or `smd-loop --now [ENDPOINT]`: sync now, then back to the schedule;
 * - SIGTERM / SIGINT / SIGHUP: the running job is stopped (it aborts cleanly), exit 0.
 *
 * -v echoes the log on stdout; -t only writes the template of ~/.smd/loop when it is
 * missing and exits 0. Environment: SMD_LOOP_MINUTE_SECONDS — length of a "minute" in
 * seconds (default 60; tests use a fraction of a second).
 *
 * Log: ~/.smd/log/loop.log, appended, `<ISO date>: <message>` lines; the output of a job
 * is logged as `output: <line>` lines.
 *
 * Memory stays flat: the state kept is the schedule (a few numbers per job), every child's
 * pipes are closed when it ends, the log is opened and closed per line.
 */
// First: the SIGUSR1 listener (see there), before the other modules load.
import { onWakeSignal } from '../loop/wake-signal.js';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import {
  SmdHome, Lock, LockBusyError, LOOP_LOCK_PROGRAMS, loopTemplate, writeTemplate, parseLoopConfig, LoopConfigError,
  startSchedule, observeClock, requestNow, dueJob, nextWake, recordOutcome, classifyJob, probeInterval,
  type LoopEntry, type LoopNote, type JobOutcome,
} from '@smd/endpoint';
import { parseCommandLine } from '../args/index.js';
import { SMD_LOOP } from '../args/specs.js';
import { RunningJob } from '../loop/job.js';
import { requestWake, takeRequests } from '../loop/wake.js';
import { tellHuman } from '../loop/notify.js';

/** Longest sleep: Node's timers stop while the machine is suspended, the wall clock does not; this bounds how late an overdue slot runs after a resume. */
const MAX_SLEEP_MS = 10_000;

/** A sleep that a signal cuts short. */
class Alarm {
  private wake: (() => void) | null = null;
  private rung = false;

  sleep(ms: number): Promise<void> {
    if (this.rung) { this.rung = false; return Promise.resolve(); }
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.wake = null; resolve(); }, ms);
      this.wake = () => { clearTimeout(timer); this.wake = null; resolve(); };
    });
  }

  ring(): void {
    if (this.wake !== null) this.wake();
    else this.rung = true;
  }
}

export async function main(argv: string[]): Promise<number> {
  const args = await parseCommandLine(SMD_LOOP, argv);
  if (typeof args === 'number') return args;
  const verbose = args.flag('verbose');
  const templateOnly = args.flag('template-only');
  const now = args.flag('now');
  const nowEndpoint = args.args[0] ?? null;
  if (nowEndpoint !== null && !now) {
    process.stderr.write(`smd-loop: ${nowEndpoint}: an ENDPOINT is only taken with --now\nTry 'smd-loop --help'.\n`);
    return 1;
  }

  const minuteEnv = process.env.SMD_LOOP_MINUTE_SECONDS;
  const minuteSeconds = minuteEnv === undefined || minuteEnv === '' ? 60 : Number(minuteEnv);
  if (!Number.isFinite(minuteSeconds) || minuteSeconds < 0) {
    process.stderr.write(`smd-loop: SMD_LOOP_MINUTE_SECONDS must be a non-negative number of seconds, not "${minuteEnv}"\n`);
    return 1;
  }

  let home: SmdHome;
  try {
    home = SmdHome.fromEnv();
    home.ensure();
  } catch (e) {
    process.stderr.write(`smd-loop: ${(e as Error).message}\n`);
    return 1;
  }

  if (!existsSync(home.loop)) {
    if (now) { process.stderr.write(`smd-loop: ${home.loop} does not exist: no smd-loop can be running\n`); return 1; }
    writeTemplate(home.loop, loopTemplate());
    process.stdout.write(`No config file found: a template was written to ${home.loop}\n`);
    if (templateOnly) return 0;
    process.stdout.write(`Edit it and run smd-loop again.\n`);
    return 1;
  }
  if (templateOnly) return 0;

  let entries: LoopEntry[];
  try {
    entries = parseLoopConfig(readFileSync(home.loop, 'utf8'), home.loop);
  } catch (e) {
    if (e instanceof LoopConfigError) { process.stderr.write(`smd-loop: ${e.message}\n`); return 1; }
    throw e;
  }

  if (now) return wakeRunningLoop(home, entries, nowEndpoint);
  return runLoop(home, entries, Math.max(1, Math.round(minuteSeconds * 1000)), verbose);
}

/** `smd-loop --now [ENDPOINT]`. */
async function wakeRunningLoop(home: SmdHome, entries: LoopEntry[], endpoint: string | null): Promise<number> {
  if (endpoint !== null && !entries.some((e) => e.endpoint === endpoint && (e.pull > 0 || e.push > 0))) {
    process.stderr.write(`smd-loop: ${home.loop} schedules nothing for the endpoint "${endpoint}"\n`);
    return 1;
  }
  const r = await requestWake(home, endpoint);
  if (!r.ok) { process.stderr.write(`smd-loop: ${r.message}\n`); return 1; }
  process.stdout.write(`smd-loop (pid ${r.pid}) syncs ${endpoint ?? 'every endpoint'} now; see ${home.loopLog}\n`);
  return 0;
}

async function runLoop(home: SmdHome, entries: LoopEntry[], minute: number, verbose: boolean): Promise<number> {
  let lock: Lock;
  try {
    lock = Lock.acquire(home.loopLock, { programs: LOOP_LOCK_PROGRAMS, notice: (m) => process.stdout.write(`${m}\n`), releaseAtExit: false });
  } catch (e) {
    if (e instanceof LockBusyError) {
      process.stderr.write(`smd-loop: another smd-loop is running (pid ${e.pid}); if this is not the case, remove ${e.path}\n`);
      return 1;
    }
    throw e;
  }
  const release = (): void => lock.release();
  process.on('exit', release);
  // A reader of our stdout that went away (a closed pipe) must not end the loop.
  process.stdout.on('error', () => undefined);

  const logFile = home.loopLog;
  const log = (msg: string): void => {
    const line = `${new Date().toISOString()}: ${msg}\n`;
    try { appendFileSync(logFile, line, { mode: 0o600 }); } catch { /* a full disk must not kill the loop */ }
    if (verbose) process.stdout.write(line);
  };
  const logOutput = (output: string): void => {
    for (const l of output.split('\n')) if (l !== '') log(`output: ${l}`);
  };
  const at = (t: number): string => new Date(t).toISOString();

  const alarm = new Alarm();
  const requests: (string | null)[] = [];
  takeRequests(home.loopRequests); // left by a --now while no loop ran: the start syncs anyway
  const wokenEarly = onWakeSignal(() => {
    const r = takeRequests(home.loopRequests);
    requests.push(...(r.length > 0 ? r : [null]));
    alarm.ring();
  });
  if (wokenEarly) requests.push(null);

  let stopping: NodeJS.Signals | null = null;
  let running: RunningJob | null = null;
  const onStop = (sig: NodeJS.Signals): void => {
    if (stopping === null) {
      stopping = sig;
      log(`stopping (${sig})${running !== null ? `: ${running.job.key} is asked to stop` : ''}`);
    } else log(`${sig} again: killing ${running !== null ? running.job.key : 'nothing'}`);
    running?.stop(sig === 'SIGINT' ? 'SIGINT' : 'SIGTERM');
    alarm.ring();
  };
  const stopSignals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  for (const s of stopSignals) process.on(s, onStop);

  const report = async (note: LoopNote, output: string, outcome: JobOutcome, period: number): Promise<void> => {
    const key = note.job.key;
    const ep = note.job.endpoint;
    switch (note.kind) {
      case 'succeeded':
      case 'recovered':
      case 'resolved':
        log(note.kind === 'succeeded' ? `${key} succeeded`
          : note.kind === 'recovered' ? `${key} succeeded again after ${note.tries} failed ${note.tries === 1 ? 'try' : 'tries'} (transient errors)`
            : `${key} succeeded: ${ep} no longer needs a human (paused since ${at(note.since)}), its schedule resumes`);
        logOutput(output);
        process.stdout.write(output);
        return;
      case 'busy':
        log(`${key} skipped: another smd-pull or smd-push holds ${home.lock}; next try at ${at(note.next)}`);
        return;
      case 'transient':
        // Once per streak: the rest of the streak is quiet until it works again.
        if (!note.first) return;
        logOutput(output);
        log(`${key} failed with a transient error; retried with a growing delay (next try at ${at(note.next)}), logged again when it works`);
        return;
      case 'still-paused':
        log(`${key} still fails${outcome.kind === 'human' ? '' : ` (${outcome.kind})`}: ${ep} stays paused, next check at ${at(note.next)}`);
        return;
      case 'paused': {
        logOutput(output);
        const every = Math.round(probeInterval(period, minute) / minute);
        log(`${key} failed and needs a human: ${ep} is paused (other endpoints go on); checked again every ${every} minutes `
          + `(next at ${at(note.next)}) or now with smd-loop --now ${ep}`);
        process.stdout.write(output);
        process.stderr.write(`smd-loop: ${ep} needs a human: ${note.problem.message.split('\n').pop()}; its syncs are paused, see ${logFile}\n`);
        await tellHuman(home, ep, note.problem, log);
        return;
      }
    }
  };

  log(`smd-loop starting (pid ${process.pid}, ${entries.length} endpoint line(s), minute = ${minute / 1000} s)`);
  let schedule = startSchedule(entries, minute, Date.now());
  try {
    while (stopping === null) {
      const t = Date.now();
      schedule = observeClock(schedule, t);
      for (let r = requests.shift(); r !== undefined; r = requests.shift()) {
        if (r !== null && !schedule.jobs.some((j) => j.job.endpoint === r)) { log(`woken for ${r}, which ${home.loop} does not schedule: ignored`); continue; }
        log(`woken: syncing ${r ?? 'every endpoint'} now`);
        schedule = requestNow(schedule, r, t);
      }
      const i = dueJob(schedule, t);
      if (i === null) {
        await alarm.sleep(Math.min(Math.max(nextWake(schedule) - t, 0), MAX_SLEEP_MS));
        continue;
      }
      const job = schedule.jobs[i].job;
      log(`running ${job.key}`);
      running = new RunningJob(job);
      const r = await running.result;
      running = null;
      if (r.stopped === 'signal') {
        logOutput(r.output);
        log(`${job.key} stopped`);
        break;
      }
      const outcome: JobOutcome = r.stopped === 'timeout' ? { kind: 'transient' } : classifyJob(r.ok, r.output);
      const step = recordOutcome(schedule, i, outcome, Date.now());
      schedule = step.schedule;
      await report(step.note, r.output, outcome, schedule.jobs[i].period);
    }
    log(`smd-loop stopped (${stopping ?? 'signal'})`);
    return 0;
  } finally {
    onWakeSignal(null);
    for (const s of stopSignals) process.removeListener(s, onStop);
    process.removeListener('exit', release);
    lock.release();
  }
}
