/**
 * smd-loop [-v] [-t] (upstream 6.7)
 *
 * Runs smd-pull / smd-push periodically as configured in ~/.smd/loop
 * (`pull-minutes push-minutes endpoint` per line). -v echoes the log on stdout; -t only
 * writes the template of ~/.smd/loop when it is missing and exits 0.
 *
 * The programs are looked up on PATH. A failed job whose output carries a TAGS line with
 * human-intervention(avoidable) and suggested-actions(retry) gets one more chance at its
 * next slot; any other failure prints the output and ends the loop with exit status 1.
 *
 * Environment: SMD_LOOP_MINUTE_SECONDS — length of a "minute" in seconds (default 60;
 * tests use a fraction of a second).
 *
 * Log: ~/.smd/log/loop.log, truncated at start, `<ISO date>: <message>` lines; the
 * output of a job is logged as `output: <line>` lines.
 *
 * Meant to run for days: every pass reuses the same few objects, every child's pipes are
 * closed when it ends, the log is opened and closed per line, and the only state kept
 * across passes is the pass counter and the (bounded) set of jobs given a second chance.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  SmdHome, Lock, LockBusyError, LOOP_LOCK_PROGRAMS, loopTemplate, writeTemplate, parseLoopConfig, LoopConfigError,
  planPass, decideFailure, type LoopJob,
} from '@smd/endpoint';
import { parseCommandLine } from '../args/index.js';
import { SMD_LOOP } from '../args/specs.js';

/** Output kept per job: enough for any report; a runaway child cannot exhaust memory. */
const MAX_OUTPUT = 4 * 1024 * 1024;

interface JobResult {
  ok: boolean;
  output: string;
}

function runJob(job: LoopJob, abort: AbortSignal): Promise<JobResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    const keep = (d: Buffer): void => {
      if (size >= MAX_OUTPUT) { truncated = true; return; }
      chunks.push(d);
      size += d.length;
    };
    let settled = false;
    const done = (ok: boolean, extra = ''): void => {
      if (settled) return;
      settled = true;
      const out = Buffer.concat(chunks).toString('utf8') + (truncated ? '\n[output truncated]\n' : '') + extra;
      chunks.length = 0;
      resolve({ ok, output: out });
    };
    let child;
    try {
      child = spawn(job.program, job.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      done(false, `${job.program}: ${(e as Error).message}\n`);
      return;
    }
    // Killing the loop stops the running job too (smd-pull/push release their lock on SIGTERM).
    const onAbort = (): void => { child.kill('SIGTERM'); };
    abort.addEventListener('abort', onAbort, { once: true });
    child.once('close', () => abort.removeEventListener('abort', onAbort));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', (e) => done(false, `${job.program}: cannot run: ${e.message}\n`));
    // 'close': the process ended AND both pipes are closed and drained.
    child.once('close', (code, signal) => done(code === 0, code === 0 ? '' : signal !== null ? `${job.program} killed by ${signal}\n` : ''));
  });
}

export async function main(argv: string[]): Promise<number> {
  const args = await parseCommandLine(SMD_LOOP, argv);
  if (typeof args === 'number') return args;
  const verbose = args.flag('verbose');
  const templateOnly = args.flag('template-only');

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
    writeTemplate(home.loop, loopTemplate());
    process.stdout.write(`No config file found: a template was written to ${home.loop}\n`);
    if (templateOnly) return 0;
    process.stdout.write(`Edit it and run smd-loop again.\n`);
    return 1;
  }
  if (templateOnly) return 0;

  let entries;
  try {
    entries = parseLoopConfig(readFileSync(home.loop, 'utf8'), home.loop);
  } catch (e) {
    if (e instanceof LoopConfigError) { process.stderr.write(`smd-loop: ${e.message}\n`); return 1; }
    throw e;
  }

  let lock: Lock;
  try {
    lock = Lock.acquire(home.loopLock, { programs: LOOP_LOCK_PROGRAMS, notice: (m) => process.stdout.write(`${m}\n`) });
  } catch (e) {
    if (e instanceof LockBusyError) {
      process.stderr.write(`smd-loop: another smd-loop is running (pid ${e.pid}); if this is not the case, remove ${e.path}\n`);
      return 1;
    }
    throw e;
  }

  const logFile = home.loopLog;
  writeFileSync(logFile, '', { mode: 0o600 });
  const log = (msg: string): void => {
    const line = `${new Date().toISOString()}: ${msg}\n`;
    try { appendFileSync(logFile, line); } catch { /* a full disk must not kill the loop */ }
    if (verbose) process.stdout.write(line);
  };
  const logOutput = (output: string): void => {
    for (const l of output.split('\n')) if (l !== '') log(`output: ${l}`);
  };

  const abort = new AbortController();
  let killed = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    killed = true;
    log(`killed (${sig})`);
    abort.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  log(`smd-loop starting (pid ${process.pid}, ${entries.length} endpoint line(s), minute = ${minuteSeconds} s)`);
  const failures = new Set<string>();
  let ranBefore = false;
  let code = 0;
  try {
    for (let t = 1; !killed; t++) {
      const plan = planPass(entries, t, ranBefore);
      for (const job of plan.jobs) {
        if (killed) break;
        log(`running ${job.key}`);
        const r = await runJob(job, abort.signal);
        if (killed) break;
        if (r.ok) {
          log(`${job.key} succeeded`);
          logOutput(r.output);
          process.stdout.write(r.output);
          failures.delete(job.key);
          continue;
        }
        logOutput(r.output);
        if (decideFailure(job, r.output, failures) === 'retry') {
          failures.add(job.key);
          log(`${job.key} failed with a transient error: it will be retried at its next slot`);
          continue;
        }
        log(`${job.key} failed: giving up`);
        process.stdout.write(r.output);
        process.stderr.write(`smd-loop: ${job.key} failed, see ${logFile}\n`);
        code = 1;
        return code;
      }
      ranBefore ||= plan.jobs.length > 0;
      if (plan.sleepAfter && !killed) {
        try {
          await sleep(minuteSeconds * 1000, undefined, { signal: abort.signal });
        } catch { /* aborted by a signal */ }
      }
    }
    return 1; // killed
  } finally {
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
    lock.release();
  }
}
