/**
 * Mixed versions (issue "Drop-in for upstream users", section 5): our
 * programs against a stand-in for upstream syncmaildir 1.3
 * (helpers/upstream-smd.mjs, real xdelta3 patches), in both directions, over
 * pipes and through smd-pull / smd-push.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDir } from './helpers/maildir-fixture.js';
import { deliver, remoteConfig, smd, treeObject, twoHomes, writeConfig } from './helpers/sync-fixture.js';

const UPSTREAM = join(ROOT, 'test', 'helpers', 'upstream-smd.mjs');
const BIN = join(ROOT, 'bin');
const DB = (home: string): string => join(home, '.smd', 'laptop__Mail.db.txt');

interface Side { argv: string[]; cwd: string; env: NodeJS.ProcessEnv }
interface Ended { code: number | null; stderr: string }

/** Runs two programs connected stdout-to-stdin both ways (a local pipe instead of ssh); bounded in time. */
function pair(a: Side, b: Side): Promise<[Ended, Ended]> {
  const start = (s: Side) => spawn(process.execPath, s.argv, { cwd: s.cwd, env: s.env, stdio: ['pipe', 'pipe', 'pipe'] });
  const pa = start(a);
  const pb = start(b);
  pa.stdout.pipe(pb.stdin);
  pb.stdout.pipe(pa.stdin);
  for (const s of [pa.stdin, pb.stdin, pa.stdout, pb.stdout]) s.on('error', () => undefined);
  const ended = (p: ReturnType<typeof start>): Promise<Ended> => new Promise((res) => {
    let stderr = '';
    p.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 120_000);
    p.on('close', (code) => { clearTimeout(timer); res({ code, stderr }); });
  });
  return Promise.all([ended(pa), ended(pb)]);
}

const env = (home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: home, LANG: 'C.UTF-8', ...extra });
const ourClient = (home: string, extra: string[] = [], e: NodeJS.ProcessEnv = {}): Side =>
  ({ argv: [join(BIN, 'smd-client'), '--listen-first', ...extra, 'laptop', 'Mail'], cwd: home, env: env(home, e) });
const ourServer = (home: string, extra: string[] = []): Side =>
  ({ argv: [join(BIN, 'smd-server'), '--listen-first', ...extra, 'laptop', 'Mail'], cwd: home, env: env(home) });
const upstream = (mode: 'server' | 'client', home: string, e: NodeJS.ProcessEnv = {}): Side =>
  ({ argv: [UPSTREAM, mode, 'laptop', 'Mail'], cwd: home, env: env(home, e) });

function homes(t: Parameters<typeof tempDir>[0]): { local: string; remote: string } {
  const base = tempDir(t, 'smd-mixed-');
  const local = join(base, 'local');
  const remote = join(base, 'remote');
  mkdirSync(local);
  mkdirSync(remote);
  return { local, remote };
}

t.test('this smd-client pulls from an upstream smd-server: its protocol, its xdelta3 patch, checked', async (t) => {
  const h = homes(t);
  const msgs = [deliver(h.remote, 'Mail'), deliver(h.remote, 'Mail'), deliver(h.remote, 'Mail/.Work'), deliver(h.remote, 'Mail', { sub: 'new' })];
  let [c, s] = await pair(ourClient(h.local, ['-v']), upstream('server', h.remote));
  t.equal(s.code, 0, `upstream server: ${s.stderr}`);
  t.equal(c.code, 0, `our client: ${c.stderr}`);
  t.match(c.stderr, /The server is upstream syncmaildir 1\.3: speaking its protocol/);
  t.match(c.stderr, /TAGS: stats::new-mails\(4\), del-mails\(0\), bytes-received\(\d+\), xdelta-received\([1-9]\d*\)/, 'a real xdelta3 patch was received');
  t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')), 'the trees agree');
  t.ok(readFileSync(DB(h.local)).equals(readFileSync(DB(h.remote))), 'both db-files are the same bytes');

  // Changes on the server: a flag change (MOVE), a deletion, a new message.
  renameSync(join(h.remote, msgs[0]), join(h.remote, `${msgs[0]}S`));
  unlinkSync(join(h.remote, msgs[1]));
  deliver(h.remote, 'Mail/.Work');
  [c, s] = await pair(ourClient(h.local), upstream('server', h.remote));
  t.equal(s.code, 0, s.stderr);
  t.equal(c.code, 0, c.stderr);
  t.match(c.stderr, /new-mails\(1\), del-mails\(1\)/);
  t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')), 'converged again');
  t.ok(readFileSync(DB(h.local)).equals(readFileSync(DB(h.remote))), 'db-files agree');
  t.notOk(existsSync(`${DB(h.local)}.xdelta`), 'no patch file left');
});

t.test('an xdelta3 patch that does not lead to what the changes say is refused', async (t) => {
  const h = homes(t);
  deliver(h.remote, 'Mail');
  mkdirSync(join(h.local, '.smd'));
  writeFileSync(DB(h.local), '');
  const before = readFileSync(DB(h.local));
  const [c] = await pair(ourClient(h.local), upstream('server', h.remote, { UPSTREAM_FAKE_LIE: 'extra-db-line' }));
  t.equal(c.code, 4, c.stderr);
  t.match(c.stderr, /Applying the db-file patch failed: the patched db-file is not what the changes lead to: it has "Mail\/cur\/never-sent", which neither the old db-file nor the changes have/);
  t.match(c.stderr, /TAGS: error::context\(db-patch\) probable-cause\(bad-patch\) human-intervention\(necessary\)/);
  t.ok(readFileSync(DB(h.local)).equals(before), 'the db-file is untouched');
  t.notOk(existsSync(`${DB(h.local)}.new`), 'no .new left');
});

t.test('an upstream smd-client receives from this smd-server: xdelta3 patch made by xdelta3', async (t) => {
  const h = homes(t);
  const msgs = [deliver(h.local, 'Mail'), deliver(h.local, 'Mail'), deliver(h.local, 'Mail/.Sent')];
  let [s, c] = await pair(ourServer(h.local, ['-v']), upstream('client', h.remote));
  t.equal(c.code, 0, `upstream client: ${c.stderr}`);
  t.equal(s.code, 0, `our server: ${s.stderr}`);
  t.match(s.stderr, /The client is upstream syncmaildir 1\.3/);
  t.same(treeObject(join(h.remote, 'Mail')), treeObject(join(h.local, 'Mail')));
  t.ok(readFileSync(DB(h.local)).equals(readFileSync(DB(h.remote))), 'db-files agree (the upstream client applied our xdelta3 patch)');
  renameSync(join(h.local, msgs[0]), join(h.local, `${msgs[0]}RS`));
  unlinkSync(join(h.local, msgs[1]));
  [s, c] = await pair(ourServer(h.local), upstream('client', h.remote));
  t.equal(c.code, 0, c.stderr);
  t.equal(s.code, 0, s.stderr);
  t.same(treeObject(join(h.remote, 'Mail')), treeObject(join(h.local, 'Mail')), 'converged');
  t.ok(readFileSync(DB(h.local)).equals(readFileSync(DB(h.remote))));
});

t.test('without xdelta3, an upstream peer is refused at the handshake with the install hint', async (t) => {
  const h = homes(t);
  deliver(h.remote, 'Mail');
  const empty = tempDir(t, 'smd-nopath-');
  const [c] = await pair(ourClient(h.local, [], { PATH: empty }), upstream('server', h.remote));
  t.equal(c.code, 6, c.stderr);
  t.match(c.stderr, /The peer is upstream syncmaildir 1\.3 \(protocol 1\.3\), and its db-file patches need the xdelta3 program, which is not installed here: install it \(Debian\/Ubuntu: apt install xdelta3\)/);
  t.match(c.stderr, /TAGS: error::context\(handshake\) probable-cause\(protocol-mismatch\) human-intervention\(necessary\)/);
  t.notOk(existsSync(join(h.local, 'Mail')), 'nothing was fetched');
});

t.test('smd-pull and smd-push against an upstream installation on the server (fake ssh)', async (t) => {
  const h = twoHomes(t);
  const remoteBin = join(h.remote, '..', 'upstream-bin');
  mkdirSync(remoteBin);
  for (const mode of ['server', 'client']) {
    const p = join(remoteBin, `smd-${mode}`);
    writeFileSync(p, `#!/bin/sh\nexec "${process.execPath}" "${UPSTREAM}" ${mode} "$@"\n`);
    chmodSync(p, 0o755);
  }
  writeConfig(h.local, 'default', remoteConfig());
  const e = { ...h.env, SMD_REMOTE_BIN: remoteBin };
  for (let i = 0; i < 3; i++) deliver(h.remote, 'Mail');
  const pull = await smd('smd-pull', ['-s'], e, { timeoutMs: 150_000 });
  t.equal(pull.status, 0, pull.stdout);
  t.match(pull.stdout, /3 new/);
  deliver(h.local, 'Mail/.Sent');
  const push = await smd('smd-push', [], e, { timeoutMs: 150_000 });
  t.equal(push.status, 0, push.stdout);
  t.same(treeObject(join(h.remote, 'Mail')), treeObject(join(h.local, 'Mail')), 'both hosts hold the same mail');
  t.ok(readFileSync(DB(h.local)).equals(readFileSync(DB(h.remote))), 'db-files agree');
  const again = await smd('smd-pull', ['-s'], e, { timeoutMs: 150_000 });
  t.equal(again.status, 0, again.stdout);
  t.match(again.stdout, /new-mails\(0\), del-mails\(0\)/, 'nothing left to do');
});

t.test('ExpectedDb: what a db-file may say after the changes (pure)', async (t) => {
  const { ExpectedDb } = await import('../packages/client/src/expected-db.js');
  const h = (c: string): string => c.repeat(40);
  const line = (hh: string, b: string, n: string): string => `${h(hh)} ${h(b)} ${n}`;
  const old = [line('a', 'b', 'Mail/cur/1'), line('c', 'd', 'Mail/cur/2'), line('e', 'f', 'Mail/cur/3')];
  const e = new ExpectedDb();
  e.note({ op: 'MOVE', from: 'Mail/cur/1', to: 'Mail/cur/1S', header: h('a'), body: h('b') });
  e.note({ op: 'ADD', name: 'Mail/new/4', header: h('1'), body: h('2') });
  e.note({ op: 'DELETE', name: 'Mail/cur/2', header: h('c'), body: h('d') });
  const good = [line('e', 'f', 'Mail/cur/3'), line('a', 'b', 'Mail/cur/1S'), line('1', '2', 'Mail/new/4')];
  t.equal(e.check(old, good), null, 'the result of the changes');
  t.equal(e.check(old, good.slice(1)), null, 'an untouched line may go (-n drops vanished messages without a DELETE)');
  t.match(e.check(old, [...good, line('c', 'd', 'Mail/cur/2')]), /which the changes removed/);
  t.match(e.check(old, good.slice(0, 2)), /no line for "Mail\/new\/4"/);
  t.match(e.check(old, [...good.slice(0, 2), line('1', '3', 'Mail/new/4')]), /other hashes than the changes announced/);
  t.match(e.check(old, [...good, line('9', '9', 'Mail/cur/x')]), /neither the old db-file nor the changes have/);
  t.match(e.check(old, [...good, line('e', 'f', 'Mail/cur/3')]), /twice/);
  t.match(e.check(old, [...good, 'garbage']), /malformed/);
  t.equal(e.check(old, good.map((l) => l.slice(0, 81).toUpperCase() + l.slice(81))), null, 'upper-case hex is the same hashes');
});
