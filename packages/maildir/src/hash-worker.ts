// Worker of HashPool: reads + hashes the files it is sent, or lists (and
// stats) a directory; posts the results on its port and wakes the (blocked)
// scanning thread through a shared counter.
import { workerData, type MessagePort } from 'node:worker_threads';
import { readMessageFile } from './read.js';
import { listDirectoryStat } from './walk.js';

const { port, signal } = workerData as { port: MessagePort; signal: Int32Array };
type Job = { ids: number[]; paths: string[] } | { dirId: number; dir: string; stat: boolean };
port.on('message', (job: Job) => {
  if ('dirId' in job) {
    try {
      const l = listDirectoryStat(job.dir, job.stat);
      const transfer = [l.kinds.buffer as ArrayBuffer];
      if (l.stats !== null) transfer.push(l.stats.buffer as ArrayBuffer);
      port.postMessage({ dirId: job.dirId, names: l.names, kinds: l.kinds, stats: l.stats }, transfer);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      port.postMessage({ dirId: job.dirId, error: { code: err?.code, message: err?.message ?? String(e) } });
    }
  } else {
    const results = job.paths.map((p) => readMessageFile(p));
    port.postMessage({ ids: job.ids, results });
  }
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
});
