/**
 * The fuzz engine (test/hostile-fuzz.test.ts runs it bounded, bench/fuzz.mjs
 * without bounds): a real session between the real smd-server and
 * smd-client is recorded once through the relay, then its two streams are
 * mutated (bit flips, cuts, inserted bytes, dropped, repeated and swapped
 * frames, hostile names, lying numbers and hashes, garbage lines) and fed,
 * one mutated stream per case, to the client session (server -> client
 * stream) or to the server session (client -> server stream), in this
 * process (runClient / runServer: the code the programs run, without the
 * cost of starting two programs per case).
 *
 * Every case must: end within its time bound, log no stack trace and no
 * internal error, exit with a code of the protocol, write nothing outside
 * the mailbox and the state dir of the program under test, and (server)
 * never send a byte of the sentinel tree outside the mailbox.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { runClient } from '@smd/client';
import { runServer } from '@smd/server';
import type { SessionLog } from '@smd/protocol';
import { relay } from './relay.js';
import { type Pair, changesOutside, maildir, message, put, snapshot, stackTraceIn } from './hostile-fixture.js';

export interface FuzzWorld {
  pair: Pair;
  /** Templates of the two HOMEs as they were before the recorded session. */
  clientTemplate: string;
  serverTemplate: string;
  elsewhereTemplate: string;
  /** The recorded streams. */
  s2c: Buffer;
  c2s: Buffer;
  /** Whether the client mailbox holds symlinks leading out (section 2 of issue 8). */
  symlinks: boolean;
}

export interface FuzzFailure { side: 'client' | 'server'; seed: number; index: number; why: string; mutations: string[] }
export interface FuzzReport { tried: number; failures: FuzzFailure[]; exits: Record<string, number>; ms: number }

/** mulberry32: small, seedable, good enough to pick mutations. */
export function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return (((x ^ (x >>> 14)) >>> 0) / 4294967296 * n) | 0;
  };
}

const ARGS = ['laptop', 'Mail'];

/** A base dir for the fuzz: tmpfs when there is one (the sessions fsync a lot). */
function fuzzBase(): string {
  const root = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const d = join(root, `smd-fuzz-${process.pid}-${Date.now()}`);
  mkdirSync(d, { recursive: true });
  return d;
}

/**
 * Builds the world: a first sync, then changes on the server that make every
 * diff command (ADD, COPY, MOVE, COPYBODY, DELETE, REPLACEHEADER, REPLACE),
 * then the recorded session. `symlinks`: the client's mailbox also holds a
 * folder symlink and a message symlink leading out of it.
 */
export async function prepareWorld(symlinks: boolean): Promise<FuzzWorld & { dispose(): void }> {
  const base = fuzzBase();
  const server = join(base, 'server');
  const client = join(base, 'client');
  const elsewhere = join(base, 'elsewhere');
  maildir(server, 'Mail', 'Mail/.Work');
  maildir(client, 'Mail');
  maildir(elsewhere, 'F');
  const secret = `SECRET-fuzz-${process.pid}`;
  const secretFile = put(elsewhere, 'F/cur/secret:2,S', message('secret', `${secret}\n`));
  const pair: Pair = { base, server, client, elsewhere, secret, secretFile };
  for (let i = 0; i < 12; i++) put(server, `Mail/cur/m${i}:2,S`, message(`m${i}`, `body ${i}\n${'x'.repeat(300 + i * 50)}\n`));
  const first = await relay({ server: { home: server, args: ARGS }, client: { home: client, args: ARGS }, timeoutMs: 90_000 });
  if (first.client.code !== 0) throw new Error(`fuzz world: the first sync failed: ${first.client.stderr}`);
  await new Promise((r) => setTimeout(r, 1100));
  const s = (rel: string): string => join(server, rel);
  for (let i = 0; i < 3; i++) writeFileSync(s(`Mail/new/n${i}`), message(`n${i}`));
  unlinkSync(s('Mail/cur/m0:2,S'));
  renameSync(s('Mail/cur/m1:2,S'), s('Mail/cur/m1:2,RS'));
  renameSync(s('Mail/cur/m2:2,S'), s('Mail/.Work/cur/m2:2,S'));
  writeFileSync(s('Mail/cur/m3:2,S'), readFileSync(s('Mail/cur/m3:2,S'), 'latin1').replace('Subject: m3', 'Subject: m3 edited'), 'latin1');
  writeFileSync(s('Mail/cur/m4:2,S'), message('m4', 'another body\n'));
  cpSync(s('Mail/cur/m5:2,S'), s('Mail/.Work/cur/m5copy:2,S'));
  writeFileSync(s('Mail/.Work/cur/m6other:2,S'), readFileSync(s('Mail/cur/m6:2,S'), 'latin1').replace('Subject: m6', 'Subject: m6 forwarded'), 'latin1');
  if (symlinks) {
    symlinkSync(join(elsewhere, 'F'), join(client, 'Mail/.Link'));
    symlinkSync(secretFile, join(client, 'Mail/cur/link:2,S'));
  }
  const clientTemplate = join(base, 'client.template');
  const serverTemplate = join(base, 'server.template');
  const elsewhereTemplate = join(base, 'elsewhere.template');
  cpSync(elsewhere, elsewhereTemplate, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  cpSync(client, clientTemplate, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  cpSync(server, serverTemplate, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  const rec = await relay({ server: { home: server, args: ARGS }, client: { home: client, args: ARGS }, timeoutMs: 90_000 });
  if (rec.client.code !== 0 || rec.server.code !== 0) throw new Error(`fuzz world: the recorded sync failed: ${rec.client.stderr}${rec.server.stderr}`);
  for (const cmd of ['ADD', 'COPY', 'MOVE', 'COPYBODY', 'DELETE', 'REPLACEHEADER', 'REPLACE']) {
    if (!new RegExp(`^${cmd} `, 'm').test(rec.serverSent.toString('latin1'))) throw new Error(`fuzz world: the recorded diff has no ${cmd}`);
  }
  return {
    pair, clientTemplate, serverTemplate, elsewhereTemplate, s2c: rec.serverSent, c2s: rec.clientSent, symlinks,
    dispose: () => rmSync(base, { recursive: true, force: true }),
  };
}

// ------------------------------------------------------------------ mutations

/** Frames of a recorded stream: lines (with their LF) and chunk bodies, as byte ranges. */
function framesOf(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let p = 0;
  while (p < b.length) {
    const nl = b.indexOf(10, p);
    if (nl < 0) { out.push(b.subarray(p)); break; }
    const line = b.toString('latin1', p, nl);
    out.push(b.subarray(p, nl + 1));
    p = nl + 1;
    const m = /^chunk (\d+)$/.exec(line);
    if (m) { const n = Number(m[1]); out.push(b.subarray(p, p + n)); p += n; }
  }
  return out;
}

const HOSTILE_NAMES = [
  '../../elsewhere/F/cur/secret:2,S', 'Mail/../../elsewhere/F/cur/secret:2,S', '/etc/passwd', 'Mail/tmp/x', 'Other/cur/x',
  'Mail/.Link/cur/secret:2,S', 'Mail/.Link/cur/new:2,S', 'Mail/cur/link:2,S', 'Mail/cur/%00x', 'Mail/cur/%0Ax', 'Mail%2F..%2Fx',
  'Mail/cur', 'Mail', '', '.smd/laptop__Mail.db.txt', `Mail/cur/${'n'.repeat(5000)}`, 'Mail/cur/a%zz', 'Mail/new/../cur/m7:2,S',
];
const GARBAGE_LINES = [
  'ABORT', 'END', 'COMMIT', 'DONE', 'chunk 0', 'chunk 99999999999', 'chunk 1073741824', 'chunk -1', 'SKIP Mail/cur/m7:2,S', 'ERROR boom',
  'protocol 1.3', 'dbfile da39a3ee5e6b4b0d3255bfef95601890afd80709 -', 'GET ../../elsewhere/F/cur/secret:2,S', 'GETHEADER /etc/passwd',
  `ADD Mail/cur/zz ${'0'.repeat(40)} ${'1'.repeat(40)}`, `DELETE Mail/cur/m7:2,S ${'0'.repeat(40)} ${'1'.repeat(40)}`,
  `MOVE Mail/cur/m7:2,S ${'0'.repeat(40)} ${'1'.repeat(40)} TO Mail/cur/m7:2,S`, 'x'.repeat(17_000), '',
];

/**
 * 1-3 mutations of a recorded stream; returns the mutated bytes and what was
 * done (to reproduce a failure: the seed and the case index are enough).
 */
export function mutate(stream: Buffer, r: (n: number) => number): { data: Buffer; what: string[] } {
  let frames = framesOf(stream).map((f) => Buffer.from(f));
  const what: string[] = [];
  const count = 1 + r(3);
  for (let k = 0; k < count; k++) {
    const i = r(frames.length);
    const f = frames[i];
    switch (r(11)) {
      case 0: { // bit flips
        if (f.length === 0) break;
        const g = Buffer.from(f);
        for (let j = 1 + r(3); j > 0; j--) g[r(g.length)] ^= 1 << r(8);
        frames[i] = g; what.push(`flip in frame ${i}`); break;
      }
      case 1: frames = frames.slice(0, i); what.push(`cut before frame ${i}`); break;
      case 2: { // cut inside a frame
        frames[i] = f.subarray(0, r(f.length + 1)); frames = frames.slice(0, i + 1); what.push(`cut inside frame ${i}`); break;
      }
      case 3: frames.splice(i, 1); what.push(`drop frame ${i}`); break;
      case 4: frames.splice(i, 0, Buffer.from(f)); what.push(`repeat frame ${i}`); break;
      case 5: { const j = r(frames.length); [frames[i], frames[j]] = [frames[j], frames[i]]; what.push(`swap frames ${i} ${j}`); break; }
      case 6: { // a hostile name in place of a name of a line
        const s = f.toString('latin1');
        const m = /^(ADD|DELETE|REPLACE|REPLACEHEADER|COPY|MOVE|COPYBODY|GET|GETHEADER|GETBODY|SKIP) (\S+)/.exec(s);
        if (!m) break;
        const n = HOSTILE_NAMES[r(HOSTILE_NAMES.length)];
        const tail = s.slice(m[0].length);
        const tailNamed = r(2) === 0 && / TO \S+/.test(tail) ? tail.replace(/ TO \S+/, ` TO ${n}`) : tail;
        frames[i] = Buffer.from(`${m[1]} ${tailNamed === tail ? n : m[2]}${tailNamed}`, 'latin1'); what.push(`name ${JSON.stringify(n.slice(0, 40))} in frame ${i}`); break;
      }
      case 7: { // a lying number
        const s = f.toString('latin1');
        const m = /^chunk (\d+)\n$/.exec(s);
        if (!m) break;
        const n = Number(m[1]);
        const lie = [n + 1, n - 1, 0, n * 1000, 2 ** 31, 2 ** 40][r(6)];
        frames[i] = Buffer.from(`chunk ${Math.max(0, lie)}\n`); what.push(`chunk ${n} -> ${lie}`); break;
      }
      case 8: { // a lying hash
        const s = f.toString('latin1');
        const j = s.search(/[0-9a-f]{40}/);
        if (j < 0) break;
        frames[i] = Buffer.from(s.slice(0, j) + (s[j] === '0' ? '1' : '0') + s.slice(j + 1), 'latin1'); what.push(`hash in frame ${i}`); break;
      }
      case 9: { const g = GARBAGE_LINES[r(GARBAGE_LINES.length)]; frames.splice(i, 0, Buffer.from(`${g}\n`, 'latin1')); what.push(`insert ${JSON.stringify(g.slice(0, 30))} at ${i}`); break; }
      default: { // random bytes
        const g = Buffer.alloc(1 + r(40));
        for (let j = 0; j < g.length; j++) g[j] = r(256);
        frames.splice(i, 0, g); what.push(`insert ${g.length} random bytes at ${i}`); break;
      }
    }
    if (frames.length === 0) frames = [Buffer.alloc(0)];
  }
  return { data: Buffer.concat(frames), what };
}

/** The bytes in pieces of random sizes (framing must not depend on how the pipe cuts). */
function pieces(data: Buffer, r: (n: number) => number): Readable {
  const out: Buffer[] = [];
  for (let p = 0; p < data.length;) { const n = 1 + r(r(2) === 0 ? 64 : 65536); out.push(data.subarray(p, p + n)); p += n; }
  return Readable.from(out);
}

/** A log that keeps the lines. */
function captureLog(): SessionLog & { text: string[] } {
  const text: string[] = [];
  return {
    text,
    info: (m) => text.push(`INFO: ${m}`),
    error: (m) => text.push(`ERROR: ${m}`),
    warn: (m) => text.push(`WARNING: ${m}`),
    progress: () => undefined,
    tags: (l) => text.push(l),
    journal: () => undefined,
  };
}

/** A sink for the program's output, kept (to look for the secret). */
function sink(): Writable & { bytes: Buffer[] } {
  const bytes: Buffer[] = [];
  const w = new Writable({ write(c: Buffer, _e, cb) { if (bytes.length < 4096) bytes.push(c); cb(); } });
  return Object.assign(w, { bytes });
}

function reset(template: string, home: string): void {
  rmSync(home, { recursive: true, force: true });
  cpSync(template, home, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
}

const CLIENT_CODES = new Set([0, 1, 3, 4, 5, 6]);
const SERVER_CODES = new Set([0, 3, 4, 5, 6, 7]);

/**
 * Runs `cases` mutated sessions of one side, from `seed`. `caseMs` bounds
 * each session (a hang is a failure). `budgetMs` stops early (the report
 * says how many ran).
 */
export async function fuzz(w: FuzzWorld, side: 'client' | 'server', seed: number, cases: number,
  opts: { caseMs?: number; budgetMs?: number; onFailure?: (f: FuzzFailure) => void } = {}): Promise<FuzzReport> {
  const started = Date.now();
  const report: FuzzReport = { tried: 0, failures: [], exits: {}, ms: 0 };
  const home = side === 'client' ? w.pair.client : w.pair.server;
  const template = side === 'client' ? w.clientTemplate : w.serverTemplate;
  const allowed = side === 'client' ? ['client/Mail', 'client/.smd'] : ['server/.smd'];
  const cwd = process.cwd();
  reset(template, home);
  const outsideNow = (): Map<string, string> => new Map([...snapshot(w.pair.base, { dirTimes: false })].filter(([p]) => !p.includes('.template')));
  const outsideBefore = outsideNow();
  try {
    for (let index = 0; index < cases; index++) {
      if (opts.budgetMs !== undefined && Date.now() - started > opts.budgetMs) break;
      const r = rng(seed * 100_003 + index);
      const { data, what } = mutate(side === 'client' ? w.s2c : w.c2s, r);
      reset(template, home);
      process.chdir(home);
      const log = captureLog();
      const out = sink();
      const input = pieces(data, r);
      const session = side === 'client'
        ? runClient({
          input, output: out, log, endpoint: 'laptop', mailboxes: ['Mail'], dbFile: join(home, '.smd/laptop__Mail.db.txt'),
          dryRun: false, localSync: false, translator: null, renameOnly: false, home, idleTimeoutMs: 5000,
        })
        : runServer({ input, output: out, log, endpoint: 'laptop', mailboxes: ['Mail'], dbFile: join(home, '.smd/laptop__Mail.db.txt'), idleTimeoutMs: 5000 });
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([
        session.catch((e: unknown) => `threw ${(e as Error)?.stack ?? String(e)}`),
        new Promise<string>((res) => { timer = setTimeout(() => res('hung'), opts.caseMs ?? 20_000); }),
      ]);
      clearTimeout(timer);
      process.chdir(cwd);
      report.tried += 1;
      report.exits[String(code).slice(0, 20)] = (report.exits[String(code).slice(0, 20)] ?? 0) + 1;
      const problems: string[] = [];
      if (typeof code !== 'number') problems.push(String(code).slice(0, 500));
      else if (!(side === 'client' ? CLIENT_CODES : SERVER_CODES).has(code)) problems.push(`exit code ${code}`);
      const trace = stackTraceIn(log.text.join('\n'));
      if (trace !== null) problems.push(`stack trace or internal error: ${trace}`);
      if (side === 'server' && Buffer.concat(out.bytes).includes(Buffer.from(w.pair.secret))) problems.push('sent bytes of the sentinel');
      const outside = changesOutside(outsideBefore, outsideNow(), allowed);
      if (outside.length > 0) problems.push(`changed outside: ${outside.slice(0, 5).join(', ')}`);
      if (problems.length > 0) {
        const f: FuzzFailure = { side, seed, index, why: problems.join('; '), mutations: what };
        report.failures.push(f);
        opts.onFailure?.(f);
        // Repair what a failure changed, so that later cases are judged on their own.
        reset(w.clientTemplate, w.pair.client);
        reset(w.serverTemplate, w.pair.server);
        reset(w.elsewhereTemplate, w.pair.elsewhere);
      }
    }
  } finally {
    process.chdir(cwd);
  }
  report.ms = Date.now() - started;
  return report;
}
