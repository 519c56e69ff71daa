// Preloaded into every Node process of a benchmark run (NODE_OPTIONS=--import=<this file>):
// at exit, writes the process's own CPU time and peak RSS (getrusage(RUSAGE_SELF)),
// and the peaks of its JS heap and of its off-heap memory (sampled every 250 ms),
// to $BENCH_USAGE_DIR/<pid>.json, so each program is measured apart from the
// processes it starts (/usr/bin/time adds the children it waited for).
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const dir = process.env.BENCH_USAGE_DIR;
if (dir) {
  const start = performance.timeOrigin;
  // Peak JS heap and off-heap (Buffers) memory, sampled: what the RSS is made of.
  let heapPeak = 0;
  let externalPeak = 0;
  const sample = () => {
    const m = process.memoryUsage();
    heapPeak = Math.max(heapPeak, m.heapUsed);
    externalPeak = Math.max(externalPeak, m.external);
  };
  setInterval(sample, 250).unref();
  process.on('exit', (code) => {
    sample();
    const u = process.resourceUsage();
    const rec = {
      prog: basename(process.argv[1] ?? 'node'), pid: process.pid, ppid: process.ppid, code,
      user: u.userCPUTime / 1e6, sys: u.systemCPUTime / 1e6, maxRssKB: u.maxRSS,
      start, end: performance.timeOrigin + performance.now(),
      heapMB: process.memoryUsage().heapUsed / 1048576, heapPeakMB: heapPeak / 1048576, externalPeakMB: externalPeak / 1048576,
    };
    try { writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify(rec)); } catch { /* the run's directory is gone */ }
  });
}
