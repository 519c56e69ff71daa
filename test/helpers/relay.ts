/**
 * A scripted relay between the REAL bin/smd-server and bin/smd-client,
 * connected by pipes through this process. By default it forwards every
 * frame (a line, or a `chunk N` + its N bytes) unchanged, as soon as the
 * frame is complete; hooks may lie (replace, inject, drop frames), delay,
 * close a direction or kill a program at a chosen frame.
 *
 * The relay never does a program's job: it does not flush, retry, answer or
 * wait on anybody's behalf unless a hook tells it to, so a program that
 * forgets to flush (or waits forever) shows up as `hung` in the result.
 *
 *   const r = await relay({
 *     server: { home: serverHome, args: ['laptop', 'Mail'] },
 *     client: { home: clientHome, args: ['laptop', 'Mail'] },
 *     onServer: (f) => f.line === 'END' ? [{ line: 'ADD ../x H B' }, { line: 'END' }] : undefined,
 *     onClient: (f, c) => f.line.startsWith('GET ') ? { answer: [{ chunk: data }] } : undefined,
 *   });
 *   r.client.code, r.client.stderr, r.server.code, r.hung
 *
 * A hook returns undefined (forward the frame), a list of items to send
 * instead (an empty list drops it), or, for a client request, `{ answer }`:
 * the relay answers it itself, in request order, instead of the server.
 * Requests a hook injects with `c.toServer` have their replies passed to
 * `onServer` with `injected: true` and dropped unless the hook forwards them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { WireReader } from '@smd/protocol';
import { BIN } from './sync-fixture.js';
import { PLAIN_NODE } from './plain-node.js';

/** What can be sent: a line (latin1, without its LF), a chunk (header + body), or raw bytes. */
export type Item = { line: string } | { chunk: Buffer | string } | { raw: Buffer | string };

export interface Frame {
  readonly from: 'server' | 'client';
  readonly kind: 'line' | 'chunk';
  /**
   * The line (latin1, without LF); for a chunk, its header line `chunk N`;
   * '' when the program ended inside a chunk (`data` then holds what it sent).
   */
  readonly line: string;
  /** A chunk's body (empty for a line). */
  readonly data: Buffer;
  /**
   * Server frames: 'handshake' (the first 2 lines), 'diff' (up to and
   * including END), 'reply'. Client frames: 'handshake', 'request'.
   */
  readonly phase: 'handshake' | 'diff' | 'reply' | 'request';
  /** For a server reply: the request line it answers (null if none was pending). */
  readonly request: string | null;
  /** For a server reply: true if the relay injected that request. */
  readonly injected: boolean;
  /** Index among the frames of its sender. */
  readonly index: number;
}

export type Verdict = Item[] | { answer: Item[] } | undefined;
export type Hook = (f: Frame, c: Control) => Verdict | Promise<Verdict>;

export interface Control {
  /** Sends items to the client (after what was already sent to it). */
  toClient(...items: Item[]): Promise<void>;
  /** Sends items to the server; request lines among them are tracked (their replies are `injected`). */
  toServer(...items: Item[]): Promise<void>;
  /** Ends the stream to the client / the server (EOF on its stdin). */
  closeToClient(): Promise<void>;
  closeToServer(): Promise<void>;
  /** Kills a program (SIGKILL by default). */
  kill(who: 'server' | 'client', signal?: NodeJS.Signals): void;
  sleep(ms: number): Promise<void>;
  readonly server: ChildProcess;
  readonly client: ChildProcess;
  /** Events in order: `S> line`, `C> line`, `kill client`, ... (lines cut to 200 chars). */
  readonly log: string[];
}

export interface Program {
  /** HOME and working directory of the program. */
  readonly home: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

export interface RelayOptions {
  server: Program;
  client: Program;
  onServer?: Hook;
  onClient?: Hook;
  /** Called when a program's output ends; default: end the other program's input. */
  onServerEnd?: (c: Control) => void | Promise<void>;
  onClientEnd?: (c: Control) => void | Promise<void>;
  /** Both programs are killed after this long; the result says `hung` (default 30 s). */
  timeoutMs?: number;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

export interface RelayResult {
  server: Exit;
  client: Exit;
  /** The time limit was reached (a program waited forever). */
  hung: boolean;
  /** Raw bytes as each program wrote them (before any lie). */
  serverSent: Buffer;
  clientSent: Buffer;
  /** Raw bytes delivered to each program (after the lies). */
  toClient: Buffer;
  toServer: Buffer;
  log: string[];
}

const REQUEST = /^(GET|GETHEADER|GETBODY) |^COMMIT$/;

function encode(item: Item): Buffer {
  if ('line' in item) return Buffer.from(`${item.line}\n`, 'latin1');
  if ('chunk' in item) {
    const body = typeof item.chunk === 'string' ? Buffer.from(item.chunk, 'latin1') : item.chunk;
    return Buffer.concat([Buffer.from(`chunk ${body.length}\n`, 'latin1'), body]);
  }
  return typeof item.raw === 'string' ? Buffer.from(item.raw, 'latin1') : item.raw;
}

const firstLine = (b: Buffer): string => {
  const nl = b.indexOf(10);
  return b.toString('latin1', 0, Math.min(nl < 0 ? b.length : nl, 200));
};

/** Writes to a program's stdin, honouring backpressure; a dead program's pipe is not an error. */
async function write(to: Writable, b: Buffer): Promise<void> {
  if (b.length === 0 || to.destroyed || to.writableEnded) return;
  if (to.write(b)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => { to.off('drain', done); to.off('close', done); to.off('error', done); resolve(); };
    to.on('drain', done); to.on('close', done); to.on('error', done);
  });
}

/** Programs still running: killed if this test process ends first (a timed-out test must not leave them behind). */
const running = new Set<ChildProcess>();
const killRunning = (): void => { for (const c of running) c.kill('SIGKILL'); };
process.on('exit', killRunning);
process.once('SIGTERM', () => { killRunning(); process.kill(process.pid, 'SIGTERM'); });

function start(name: 'smd-server' | 'smd-client', p: Program): ChildProcess {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', ...p.env, HOME: p.home, ...PLAIN_NODE };
  const child = spawn(process.execPath, [join(BIN, name), ...p.args], { cwd: p.home, env, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin!.on('error', () => { /* EPIPE: the program is gone */ });
  running.add(child);
  child.on('exit', () => running.delete(child));
  return child;
}

/** The pieces of a stream, also kept in `into`. */
async function* recorded(out: Readable, into: Buffer[]): AsyncGenerator<Buffer> {
  for await (const d of out) { into.push(d as Buffer); yield d as Buffer; }
}

/**
 * Frames (lines, or chunk header + body) of a program's output. A program
 * that ends inside a chunk gives a last frame with line '' and the bytes it sent.
 */
async function* frames(out: AsyncIterable<Buffer>, chunks: boolean): AsyncGenerator<{ line: string; data: Buffer; kind: 'line' | 'chunk' }> {
  const r = new WireReader(out);
  for (;;) {
    let line: string | null;
    try { line = await r.readLine(1 << 20); } catch { return; }
    if (line === null) return;
    const m = chunks ? /^chunk (0|[1-9][0-9]{0,15})$/.exec(line) : null;
    if (m === null) { yield { line, data: Buffer.alloc(0), kind: 'line' }; continue; }
    const parts: Buffer[] = [];
    try { for await (const p of r.readBytes(Number(m[1]))) parts.push(Buffer.from(p)); } catch {
      // The program died inside a chunk: pass on what came, as the pipe would have.
      yield { line: '', data: Buffer.concat([Buffer.from(`${line}\n`, 'latin1'), ...parts]), kind: 'line' };
      return;
    }
    yield { line, data: Buffer.concat(parts), kind: 'chunk' };
  }
}

interface Pending { request: string; owner: 'client' | 'relay' | 'local'; answer?: Item[] }

/** Runs one session through the relay; resolves when both programs have exited (or were killed at the time limit). */
export async function relay(o: RelayOptions): Promise<RelayResult> {
  const server = start('smd-server', o.server);
  const client = start('smd-client', o.client);
  const log: string[] = [];
  const rec = { serverSent: [] as Buffer[], clientSent: [] as Buffer[], toClient: [] as Buffer[], toServer: [] as Buffer[] };
  const stderr = { server: '', client: '' };
  server.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr.server += d; });
  client.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr.client += d; });
  const exited = (c: ChildProcess): Promise<Exit & { who: ChildProcess }> => new Promise((resolve) => {
    c.on('close', (code, signal) => resolve({ code, signal, stderr: '', who: c }));
  });
  const serverExit = exited(server);
  const clientExit = exited(client);
  server.on('exit', (code, signal) => log.push(`server exited ${code ?? signal}`));
  client.on('exit', (code, signal) => log.push(`client exited ${code ?? signal}`));

  // Writes to one program are chained, so that hooks of both directions keep their order.
  let toClientChain = Promise.resolve();
  let toServerChain = Promise.resolve();
  const pending: Pending[] = [];
  let clientSawEnd = false;
  const phases = { client: 'handshake' as 'handshake' | 'request' };

  const sendClient = (items: Item[]): Promise<void> => {
    toClientChain = toClientChain.then(async () => {
      for (const it of items) {
        const b = encode(it);
        rec.toClient.push(b);
        log.push(`->C ${firstLine(b)}`);
        if ('line' in it && it.line === 'END') clientSawEnd = true;
        await write(client.stdin!, b);
      }
    });
    return toClientChain;
  };
  const sendServer = (items: Item[], owner: 'client' | 'relay'): Promise<void> => {
    for (const it of items) if ('line' in it && REQUEST.test(it.line) && phases.client === 'request') pending.push({ request: it.line, owner });
    toServerChain = toServerChain.then(async () => {
      for (const it of items) {
        const b = encode(it);
        rec.toServer.push(b);
        log.push(`->S ${firstLine(b)}`);
        await write(server.stdin!, b);
      }
    });
    return toServerChain;
  };
  /** Local answers at the head of the queue go out as soon as the client is in its reply phase. */
  const flushLocal = async (): Promise<void> => {
    while (clientSawEnd && pending.length > 0 && pending[0].owner === 'local') {
      const p = pending.shift()!;
      await sendClient(p.answer ?? []);
    }
  };

  const control: Control = {
    toClient: (...items) => sendClient(items),
    toServer: (...items) => sendServer(items, 'relay'),
    closeToClient: async () => { await toClientChain; log.push('close ->C'); client.stdin!.end(); },
    closeToServer: async () => { await toServerChain; log.push('close ->S'); server.stdin!.end(); },
    kill: (who, signal = 'SIGKILL') => { log.push(`kill ${who} ${signal}`); (who === 'server' ? server : client).kill(signal); },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    server,
    client,
    log,
  };

  const serverLoop = (async () => {
    let index = 0;
    let phase: 'handshake' | 'diff' | 'reply' = 'handshake';
    for await (const fr of frames(recorded(server.stdout!, rec.serverSent), true)) {
      let request: string | null = null;
      let injected = false;
      if (phase === 'reply') {
        await flushLocal();
        const p = pending.shift();
        if (p !== undefined) { request = p.request; injected = p.owner === 'relay'; }
      }
      const f: Frame = { from: 'server', kind: fr.kind, line: fr.line, data: fr.data, phase, request, injected, index };
      log.push(`S> ${fr.line.slice(0, 200)}${fr.kind === 'chunk' ? ` (${fr.data.length} bytes)` : ''}${injected ? ' [injected]' : ''}`);
      index += 1;
      if (phase === 'handshake' && index === 2) phase = 'diff';
      else if (phase === 'diff' && fr.kind === 'line' && fr.line === 'END') phase = 'reply';
      const v = await o.onServer?.(f, control);
      const asIs: Item[] = fr.kind === 'chunk' ? [{ chunk: fr.data }] : fr.line === '' && fr.data.length > 0 ? [{ raw: fr.data }] : [{ line: fr.line }];
      if (v === undefined) { if (!injected) await sendClient(asIs); } else if (Array.isArray(v)) await sendClient(v);
      await flushLocal();
    }
    log.push('S> EOF');
    if (o.onServerEnd) await o.onServerEnd(control); else await control.closeToClient();
  })();

  const clientLoop = (async () => {
    let index = 0;
    for await (const fr of frames(recorded(client.stdout!, rec.clientSent), false)) {
      const f: Frame = { from: 'client', kind: 'line', line: fr.line, data: fr.data, phase: phases.client, request: null, injected: false, index };
      log.push(`C> ${fr.line.slice(0, 200)}`);
      index += 1;
      if (index === 2) phases.client = 'request';
      const v = await o.onClient?.(f, control);
      const raw = fr.line === '' && fr.data.length > 0;
      if (v === undefined) await sendServer(raw ? [{ raw: fr.data }] : [{ line: fr.line }], 'client');
      else if (Array.isArray(v)) await sendServer(v, 'client');
      else {
        pending.push({ request: fr.line, owner: 'local', answer: v.answer });
        await flushLocal();
      }
    }
    log.push('C> EOF');
    if (o.onClientEnd) await o.onClientEnd(control); else await control.closeToServer();
  })();

  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    log.push('time limit: killing both');
    server.kill('SIGKILL');
    client.kill('SIGKILL');
  }, o.timeoutMs ?? 30_000);
  const [se, ce] = await Promise.all([serverExit, clientExit]);
  clearTimeout(timer);
  await Promise.race([Promise.allSettled([serverLoop, clientLoop]), new Promise((r) => setTimeout(r, 2000))]);
  return {
    server: { code: se.code, signal: se.signal, stderr: stderr.server },
    client: { code: ce.code, signal: ce.signal, stderr: stderr.client },
    hung,
    serverSent: Buffer.concat(rec.serverSent),
    clientSent: Buffer.concat(rec.clientSent),
    toClient: Buffer.concat(rec.toClient),
    toServer: Buffer.concat(rec.toServer),
    log,
  };
}
