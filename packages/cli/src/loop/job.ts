import { spawn } from 'node:child_process';
import type { LoopJob } from '@smd/endpoint';

/** Output kept per job: enough for any report; a runaway child cannot exhaust memory. */
const MAX_OUTPUT = 4 * 1024 * 1024;
/** A job stopped by `stop()` that is still running (or has children left) after this long is killed. */
export const STOP_GRACE_MS = 20_000;
/** A job running longer than this is taken for hung (an ssh link that died silently): it is stopped and retried. */
export const JOB_TIMEOUT_MS = 2 * 3600 * 1000;
/** After a stopped program has exited, how long its children get to finish. */
const LEFTOVER_MS = 5000;

export interface JobResult {
  ok: boolean;
  output: string;
  /** stopped by the loop (a signal) or because it ran past JOB_TIMEOUT_MS */
  stopped: 'signal' | 'timeout' | null;
}

/**
 * One smd-pull / smd-push run. The program is looked up on PATH and runs in a process
 * group (and session) of its own: a Ctrl-C on the loop's terminal reaches the loop only,
 * which stops the job with one signal; ssh cannot hang on a password prompt (there is no
 * terminal). `result` resolves once the program has exited; after a stop, once every
 * process of its group is gone too (or was killed), so nothing of the sync keeps writing.
 */
export class RunningJob {
  readonly result: Promise<JobResult>;
  private pid: number | undefined;
  private stopping: 'signal' | 'timeout' | null = null;
  private graceTimer: NodeJS.Timeout | null = null;

  constructor(readonly job: LoopJob, env: NodeJS.ProcessEnv = process.env) {
    this.result = new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let truncated = false;
      const keep = (d: Buffer): void => {
        if (size >= MAX_OUTPUT) { truncated = true; return; }
        chunks.push(d);
        size += d.length;
      };
      let settled = false;
      const timeout = setTimeout(() => { this.stop('SIGTERM', 'timeout'); }, JOB_TIMEOUT_MS);
      const done = (ok: boolean, extra: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timeout);
        const output = Buffer.concat(chunks).toString('utf8') + (truncated ? '\n[output truncated]\n' : '') + extra;
        chunks.length = 0;
        // A finished program has waited for its children; a stopped one may not have.
        void (this.stopping === null ? Promise.resolve() : this.groupGone()).then(() => {
          if (this.graceTimer !== null) clearTimeout(this.graceTimer);
          resolve({ ok, output, stopped: this.stopping });
        });
      };
      let child;
      try {
        child = spawn(job.program, job.args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env });
      } catch (e) {
        done(false, `${job.program}: cannot run: ${(e as Error).message}\n`);
        return;
      }
      this.pid = child.pid;
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      child.once('error', (e) => done(false, `${job.program}: cannot run: ${e.message}\n`));
      // 'close': the process ended AND both pipes are closed and drained.
      child.once('close', (code, signal) => {
        const why = this.stopping === 'timeout' ? `${job.program} ran for more than ${JOB_TIMEOUT_MS / 60_000} minutes: stopped\n`
          : code === 0 || this.stopping !== null ? '' : signal !== null ? `${job.program} killed by ${signal}\n` : '';
        done(code === 0, why);
      });
    });
  }

  /**
   * Asks the program to stop (it aborts its sync cleanly); whatever of its process group
   * is still there after STOP_GRACE_MS is killed. A second call kills at once.
   */
  stop(signal: NodeJS.Signals, why: 'signal' | 'timeout' = 'signal'): void {
    if (this.pid === undefined) return;
    if (this.stopping !== null) { this.killGroup(); return; }
    this.stopping = why;
    try { process.kill(this.pid, signal); } catch { /* already gone */ }
    this.graceTimer = setTimeout(() => this.killGroup(), STOP_GRACE_MS);
  }

  private killGroup(): void {
    if (this.pid === undefined) return;
    try { process.kill(-this.pid, 'SIGKILL'); } catch { /* already gone */ }
  }

  /**
   * Resolves when no process is left in the job's group: after a stop, the program's own
   * children (smd-client, ssh) may outlive it by a moment. Bounded: what is left after
   * LEFTOVER_MS is killed.
   */
  private async groupGone(): Promise<void> {
    if (this.pid === undefined) return;
    const start = Date.now();
    let killed = false;
    for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
      try {
        process.kill(-this.pid, 0);
      } catch {
        return; // ESRCH: the group is empty
      }
      const waited = Date.now() - start;
      if (!killed && waited > LEFTOVER_MS) { this.killGroup(); killed = true; }
      if (waited > LEFTOVER_MS + 1000) return;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
