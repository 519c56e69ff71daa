#!/usr/bin/env node
// `npm run demo`: a real local-mode sync of a generated sample mailbox, with
// no server to set up. A throw-away HOME holds a "server" mailbox (Mail/) and
// a "laptop" copy (Laptop/Mail/) kept in sync by smd-pull / smd-push in local
// mode (SERVERNAME=localhost, SMDCLIENTOPTS=-l). Pass --keep to keep it.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const bin = join(import.meta.dirname, '..', 'bin');
const home = mkdtempSync(join(tmpdir(), 'smd-demo-'));
const env = { ...process.env, HOME: home, PATH: `${bin}:${process.env.PATH}` };
let n = 0;

function deliver(folder, subject) {
  n += 1;
  for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(home, folder, d), { recursive: true });
  const name = `${1700000000 + n}.M${n}P1.demo:2,${n % 3 === 0 ? 'S' : ''}`;
  const body = `Hello,\n\nthis is sample message number ${n}.\n${'Lorem ipsum dolor sit amet. '.repeat(20 + (n * 37) % 400)}\n`;
  writeFileSync(join(home, folder, 'cur', name), `From: alice@example.org\nTo: bob@example.org\nSubject: ${subject ?? `sample ${n}`}\nMessage-Id: <${n}@demo>\n\n${body}`);
  return join(folder, 'cur', name);
}

function tree(root) {
  const out = new Map();
  const walk = (dir, rel) => {
    for (const e of readdirSync(dir).sort()) {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) { if (e !== 'tmp') walk(p, `${rel}${e}/`); }
      else out.set(`${rel}${e}`, createHash('sha1').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(root, '');
  return out;
}

function run(cmd, ...args) {
  console.log(`\n$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(join(bin, cmd), args, { env, cwd: home, encoding: 'utf8' });
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  if (r.status !== 0) { console.error(`${cmd} exited with ${r.status}; the demo HOME is kept: ${home}`); process.exit(1); }
}

console.log(`Demo HOME: ${home}`);
mkdirSync(join(home, '.smd'), { recursive: true, mode: 0o700 });
writeFileSync(join(home, '.smd', 'config.default'), [
  '# The "server" mailbox is ~/Mail, the "laptop" copy ~/Laptop/Mail, on this machine.',
  'SERVERNAME=localhost',
  'SMDCLIENTOPTS=-l',
  'CLIENTNAME=demo',
  'MAILBOX=""',
  'MAILBOX_REMOTE=Mail',
  'MAILBOX_LOCAL=Laptop/Mail',
  'TRANSLATOR_RL="smd-translate -m move -d RL default"',
  'TRANSLATOR_LR="smd-translate -m move -d LR default"',
  '',
].join('\n'));
const inbox = [];
for (let i = 0; i < 120; i++) inbox.push(deliver('Mail', undefined));
for (let i = 0; i < 40; i++) deliver('Mail/.Work');
for (let i = 0; i < 40; i++) deliver('Mail/.Lists');
console.log(`Generated ${tree(join(home, 'Mail')).size} messages in ~/Mail (the "server").`);

run('smd-pull');

console.log('\nOn the server: a new message arrives and one is flagged. On the laptop: one is deleted, one is written.');
deliver('Mail', 'a new message on the server');
renameSync(join(home, inbox[1]), join(home, `${inbox[1]}F`));
unlinkSync(join(home, 'Laptop', inbox[2]));
deliver('Laptop/Mail/.Sent', 'a message written on the laptop');

run('smd-push');
run('smd-pull');

const a = tree(join(home, 'Mail'));
const b = tree(join(home, 'Laptop', 'Mail'));
const same = a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
console.log(`\n~/Mail: ${a.size} messages, ~/Laptop/Mail: ${b.size} messages: ${same ? 'identical' : 'DIFFERENT'}.`);
if (process.argv.includes('--keep')) console.log(`Kept ${home}`);
else rmSync(home, { recursive: true, force: true });
process.exit(same ? 0 : 1);
