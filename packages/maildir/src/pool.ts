import { Worker, MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { ByteString } from './bytes.js';
import type { MessageFile } from './read.js';
import { DirQueue, type DirResult } from './dir-queue.js';

interface Slot { worker: Worker; port: MessagePort; inFlight: number }

/**
 * Reads + hashes files on worker threads while the caller stays synchronous
 * (the scan is a sync generator): `submit` queues a file, `result` blocks
 * (Atomics.wait) until that file's result is in. Results come back in any
 * order; the caller consumes them in its own (walk) order.
 */
export class HashPool {
  private readonly slots: Slot[] = [];
  private readonly signal = new Int32Array(new SharedArrayBuffer(4));
  private readonly results = new Map<number, MessageFile>();
  private readonly queues = new Map<number, DirQueue>();
  private nextQueue = 0;
  private nextId = 0;
  private batchIds: number[] = [];
  private batchPaths: ByteString[] = [];
  private rr = 0;

  constructor(threads = HashPool.defaultThreads(), private readonly batch = 32) {
    for (let i = 0; i < threads; i++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(new URL('./hash-worker.js', import.meta.url), {
        workerData: { port: port2, signal: this.signal }, transferList: [port2],
      });
      worker.unref();
      this.slots.push({ worker, port: port1, inFlight: 0 });
    }
  }

  static defaultThreads(): number {
    return Math.max(1, Math.min(4, availableParallelism()));
  }

  /** Queues a file; returns its ticket. */
  submit(path: ByteString): number {
    const id = this.nextId++;
    this.batchIds.push(id);
    this.batchPaths.push(path);
    if (this.batchIds.length >= this.batch) this.flush();
    return id;
  }

  /** Sends the partial batch. */
  flush(): void {
    if (this.batchIds.length === 0) return;
    // Least loaded worker (round robin on ties).
    const best = this.leastLoaded();
    best.inFlight += this.batchIds.length;
    best.port.postMessage({ ids: this.batchIds, paths: this.batchPaths });
    this.batchIds = [];
    this.batchPaths = [];
  }

  /**
   * Lists (and with `stat`, stats) the directories `dirs` on the workers, and
   * on this thread while it waits: every thread takes the next directory from
   * a shared counter, so a big folder does not leave the others idle.
   * `list(i)` of the returned queue blocks until directory i is listed.
   */
  listDirs(dirs: ByteString[], stat: boolean): DirQueue {
    const q = new DirQueue(this.nextQueue++, dirs, stat, () => this.wait());
    this.queues.set(q.id, q);
    for (const s of this.slots) s.port.postMessage({ queue: q.id, dirs, stat, counter: q.counter });
    return q;
  }

  /** Blocks until a worker posts something (or 1 s), then takes in what arrived. */
  private wait(): void {
    const seen = Atomics.load(this.signal, 0);
    if (!this.drain()) Atomics.wait(this.signal, 0, seen, 1000);
  }

  private leastLoaded(): Slot {
    let best = this.slots[this.rr++ % this.slots.length];
    for (const s of this.slots) if (s.inFlight < best.inFlight) best = s;
    return best;
  }

  /** Blocks until the result of `ticket` is available. */
  result(ticket: number): MessageFile {
    for (;;) {
      const r = this.results.get(ticket);
      if (r !== undefined) { this.results.delete(ticket); return r; }
      if (this.batchIds.includes(ticket)) this.flush();
      const seen = Atomics.load(this.signal, 0);
      if (!this.drain()) Atomics.wait(this.signal, 0, seen, 1000);
    }
  }

  private drain(): boolean {
    let got = false;
    for (const s of this.slots) {
      for (let m = receiveMessageOnPort(s.port); m !== undefined; m = receiveMessageOnPort(s.port)) {
        const msg = m.message as { ids: number[]; results: MessageFile[] } | DirResult;
        got = true;
        if ('queue' in msg) {
          this.queues.get(msg.queue)?.put(msg);
          continue;
        }
        const { ids, results } = msg;
        for (let i = 0; i < ids.length; i++) this.results.set(ids[i], results[i]);
        s.inFlight -= ids.length;
      }
    }
    return got;
  }

  /** Stops the workers. */
  close(): void {
    for (const s of this.slots) { s.port.close(); void s.worker.terminate(); }
    this.slots.length = 0;
  }
}
