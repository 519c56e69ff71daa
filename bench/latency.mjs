#!/usr/bin/env node
// Throughput, latency and scale of a first pull / push (issue 10), against tar.
//
//   node bench/latency.mjs [--messages N] [--small] [--rtt MS | --delay MS] [--rate MBPS] [--window KB]
//                          [--runs tar,pull,push,nochange] [--seed S] [--prof] [--keep] [--verbose]
//   node bench/latency.mjs --local ...        plain pipes: no delay, no rate limit, no relay
//   node bench/latency.mjs --scale [--messages 1000000] [--runs pull,nochange]
//
// One invocation runs, on the same generated Maildir (deterministic, cached
// under bench/out/), each of:
//   tar       `ssh host tar -cf - Mail | tar -xf -` through the same link;
//   pull      a first `smd-pull` (remote Maildir -> empty local one);
//   push      a first `smd-push` (local Maildir -> empty remote one);
//   nochange  a second `smd-pull` right after the pull (nothing to do);
// and prints each wall time, the ratios to tar, and per process its CPU time
// (user + sys) and peak RSS (getrusage of the process itself, written by the
// preload bench/lib/usage.mjs: smd-pull/smd-push with the local half inside, and the remote smd-server / smd-client),
// the bytes each way and a timeline of the session as the link saw it.
//
// The real commands run: smd-pull/smd-push with an endpoint `default`
// (SERVERNAME benchhost, MAILBOX Mail) whose ssh is bench/link-ssh.mjs
// (SMD_SSH): it runs the remote command in the "remote" HOME and carries its
// stdin/stdout through an emulated link (bench/lib/link.mjs): --delay ms one
// way (default: --rtt 200 / 2), --rate MB/s (10^6 B, default 10 = 80 Mbit/s),
// at most --window KiB in flight per direction (default 4096). --local: no
// link at all, the remote program gets the pipes of smd-pull directly.
// After each run the two Maildirs are compared (names and SHA-1s; --scale:
// names and sizes) and both db-files must be byte-identical.
//
// --scale: 1,000,000 messages of 1-3 KB (bench/gen-maildir.mjs --small, seed
// 7, 25 folders), --local, runs pull,nochange. The homes of the last pull are
// kept (bench/out/latency/scale-N/): `--runs nochange` alone reuses them.
// --prof: every Node process writes a V8 CPU profile (--cpu-prof) into the
// run's prof/ directory.
//
// Wall-clock figures are only worth recording on a quiet machine: the load
// average is printed before and after each run (bench/README.md).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync, writeSync,
} from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Link } from './lib/link.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'bench', 'out');

// ------------------------------------------------------------------ options
const has = (name) => process.argv.includes(`--${name}`);
function option(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) { console.error(`--${name} wants a number`); process.exit(2); }
  return v;
}
const SCALE = has('scale');
const LOCAL = SCALE || has('local');
const SMALL = SCALE || has('small');
const N = option('messages', SCALE ? 1_000_000 : 2000);
const DELAY = LOCAL ? 0 : option('delay', option('rtt', 200) / 2);
const RATE = LOCAL ? 0 : option('rate', 10) * 1e6; // bytes per second, 0 = unlimited
const WINDOW = option('window', 4096) * 1024;
const SEED = option('seed', SCALE ? 7 : 42);
const KEEP = has('keep');
const VERBOSE = has('verbose');
const PROF = has('prof');
const runsArg = (() => { const i = process.argv.indexOf('--runs'); return i < 0 ? null : process.argv[i + 1]; })();
const RUNS = (runsArg ?? (SCALE ? 'pull,nochange' : 'tar,pull,push')).split(',');
for (const r of RUNS) if (!['tar', 'pull', 'push', 'nochange'].includes(r)) { console.error(`unknown run ${r}`); process.exit(2); }

const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;
const mb = (kb) => `${(kb / 1024).toFixed(0)} MB`;

// ----------------------------------------------------------- the mailboxes
/** The latency generator: INBOX + 5 folders, 2-38 KB (--small: 1-3 KB), 30 % in new/, mulberry32. */
function generate(mail, n, seed) {
  let s = seed >>> 0;
  const rnd = () => { // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const folders = ['', '.Lists', '.Lists.smd', '.Work', '.Family', '.Archive'];
  for (const f of folders) for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(mail, f, d), { recursive: true });
  const words = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua'.split(' ');
  let filler = '';
  while (filler.length < 1024 * 1024) filler += words[Math.floor(rnd() * words.length)] + (rnd() < 0.1 ? '\n' : ' ');
  const fillerBuf = Buffer.from(filler, 'latin1');
  const base = 1_700_000_000; // fixed: the names and mtimes are the same at every generation
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const size = SMALL ? 1024 + Math.floor(rnd() * 2048) : 2048 + Math.floor(rnd() * 36 * 1024);
    const f = folders[Math.floor(rnd() * folders.length)];
    const inNew = rnd() < 0.3;
    const t = base - (n - i) * 7;
    const name = `${t}.M${i}P${4000 + (i % 1000)}.server${inNew ? '' : ':2,S'}`;
    const path = join(mail, f, inNew ? 'new' : 'cur', name);
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

/** The source Maildir (generated once, kept under bench/out/): its path and size in bytes. */
function source() {
  const dir = join(OUT, SCALE ? `scale-src-${N}-${SEED}` : `latency-src-${SMALL ? 'small' : 'mixed'}-${N}-${SEED}`);
  const mail = join(dir, 'Mail');
  const done = join(dir, 'complete');
  if (!existsSync(done)) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    process.stdout.write(`generating ${N} messages in ${mail} ... `);
    let bytes;
    if (SCALE) {
      const r = spawnSync(process.execPath, [join(ROOT, 'bench/gen-maildir.mjs'), mail, String(N), String(SEED), '--small'], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`gen-maildir failed: ${r.stderr}`);
      bytes = Number(/(\d+) MB/.exec(r.stdout)?.[1] ?? 0) * 1e6;
    } else {
      bytes = generate(mail, N, SEED);
    }
    writeFileSync(done, String(bytes));
    console.log('done');
  }
  return { mail, bytes: Number(readFileSync(done, 'utf8')) };
}

// ----------------------------------------------------------- the programs
/** Per-process records of the preload (bench/lib/usage.mjs). */
function usages(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
}

/** A fresh pair of homes: `Mail` of the side that has the messages is a symbolic link to the source (never written). */
function homes(run, src, mailSide) {
  const base = join(OUT, 'latency', run);
  rmSync(base, { recursive: true, force: true });
  const local = join(base, 'local');
  const remote = join(base, 'remote');
  for (const d of [local, remote]) mkdirSync(d, { recursive: true });
  if (mailSide !== null) symlinkSync(src.mail, join(mailSide === 'local' ? local : remote, 'Mail'));
  mkdirSync(join(local, '.smd'), { recursive: true, mode: 0o700 });
  writeFileSync(join(local, '.smd', 'config.default'), 'SERVERNAME="benchhost"\nCLIENTNAME="laptop"\nMAILBOX="Mail"\n');
  return { base, local, remote };
}

function runEnv(h, extra) {
  const usage = join(h.base, 'usage');
  mkdirSync(usage, { recursive: true });
  const nodeOptions = [`--import=${pathToFileURL(join(ROOT, 'bench/lib/usage.mjs')).href}`];
  // Node 20 refuses --cpu-prof in NODE_OPTIONS: a preload profiles through the inspector (bench/lib/prof-top.mjs reads it).
  if (PROF) { mkdirSync(join(h.base, 'prof'), { recursive: true }); nodeOptions.push(`--import=${pathToFileURL(join(ROOT, 'bench/lib/cpu-prof.mjs')).href}`); }
  // e.g. BENCH_NODE_OPTIONS=--heapsnapshot-signal=SIGUSR2 (then kill -USR2 a process to see its heap)
  if (process.env.BENCH_NODE_OPTIONS) nodeOptions.push(process.env.BENCH_NODE_OPTIONS);
  return {
    PATH: `${join(ROOT, 'bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: h.local, USER: process.env.USER ?? 'root', LANG: 'C.UTF-8',
    SMD_SSH: `${process.execPath} ${join(ROOT, 'bench/link-ssh.mjs')}`,
    LINK_REMOTE_HOME: h.remote, LINK_DELAY: String(DELAY), LINK_RATE: String(RATE), LINK_WINDOW: String(WINDOW),
    LINK_REPORT: join(h.base, 'link.json'), LINK_T0: String(Date.now()),
    NODE_OPTIONS: nodeOptions.join(' '), BENCH_USAGE_DIR: usage, ...(PROF ? { BENCH_PROF_DIR: join(h.base, 'prof') } : {}),
    // SMD_NATIVE=0 and the like reach the programs.
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('SMD_') && k !== 'SMD_SSH')),
    ...extra,
  };
}

function exitOf(p) {
  return new Promise((res) => p.on('exit', (code, sig) => res({ code, sig })));
}

/** smd-pull or smd-push in the local home; resolves to its wall time and the figures of every process. */
async function sync(cmd, h, server) {
  const env = runEnv(h, { LINK_SERVER: server });
  const loadBefore = load();
  const t0 = performance.now();
  // Not -v: smd-pull -v holds every INFO line (two per message) for its final report.
  const p = spawn(join(ROOT, 'bin', cmd), VERBOSE ? ['-v'] : [], { cwd: h.local, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  p.stdout.on('data', (d) => { log += d; });
  p.stderr.on('data', (d) => { log += d; });
  const x = await exitOf(p);
  const wall = performance.now() - t0;
  const link = existsSync(env.LINK_REPORT) ? JSON.parse(readFileSync(env.LINK_REPORT, 'utf8')) : null;
  return { wall, code: x.code, log, link, procs: usages(env.BENCH_USAGE_DIR), loadBefore, loadAfter: load() };
}

/** tar through the same link: `ssh host tar -C Mail -cf - .` | `tar -C Mail -xf -`. */
async function tar(h) {
  const env = runEnv(h, {});
  mkdirSync(join(h.local, 'Mail'));
  const loadBefore = load();
  const t0 = performance.now();
  const remote = spawn(process.execPath, [join(ROOT, 'bench/link-ssh.mjs'), 'benchhost', 'tar -C Mail/ -cf - .'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const timeFile = join(h.base, 'tar-x.time');
  const local = spawn('/usr/bin/time', ['-f', '%U %S %M', '-o', timeFile, 'tar', '-C', join(h.local, 'Mail'), '-xf', '-'], { env, stdio: ['pipe', 'inherit', 'inherit'] });
  remote.stdout.pipe(local.stdin);
  const [rx, lx] = await Promise.all([exitOf(remote), exitOf(local)]);
  const wall = performance.now() - t0;
  const link = JSON.parse(readFileSync(env.LINK_REPORT, 'utf8'));
  const [u, s, rss] = readFileSync(timeFile, 'latin1').trim().split('\n').pop().split(' ').map(Number);
  return { wall, code: rx.code || lx.code, link, local: { user: u, sys: s, maxRssKB: rss }, loadBefore, loadAfter: load() };
}

// --------------------------------------------------------------- checking
/** Relative path -> SHA-1 (or size, when `cheap`) of every message of a Maildir tree (tmp/ left out). */
function tree(root, cheap) {
  const out = new Map();
  const walk = (dir, rel) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory() || (e.isSymbolicLink() && statSync(p).isDirectory())) { if (e.name !== 'tmp') walk(p, r); continue; }
      out.set(r, cheap ? statSync(p).size : createHash('sha1').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(root, '');
  return out;
}

function compare(h, expected, withDb) {
  const problems = [];
  const a = tree(join(h.remote, 'Mail'), SCALE);
  const b = tree(join(h.local, 'Mail'), SCALE);
  for (const [k, v] of a) if (b.get(k) !== v) problems.push(`${k}: ${b.has(k) ? 'differs' : 'missing on one side'}`);
  for (const k of b.keys()) if (!a.has(k)) problems.push(`${k}: only on one side`);
  if (a.size !== expected) problems.push(`${a.size} messages, expected ${expected}`);
  const db = (home) => {
    const d = join(home, '.smd');
    const f = existsSync(d) ? readdirSync(d).find((x) => x.endsWith('.db.txt')) : undefined;
    return f === undefined ? null : readFileSync(join(d, f));
  };
  const da = db(h.remote);
  const dl = db(h.local);
  if (withDb && (da === null || dl === null || !da.equals(dl))) problems.push('the db-files differ');
  return problems;
}

/** Copies `bytes` one way through a fresh link of the same kind: ms until the last byte arrived, plus one round trip. */
async function copyBaseline(bytes) {
  const sink = new Writable({ write(_c, _e, cb) { cb(); } });
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
  const l = new Link('copy', { delay: DELAY, rate: RATE, window: WINDOW }, sink, null);
  const done = new Promise((res) => { l.onIdle = res; });
  l.attach(src);
  await done;
  return performance.now() - t0 + 2 * DELAY;
}

// -------------------------------------------------------------- reporting
function procLine(p) {
  return `${p.prog.padEnd(11)} ${(p.user + p.sys).toFixed(2).padStart(7)} s CPU (${p.user.toFixed(2)} user + ${p.sys.toFixed(2)} sys), ` +
    `peak RSS ${mb(p.maxRssKB).padStart(7)}` + (p.heapPeakMB !== undefined ? ` (heap ${p.heapPeakMB.toFixed(0)} MB, off-heap ${p.externalPeakMB.toFixed(0)} MB at most)` : '');
}

function timeline(link) {
  const e = link.ev;
  const rows = [
    ['server sends its handshake', 'handshakeSent'], ['client sends its handshake', 'clientHandshakeSent'],
    ['server sends its first diff line', 'firstDiffSent'], ['first diff line reaches the client', 'firstDiffAtClient'],
    ['client sends its first GET', 'firstGetSent'], ['server sends END (diff complete)', 'endSent'],
    ['first GET reaches the server', 'firstGetAtServer'], ['server sends its first reply', 'firstChunkSent'],
    ['END reaches the client', 'endAtClient'], ['first reply fully received by the client', 'firstReplyAtClient'],
    ['client sends its last GET', 'lastGetSent'], ['last GET reaches the server', 'lastGetAtServer'],
    ['server sends its last reply', 'lastChunkSent'], ['last reply fully received by the client', 'lastReplyAtClient'],
    ['client sends COMMIT', 'commitSent'], ['COMMIT reaches the server', 'commitAtServer'], ['client sends DONE', 'doneSent'],
  ].filter(([, k]) => e[k] !== undefined).map(([label, k]) => [e[k], label]);
  rows.push([link.spawned, 'ssh starts the remote program'], [link.exited, 'remote program exits']);
  rows.sort((a, b) => a[0] - b[0]);
  return rows.map(([t, label]) => `    ${fmt(t).padStart(8)}  ${label}`).join('\n');
}

// -------------------------------------------------------------------- main
const src = source();
const linkText = LOCAL ? 'plain pipes (no link)' : `link ${DELAY} ms one way (RTT ${2 * DELAY} ms), ${RATE > 0 ? `${RATE / 1e6} MB/s` : 'unlimited rate'}, window ${WINDOW / 1024} KiB`;
console.log(`${N} messages, ${(src.bytes / 1e6).toFixed(1)} MB (${src.mail}); ${linkText}; load average ${load()}`);
const results = {};
let failed = false;
const scaleBase = `scale-${N}`;
for (const run of RUNS) {
  let r;
  let h;
  if (run === 'tar') {
    h = homes('tar', src, 'remote');
    r = await tar(h);
  } else if (run === 'nochange') {
    const name = SCALE ? scaleBase : 'pull';
    const base = join(OUT, 'latency', name);
    h = { base, local: join(base, 'local'), remote: join(base, 'remote') };
    if (!existsSync(join(h.local, '.smd')) || !existsSync(join(h.local, 'Mail'))) { console.log('nochange: needs the homes of a pull (run pull first, with --keep or --scale)'); failed = true; continue; }
    for (const d of ['usage', 'prof']) rmSync(join(base, d), { recursive: true, force: true });
    rmSync(join(base, 'link.json'), { force: true });
    r = await sync('smd-pull', h, 'remote');
  } else {
    h = homes(run === 'pull' && SCALE ? scaleBase : run, src, run === 'pull' ? 'remote' : 'local');
    r = await sync(run === 'pull' ? 'smd-pull' : 'smd-push', h, run === 'pull' ? 'remote' : 'local');
  }
  results[run] = r;
  const problems = r.code === 0 ? compare(h, N, run !== 'tar') : [`exit code ${r.code}`];
  console.log(`\n${run}: ${fmt(r.wall)} wall (load average ${r.loadBefore} before, ${r.loadAfter} after)` +
    `${problems.length === 0 ? '; trees and db-files identical' : ''}`);
  if (problems.length > 0) {
    failed = true;
    console.log(`  FAILED: ${problems.slice(0, 10).join('; ')}`);
    if (r.log) console.log(r.log.split('\n').slice(-30).join('\n'));
  }
  if (VERBOSE && r.log) console.log(r.log);
  if (run === 'tar') {
    if (r.link.remote) console.log(`  ${procLine({ prog: 'tar -c', ...r.link.remote })}`);
    console.log(`  ${procLine({ prog: 'tar -x', ...r.local })}`);
  } else {
    const procs = r.procs.filter((p) => p.prog !== 'link-ssh.mjs').sort((a, b) => a.start - b.start);
    for (const p of procs) console.log(`  ${procLine(p)}`);
    const all = r.procs.reduce((s, p) => s + p.user + p.sys, 0);
    console.log(`  all Node processes ${all.toFixed(2)} s CPU`);
  }
  if (r.link?.bytesDown != null) {
    console.log(`  wire: ${r.link.bytesDown} bytes remote->local, ${r.link.bytesUp} bytes local->remote; link relay ${r.link.relayCpu.toFixed(2)} s CPU` +
      (r.link.getsSent > 0 ? `; ${r.link.getsSent} GET (${r.link.getsBeforeEnd} before END reached the client), at most ${r.link.maxInFlight} in flight` : ''));
    if (run !== 'tar' && r.link.ev.handshakeSent !== undefined) console.log(`  timeline (since the command started):\n${timeline(r.link)}`);
  }
  if (!KEEP && !SCALE && run !== 'pull') rmSync(h.base, { recursive: true, force: true });
}
if (!LOCAL && results.pull?.link) {
  const copy = await copyBaseline(results.pull.link.bytesDown);
  console.log(`\ncopy: ${fmt(copy)} (the pull's ${(results.pull.link.bytesDown / 1e6).toFixed(1)} MB one way through the same link + one round trip)`);
}
console.log('\nsummary:');
for (const run of RUNS) {
  const r = results[run];
  if (r === undefined) continue;
  const ratio = results.tar && run !== 'tar' ? ` = ${(r.wall / results.tar.wall).toFixed(2)}x tar` : '';
  const side = (prog) => { const p = r.procs?.find((x) => x.prog === prog); return p ? `${prog} ${(p.user + p.sys).toFixed(2)} s CPU / ${mb(p.maxRssKB)}` : null; };
  // The local half runs inside smd-pull / smd-push: its figures are that process's.
  const inside = run === 'push' ? 'smd-push' : 'smd-pull';
  const local = r.procs?.some((x) => x.prog === inside) ? `${side(inside)} with ${run === 'push' ? 'smd-server' : 'smd-client'} inside` : null;
  const sides = run === 'tar' ? '' : `  (${[side(run === 'push' ? 'smd-client' : 'smd-server'), local].filter(Boolean).join(', ')})`;
  console.log(`  ${run.padEnd(8)} ${fmt(r.wall).padStart(9)}${ratio}${sides}`);
}
if (!KEEP && !SCALE && results.pull) rmSync(join(OUT, 'latency', 'pull'), { recursive: true, force: true });
process.exit(failed ? 1 : 0);
