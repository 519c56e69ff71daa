/**
 * A scripted smd server for client tests: spawns the real bin/smd-client and
 * plays the server side with WireReader/WireWriter. It sends the handshake,
 * the diff lines and END, answers GET/GETHEADER from a map of name → bytes
 * (or lies, per request), answers COMMIT with a db patch, and records the
 * order of events so tests can check pipelining.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { WireReader, WireWriter, PROTOCOL_VERSION, createDbPatchFromBuffers } from '@smd/protocol';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLIENT = join(ROOT, 'bin', 'smd-client');
export const EMPTY = 'da39a3ee5e6b4b0d3255bfef95601890afd80709';

export const sha1 = (d: string | Buffer): string => createHash('sha1').update(typeof d === 'string' ? Buffer.from(d, 'latin1') : d).digest('hex');

/** Header/body hashes the way mddiff computes them (split after the first "\n\n"). */
export function hashes(data: string | Buffer): { h: string; b: string } {
  const buf = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  const p = buf.indexOf('\n\n');
  if (p < 0) throw new Error('not a message');
  return { h: sha1(buf.subarray(0, p + 2)), b: sha1(buf.subarray(p + 2)) };
}

export const addLine = (name: string, data: string | Buffer): string => {
  const { h, b } = hashes(data);
  return `ADD ${name.replace(/%/g, '%25').replace(/ /g, '%20')} ${h} ${b}`;
};

/** What the server replies to one request (default: the truth from `files`). */
export type Reply =
  | { kind: 'data'; data: Buffer }
  | { kind: 'abort' }
  /** Announces `announced` bytes, sends `data` (fewer), then closes the connection. */
  | { kind: 'short'; announced: number; data: Buffer }
  /** Sends this raw line as the reply header and closes. */
  | { kind: 'line'; line: string }
  /** Closes the connection without replying. */
  | { kind: 'eof' };

export interface Script {
  /** First handshake line (default: ours). */
  protocol?: string;
  /** db fingerprints to announce (default: empty db, no .new). */
  db?: string;
  dbNew?: string | null;
  /** Diff lines (raw wire lines, names already encoded). */
  diff: string[];
  /** Send END (default true); false = close after the diff. */
  end?: boolean;
  /** Message bytes by (raw) name, for GET and GETHEADER. */
  files?: Map<string, Buffer | string>;
  /** Override the reply to a request line (`GET x` / `GETHEADER x`); undefined = the truth. */
  lie?: (request: string, index: number) => Reply | undefined;
  /** Hold END until the client sent a request (at most this many ms). */
  holdEndForRequestMs?: number;
  /** Hold the first reply until this many requests arrived (at most 5 s). */
  holdRepliesUntil?: number;
  /** Delay before each reply (ms). */
  replyDelayMs?: number;
  /** db-file contents for the COMMIT patch (old → new), or a raw patch. */
  commit?: { old: Buffer | string; new: Buffer | string } | { raw: Buffer };
  /** Called after each reply is written (count of replies so far). */
  afterReply?: (n: number, child: ChildProcess) => void;
}

export interface Result {
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** Ordered events: `send END`, `recv GET x`, `reply x`, `recv COMMIT`, ... */
  events: string[];
  /** Client handshake lines. */
  handshake: string[];
  /**
   * Request lines received after the handshake (GET/GETHEADER/COMMIT/DONE/ABORT),
   * read until the client's EOF whatever the serving loop was doing: check what
   * the client sent here (`events` only has what the loop got to, which depends on timing).
   */
  requests: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function headerOf(buf: Buffer): Buffer {
  // smd-server's rule: lines up to and including the first empty line.
  const p = buf.indexOf('\n\n');
  return p < 0 ? buf : buf.subarray(0, p + 2);
}

/** Runs bin/smd-client `args` in `cwd` with HOME=`home` against the script. */
export async function runAgainst(opts: { home: string; cwd?: string; args: string[]; script: Script; env?: NodeJS.ProcessEnv; nodeArgs?: string[] }): Promise<Result> {
  const s = opts.script;
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), CLIENT, ...opts.args], {
    cwd: opts.cwd ?? opts.home, env: { ...process.env, HOME: opts.home, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
  child.stdin!.on('error', () => { /* client gone */ });
  // 'close', not 'exit': the stderr still in the pipe after the exit is part of the result (CI lost it under load).
  const exited = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (status, signal) => resolve({ status, signal })));

  const events: string[] = [];
  const handshake: string[] = [];
  const requests: string[] = [];
  const w = new WireWriter(child.stdin!);
  const r = new WireReader(child.stdout!);
  let closed = false;
  const close = (): void => { if (!closed) { closed = true; child.stdin!.end(); } };

  // Request reader, concurrent with everything we send.
  const queue: string[] = [];
  const waker: { wake: (() => void) | null } = { wake: null };
  let readerDone = false;
  const reading = (async () => {
    try {
      for (let i = 0; i < 2; i++) {
        const l = await r.readLine();
        if (l === null) return;
        handshake.push(l);
      }
      for (;;) {
        const l = await r.readLine();
        if (l === null) return;
        requests.push(l);
        events.push(`recv ${l}`);
        queue.push(l);
        waker.wake?.();
      }
    } catch { /* the client died */ } finally {
      readerDone = true;
      waker.wake?.();
    }
  })();
  const nextRequest = async (): Promise<string | null> => {
    while (queue.length === 0) {
      if (readerDone) return null;
      await new Promise<void>((res) => { waker.wake = res; });
      waker.wake = null;
    }
    return queue.shift()!;
  };
  const until = async (cond: () => boolean, ms: number): Promise<void> => {
    const t0 = Date.now();
    while (!cond() && !readerDone && Date.now() - t0 < ms) await sleep(5);
  };

  const serve = (async () => {
    try {
      await w.line(s.protocol ?? `protocol ${PROTOCOL_VERSION}`);
      await w.line(`dbfile ${s.db ?? EMPTY} ${s.dbNew ?? '-'}`);
      await w.flush();
      for (const l of s.diff) await w.line(l);
      await w.flush();
      events.push('sent diff');
      if (s.holdEndForRequestMs) await until(() => requests.some((q) => q.startsWith('GET')), s.holdEndForRequestMs);
      if (s.end === false) { close(); return; }
      await w.line('END');
      await w.flush();
      events.push('send END');
      let replies = 0;
      let index = 0;
      for (;;) {
        const req = await nextRequest();
        if (req === null) { events.push('client EOF'); break; }
        if (req === 'ABORT') { events.push('ABORT'); break; }
        if (req === 'DONE') { events.push('DONE'); break; }
        if (req === 'COMMIT') {
          const c = s.commit ?? { old: '', new: '' };
          const patch = 'raw' in c ? c.raw : createDbPatchFromBuffers(Buffer.from(c.old as string, 'latin1'), Buffer.from(c.new as string, 'latin1'));
          await w.chunk(patch.length, patch);
          await w.flush();
          events.push('sent patch');
          continue;
        }
        if (req.startsWith('SKIP ')) continue;
        const m = /^(GET|GETHEADER) (.*)$/s.exec(req);
        if (!m) { events.push(`bad request ${req}`); break; }
        if (s.holdRepliesUntil && replies === 0) await until(() => requests.length >= s.holdRepliesUntil!, 5000);
        if (s.replyDelayMs) await sleep(s.replyDelayMs);
        const lie = s.lie?.(req, index++);
        const file = s.files?.get(m[2]);
        const reply: Reply = lie ?? (file === undefined ? { kind: 'abort' }
          : { kind: 'data', data: m[1] === 'GET' ? Buffer.from(file as string, 'latin1') : headerOf(Buffer.from(file as string, 'latin1')) });
        if (typeof file !== 'string' && file !== undefined && lie === undefined) {
          (reply as { data: Buffer }).data = m[1] === 'GET' ? file : headerOf(file);
        }
        events.push(`reply ${m[2]}`);
        if (reply.kind === 'data') await w.chunk(reply.data.length, reply.data);
        else if (reply.kind === 'abort') await w.line('ABORT');
        else if (reply.kind === 'short') { await w.line(`chunk ${reply.announced}`); await w.raw(reply.data); await w.flush(); close(); break; }
        else if (reply.kind === 'line') { await w.line(reply.line); await w.flush(); close(); break; }
        else { close(); break; }
        await w.flush();
        replies++;
        s.afterReply?.(replies, child);
      }
    } catch (e) {
      events.push(`server error ${(e as Error).message}`);
    } finally {
      close();
    }
  })();

  const ex = await exited;
  await serve;
  await reading;
  return { ...ex, stderr, events, handshake, requests };
}
