// The emulated link of the benchmarks (bench/README.md, "Latency"): one
// direction of a connection with a fixed one-way delay, a serialisation rate
// and a flow-control window, plus a watcher that splits the smd wire format
// into lines for timelines.

/**
 * One direction of an emulated link. Bytes written at time t0 are serialised
 * one after the other at `rate` bytes/s (the link is busy until the previous
 * byte left), then arrive `delay` ms after their serialisation ended. At
 * most `window` bytes are between entry and delivery: beyond that the
 * source is paused (TCP/ssh flow control). A destination that does not take
 * more (write() false) holds delivery until 'drain'.
 */
export class Link {
  constructor(name, { delay, rate, window }, dest, onDeliver) {
    this.name = name; this.delay = delay; this.rate = rate; this.window = window;
    this.dest = dest; this.onDeliver = onDeliver;
    this.queue = []; // { at, buf }
    this.head = 0;
    this.busyUntil = 0; // when the serialiser is free (ms, performance.now())
    this.busyTotal = 0; // ms spent serialising
    this.inFlight = 0;
    this.bytes = 0;
    this.timer = null;
    this.blocked = false;
    this.ended = false;
    this.sources = [];
    this.onIdle = null;
  }

  attach(source) {
    this.sources.push(source);
    source.on('data', (b) => this.write(b, source));
    source.on('end', () => this.end());
  }

  write(buf, source) {
    const now = performance.now();
    // Serialise in pieces of at most 16 KiB so a big write streams out.
    for (let o = 0; o < buf.length; o += 16384) {
      const piece = buf.subarray(o, Math.min(buf.length, o + 16384));
      const start = Math.max(now, this.busyUntil);
      const ser = this.rate > 0 ? (piece.length / this.rate) * 1000 : 0;
      this.busyUntil = start + ser;
      this.busyTotal += ser;
      this.queue.push({ at: this.busyUntil + this.delay, buf: piece });
    }
    this.inFlight += buf.length;
    this.bytes += buf.length;
    if (source && this.inFlight > this.window) source.pause();
    this.schedule();
  }

  end() {
    this.ended = true;
    this.schedule();
  }

  schedule() {
    if (this.timer !== null || this.blocked) return;
    if (this.head >= this.queue.length) {
      if (this.ended) { this.dest.end(); this.onIdle?.(); }
      return;
    }
    const wait = this.queue[this.head].at - performance.now();
    if (wait <= 0) { this.deliver(); return; }
    this.timer = setTimeout(() => { this.timer = null; this.deliver(); }, Math.max(1, Math.ceil(wait)));
  }

  deliver() {
    const now = performance.now();
    while (this.head < this.queue.length && this.queue[this.head].at <= now + 0.5) {
      const { buf } = this.queue[this.head];
      this.queue[this.head++] = undefined;
      this.inFlight -= buf.length;
      this.onDeliver?.(buf, now);
      const more = this.dest.write(buf);
      if (!more) {
        this.blocked = true;
        this.dest.once('drain', () => { this.blocked = false; this.schedule(); });
        break;
      }
    }
    if (this.head > 4096 && this.head * 2 > this.queue.length) { this.queue.splice(0, this.head); this.head = 0; }
    if (this.inFlight <= this.window) for (const s of this.sources) if (s.isPaused()) s.resume();
    this.schedule();
  }
}

/** Splits a byte stream into lines (latin1), skipping `chunk N` payloads when asked. */
export class WireWatcher {
  constructor(onLine, chunks) {
    this.onLine = onLine; this.chunks = chunks; this.partial = ''; this.skip = 0;
  }

  feed(buf, t) {
    let i = 0;
    while (i < buf.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, buf.length - i);
        this.skip -= n; i += n;
        if (this.skip === 0) this.onLine(null, t); // end of a chunk payload
        continue;
      }
      const nl = buf.indexOf(0x0a, i);
      if (nl < 0) { this.partial += buf.toString('latin1', i); return; }
      const line = this.partial + buf.toString('latin1', i, nl);
      this.partial = '';
      i = nl + 1;
      const m = this.chunks ? /^chunk (\d+)$/.exec(line) : null;
      if (m) {
        this.skip = Number(m[1]);
        this.onLine(line, t);
        if (this.skip === 0) this.onLine(null, t);
      } else {
        this.onLine(line, t);
      }
    }
  }
}

