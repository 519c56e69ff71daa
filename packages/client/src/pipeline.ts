/**
 * The client's concurrency model: requests sent ahead of their replies, a
 * sliding window, work pending per name, and one failure that stops all.
 *
 * - Requests are queued in order with a reply handler; the *pump* consumes
 *   the replies in the same order (write to a temp file while hashing, then
 *   a completion — fsync, verify, place — that runs while the next reply is
 *   read).
 * - Window rule: at most `maxInFlight` requests are outstanding (sent, reply
 *   not yet fully consumed); each consumed reply frees one slot at once (a
 *   sliding window, never batches that drain). Message bytes never
 *   accumulate in memory (they stream to disk), so a count bound is what
 *   limits the work the server has queued when we abort.
 * - Request lines are batched by the WireWriter and flushed on the next turn
 *   of the event loop after they are queued, i.e. as soon as the applier has
 *   nothing more to do synchronously: a request never sits unsent while
 *   anybody waits.
 * - Per-name promise map: a command waits for the pending work on the names
 *   it involves before it observes them (correctness first).
 * - The first failure wins: `abort(e)` records it, every `wait` rejects with
 *   it, and work that notices later throws SessionAborted (never reported).
 */
import { type ByteString } from '@smd/maildir';
import { ProtocolError, TaggedError, type WireWriter } from '@smd/protocol';
import { AsyncQueue, Semaphore, deferred, type Deferred } from './queue.js';
import { SessionAborted, retry } from './errors.js';

/** What a reply handler may leave running while the next reply is read. */
export interface Completion { readonly completion: Promise<void> }

/** Consumes the reply of a request from the input; may return a completion. */
export type ReplyHandler = () => Promise<Completion | undefined>;

interface Request {
  readonly handle: ReplyHandler;
  readonly done: Deferred<void>;
}

const STOP = Symbol('STOP');

export class RequestPipeline {
  private readonly window: Semaphore;
  private readonly requests = new AsyncQueue<Request | typeof STOP>();
  private readonly pending = new Map<ByteString, Promise<void>>();
  private readonly failure = deferred<never>();
  /** The rejecters of the waits in progress (abort rejects them). */
  private readonly waiting = new Set<(e: unknown) => void>();
  private flushScheduled = false;
  private reasonOf: unknown = null;
  aborted = false;

  constructor(private readonly writer: WireWriter, maxInFlight: number) {
    this.window = new Semaphore(maxInFlight);
  }

  /** The first failure recorded (null while none). */
  get reason(): unknown { return this.reasonOf; }

  /** Marks the session failed with `e` (the first call wins): every wait rejects; no file is placed after this. */
  abort(e: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reasonOf = e;
    this.failure.reject(e);
    for (const reject of this.waiting) reject(e);
    this.waiting.clear();
  }

  /**
   * Awaits `p`, unless the session fails first. Flushes queued requests before blocking.
   * Not Promise.race with the failure promise: each race leaves a reaction on that
   * promise until the session ends (several per message: ~300 MB at a million).
   */
  wait<T>(p: Promise<T>): Promise<T> {
    this.flushSoon();
    if (this.aborted) return Promise.race([p, this.failure.promise]);
    return new Promise<T>((resolve, reject) => {
      this.waiting.add(reject);
      p.then((v) => { this.waiting.delete(reject); resolve(v); }, (e: unknown) => { this.waiting.delete(reject); reject(e); });
    });
  }

  /** Throws SessionAborted once the session failed. */
  check(): void {
    if (this.aborted) throw new SessionAborted();
  }

  flushSoon(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.writer.flush().catch((e: unknown) => this.abort(networkError(e)));
    });
  }

  /** The work pending on `name`, if any. */
  pendingOn(name: ByteString): Promise<void> | undefined {
    return this.pending.get(name);
  }

  /** Resolves when every pending request is done. */
  allDone(): Promise<void> {
    return this.wait(Promise.all([...this.pending.values()]).then(() => undefined));
  }

  /** Queues a request line (flushed within one event-loop turn) and its reply handler; `names` wait for it. */
  async request(line: string, names: readonly ByteString[], handle: ReplyHandler): Promise<void> {
    await this.wait(this.window.acquire());
    this.check();
    const done = deferred<void>();
    this.requests.push({ handle, done });
    for (const n of names) {
      this.pending.set(n, done.promise);
      done.promise.then(() => { if (this.pending.get(n) === done.promise) this.pending.delete(n); }, () => undefined);
    }
    await this.writer.line(line).catch((e: unknown) => { throw networkError(e); });
    this.flushSoon();
  }

  /** A line that needs no reply (queued in order with the requests). */
  async notice(line: string): Promise<void> {
    await this.writer.line(line).catch((e: unknown) => { throw networkError(e); });
    this.flushSoon();
  }

  /** No more requests: the pump returns once the replies before this are consumed. */
  stop(): void {
    this.requests.push(STOP);
  }

  /** Consumes the replies, in request order, until stop(). */
  async pump(): Promise<void> {
    for (;;) {
      const r = await this.requests.next();
      if (r === STOP || this.aborted) return;
      let later: Completion | undefined;
      try {
        later = await r.handle();
      } catch (e) {
        r.done.reject(e);
        this.window.release();
        throw e;
      }
      if (later === undefined) { r.done.resolve(); this.window.release(); continue; }
      later.completion.then(() => { r.done.resolve(); this.window.release(); },
        (e: unknown) => { r.done.reject(e); this.window.release(); this.abort(e); });
    }
  }
}

function networkError(e: unknown): unknown {
  return e instanceof ProtocolError ? new TaggedError(`Network error while sending requests: ${e.message}`, retry('transmit', 'network'), 1) : e;
}
