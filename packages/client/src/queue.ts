/** Small async plumbing for the session: unbounded FIFOs (of values, of packed lines) and a counting semaphore. */
import { closeSync, constants, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

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

/** Where a LineQueue puts the chunks beyond its memory bound. */
export interface SpillOptions {
  /** A directory on a local file system (the state dir): the file is unlinked at once, only its descriptor lives. */
  readonly dir: string;
  /** Chunks (1 MiB each) kept in memory before later ones go to the file. */
  readonly chunksInMemory: number;
}

/**
 * An unbounded FIFO of latin1 lines (null: the end), packed into 1 MiB
 * Buffers: a queued line costs its bytes plus 4, not a string and the
 * objects parsed from it. The diff of a first pull is queued whole before
 * the first reply can arrive (a million lines: ~135 MB instead of ~350);
 * with `spill`, the full chunks beyond the first `chunksInMemory` are
 * written to an unlinked file and read back in turn, so memory stays flat
 * whatever the size of the diff.
 */
export class LineQueue {
  private static readonly CHUNK = 1 << 20;
  private static readonly END = 0xffffffff;
  /** Chunks in order; a spilled one is null here, its bytes at spilledAt in the file. */
  private readonly chunks: Array<Buffer | null> = [];
  /** Bytes written in each chunk. */
  private readonly used: number[] = [];
  private readonly spilledAt: number[] = [];
  /** Read position in chunks[0]. */
  private readAt = 0;
  private queued = 0;
  private inMemory = 0;
  private spillFd = -1;
  private spillEnd = 0;
  /** Chunks that went through the file (for the tests and the bench). */
  spilled = 0;
  private readonly takers: Array<(v: string | null) => void> = [];

  constructor(private spill: SpillOptions | null = null) {}

  /** Lines waiting to be taken. */
  get size(): number {
    return this.queued;
  }

  push(line: string | null): void {
    const t = this.takers.shift();
    if (t) { t(line); return; }
    const need = 4 + (line?.length ?? 0);
    let last = this.chunks.length - 1;
    if (last < 0 || this.used[last] + need > this.chunks[last]!.length) {
      if (last > 0) this.maybeSpill(last);
      this.chunks.push(Buffer.allocUnsafe(Math.max(LineQueue.CHUNK, need)));
      this.used.push(0);
      this.spilledAt.push(-1);
      this.inMemory++;
      last++;
    }
    const b = this.chunks[last]!;
    let at = this.used[last];
    b.writeUInt32LE(line === null ? LineQueue.END : line.length, at);
    at += 4;
    if (line !== null) at += b.write(line, at, 'latin1');
    this.used[last] = at;
    this.queued++;
  }

  /** Chunk i is full (and neither the one being read nor written): to the file if memory holds enough. */
  private maybeSpill(i: number): void {
    if (this.spill === null || this.inMemory <= this.spill.chunksInMemory) return;
    if (this.spillFd < 0) {
      const path = join(this.spill.dir, `diff-queue.${process.pid}.${Date.now()}`);
      try {
        this.spillFd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
      } catch {
        this.spill = null; // no room for it there: memory it is, as without
        return;
      }
      unlinkSync(path);
    }
    const b = this.chunks[i]!;
    try {
      for (let off = 0; off < this.used[i];) off += writeSync(this.spillFd, b, off, this.used[i] - off, this.spillEnd + off);
    } catch {
      this.spill = null; // e.g. the disk is full: this chunk and the next stay in memory
      return;
    }
    this.spilledAt[i] = this.spillEnd;
    this.spillEnd += this.used[i];
    this.chunks[i] = null;
    this.inMemory--;
    this.spilled++;
  }

  next(): Promise<string | null> {
    if (this.queued === 0) return new Promise((resolve) => this.takers.push(resolve));
    let b = this.chunks[0];
    if (b === null) {
      b = Buffer.allocUnsafe(this.used[0]);
      for (let off = 0; off < b.length;) {
        const n = readSync(this.spillFd, b, off, b.length - off, this.spilledAt[0] + off);
        if (n <= 0) throw new Error('internal: the spilled diff queue was cut short');
        off += n;
      }
      this.chunks[0] = b;
      this.inMemory++;
    }
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
      this.spilledAt.shift();
      this.inMemory--;
      this.readAt = 0;
      if (this.queued === 0) this.close();
    }
    return Promise.resolve(line);
  }

  /** Closes the spill file (its space is freed: it has no name). Pushing afterwards reopens one. */
  close(): void {
    if (this.spillFd >= 0) { try { closeSync(this.spillFd); } catch { /* closed */ } }
    this.spillFd = -1;
    this.spillEnd = 0;
  }
}
