// Worker of HashPool: reads + hashes the files it is sent, or lists (and
// stats) a directory; posts the results on its port and wakes the (blocked)
// scanning thread through a shared counter.
import { workerData, type MessagePort } from 'node:worker_threads';
import { readMessageFile } from './read.js';
import { listQueued } from './dir-queue.js';

const { port, signal } = workerData as { port: MessagePort; signal: Int32Array };
type Job = { ids: number[]; paths: string[] } | { queue: number; dirs: string[]; stat: boolean; counter: Int32Array };
const post = (): void => {
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
};
port.on('message', (job: Job) => {
  if ('queue' in job) {
    for (let i = Atomics.add(job.counter, 0, 1); i < job.dirs.length; i = Atomics.add(job.counter, 0, 1)) {
      const r = listQueued(job.queue, job.dirs, i, job.stat);
      const transfer: ArrayBuffer[] = [];
      if (!('error' in r)) {
        transfer.push(r.kinds.buffer as ArrayBuffer);
        if (r.stats !== null) transfer.push(r.stats.buffer as ArrayBuffer);
      }
      port.postMessage(r, transfer);
      post();
    }
    return;
  }
  const results = job.paths.map((p) => readMessageFile(p));
  port.postMessage({ ids: job.ids, results });
  post();
});
