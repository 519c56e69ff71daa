/** Small async plumbing for the session: an unbounded FIFO and a counting semaphore. */

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
