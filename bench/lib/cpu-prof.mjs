// Preloaded by `bench/latency.mjs --prof` (Node 20 refuses --cpu-prof in
// NODE_OPTIONS): a V8 CPU profile of the whole process through the in-process
// inspector, written at exit to $BENCH_PROF_DIR/<program>.<pid>.cpuprofile
// (the in-process session answers synchronously, so it works in 'exit').
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const dir = process.env.BENCH_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  process.on('exit', () => {
    session.post('Profiler.stop', (err, r) => {
      if (err === null) writeFileSync(join(dir, `${basename(process.argv[1] ?? 'node')}.${process.pid}.cpuprofile`), JSON.stringify(r.profile));
    });
  });
}
