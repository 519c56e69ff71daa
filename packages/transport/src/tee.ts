import { createWriteStream, type WriteStream } from 'node:fs';
import { PassThrough } from 'node:stream';
import type { RemoteProcess } from './types.js';

export interface TeeLogs {
  /** Receives every byte written to the remote program (our `stdin` side). */
  sent: string;
  /** Receives every byte read from the remote program (its `stdout`). */
  received: string;
  /** 'truncate' (default) or 'append'. Files are created with mode 0600 (they hold whole mails). */
  mode?: 'truncate' | 'append';
}

export interface TeedRemoteProcess extends RemoteProcess {
  /** Settles when both log files are flushed and closed (after `exit` and the end of both flows). */
  readonly logsClosed: Promise<void>;
}

/**
 * DEBUG traffic log: a RemoteProcess whose stdin/stdout are copied, byte for
 * byte, into two files while they flow. Nothing is buffered whole: both
 * copies are stream pipes, so a slow log file or a slow peer slows the flow
 * (backpressure) instead of growing memory. Works with every transport kind.
 *
 * Naming by protocol role is the caller's business: in a pull, `sent` is the
 * client-to-server log; in a push, the server-to-client one.
 */
export function teeRemote(r: RemoteProcess, logs: TeeLogs): TeedRemoteProcess {
  const flags = logs.mode === 'append' ? 'a' : 'w';
  const sentLog = createWriteStream(logs.sent, { flags, mode: 0o600 });
  const receivedLog = createWriteStream(logs.received, { flags, mode: 0o600 });
  const closed = (w: WriteStream): Promise<void> =>
    new Promise((res) => { if (w.closed) res(); else { w.once('close', () => res()); w.once('error', () => res()); } });

  // to the remote program: our writable -> (remote stdin, sent log)
  const input = new PassThrough();
  input.pipe(r.stdin);
  input.pipe(sentLog);
  // from the remote program: remote stdout -> (our readable, received log)
  const output = new PassThrough();
  r.stdout.pipe(output);
  r.stdout.pipe(receivedLog);
  // A failing log file must not stop the traffic (pipe() unpipes it on error).
  sentLog.on('error', () => {});
  receivedLog.on('error', () => {});
  r.stdout.on('error', (e) => { output.destroy(e); receivedLog.end(); });
  input.on('error', () => {});

  const logsClosed = r.exit.then(async () => {
    // Whatever is written to stdin after the remote program is gone never
    // crossed: stop logging it unless the writer already ended.
    if (!input.writableEnded) {
      input.unpipe(sentLog);
      sentLog.end();
    }
    await Promise.all([closed(sentLog), closed(receivedLog)]);
  });

  return {
    stdout: output,
    stdin: input,
    stderr: r.stderr,
    exit: r.exit,
    description: r.description,
    logsClosed,
    kill: () => r.kill(),
  };
}
