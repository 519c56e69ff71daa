/** Small async plumbing for the session: unbounded FIFOs (of values, of packed lines) and a counting semaphore. */

export class AsyncQueue<T> {
  private readonly items: T[] = [];
  private head = 0;
  private readonly takers: Array<(v: T) => void> = [];

  push(v: T): void {
    const t = this.takers.shift();
    if (t) t(v); else this.items.push(v);
  }

  /** Items waiting to be taken. */
  get size(): number {
    return this.items.length - this.head;
  }

  next(): Promise<T> {
    if (this.head < this.items.length) {
      const v = this.items[this.head++];
      if (this.head > 1024 && this.head * 2 > this.items.length) { this.items.splice(0, this.head); this.head = 0; }
      return Promise.resolve(v);
    }
    return new Promise((resolve) => this.takers.push(resolve));
  }
}

export class Semaphore {
  private readonly waiters: Array<() => void> = [];
  constructor(private free: number) {}

  get available(): number {
    return this.free;
  }

  acquire(): Promise<void> {
    if (this.free > 0) { this.free--; return Promise.resolve(); }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const w = this.waiters.shift();
    if (w) w(); else this.free++;
  }
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((a, b) => { resolve = a; reject = b; });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * An unbounded FIFO of latin1 lines (null: the end), packed into 1 MiB
 * Buffers: a queued line costs its bytes plus 4, not a string and the
 * objects parsed from it. The diff of a first pull is queued whole before
 * the first reply can arrive (a million lines: ~150 MB instead of ~350).
 */
export class LineQueue {
  private static readonly CHUNK = 1 << 20;
  private static readonly END = 0xffffffff;
  private readonly chunks: Buffer[] = [];
  /** Bytes written in each chunk. */
  private readonly used: number[] = [];
  /** Read position in chunks[0]. */
  private readAt = 0;
  private queued = 0;
  private readonly takers: Array<(v: string | null) => void> = [];

  /** Lines waiting to be taken. */
  get size(): number {
    return this.queued;
  }

  push(line: string | null): void {
    const t = this.takers.shift();
    if (t) { t(line); return; }
    const need = 4 + (line?.length ?? 0);
    let last = this.chunks.length - 1;
    if (last < 0 || this.used[last] + need > this.chunks[last].length) {
      this.chunks.push(Buffer.allocUnsafe(Math.max(LineQueue.CHUNK, need)));
      this.used.push(0);
      last++;
    }
    const b = this.chunks[last];
    let at = this.used[last];
    b.writeUInt32LE(line === null ? LineQueue.END : line.length, at);
    at += 4;
    if (line !== null) at += b.write(line, at, 'latin1');
    this.used[last] = at;
    this.queued++;
  }

  next(): Promise<string | null> {
    if (this.queued === 0) return new Promise((resolve) => this.takers.push(resolve));
    const b = this.chunks[0];
    const len = b.readUInt32LE(this.readAt);
    let line: string | null = null;
    this.readAt += 4;
    if (len !== LineQueue.END) {
      line = b.toString('latin1', this.readAt, this.readAt + len);
      this.readAt += len;
    }
    this.queued--;
    if (this.readAt >= this.used[0]) {
      this.chunks.shift();
      this.used.shift();
      this.readAt = 0;
    }
    return Promise.resolve(line);
  }
}
