#!/usr/bin/env node
// A stand-in for ssh used by bench/latency.mjs (SMD_SSH="node bench/link-ssh.mjs"):
//
//   link-ssh.mjs [ssh options] HOST COMMAND...
//
// runs COMMAND with `sh -c` in $LINK_REMOTE_HOME (as HOME and cwd: "the other
// host") and carries its stdin and stdout through an emulated link
// (bench/lib/link.mjs): LINK_DELAY ms one way, LINK_RATE bytes/s, LINK_WINDOW
// bytes in flight per direction. With delay and rate 0 the command gets our
// stdin/stdout directly (plain pipes, no relay). stderr is passed through
// unchanged, the exit code is the command's.
//
// LINK_REPORT=<file>: at the end, a JSON report: bytes each way, when the
// session's landmarks crossed the link (LINK_SERVER=remote|local says which
// side runs smd-server; ms since LINK_T0, an epoch time in ms), and the CPU
// and peak RSS of the remote command (/usr/bin/time).
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { Link, WireWatcher } from './lib/link.mjs';

const argv = process.argv.slice(2);
const WITH_VALUE = new Set(['-o', '-p', '-i', '-l', '-F', '-E', '-c', '-m', '-b', '-J', '-S', '-O', '-W', '-w', '-L', '-R', '-D', '-Q', '-B', '-e', '-I']);
let k = 0;
while (k < argv.length && argv[k].startsWith('-')) k += WITH_VALUE.has(argv[k]) ? 2 : 1;
const command = argv.slice(k + 1).join(' ');
const home = process.env.LINK_REMOTE_HOME;
if (!home || command === '') {
  process.stderr.write('link-ssh: needs LINK_REMOTE_HOME and a command\n');
  process.exit(255);
}
const env = (name, dflt) => (process.env[name] !== undefined && process.env[name] !== '' ? Number(process.env[name]) : dflt);
const link = { delay: env('LINK_DELAY', 0), rate: env('LINK_RATE', 0), window: env('LINK_WINDOW', 4 * 1024 * 1024) };
const report = process.env.LINK_REPORT;
const t0 = env('LINK_T0', Date.now());
const now = () => performance.timeOrigin + performance.now() - t0;
const direct = link.delay === 0 && link.rate === 0;

const timeFile = report ? `${report}.time` : null;
const prog = timeFile ? ['/usr/bin/time', '-f', '%U %S %M', '-o', timeFile, 'sh', '-c', command] : ['sh', '-c', command];
const child = spawn(prog[0], prog.slice(1), {
  cwd: home, env: { ...process.env, HOME: home },
  stdio: direct ? ['inherit', 'inherit', 'inherit'] : ['pipe', 'pipe', 'inherit'],
});
const spawned = now();

// ------------------------------------------------------------ the landmarks
const ev = {};
const mark = (k, t) => { if (ev[k] === undefined) ev[k] = t; };
let getsSent = 0, repliesDone = 0, chunksSent = 0, getsBeforeEnd = 0, maxInFlight = 0, inRequestPhase = false;
// client -> server, at entry and at exit of the link.
const c2sSend = new WireWatcher((line, t) => {
  if (line === null) return;
  if (line.startsWith('GET')) {
    mark('firstGetSent', t); ev.lastGetSent = t;
    getsSent++;
    if (ev.endAtClient === undefined) getsBeforeEnd++;
    maxInFlight = Math.max(maxInFlight, getsSent - repliesDone);
  } else if (line.startsWith('protocol')) mark('clientHandshakeSent', t);
  else if (line === 'COMMIT') mark('commitSent', t);
  else if (line === 'DONE') mark('doneSent', t);
  else if (line === 'ABORT') mark('abortSent', t);
}, false);
const c2sArrive = new WireWatcher((line, t) => {
  if (line !== null && line.startsWith('GET')) { mark('firstGetAtServer', t); ev.lastGetAtServer = t; }
  if (line === 'COMMIT') mark('commitAtServer', t);
}, false);
// server -> client.
const s2cSend = new WireWatcher((line, t) => {
  if (line === 'END') mark('endSent', t);
  else if (line !== null && line.startsWith('protocol')) mark('handshakeSent', t);
  else if (line !== null && /^(ADD|COPY|MOVE|DELETE|REPLACE)/.test(line)) mark('firstDiffSent', t);
  else if (line !== null && line.startsWith('chunk') && ++chunksSent <= getsSent) { mark('firstChunkSent', t); ev.lastChunkSent = t; }
}, true);
const s2cArrive = new WireWatcher((line, t) => {
  if (line === 'END') { mark('endAtClient', t); inRequestPhase = true; return; }
  if (line !== null && /^(ADD|COPY|MOVE|DELETE|REPLACE)/.test(line)) mark('firstDiffAtClient', t);
  if (line === null && inRequestPhase && repliesDone < getsSent) {
    repliesDone++;
    mark('firstReplyAtClient', t); ev.lastReplyAtClient = t;
  }
}, true);

// --------------------------------------------------------------- the relay
let down = null; // remote stdout -> our stdout
let up = null; // our stdin -> remote stdin
const serverIsRemote = process.env.LINK_SERVER !== 'local';
const watchDown = process.env.LINK_SERVER !== undefined;
let downDone = Promise.resolve();
if (!direct) {
  const [downSend, downArrive, upSend, upArrive] = !watchDown ? [null, null, null, null]
    : serverIsRemote ? [s2cSend, s2cArrive, c2sSend, c2sArrive] : [c2sSend, c2sArrive, s2cSend, s2cArrive];
  child.stdin.on('error', () => {});
  process.stdout.on('error', () => {});
  down = new Link('down', link, process.stdout, downArrive ? (b) => downArrive.feed(b, now()) : null);
  up = new Link('up', link, child.stdin, upArrive ? (b) => upArrive.feed(b, now()) : null);
  if (downSend) child.stdout.on('data', (b) => downSend.feed(b, now()));
  if (upSend) process.stdin.on('data', (b) => upSend.feed(b, now()));
  downDone = new Promise((res) => { down.onIdle = res; });
  down.attach(child.stdout);
  up.attach(process.stdin);
}
const exited = new Promise((res) => child.on('exit', (code, sig) => res({ code, sig, t: now() })));
const cpu0 = process.cpuUsage();
const [x] = await Promise.all([exited, downDone]);
if (report) {
  let remote = null;
  try {
    const [u, s, rss] = readFileSync(timeFile, 'latin1').trim().split('\n').pop().split(' ').map(Number);
    remote = { user: u, sys: s, maxRssKB: rss };
  } catch { /* no figures */ }
  const cpu = process.cpuUsage(cpu0);
  writeFileSync(report, JSON.stringify({
    spawned, exited: x.t, code: x.code, signal: x.sig, remote, relayCpu: (cpu.user + cpu.system) / 1e6,
    bytesDown: down?.bytes ?? null, bytesUp: up?.bytes ?? null, busyDown: down?.busyTotal ?? null, busyUp: up?.busyTotal ?? null,
    ev, getsSent, getsBeforeEnd, maxInFlight,
  }));
}
process.stdin.destroy();
process.exitCode = x.code ?? 255;
