#!/usr/bin/env node
// Soak test of smd-loop ("keeps going for days, no growth in memory or open fds").
//
//   node bench/soak-loop.mjs [--iterations N] [--minute SECONDS] [--fake-jobs] [--keep]
//
// Runs the real bin/smd-loop for N job runs (default 1,000) with a "minute" of
// --minute seconds (default 0.05, so jobs run back to back) on two endpoints:
// `default`, a tiny mailbox pulled and pushed every minute through a fake ssh
// (a shell script running the remote programs in a second HOME), and `broken`,
// whose configuration is invalid, so it stays paused and is probed every 30
// minutes. Along the way it exercises every path of the loop: a message is
// delivered on each side every 10 runs; every 100 runs "the network" is down
// for 8 runs (a transient streak); every 150 runs a fake smd-pull holds the
// lock for 4 runs (skipped slots); every 50 runs SIGUSR1 wakes the loop.
//
// With --fake-jobs, smd-pull / smd-push are one-line shell scripts printing
// what the real ones print (success, network failure, busy lock): thousands
// of runs in minutes, measuring the loop alone.
//
// Reports the loop process's RSS (VmRSS) and open file descriptors
// (/proc/PID/fd) at the first run, after the warm-up (run 50), and every
// N/10 runs to the end, then stops it with SIGTERM (it must exit 0).
// Everything lives under bench/out/soak/ (soak-fake/ with --fake-jobs; removed at the end
// unless --keep).
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => { const k = args.indexOf(name); return k >= 0 ? args[k + 1] : dflt; };
const iterations = Number(opt('--iterations', '1000'));
const minute = opt('--minute', '0.05');
const fakeJobs = args.includes('--fake-jobs');
const keep = args.includes('--keep');

const base = join(ROOT, 'bench', 'out', fakeJobs ? 'soak-fake' : 'soak');
rmSync(base, { recursive: true, force: true });
const local = join(base, 'local');
const remote = join(base, 'remote');
const fakeBin = join(base, 'bin');
for (const d of [local, remote, fakeBin, join(local, '.smd'), join(remote, '.smd')]) mkdirSync(d, { recursive: true, mode: 0o700 });
const down = join(base, 'network-down');

let seq = 0;
const deliver = (home) => {
  seq += 1;
  for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(home, 'Mail', d), { recursive: true });
  writeFileSync(join(home, 'Mail', 'cur', `${1700000000 + seq}.M${seq}P${process.pid}.soak:2,S`), `From: a@example.org\nSubject: soak ${seq}\n\nbody ${seq}\n`);
};
for (let i = 0; i < 5; i++) deliver(remote);

writeFileSync(join(fakeBin, 'ssh'), `#!/bin/sh
# fake ssh: ssh HOST COMMAND... runs COMMAND in the remote HOME
shift
if [ -e "${down}" ]; then echo "ssh: connect to host fakehost port 22: Network is unreachable" >&2; exit 255; fi
cd "${remote}" || exit 255
HOME="${remote}" exec sh -c "$*"
`);
chmodSync(join(fakeBin, 'ssh'), 0o755);
if (fakeJobs) {
  for (const [prog, dir] of [['smd-pull', 'pull'], ['smd-push', 'push']]) {
    writeFileSync(join(fakeBin, prog), `#!/bin/sh
# stands in for ${prog}: what the real one prints
ep="$2"
if [ -e "$HOME/.smd/config.$ep.broken" ]; then echo "ERROR: $HOME/.smd/config.$ep: MAILBOX is empty"; exit 1; fi
if [ -e "$HOME/.smd/lock" ]; then echo "ERROR: Already running"; echo "$ep: ${prog}@localhost: TAGS: error::context(locking) probable-cause(another-instance-running) human-intervention(necessary) suggested-actions(run(rm $HOME/.smd/lock))"; exit 1; fi
if [ -e "${down}" ]; then echo "$ep: smd-client@localhost: TAGS: error::context(handshake) probable-cause(network) human-intervention(avoidable) suggested-actions(retry)"; exit 1; fi
echo "$ep: smd-client@localhost: TAGS: stats::new-mails(0), del-mails(0), bytes-received(0), xdelta-received(0)"
echo "${prog} $ep: done in 0.0 s: 0 new, 0 deleted, 0 B received (${dir})"
`);
    chmodSync(join(fakeBin, prog), 0o755);
  }
}

writeFileSync(join(local, '.smd', 'config.default'), 'SERVERNAME="fakehost"\nCLIENTNAME="soak"\nMAILBOX="Mail"\n');
writeFileSync(join(local, '.smd', 'config.broken'), 'SERVERNAME="fakehost"\nCLIENTNAME="broken"\n');
writeFileSync(join(local, '.smd', 'config.broken.broken'), '');
writeFileSync(join(local, '.smd', 'loop'), '1 1 default\n1 0 broken\n');
mkdirSync(join(local, '.smd', 'hooks', 'needs-human.d'), { recursive: true });
writeFileSync(join(local, '.smd', 'hooks', 'needs-human.d', 'count'), `#!/bin/sh\necho "$1" >> "${join(base, 'needs-human')}"\n`, { mode: 0o755 });
// A live process called smd-pull holds the lock while it runs.
symlinkSync('/bin/sleep', join(base, 'smd-pull'));

const env = {
  PATH: `${fakeBin}:${join(ROOT, 'bin')}:${process.env.PATH}`,
  HOME: local, USER: process.env.USER ?? 'root', LANG: 'C.UTF-8', SMD_LOOP_MINUTE_SECONDS: minute,
};
const loop = spawn(join(ROOT, 'bin', 'smd-loop'), [], { env, cwd: local, stdio: ['ignore', 'ignore', 'inherit'] });
const exited = new Promise((r) => loop.on('close', (code) => r(code)));

const logFile = join(local, '.smd', 'log', 'loop.log');
// Counts the runs in the log as it grows (reading it whole every time would be the load).
let logOffset = 0;
let logRuns = 0;
let logTail = '';
const runs = () => {
  let fd;
  try { fd = openSync(logFile, 'r'); } catch { return 0; }
  try {
    const size = fstatSync(fd).size;
    if (size > logOffset) {
      const buf = Buffer.alloc(size - logOffset);
      readSync(fd, buf, 0, buf.length, logOffset);
      logOffset = size;
      const parts = (logTail + buf.toString('utf8')).split('\n');
      logTail = parts.pop();
      logRuns += parts.filter((l) => l.includes(': running smd-')).length;
    }
  } finally {
    closeSync(fd);
  }
  return logRuns;
};
const sample = () => {
  const status = readFileSync(`/proc/${loop.pid}/status`, 'utf8');
  return { rss: Number(/^VmRSS:\s+(\d+)/m.exec(status)[1]), fds: readdirSync(`/proc/${loop.pid}/fd`).length };
};

const started = Date.now();
const rows = [];
let n = 0;
let last = 0;
let downUntil = -1;
let holder = null;
let holderUntil = -1;
const checkpoints = new Set([1, 50, ...Array.from({ length: 10 }, (_, k) => Math.round(((k + 1) * iterations) / 10))]);
while (n < iterations) {
  await new Promise((r) => setTimeout(r, 50));
  if (loop.exitCode !== null) { console.error(`smd-loop exited (${loop.exitCode}) after ${n} runs`); process.exit(1); }
  n = runs();
  for (let k = last + 1; k <= n; k++) {
    if (checkpoints.has(k)) rows.push({ run: k, ...sample(), s: (Date.now() - started) / 1000 });
    if (k % 10 === 0) { deliver(remote); deliver(local); }
    if (k % 50 === 0) loop.kill('SIGUSR1');
    if (k % 100 === 0) { writeFileSync(down, ''); downUntil = k + 8; }
    if (k === downUntil && existsSync(down)) unlinkSync(down);
    if (k % 150 === 0 && holder === null) {
      holder = spawn(join(base, 'smd-pull'), ['600'], { stdio: 'ignore' });
      writeFileSync(join(local, '.smd', 'lock'), `${holder.pid}\n`);
      holderUntil = k + 4;
    }
    if (k >= holderUntil && holder !== null) { holder.kill('SIGKILL'); holder = null; try { unlinkSync(join(local, '.smd', 'lock')); } catch { /* taken over */ } }
  }
  last = n;
}
const end = sample();
loop.kill('SIGTERM');
const code = await exited;
holder?.kill('SIGKILL');

const log = readFileSync(logFile, 'utf8');
const countOf = (re) => log.split('\n').filter((l) => re.test(l)).length;
console.log(`smd-loop soak: ${n} runs in ${((Date.now() - started) / 1000).toFixed(0)} s (${fakeJobs ? 'fake smd-pull/smd-push' : 'real smd-pull/smd-push, fake ssh'}, minute = ${minute} s)`);
console.log('');
console.log('| run | time (s) | RSS (KiB) | open fds |');
console.log('|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.run} | ${r.s.toFixed(0)} | ${r.rss} | ${r.fds} |`);
console.log('');
console.log(`succeeded ${countOf(/ succeeded/)}, transient streaks ${countOf(/failed with a transient error/)}, recoveries ${countOf(/succeeded again after/)}, skipped slots ${countOf(/ skipped: /)}, `
  + `wake-ups ${countOf(/woken: /)}, probes of the paused endpoint ${countOf(/still fails/)}, needs-human hook runs ${existsSync(join(base, 'needs-human')) ? readFileSync(join(base, 'needs-human'), 'utf8').split('\n').filter(Boolean).length : 0}`);
console.log(`smd-loop exit code after SIGTERM: ${code}; RSS ${rows.find((r) => r.run === 50)?.rss ?? '?'} KiB at run 50 -> ${end.rss} KiB at the end; fds ${rows[0].fds} -> ${end.fds}`);
if (!keep) rmSync(base, { recursive: true, force: true });
process.exit(code === 0 ? 0 : 1);
