#!/usr/bin/env node
// Latency benchmark ("Latency must not matter").
//
//   node bench/latency.mjs [--messages N] [--delay MS] [--rate MBPS] [--window KB] [--seed S] [--small] [--keep] [--verbose]
//
// Generates (deterministically) a server HOME with a Maildir `Mail` of N new
// messages (2-38 KB, ~20 KB average: ~40 MB for 2,000) and an empty client
// HOME under bench/out/latency/, then runs the real bin/smd-server and
// bin/smd-client (`laptop Mail`, HOME = cwd = their home) connected through
// an emulated link: each direction delays every byte by --delay ms (one way,
// default 100) and serialises at most --rate MB/s (10^6 bytes, default 10;
// 0 = unlimited), preserving order and never dropping. Like a TCP/ssh
// connection, at most --window KB (default 4096) may be in flight per
// direction (entered, not yet delivered): the sender is paused beyond it.
//
// Reports (a) the wall time of the full sync (spawn -> both exited 0), after
// checking that the client's Maildir is identical to the server's (names and
// SHA-1s) and that both db-files are equal; (b) the wall time of copying the
// same number of bytes (the server->client bytes of the sync) one way through
// the same link, plus one round trip; their ratio (target <= 1.3); a timeline
// of the session seen from the link; and the most GET requests in flight.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// ------------------------------------------------------------------ options
function option(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) { console.error(`--${name} wants a number`); process.exit(2); }
  return v;
}
const N = option('messages', 2000);
const DELAY = option('delay', 100);
const RATE = option('rate', 10) * 1e6; // bytes per second, 0 = unlimited
const WINDOW = option('window', 4096) * 1024;
const SEED = option('seed', 42);
const KEEP = process.argv.includes('--keep');
const VERBOSE = process.argv.includes('--verbose');
const SMALL = process.argv.includes('--small'); // 1-3 KB messages instead of 2-38 KB

// ------------------------------------------------------------ the generator
function generate(home, n, seed) {
  let s = seed >>> 0;
  const rnd = () => { // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const folders = ['', '.Lists', '.Lists.smd', '.Work', '.Family', '.Archive'];
  for (const f of folders) for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(home, 'Mail', f, d), { recursive: true });
  const words = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua'.split(' ');
  let filler = '';
  while (filler.length < 1024 * 1024) filler += words[Math.floor(rnd() * words.length)] + (rnd() < 0.1 ? '\n' : ' ');
  const fillerBuf = Buffer.from(filler, 'latin1');
  const now = Math.floor(Date.now() / 1000);
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const size = SMALL ? 1024 + Math.floor(rnd() * 2048) : 2048 + Math.floor(rnd() * 36 * 1024);
    const f = folders[Math.floor(rnd() * folders.length)];
    const inNew = rnd() < 0.3;
    const t = now - 3600 - (n - i) * 7;
    const name = `${t}.M${i}P${4000 + (i % 1000)}.server${inNew ? '' : ':2,S'}`;
    const path = join(home, 'Mail', f, inNew ? 'new' : 'cur', name);
    const header = `Return-Path: <user${i % 97}@example.org>\nMessage-ID: <${i}.${seed}@latency.bench>\n` +
      `From: User ${i % 97} <user${i % 97}@example.org>\nTo: me@example.org\nSubject: message ${i}\n` +
      `Date: ${new Date(t * 1000).toUTCString()}\n\n`;
    const body = Math.max(1, size - header.length);
    const off = Math.floor(rnd() * (fillerBuf.length - body));
    const fd = openSync(path, 'w');
    writeSync(fd, header);
    writeSync(fd, `${i}\n`);
    writeSync(fd, fillerBuf, off, body);
    closeSync(fd);
    utimesSync(path, t, t);
    bytes += header.length + String(i).length + 1 + body;
  }
  return bytes;
}

// ----------------------------------------------------------------- the link
/**
 * One direction of an emulated link. Bytes written at time t0 are serialised
 * one after the other at `rate` bytes/s (the link is busy until the previous
 * byte left), then arrive `delay` ms after their serialisation ended. At
 * most `window` bytes are between entry and delivery: beyond that the
 * source is paused (TCP/ssh flow control). A destination that does not take
 * more (write() false) holds delivery until 'drain'.
 */
class Link {
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
class WireWatcher {
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

// ----------------------------------------------------------------- the sync
function runSync(serverHome, clientHome, link) {
  const t0 = performance.now();
  const ms = (t) => t - t0;
  const ev = {}; // first occurrences, ms since spawn
  const mark = (k, t) => { if (ev[k] === undefined) ev[k] = ms(t); };
  let getsSent = 0, repliesDone = 0, chunksSent = 0, diffSent = 0, diffAtClient = 0, getsBeforeEnd = 0, maxInFlight = 0, inRequestPhase = false;
  const env = (home) => ({ ...process.env, HOME: home });
  // Through /usr/bin/time for the CPU seconds and peak RSS of each side.
  const timed = (home, prog) => spawn('/usr/bin/time', ['-f', '%U %S %M', '-o', join(home, '..', `${prog}.time`),
    process.execPath, join(ROOT, 'bin', prog), '-v', 'laptop', 'Mail'], { cwd: home, env: env(home) });
  const server = timed(serverHome, 'smd-server');
  const client = timed(clientHome, 'smd-client');
  const cpu0 = process.cpuUsage();
  const logs = { server: '', client: '' };
  server.stderr.on('data', (d) => { logs.server += d; });
  client.stderr.on('data', (d) => { logs.client += d; });
  for (const p of [server, client]) { p.stdin.on('error', () => {}); }

  // client -> server: requests, seen when the client sends them (link entry).
  const c2sWatch = new WireWatcher((line, t) => {
    if (line === null) return;
    if (line.startsWith('GET')) {
      mark('firstGetSent', t); ev.lastGetSent = ms(t);
      getsSent++;
      if (ev.endAtClient === undefined) getsBeforeEnd++;
      maxInFlight = Math.max(maxInFlight, getsSent - repliesDone);
    } else if (line.startsWith('protocol')) mark('clientHandshakeSent', t);
    else if (line === 'COMMIT') mark('commitSent', t);
    else if (line === 'DONE') mark('doneSent', t);
    else if (line === 'ABORT') mark('abortSent', t);
  }, false);
  // client -> server: requests, seen when they reach the server (link exit).
  const c2sArrive = new WireWatcher((line, t) => {
    if (line === null) return;
    if (line.startsWith('GET')) { mark('firstGetAtServer', t); ev.lastGetAtServer = ms(t); }
  }, false);
  // server -> client: diff, then replies (seen when the server sends / when they reach the client).
  const s2cSend = new WireWatcher((line, t) => {
    if (line === 'END') mark('endSent', t);
    else if (line !== null && line.startsWith('protocol')) mark('handshakeSent', t);
    else if (line !== null && /^(ADD|COPY|MOVE|DELETE|REPLACE)/.test(line)) { mark('firstDiffSent', t); diffSent++; }
    else if (line !== null && line.startsWith('chunk') && ++chunksSent <= getsSent) { mark('firstChunkSent', t); ev.lastChunkSent = ms(t); }
  }, true);
  const s2cArrive = new WireWatcher((line, t) => {
    if (line === 'END') { mark('endAtClient', t); inRequestPhase = true; return; }
    if (line !== null && /^(ADD|COPY|MOVE|DELETE|REPLACE)/.test(line)) { mark('firstDiffAtClient', t); diffAtClient++; }
    if (line === null && inRequestPhase && repliesDone < getsSent) {
      repliesDone++;
      mark('firstReplyAtClient', t); ev.lastReplyAtClient = ms(t);
    }
  }, true);

  const c2s = new Link('c2s', link, server.stdin, (b, t) => c2sArrive.feed(b, t));
  const s2c = new Link('s2c', link, client.stdin, (b, t) => s2cArrive.feed(b, t));
  client.stdout.on('data', (b) => c2sWatch.feed(b, performance.now()));
  server.stdout.on('data', (b) => s2cSend.feed(b, performance.now()));
  c2s.attach(client.stdout);
  s2c.attach(server.stdout);

  const exit = (p) => new Promise((res) => p.on('exit', (code, sig) => res({ code, sig, t: ms(performance.now()) })));
  const usage = (prog) => {
    const [u, sy, rss] = readFileSync(join(serverHome, '..', `${prog}.time`), 'latin1').trim().split('\n').pop().split(' ').map(Number);
    return `${(u + sy).toFixed(2)} s CPU (${u.toFixed(2)} user + ${sy.toFixed(2)} sys), ${(rss / 1024).toFixed(0)} MB peak RSS`;
  };
  return Promise.all([exit(server), exit(client)]).then(([s, c]) => ({
    cpu: { server: usage('smd-server'), client: usage('smd-client'), link: (() => { const u = process.cpuUsage(cpu0); return `${((u.user + u.system) / 1e6).toFixed(2)} s CPU`; })() },
    wall: Math.max(s.t, c.t), server: s, client: c, ev, getsSent, maxInFlight, logs, getsBeforeEnd,
    s2cBytes: s2c.bytes, c2sBytes: c2s.bytes, s2cBusy: s2c.busyTotal, c2sBusy: c2s.busyTotal,
  }));
}

// ------------------------------------------------------------ the baseline
/** Copies `bytes` one way through a fresh link into a sink; ms until the last byte arrived, plus one round trip. */
async function copyBaseline(bytes, link) {
  const sink = new Writable({ write(_c, _e, cb) { cb(); } });
  const { Readable } = await import('node:stream');
  const piece = Buffer.alloc(64 * 1024, 0x61);
  let left = bytes;
  const src = new Readable({
    read() {
      if (left <= 0) { this.push(null); return; }
      const n = Math.min(left, piece.length);
      left -= n;
      this.push(piece.subarray(0, n));
    },
  });
  const t0 = performance.now();
  const l = new Link('copy', link, sink, null);
  const done = new Promise((res) => { l.onIdle = res; });
  l.attach(src);
  await done;
  return performance.now() - t0 + 2 * link.delay;
}

// --------------------------------------------------------------- checking
function tree(root) {
  const out = new Map();
  const walk = (dir, rel) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p, r);
      else if (!r.split('/').includes('tmp')) out.set(r, createHash('sha1').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(root, '');
  return out;
}

function compare(serverHome, clientHome) {
  const a = tree(join(serverHome, 'Mail'));
  const b = tree(join(clientHome, 'Mail'));
  const problems = [];
  for (const [k, v] of a) if (b.get(k) !== v) problems.push(`${k}: ${b.has(k) ? 'differs' : 'missing on the client'}`);
  for (const k of b.keys()) if (!a.has(k)) problems.push(`${k}: only on the client`);
  const db = (h) => readFileSync(join(h, '.smd', readdirSync(join(h, '.smd')).find((f) => f.endsWith('.db.txt'))));
  if (!db(serverHome).equals(db(clientHome))) problems.push('the db-files differ');
  return { messages: a.size, problems };
}

// -------------------------------------------------------------------- main
const out = join(ROOT, 'bench/out/latency');
rmSync(out, { recursive: true, force: true });
const serverHome = join(out, 'server');
const clientHome = join(out, 'client');
mkdirSync(clientHome, { recursive: true });
const mailBytes = generate(serverHome, N, SEED);
const link = { delay: DELAY, rate: RATE, window: WINDOW };
const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;
console.log(`${N} messages, ${(mailBytes / 1e6).toFixed(1)} MB; link: ${DELAY} ms one way, ` +
  `${RATE > 0 ? `${RATE / 1e6} MB/s` : 'unlimited rate'}, window ${WINDOW / 1024} KiB; load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}`);

const r = await runSync(serverHome, clientHome, link);
const ok = r.server.code === 0 && r.client.code === 0;
if (!ok || VERBOSE) {
  console.log(`server exit ${r.server.code ?? r.server.sig}, client exit ${r.client.code ?? r.client.sig}`);
  console.log(`--- server log\n${r.logs.server}--- client log\n${r.logs.client}`);
}
if (!ok) process.exit(1);
const check = compare(serverHome, clientHome);
if (check.problems.length > 0 || check.messages !== N) {
  console.log(`MISMATCH: ${check.messages} messages on the server, ${check.problems.length} problems:\n  ${check.problems.slice(0, 20).join('\n  ')}`);
  process.exit(1);
}
const copy = await copyBaseline(r.s2cBytes, link);
const ratio = r.wall / copy;
console.log(`sync:  ${fmt(r.wall)} (both exit 0; ${check.messages} messages and the db-files identical by SHA-1)`);
console.log(`copy:  ${fmt(copy)} (${(r.s2cBytes / 1e6).toFixed(1)} MB one way through the same link + one round trip)`);
console.log(`ratio: ${ratio.toFixed(2)}x (target <= 1.3x)  ${ratio <= 1.3 ? 'OK' : 'ABOVE TARGET'}`);
console.log(`wire:  server->client ${r.s2cBytes} bytes (link busy ${fmt(r.s2cBusy)}), client->server ${r.c2sBytes} bytes; ` +
  `${r.getsSent} GET (${r.getsBeforeEnd} sent before END reached the client), at most ${r.maxInFlight} in flight`);
const e = r.ev;
console.log(`cpu:   smd-server ${r.cpu.server}; smd-client ${r.cpu.client}; link emulator ${r.cpu.link}`);
if (e.firstChunkSent !== undefined && e.lastReplyAtClient !== undefined) {
  const span = e.lastReplyAtClient - e.firstChunkSent - DELAY;
  console.log(`replies: first sent -> last received ${fmt(span + DELAY)}: ${(r.s2cBytes / 1e6 / (span / 1000)).toFixed(1)} MB/s ` +
    `excluding one delay (link ${RATE > 0 ? `${RATE / 1e6} MB/s` : 'unlimited'})`);
}
const rows = [
  ['server sends its handshake', 'handshakeSent'],
  ['client sends its handshake', 'clientHandshakeSent'],
  ['server sends its first diff line', 'firstDiffSent'],
  ['first diff line reaches the client', 'firstDiffAtClient'],
  ['client sends its first GET', 'firstGetSent'],
  ['server sends END (diff complete)', 'endSent'],
  ['first GET reaches the server', 'firstGetAtServer'],
  ['server sends its first reply', 'firstChunkSent'],
  ['END reaches the client', 'endAtClient'],
  ['first reply fully received by the client', 'firstReplyAtClient'],
  ['client sends its last GET', 'lastGetSent'],
  ['last GET reaches the server', 'lastGetAtServer'],
  ['server sends its last reply', 'lastChunkSent'],
  ['last reply fully received by the client', 'lastReplyAtClient'],
  ['client sends COMMIT', 'commitSent'],
  ['client sends DONE', 'doneSent'],
].filter(([, k]) => e[k] !== undefined).map(([label, k]) => [e[k], label]);
rows.push([r.server.t, 'server exits'], [r.client.t, 'client exits']);
rows.sort((a, b) => a[0] - b[0]);
console.log(`timeline (since spawn):\n${rows.map(([t, label]) => `  ${fmt(t).padStart(8)}  ${label}`).join('\n')}`);
if (!KEEP) rmSync(out, { recursive: true, force: true });
