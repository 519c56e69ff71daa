// Worker of HashPool: reads + hashes the files it is sent, posts the results on
// its port and wakes the (blocked) scanning thread through a shared counter.
import { workerData, type MessagePort } from 'node:worker_threads';
import { readMessageFile } from './read.js';

const { port, signal } = workerData as { port: MessagePort; signal: Int32Array };
port.on('message', (job: { ids: number[]; paths: string[] }) => {
  const results = job.paths.map((p) => readMessageFile(p));
  port.postMessage({ ids: job.ids, results });
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
});
