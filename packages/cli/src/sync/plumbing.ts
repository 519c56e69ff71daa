import { createWriteStream, type WriteStream } from 'node:fs';
import { Transform, type Readable, type Writable } from 'node:stream';

/** A pass-through that also appends every byte to `path` (the DEBUG traffic logs). */
export function teeTo(path: string): Transform & { log: WriteStream } {
  const log = createWriteStream(path, { flags: 'w', mode: 0o600 });
  log.on('error', () => { /* a full disk must not break the sync */ });
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (log.write(chunk)) done(null, chunk);
      else log.once('drain', () => done(null, chunk));
    },
    flush(done) { log.end(done); },
  });
  return Object.assign(t, { log });
}

/**
 * Connects `from` to `to`, optionally through a tee; broken pipes are not
 * fatal (the exit codes tell). Once `to` is closed (its program exited),
 * `from` is drained into nothing, so that no one waits on bytes that nobody
 * will read.
 */
export function connect(from: Readable, to: Writable, tee: string | null): void {
  const swallow = (): void => { /* EPIPE & co: the other side is gone */ };
  from.on('error', swallow);
  to.on('error', swallow);
  let last: Readable = from;
  if (tee !== null) {
    const t = teeTo(tee);
    t.on('error', swallow);
    last = from.pipe(t);
  }
  last.pipe(to);
  to.once('close', () => { last.unpipe(to); last.resume(); });
}

/** Text written in any pieces, cut into lines for `onLine`; `end` gives the last, unterminated one. */
export class LineSplitter {
  private rest = '';
  constructor(private readonly onLine: (line: string) => void) {}

  write(text: string): boolean {
    const parts = (this.rest + text).split('\n');
    this.rest = parts.pop() ?? '';
    for (const p of parts) this.onLine(p);
    return true;
  }

  end(): void {
    if (this.rest !== '') this.onLine(this.rest);
    this.rest = '';
  }
}

/** Calls `onLine` for every complete line of `stream` (a log). */
export function eachLine(stream: Readable, onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve) => {
    const lines = new LineSplitter(onLine);
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => lines.write(d));
    stream.on('error', () => resolve());
    stream.on('end', () => { lines.end(); resolve(); });
  });
}
