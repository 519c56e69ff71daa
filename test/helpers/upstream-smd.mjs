#!/usr/bin/env node
// A stand-in for upstream syncmaildir 1.3's smd-server and smd-client, for the
// mixed-version tests: what they put on the wire, in the order they do it
// (upstream-behaviour.md sections 3-5), with REAL xdelta3 patches.
//
//   upstream-smd.mjs server [-n] ENDPOINT MAILBOX...   (runs our bin/mddiff for the diff, as upstream runs its mddiff)
//   upstream-smd.mjs client ENDPOINT MAILBOX...
//
// Both speak first, accept only "protocol 1.3", never send ABORT as a reply (an
// unreadable file ends the server, exit 7), batch GETs by 51. The client
// applies ADD / COPY / MOVE / DELETE / REPLACE / REPLACEHEADER as upstream does
// for the cases the tests use. UPSTREAM_FAKE_LIE=extra-db-line makes the
// server's patch produce a db-file with one line no diff announced.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MDDIFF = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'mddiff');
const [mode, ...args] = process.argv.slice(2);
const noDelete = args[0] === '-n';
if (noDelete) args.shift();
const [endpoint, ...mailboxes] = args;
const HOME = process.env.HOME;
mkdirSync(join(HOME, '.smd'), { recursive: true });
const db = `${HOME}/.smd/${endpoint.replace(/\/$/, '').replace(/\//g, '_')}__${mailboxes.join('__').replace(/\/$/, '').replace(/[/%]/g, '_')}.db.txt`;
const sha1 = (b) => createHash('sha1').update(b).digest('hex');
const log = (l) => process.stderr.write(`${l}\n`);
const fail = (msg, code) => { log(`ERROR: ${msg}`); process.exit(code); };

// ---- input: lines and chunks from stdin
let buf = Buffer.alloc(0);
let ended = false;
const waiters = [];
process.stdin.on('data', (d) => { buf = Buffer.concat([buf, d]); for (const w of waiters.splice(0)) w(); });
process.stdin.on('end', () => { ended = true; for (const w of waiters.splice(0)) w(); });
const more = () => new Promise((r) => { if (ended) r(); else waiters.push(r); });
async function readLine() {
  for (;;) {
    const nl = buf.indexOf(10);
    if (nl >= 0) { const l = buf.subarray(0, nl).toString('latin1'); buf = buf.subarray(nl + 1); return l; }
    if (ended) return null;
    await more();
  }
}
async function readBytes(n) {
  while (buf.length < n) { if (ended) return null; await more(); }
  const b = buf.subarray(0, n); buf = buf.subarray(n); return Buffer.from(b);
}
const out = (s) => process.stdout.write(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);

// ---- handshake (both speak first; "dbfile <db> <db.new or ->")
async function handshake() {
  if (!existsSync(db)) writeFileSync(db, '');
  const mine = sha1(readFileSync(db));
  const mineNew = existsSync(`${db}.new`) ? sha1(readFileSync(`${db}.new`)) : null;
  out(`protocol 1.3\ndbfile ${mine} ${mineNew ?? '-'}\n`);
  const l1 = await readLine();
  if (l1 === null) fail('Network error', 6);
  if (l1 !== 'protocol 1.3') { log('ERROR: Wrong protocol version.'); log('TAGS: error::context(handshake) probable-cause(protocol-mismatch) human-intervention(necessary) '); process.exit(6); }
  const l2 = await readLine();
  const m = /^dbfile (\S+) (\S+)$/.exec(l2 ?? '');
  if (!m) fail('bad handshake', 6);
  const [peer, peerNew] = [m[1], m[2] === '-' ? null : m[2]];
  if (peerNew === mine) return;
  if (mineNew !== null && peer === mineNew) { renameSync(`${db}.new`, db); return; }
  if (peer === mine) return;
  log('TAGS: error::context(handshake) probable-cause(db-mismatch) human-intervention(necessary) ');
  process.exit(6);
}

function split(data) {
  let i = data.indexOf('\n\n');
  if (i >= 0) return [data.subarray(0, i + 2), data.subarray(i + 2)];
  return null;
}
const decode = (n) => n.replace(/%([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));

async function server() {
  await handshake();
  const diff = spawnSync(MDDIFF, ['--db-file', db, ...(noDelete ? ['-n'] : []), ...mailboxes], { encoding: 'latin1', maxBuffer: 1 << 28 });
  out(diff.stdout);
  out('END\n');
  for (;;) {
    const l = await readLine();
    if (l === null) { log('ERROR: Communication with client died unexpectedly'); process.exit(3); }
    const m = /^(GET|GETHEADER|GETBODY) (.*)$/s.exec(l);
    if (m) {
      let data;
      try { data = readFileSync(Buffer.from(m[2], 'latin1')); } catch {
        log(`ERROR: Unable to open ${m[2]}`);
        log('TAGS: error::context(transmit) probable-cause(simultaneous-mailbox-edit) human-intervention(avoidable) suggested-actions(retry)');
        process.exit(7);
      }
      // Upstream splits at the first empty LINE (bug B3); the same as "\n\n" for ordinary messages.
      const p = split(data);
      const part = m[1] === 'GET' ? data : m[1] === 'GETHEADER' ? p[0] : p[1];
      out(`chunk ${part.length}\n`); out(part);
      continue;
    }
    if (l === 'COMMIT') {
      const x = `${db}.xdelta`;
      let target = `${db}.new`;
      if (process.env.UPSTREAM_FAKE_LIE === 'extra-db-line') {
        writeFileSync(`${db}.lie`, Buffer.concat([readFileSync(`${db}.new`), Buffer.from(`${'a'.repeat(40)} ${'b'.repeat(40)} Mail/cur/never-sent\n`)]));
        target = `${db}.lie`;
      }
      const r = spawnSync('xdelta3', ['-e', '-f', '-s', db, target, x]);
      if (r.status !== 0) process.exit(4);
      const patch = readFileSync(x);
      unlinkSync(x);
      out(`chunk ${patch.length}\n`); out(patch);
      const done = await readLine();
      if (done === 'DONE') {
        renameSync(`${db}.new`, db);
        if (existsSync(`${db}.mtime.new`)) renameSync(`${db}.mtime.new`, `${db}.mtime`);
        process.exit(0);
      }
      process.exit(done === 'ABORT' ? 5 : 3);
    }
    if (l === 'ABORT') { log(`ERROR: Client aborted, removing ${db}.new and ${db}.mtime.new`); process.exit(5); }
    log(`ERROR: Invalid command ${l}`);
    process.exit(6);
  }
}

async function client() {
  await handshake();
  const cmds = [];
  for (;;) {
    const l = await readLine();
    if (l === null) fail('Network error', 6);
    if (l === 'END') break;
    cmds.push(l);
  }
  const hashesOf = (p) => { try { const s = split(readFileSync(Buffer.from(p, 'latin1'))); return s && [sha1(s[0]), sha1(s[1])]; } catch { return null; } };
  const gets = [];
  let added = 0;
  let deleted = 0;
  const place = (name, data) => {
    mkdirSync(Buffer.from(dirname(name), 'latin1'), { recursive: true });
    writeFileSync(Buffer.from(name, 'latin1'), data);
  };
  for (const l of cmds) {
    const f = l.split(' ');
    switch (f[0]) {
      case 'ADD': if (hashesOf(decode(f[1])) === null) gets.push(decode(f[1])); break;
      case 'DELETE': { const n = decode(f[1]); const h = hashesOf(n); if (h && h[0] === f[2] && h[1] === f[3]) { unlinkSync(Buffer.from(n, 'latin1')); deleted++; } break; }
      case 'MOVE': { const s = decode(f[1]); const t = decode(f[5]); if (hashesOf(s)) { mkdirSync(Buffer.from(dirname(t), 'latin1'), { recursive: true }); renameSync(Buffer.from(s, 'latin1'), Buffer.from(t, 'latin1')); } else gets.push(t); break; }
      case 'COPY': { const s = decode(f[1]); const t = decode(f[5]); if (hashesOf(s)) place(t, readFileSync(Buffer.from(s, 'latin1'))); else gets.push(t); break; }
      case 'REPLACE': gets.push(decode(f[1])); break;
      case 'REPLACEHEADER': {
        const n = decode(f[1]);
        out(`GETHEADER ${n}\n`);
        const c = await readLine();
        const h = await readBytes(Number(/^chunk (\d+)$/.exec(c)[1]));
        const old = split(readFileSync(Buffer.from(n, 'latin1')));
        place(n, Buffer.concat([h, old[1]]));
        break;
      }
      default: fail(`cannot do ${l}`, 6);
    }
  }
  for (let i = 0; i < gets.length; i += 51) {
    const batch = gets.slice(i, i + 51);
    out(batch.map((n) => `GET ${n}\n`).join(''));
    for (const n of batch) {
      const c = await readLine();
      if (c === null || c === 'ABORT') { out('ABORT\n'); log('TAGS: error::context(receive) probable-cause(network) human-intervention(avoidable) suggested-actions(retry)'); process.exit(1); }
      place(n, await readBytes(Number(/^chunk (\d+)$/.exec(c)[1])));
      added++;
    }
  }
  out('COMMIT\n');
  const c = await readLine();
  if (c === null || c === 'ABORT') process.exit(4);
  const size = Number(/^chunk (\d+)$/.exec(c)[1]);
  const patch = await readBytes(size);
  writeFileSync(`${db}.xdelta`, patch);
  if (size > 0) {
    const r = spawnSync('xdelta3', ['-d', '-f', '-s', db, `${db}.xdelta`, `${db}.new`]);
    if (r.status !== 0) { out('ABORT\n'); log(`ERROR: xdelta3: ${r.stderr}`); process.exit(4); }
    renameSync(`${db}.new`, db);
  }
  unlinkSync(`${db}.xdelta`);
  out('DONE\n');
  log(`TAGS: stats::new-mails(${added}), del-mails(${deleted}), bytes-received(0), xdelta-received(${size})`);
  process.stdout.end(() => process.exit(0));
}

process.stdout.on('error', () => process.exit(3));
(mode === 'server' ? server() : client()).catch((e) => { log(`ERROR: ${e.stack}`); process.exit(7); });
