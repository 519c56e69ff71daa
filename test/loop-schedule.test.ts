/**
 * smd-loop's pure core, without I/O: the loop file, the wall-clock schedule, backoff, the
 * paused-endpoint state machine, and what a job's output means.
 */
import t from 'tap';
import {
  parseLoopConfig, LoopConfigError, startSchedule, dueJob, nextWake, nextSlot, backoff, observeClock, requestNow,
  recordOutcome, classifyJob, problemOf, sameProblem, isTransientFailure, isLockBusy, BACKOFF_CAP_MINUTES, PROBE_MINUTES,
  type LoopSchedule, type JobOutcome, type LoopNote, type LoopEntry,
} from '@smd/endpoint';

const M = 60_000;
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const entries = (text: string): LoopEntry[] => parseLoopConfig(text, 'loop');
const keyOf = (s: LoopSchedule, i: number | null): string | null => (i === null ? null : s.jobs[i].job.key);

/**
 * Runs the schedule from T0 to `until`: every job takes `duration(key)` ms and ends with
 * `outcome(key, start)`; between jobs the clock jumps to the next wake-up. Returns the
 * starts (minutes after T0, rounded to 1/1000) with the jobs' keys, and the notes.
 */
function simulate(s0: LoopSchedule, until: number, duration: (key: string) => number = () => 0, outcome: (key: string, start: number) => JobOutcome = () => ({ kind: 'ok' })): { runs: [number, string][]; notes: LoopNote[]; schedule: LoopSchedule } {
  let s = s0;
  let now = T0;
  const runs: [number, string][] = [];
  const notes: LoopNote[] = [];
  while (now <= until) {
    const i = dueJob(s, now);
    if (i === null) { now = Math.max(now, nextWake(s)); continue; }
    const key = s.jobs[i].job.key;
    runs.push([Math.round(((now - T0) / M) * 1000) / 1000, key]);
    const start = now;
    now += duration(key);
    const r = recordOutcome(s, i, outcome(key, start), now);
    s = r.schedule;
    notes.push(r.note);
  }
  return { runs, notes, schedule: s };
}

t.test('the loop file', async (t) => {
  const cfg = entries('# comment\n  # indented comment\n\n1 2 a\n0 3 b\n');
  t.same(cfg, [{ pull: 1, push: 2, endpoint: 'a', line: 4 }, { pull: 0, push: 3, endpoint: 'b', line: 5 }]);
  const bad = (text: string, line: number | null): void => {
    let err: unknown = null;
    try { parseLoopConfig(text, 'loop'); } catch (e) { err = e; }
    t.ok(err instanceof LoopConfigError && err.line === line, text);
  };
  bad('1 2\n', 1);
  bad('# x\n1 x a\n', 2);
  bad('1 1 a/b\n', 1);
  t.throws(() => parseLoopConfig('0 0 a\n0 0 b\n', 'loop'), { message: /nothing to do/ });
  t.throws(() => parseLoopConfig('# only comments\n', 'loop'), { message: /nothing to do/ });
});

t.test('jobs slower than a slot: every line still gets its turn (no starvation)', async (t) => {
  // Each job takes 3 minutes and every line is due every minute: all are always overdue.
  const s = startSchedule(entries('1 1 a\n1 0 b\n'), M, T0);
  const { runs } = simulate(s, T0 + 60 * M, () => 3 * M);
  const count = (key: string): number => runs.filter(([, k]) => k === key).length;
  t.ok(count('smd-pull -s b') >= 5, `b is pulled too (${count('smd-pull -s b')} of ${runs.length} runs)`);
  t.same(runs.slice(0, 3).map(([, k]) => k), ['smd-pull -s a', 'smd-push -s a', 'smd-pull -s b'], 'the first pass in upstream order');
  t.ok(Math.abs(count('smd-pull -s a') - count('smd-pull -s b')) <= 1, 'taken in turns');
});

t.test('upstream order and phase, on a wall-clock grid', async (t) => {
  const cfg = entries('1 2 a\n0 3 b\n');
  const s = startSchedule(cfg, M, T0);
  t.same(s.jobs.map((j) => j.job.key), ['smd-pull -s a', 'smd-push -s a', 'smd-push -s b']);
  t.same(s.jobs[1].job.args, ['-s', 'a']);
  t.equal(s.jobs[1].job.program, 'smd-push');

  // Upstream: pass T (from 1) runs pull when T mod pull == 0, then push, lines in order; it
  // sleeps a minute after each pass once a job ran. So pass T starts (T - first) minutes in.
  const upstream = (text: string, passes: number): [number, string][] => {
    const es = entries(text);
    const first = Math.min(...es.flatMap((e) => [e.pull, e.push]).filter((p) => p > 0));
    const out: [number, string][] = [];
    for (let T = first; T <= passes; T++) {
      for (const e of es) {
        if (e.pull > 0 && T % e.pull === 0) out.push([T - first, `smd-pull -s ${e.endpoint}`]);
        if (e.push > 0 && T % e.push === 0) out.push([T - first, `smd-push -s ${e.endpoint}`]);
      }
    }
    return out;
  };
  for (const text of ['1 2 a\n0 3 b\n', '3 10 default\n', '2 0 a\n5 7 b\n0 4 c\n']) {
    const want = upstream(text, 70);
    const last = want[want.length - 1][0];
    t.same(simulate(startSchedule(entries(text), M, T0), T0 + last * M).runs, want, `same jobs at the same minutes as upstream: ${JSON.stringify(text)}`);
  }
  const late = simulate(startSchedule(entries('3 10 default\n'), M, T0), T0 + 10 * M).runs;
  t.same(late.slice(0, 4), [[0, 'smd-pull -s default'], [3, 'smd-pull -s default'], [6, 'smd-pull -s default'], [7, 'smd-push -s default']], 'the first job runs at once');
});

t.test('no drift: the time jobs take does not move the slots', async (t) => {
  const s = startSchedule(entries('1 0 a\n2 0 b\n'), M, T0);
  const { runs } = simulate(s, T0 + 6 * M, () => 0.3 * M);
  t.same(runs, [
    [0, 'smd-pull -s a'], [1, 'smd-pull -s a'], [1.3, 'smd-pull -s b'], [2, 'smd-pull -s a'], [3, 'smd-pull -s a'],
    [3.3, 'smd-pull -s b'], [4, 'smd-pull -s a'], [5, 'smd-pull -s a'], [5.3, 'smd-pull -s b'], [6, 'smd-pull -s a'],
  ]);
  // A job longer than its period runs at the next slot after it ends, once, not to catch up.
  const slow = simulate(startSchedule(entries('1 0 a\n'), M, T0), T0 + 6 * M, () => 1.5 * M).runs;
  t.same(slow.map(([m]) => m), [0, 2, 4, 6]);
  t.equal(nextSlot({ anchor: T0, period: M }, T0), T0 + M, 'strictly after now');
  t.equal(nextSlot({ anchor: T0 + 5 * M, period: M }, T0), T0 + 5 * M, 'not before the first slot');
});

t.test('after a suspend, overdue jobs run at once, each once', async (t) => {
  let s = startSchedule(entries('3 10 a\n1 0 b\n'), M, T0);
  for (let i = dueJob(s, T0); i !== null; i = dueJob(s, T0)) s = recordOutcome(s, i, { kind: 'ok' }, T0).schedule;
  const wake = T0 + 125.5 * M; // the machine slept two hours
  s = observeClock(s, wake);
  const ran: string[] = [];
  for (let i = dueJob(s, wake); i !== null; i = dueJob(s, wake)) {
    ran.push(keyOf(s, i)!);
    s = recordOutcome(s, i, { kind: 'ok' }, wake).schedule;
  }
  t.same(ran, ['smd-pull -s b', 'smd-pull -s a', 'smd-push -s a'], 'every job once, the longest overdue first (a pull before its push)');
  t.same(s.jobs.map((j) => (j.due - T0) / M), [128, 129, 126], 'then back on the grid');
  t.equal(nextWake(s), T0 + 126 * M);
});

t.test('a wall clock set back moves the schedule with it', async (t) => {
  let s = startSchedule(entries('5 0 a\n'), M, T0);
  s = observeClock(recordOutcome(s, 0, { kind: 'ok' }, T0 + 1000).schedule, T0 + 1000);
  t.equal(s.jobs[0].due, T0 + 5 * M);
  t.equal(observeClock(s, T0 + 1000 - 500), s, 'a moment back is noise');
  const back = observeClock(s, T0 - 3600_000);
  t.equal(back.jobs[0].due, T0 + 5 * M - 3600_000 - 1000, 'due 5 minutes after the last run, on the new clock');
  t.equal(dueJob(back, back.jobs[0].due), 0);
  t.equal(observeClock(s, T0 + 10 * M).jobs[0].due, T0 + 5 * M, 'forward: overdue, nothing moved');
});

t.test('a busy lock skips the slot', async (t) => {
  let s = startSchedule(entries('2 0 a\n'), M, T0);
  const r = recordOutcome(s, 0, { kind: 'busy' }, T0 + 10_000);
  t.same(r.note, { kind: 'busy', job: s.jobs[0].job, next: T0 + 2 * M });
  s = r.schedule;
  t.equal(s.jobs[0].tries, 0, 'not a failure');
  t.equal(s.paused.size, 0);
  t.equal(nextWake(s), T0 + 2 * M);
});

t.test('transient failures: capped exponential backoff, forever, one note per streak', async (t) => {
  t.same([1, 2, 3, 4, 5, 6, 7, 100, 5000].map((n) => backoff(n, 3 * M, M) / M), [1, 2, 4, 8, 16, 16, 16, 16, 16]);
  t.equal(BACKOFF_CAP_MINUTES, 16);
  t.same([5, 6, 7, 8].map((n) => backoff(n, 60 * M, M) / M), [16, 32, 60, 60], 'a longer period is the cap');
  const down = (start: number): boolean => start < T0 + 200 * M; // the network is back after 200 minutes
  const { runs, notes } = simulate(startSchedule(entries('3 0 a\n'), M, T0), T0 + 230 * M, () => 0,
    (_k, start) => (down(start) ? { kind: 'transient' } : { kind: 'ok' }));
  const failed = runs.filter(([m]) => m < 200).map(([m]) => m);
  t.same(failed.slice(0, 7), [0, 1, 3, 7, 15, 31, 47], 'retries after 1, 2, 4, 8, 16, 16 minutes');
  t.ok(failed.length >= 12, 'it keeps trying');
  const transient = notes.filter((n) => n.kind === 'transient');
  t.same(transient.filter((n) => n.kind === 'transient' && n.first).length, 1, 'one first failure per streak');
  const back = notes[failed.length];
  t.same(back, { kind: 'recovered', job: notes[0].job, tries: failed.length });
  t.equal(runs[failed.length][0], 207, 'the first try after the network came back');
  t.same(runs.slice(failed.length + 1).map(([m]) => m), [210, 213, 216, 219, 222, 225, 228], 'then on its grid again');
  t.same(notes.slice(failed.length + 1).map((n) => n.kind), Array(7).fill('succeeded'));
});

t.test('a failure that needs a human pauses its endpoint only, is probed slowly, resumes when fixed', async (t) => {
  const p1 = { tags: 'error::context(replace) probable-cause(concurrent-mailbox-edit) human-intervention(necessary) suggested-actions(run(rm x))', message: 'smd-client: ERROR: x changed' };
  const p2 = { tags: 'error::context(handshake) probable-cause(db-mismatch) human-intervention(necessary)', message: 'other' };
  // a: pulls every minute and pushes every 2; b: pulls every minute, and is fine throughout.
  // a's pull needs a human from minute 3 (a second problem from 60); fixed at 100.
  const outcome = (key: string, start: number): JobOutcome => {
    if (key !== 'smd-pull -s a' || start < T0 + 3 * M || start >= T0 + 100 * M) return { kind: 'ok' };
    return { kind: 'human', problem: start >= T0 + 60 * M ? p2 : p1 };
  };
  const { runs, notes, schedule } = simulate(startSchedule(entries('1 2 a\n1 0 b\n'), M, T0), T0 + 127 * M, () => 0, outcome);
  const at = (key: string): number[] => runs.filter(([, k]) => k === key).map(([m]) => m);
  t.same(at('smd-pull -s a'), [0, 1, 2, 3, 33, 63, 93, 123, 124, 125, 126, 127], 'paused at 3, probed every 30 minutes, works again at 123');
  t.same(at('smd-push -s a'), [1, 123, 125, 127], 'the push of the paused endpoint waits too, and runs at once when it is resolved');
  t.equal(at('smd-pull -s b').length, 128, 'the other endpoint kept its schedule');
  const kinds = notes.filter((n) => n.job.endpoint === 'a' && n.kind !== 'succeeded').map((n) => n.kind);
  t.same(kinds, ['paused', 'still-paused', 'paused', 'still-paused', 'resolved'], 'reported once per problem: at 3, and at 63 when the problem changed');
  const resolved = notes.find((n) => n.kind === 'resolved');
  t.same(resolved, { kind: 'resolved', job: schedule.jobs[0].job, problem: p2, since: T0 + 63 * M });
  t.equal(PROBE_MINUTES, 30);
  t.equal(schedule.paused.size, 0);

  // While paused, busy and transient probes do not settle anything.
  let s = startSchedule(entries('1 0 a\n'), M, T0);
  s = recordOutcome(s, 0, { kind: 'human', problem: p1 }, T0).schedule;
  t.equal(dueJob(s, T0 + 29 * M), null);
  t.equal(nextWake(s), T0 + 30 * M);
  const busy = recordOutcome(s, 0, { kind: 'busy' }, T0 + 30 * M);
  t.same(busy.note, { kind: 'still-paused', job: s.jobs[0].job, next: T0 + 31 * M }, 'busy: the next slot');
  const transient = recordOutcome(s, 0, { kind: 'transient' }, T0 + 30 * M);
  t.same(transient.note, { kind: 'still-paused', job: s.jobs[0].job, next: T0 + 60 * M });
  t.equal(transient.schedule.paused.get('a')?.problem, p1, 'still the same problem');
});

t.test('waking: SIGUSR1 syncs everything now, --now ENDPOINT one endpoint, then the schedule goes on', async (t) => {
  let s = startSchedule(entries('10 20 a\n10 0 b\n'), M, T0);
  for (let i = dueJob(s, T0); i !== null; i = dueJob(s, T0)) s = recordOutcome(s, i, { kind: 'ok' }, T0).schedule;
  const now = T0 + 4 * M;
  t.equal(dueJob(s, now), null);
  const all = requestNow(s, null, now);
  t.same(all.jobs.map((j) => j.due), [now, now, now], 'pull and push of every endpoint');
  let w = all;
  const ran: string[] = [];
  for (let i = dueJob(w, now); i !== null; i = dueJob(w, now)) {
    ran.push(keyOf(w, i)!);
    w = recordOutcome(w, i, { kind: 'ok' }, now + 1000).schedule;
  }
  t.same(ran, ['smd-pull -s a', 'smd-push -s a', 'smd-pull -s b']);
  t.same(w.jobs.map((j) => (j.due - T0) / M), [10, 10, 10], 'back to the grid (the first push is at 10, as upstream)');
  const one = requestNow(s, 'b', now);
  t.same(one.jobs.map((j) => j.due === now), [false, false, true]);
  t.same(requestNow(s, 'nope', now).jobs, s.jobs, 'an unknown endpoint changes nothing');
  const paused = recordOutcome(s, 0, { kind: 'human', problem: { tags: '', message: 'm' } }, now).schedule;
  const probeNow = requestNow(paused, 'a', now + M);
  t.equal(probeNow.paused.get('a')?.nextProbe, now + M, 'a paused endpoint: its failed job is tried now');
  t.equal(keyOf(probeNow, dueJob(probeNow, now + M)), 'smd-pull -s a');
  t.equal(requestNow(s, null, T0 + 20 * M).jobs[0].due, T0 + 10 * M, 'a wake-up never makes a job later');
});

t.test('what a job output means', async (t) => {
  const transient = 'smd-server: ERROR: ssh: connect to host fakehost port 22: Connection timed out\ndefault: smd-client@localhost: TAGS: error::context(handshake) probable-cause(network) human-intervention(avoidable) suggested-actions(retry)\nsmd-pull default: FAILED after 0.7 s\n';
  const conflict = 'smd-server: ERROR: Client aborted, removing x.new\nsmd-client: ERROR: Mail/cur/1: replaced on the other side, but the local file has been modified meanwhile\ndefault: smd-client@localhost: TAGS: error::context(replace) probable-cause(concurrent-mailbox-edit) human-intervention(necessary) suggested-actions(display-mail("/h/Mail/cur/1") run(rm "/h/Mail/cur/1"))\nsmd-pull default: FAILED after 1.4 s (details above and in ~/.smd/log/)\n';
  const busy = 'ERROR: Already running (Already running (pid 42). If this is not the case, remove /h/.smd/lock by hand.)\nERROR: If this is not the case, remove /h/.smd/lock by hand\ndefault: smd-pull@localhost: TAGS: error::context(locking) probable-cause(another-instance-running) human-intervention(necessary) suggested-actions(run(rm /h/.smd/lock))\n';
  const config = 'ERROR: /h/.smd/config.bad: MAILBOX is empty: set MAILBOX\n';
  t.same(classifyJob(true, conflict), { kind: 'ok' }, 'the exit status decides success');
  t.same(classifyJob(false, transient), { kind: 'transient' });
  t.same(classifyJob(false, busy), { kind: 'busy' }, 'before its human-intervention(necessary)');
  t.same(classifyJob(false, conflict), {
    kind: 'human',
    problem: {
      tags: 'error::context(replace) probable-cause(concurrent-mailbox-edit) human-intervention(necessary) suggested-actions(display-mail("/h/Mail/cur/1") run(rm "/h/Mail/cur/1"))',
      message: 'smd-server: ERROR: Client aborted, removing x.new\nsmd-client: ERROR: Mail/cur/1: replaced on the other side, but the local file has been modified meanwhile',
    },
  });
  t.same(problemOf(config), { tags: '', message: 'ERROR: /h/.smd/config.bad: MAILBOX is empty: set MAILBOX' });
  t.same(problemOf('a\nb\nc\nd\n'), { tags: '', message: 'b\nc\nd' }, 'no ERROR line: the last lines');
  t.same(problemOf(''), { tags: '', message: 'failed without a message' });
  t.equal(problemOf(`ERROR: ${'x'.repeat(5000)}`).message.length, 2003, 'bounded');
  t.equal(isTransientFailure('human-intervention(avoidable)\nsuggested-actions(retry)\n'), false, 'both in one TAGS line');
  t.equal(isTransientFailure('TAGS: error::context(x) human-intervention(avoidable) suggested-actions(run(x))\n'), false);
  t.equal(isLockBusy(conflict), false);
  const p = problemOf(conflict);
  t.ok(sameProblem(p, { ...p, message: 'other words' }), 'same TAGS: same problem');
  t.notOk(sameProblem(p, { ...p, tags: 'error::context(other)' }));
  t.ok(sameProblem({ tags: '', message: 'm' }, { tags: '', message: 'm' }));
  t.notOk(sameProblem({ tags: '', message: 'm' }, { tags: '', message: 'n' }));
});

t.test('a paused endpoint probes its failed job, not its first one; the clock set back moves pauses and the grid', async (t) => {
  const p = { tags: 'error::context(x) probable-cause(y) human-intervention(necessary)', message: 'push refused' };
  // a's push (job 1) needs a human; its pull (job 0) would work.
  let s = startSchedule(entries('1 1 a\n'), M, T0);
  s = recordOutcome(s, 0, { kind: 'ok' }, T0).schedule;
  const paused = recordOutcome(s, 1, { kind: 'human', problem: p }, T0);
  t.same(paused.note, { kind: 'paused', job: s.jobs[1].job, problem: p, next: T0 + 30 * M });
  s = paused.schedule;
  t.equal(dueJob(s, T0 + 29 * M), null, 'nothing of a runs while it is paused');
  t.equal(keyOf(s, dueJob(s, T0 + 30 * M)), 'smd-push -s a', 'the probe is the job that failed');
  t.equal(nextWake(s), T0 + 30 * M);

  // The wall clock set back by an hour while paused: the probe and "paused since" move with it.
  const back = observeClock(s, T0 - 3600_000);
  t.same(back.paused.get('a'), { job: 1, problem: p, since: T0 - 3600_000, nextProbe: T0 + 30 * M - 3600_000 });
  t.equal(keyOf(back, dueJob(back, T0 + 30 * M - 3600_000)), 'smd-push -s a', 'probed 30 minutes after the failure, on the new clock');
  const fixed = recordOutcome(back, 1, { kind: 'ok' }, T0 + 30 * M - 3600_000);
  t.same(fixed.note, { kind: 'resolved', job: s.jobs[1].job, problem: p, since: T0 - 3600_000 });

  // The grid itself moves: the next slot after a run is a whole period after the (moved) anchor.
  let g = startSchedule(entries('10 0 b\n'), M, T0);
  g = recordOutcome(g, 0, { kind: 'ok' }, T0 + 1000).schedule;
  g = observeClock(g, T0 + 1000);
  const moved = observeClock(g, T0 - 3 * M);
  t.equal(moved.jobs[0].anchor, T0 - 3 * M - 1000, 'the anchor moved back by what the clock did');
  t.equal(recordOutcome(moved, 0, { kind: 'ok' }, T0 + 8 * M).schedule.jobs[0].due, T0 + 17 * M - 1000, 'slots of the moved grid');

  // "More than a moment": exactly 2 s back is noise, 2.001 s moves the schedule.
  t.equal(observeClock(g, T0 + 1000 - 2000), g, '2 s back: noise');
  t.equal(observeClock(g, T0 + 1000 - 2001).jobs[0].due, g.jobs[0].due - 2001, 'more than 2 s back: moved');
  t.equal(observeClock(g, T0 + 1000), g, 'the same time: the same schedule');
});
