// Preloaded into every Node process of a benchmark run (NODE_OPTIONS=--import=<this file>):
// at exit, writes the process's own CPU time and peak RSS (getrusage(RUSAGE_SELF))
// to $BENCH_USAGE_DIR/<pid>.json, so each program is measured apart from the
// processes it starts (/usr/bin/time adds the children it waited for).
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const dir = process.env.BENCH_USAGE_DIR;
if (dir) {
  const start = performance.timeOrigin;
  process.on('exit', (code) => {
    const u = process.resourceUsage();
    const rec = {
      prog: basename(process.argv[1] ?? 'node'), pid: process.pid, ppid: process.ppid, code,
      user: u.userCPUTime / 1e6, sys: u.systemCPUTime / 1e6, maxRssKB: u.maxRSS,
      start, end: performance.timeOrigin + performance.now(),
      heapMB: process.memoryUsage().heapUsed / 1048576,
    };
    try { writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify(rec)); } catch { /* the run's directory is gone */ }
  });
}
