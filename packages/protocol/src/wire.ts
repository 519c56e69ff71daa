import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { ProtocolError } from './errors.js';

/** Longest control line accepted (a diff line carries two names of <= 4 KiB each). */
export const MAX_LINE = 16 * 1024;

/** Largest chunk accepted: a message (or db patch) bigger than this is a lying peer. */
export const MAX_CHUNK = 1024 * 1024 * 1024;

/** Default idle timeout: the longest the peer may stay silent (or not read) while we wait for it. */
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;

const EMPTY = Buffer.alloc(0);
/** Queued bytes are written once they reach this size. */
const BATCH = 64 * 1024;

export interface WireOptions {
  /**
   * The longest wait for the peer, in ms: no byte arrives (reader) or our
   * output is not drained (writer) for this long → ProtocolError 'timeout'.
   * 0: no bound (tests only). Default DEFAULT_IDLE_TIMEOUT_MS.
   */
  readonly idleTimeoutMs?: number;
}

/** `p`, or a 'timeout' ProtocolError after `ms` (0: no bound). */
function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  if (ms <= 0) return p;
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProtocolError(`${what} for ${Math.round(ms / 1000)} s (idle timeout)`, 'timeout')), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * Incremental reader of the smd wire format: `\n`-terminated control lines
 * and `chunk N` + N raw bytes. Reads from any async iterable of Buffers (a
 * Node Readable is one). Chunk bodies are handed out piece by piece as they
 * arrive, never gathered whole.
 */
export class WireReader {
  private readonly it: AsyncIterator<Buffer | string>;
  private buf: Buffer = EMPTY;
  private pos = 0;
  private eof = false;
  private readonly idleMs: number;
  /** Bytes consumed so far (for statistics). */
  bytesRead = 0;

  constructor(source: Readable | AsyncIterable<Buffer | string>, opts: WireOptions = {}) {
    this.it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
    this.idleMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  }

  private async more(): Promise<boolean> {
    if (this.eof) return false;
    const r = await bounded(this.it.next(), this.idleMs, 'the peer sent nothing');
    if (r.done) { this.eof = true; return false; }
    const piece = typeof r.value === 'string' ? Buffer.from(r.value, 'latin1') : r.value;
    this.buf = this.pos < this.buf.length ? Buffer.concat([this.buf.subarray(this.pos), piece]) : piece;
    this.pos = 0;
    return true;
  }

  /**
   * The next line without its `\n`, as a ByteString; null on a clean EOF
   * (nothing buffered). EOF inside a line or a line longer than `max` bytes
   * throws ProtocolError.
   */
  async readLine(max: number = MAX_LINE): Promise<string | null> {
    let from = this.pos;
    for (;;) {
      const nl = this.buf.indexOf(0x0a, from);
      if (nl >= 0) {
        if (nl - this.pos > max) throw new ProtocolError(`line longer than ${max} bytes`, 'limit');
        const line = this.buf.toString('latin1', this.pos, nl);
        this.bytesRead += nl + 1 - this.pos;
        this.pos = nl + 1;
        return line;
      }
      const had = this.buf.length - this.pos;
      if (had > max) throw new ProtocolError(`line longer than ${max} bytes`, 'limit');
      if (!(await this.more())) {
        if (had === 0) return null;
        throw new ProtocolError('connection closed in the middle of a line', 'eof');
      }
      // more() moved the unread bytes (which hold no newline) to the front.
      from = had;
    }
  }

  /**
   * Reads a chunk header line. Returns the byte count, or throws
   * ProtocolError('abort') if the peer answered ABORT, ('eof') on EOF.
   */
  async readChunkHeader(max: number = MAX_CHUNK): Promise<number> {
    const line = await this.readLine();
    if (line === null) throw new ProtocolError('connection closed while waiting for data', 'eof');
    if (line === 'ABORT') throw new ProtocolError('peer refused the request (ABORT)', 'abort');
    const m = /^chunk (0|[1-9][0-9]{0,15})$/.exec(line);
    if (!m) throw new ProtocolError(`expected "chunk N", got ${JSON.stringify(line.slice(0, 80))}`);
    const n = Number(m[1]);
    if (n > max) throw new ProtocolError(`chunk of ${n} bytes exceeds the limit of ${max}`, 'limit');
    return n;
  }

  /**
   * Exactly `n` bytes, yielded in pieces as they arrive. The pieces may alias
   * the reader's buffer: consume each before asking for the next.
   */
  async *readBytes(n: number): AsyncGenerator<Buffer, void, void> {
    let left = n;
    while (left > 0) {
      if (this.pos >= this.buf.length && !(await this.more())) {
        throw new ProtocolError(`connection closed ${left} bytes before the end of a ${n}-byte chunk`, 'eof');
      }
      const take = Math.min(left, this.buf.length - this.pos);
      const piece = this.buf.subarray(this.pos, this.pos + take);
      this.pos += take;
      this.bytesRead += take;
      left -= take;
      yield piece;
    }
  }

  /** Reads a whole chunk into memory (for small payloads only: headers, patches). */
  async readChunk(max: number = MAX_CHUNK): Promise<Buffer> {
    const n = await this.readChunkHeader(max);
    const parts: Buffer[] = [];
    for await (const p of this.readBytes(n)) parts.push(Buffer.from(p));
    return Buffer.concat(parts, n);
  }

  /** Is a whole line already buffered (so reading it will not wait for the peer)? */
  hasLine(): boolean {
    return this.buf.indexOf(0x0a, this.pos) >= 0;
  }

  /** True once the peer closed its side and everything was consumed. */
  async atEnd(): Promise<boolean> {
    if (this.pos < this.buf.length) return false;
    return !(await this.more());
  }
}

/**
 * Writer of the smd wire format with backpressure. Lines are batched in
 * memory until `flush()` (or until 64 KiB are pending), so a burst of
 * requests costs one write.
 */
export class WireWriter {
  /** Lines (ByteStrings, with their `\n`) and small chunk bodies (copies), in order. */
  private pending: Array<string | Uint8Array> = [];
  private pendingBytes = 0;
  bytesWritten = 0;
  private readonly idleMs: number;

  constructor(private readonly out: Writable, opts: WireOptions = {}) {
    this.idleMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  }

  /** Queues one line (a ByteString, no `\n`). Resolves at once unless the buffer must be written. */
  async line(s: string): Promise<void> {
    this.pending.push(s, '\n');
    this.pendingBytes += s.length + 1;
    if (this.pendingBytes >= BATCH) await this.flush();
  }

  /** Writes everything queued and waits while the stream is over its high-water mark. */
  async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const parts = this.pending;
    const data = Buffer.allocUnsafe(this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    let off = 0;
    for (const p of parts) {
      if (typeof p === 'string') off += data.write(p, off, 'latin1');
      else { data.set(p, off); off += p.length; }
    }
    await this.raw(data);
  }

  /** Writes raw bytes (after flushing what is queued). */
  async raw(data: Uint8Array): Promise<void> {
    if (this.pendingBytes > 0) await this.flush();
    this.bytesWritten += data.length;
    if (this.out.destroyed || this.out.writableEnded) throw new ProtocolError('connection closed while writing', 'eof');
    if (!this.out.write(data)) await bounded(drained(this.out), this.idleMs, 'the peer read nothing');
  }

  /**
   * Sends `chunk N` and exactly N bytes from `body`; throws if `body` gives a
   * different amount. Small bodies are queued with the lines (one write for
   * many small replies); nothing is written before the next flush() unless
   * the queue is full.
   */
  async chunk(size: number, body: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void> {
    await this.line(`chunk ${size}`);
    if (body instanceof Uint8Array) {
      if (body.length !== size) throw new Error(`chunk body is ${body.length} bytes, announced ${size}`);
      await this.put(body);
      return;
    }
    let sent = 0;
    for await (const piece of body) {
      if (sent + piece.length > size) throw new Error(`chunk body grew beyond the announced ${size} bytes`);
      sent += piece.length;
      await this.put(piece);
    }
    if (sent !== size) throw new Error(`chunk body is ${sent} bytes, announced ${size}`);
  }

  private async put(piece: Uint8Array): Promise<void> {
    if (piece.length === 0) return;
    if (this.pendingBytes + piece.length > BATCH) { await this.raw(piece); return; }
    this.pending.push(Buffer.from(piece));
    this.pendingBytes += piece.length;
  }

  /** Flushes and ends the stream. */
  async end(): Promise<void> {
    await this.flush();
    if (!this.out.writableEnded) {
      const done = once(this.out, 'finish').catch(() => undefined);
      this.out.end();
      await done;
    }
  }
}

async function drained(out: Writable): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const cleanup = (): void => { out.off('drain', ok); out.off('error', bad); out.off('close', closed); };
    const ok = (): void => { cleanup(); resolve(); };
    const bad = (e: Error): void => { cleanup(); reject(new ProtocolError(`write failed: ${e.message}`, 'eof')); };
    const closed = (): void => { cleanup(); reject(new ProtocolError('connection closed while writing', 'eof')); };
    out.on('drain', ok); out.on('error', bad); out.on('close', closed);
  });
}
