/**
 * Every verification the product relies on, fed a lie through the code path
 * the product actually uses:
 * - end to end with the real smd-server and smd-client connected by pipes:
 *   the server's mailbox changes between the scan and the request (the
 *   server then honestly sends bytes that do not match what it announced),
 *   for a whole message (GET), a header (GETHEADER of a REPLACEHEADER) and
 *   the header of a COPYBODY target: the client writes nothing for it, says
 *   so (WARNING ... skipped, SKIP to the server), the rest of the run
 *   commits, and the next run takes the new version;
 * - with the scripted server (helpers/fake-server.ts): replies of the right
 *   size but the wrong bytes, and db-file patches that apply but produce a
 *   different file (the client's file-based applyDbPatch, not the in-memory
 *   twin), and a db-file that differs from the agreed one (the handshake
 *   fingerprints) through smd-pull: verification-client.test.ts.
 * A lying *peer* end to end (the real server behind a relay that rewrites
 * its replies) is the relay suite's job (helpers/relay*, issue 8).
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PATCH_MAGIC } from '@smd/protocol';
import { tempDir, ROOT } from './helpers/maildir-fixture.js';
import { deliver, remoteConfig, smd, tmpFiles, treeObject, twoHomes, writeConfig } from './helpers/sync-fixture.js';
import { runAgainst, addLine, hashes, sha1, EMPTY, type Script } from './helpers/fake-server.js';

const SERVER = join(ROOT, 'bin', 'smd-server');
const CLIENT = join(ROOT, 'bin', 'smd-client');

interface Ended { code: number | null; stderr: string }

/**
 * One sync: the real smd-server (in `remote`) and smd-client (in `local`),
 * client → server piped straight, server → client through this process,
 * which runs `beforeForwarding` once, synchronously, the first time `marker`
 * appears in the server's output, before passing that output on: the client
 * cannot have asked for anything the marker line announces yet.
 */
async function syncThroughPipes(local: string, remote: string, marker: string | null, beforeForwarding: () => void): Promise<{ client: Ended; server: Ended; fired: boolean }> {
  const server = spawn(SERVER, ['laptop', 'Mail'], { cwd: remote, env: { PATH: process.env.PATH, HOME: remote }, stdio: ['pipe', 'pipe', 'pipe'] });
  const client = spawn(CLIENT, ['laptop', 'Mail'], { cwd: local, env: { PATH: process.env.PATH, HOME: local }, stdio: ['pipe', 'pipe', 'pipe'] });
  const killer = setTimeout(() => { server.kill('SIGKILL'); client.kill('SIGKILL'); }, 60_000);
  client.stdout.pipe(server.stdin);
  server.stdin.on('error', () => { /* server gone */ });
  client.stdin.on('error', () => { /* client gone */ });
  let fired = marker === null;
  let carry = '';
  server.stdout.on('data', (d: Buffer) => {
    if (!fired) {
      const text = carry + d.toString('latin1');
      if (text.includes(marker!)) { fired = true; beforeForwarding(); } else carry = text.slice(-marker!.length);
    }
    client.stdin.write(d);
  });
  server.stdout.on('end', () => client.stdin.end());
  const ended = (p: typeof server): Promise<Ended> => new Promise((res) => {
    let stderr = '';
    p.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    p.once('close', (code) => res({ code, stderr }));
  });
  const [c, s] = await Promise.all([ended(client), ended(server)]);
  clearTimeout(killer);
  return { client: c, server: s, fired };
}

function sides(t: Test): { local: string; remote: string } {
  const base = tempDir(t, 'smd-verify-');
  const local = join(base, 'local');
  const remote = join(base, 'remote');
  for (const d of [local, remote]) mkdirSync(join(d, '.smd'), { recursive: true });
  return { local, remote };
}

const msg = (subject: string, body: string): string => `From: a@example.org\nSubject: ${subject}\n\n${body}`;
const put = (home: string, rel: string, data: string): void => {
  for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(home, 'Mail', d), { recursive: true });
  writeFileSync(join(home, rel), data);
};

t.test('end to end: the server mailbox changes between the scan and the request', async (t) => {
  t.test('GET: same size, other bytes: nothing written for it, skipped, the rest commits; the next run takes it', async (t) => {
    const { local, remote } = sides(t);
    put(remote, 'Mail/cur/keep:2,S', msg('keep', 'kept\n'));
    put(remote, 'Mail/cur/victim:2,S', msg('victim', 'original body\n'));
    const r = await syncThroughPipes(local, remote, 'ADD Mail/cur/victim:2,S', () => {
      writeFileSync(join(remote, 'Mail/cur/victim:2,S'), msg('victim', 'ORIGINAL body\n')); // same length
    });
    t.ok(r.fired, 'the marker was seen');
    t.equal(r.client.code, 0, r.client.stderr);
    t.match(r.client.stderr, /^WARNING: ADD Mail\/cur\/victim:2,S: skipped for this run \(the server sent other content than announced/m);
    t.match(r.client.stderr, /TAGS: stats::skipped-mails\(1\)/);
    t.equal(r.server.code, 0, r.server.stderr);
    t.notOk(existsSync(join(local, 'Mail/cur/victim:2,S')), 'the unverified bytes are not placed');
    t.equal(readFileSync(join(local, 'Mail/cur/keep:2,S'), 'utf8'), msg('keep', 'kept\n'), 'the rest is applied');
    t.same(tmpFiles(local), [], 'no temp file left');
    t.equal(readFileSync(join(local, '.smd/laptop__Mail.db.txt'), 'latin1'), readFileSync(join(remote, '.smd/laptop__Mail.db.txt'), 'latin1'), 'both db-files agree');
    t.notMatch(readFileSync(join(local, '.smd/laptop__Mail.db.txt'), 'latin1'), /victim/, 'the agreement does not claim the skipped message');
    const again = await syncThroughPipes(local, remote, null, () => undefined);
    t.equal(again.client.code, 0, again.client.stderr);
    t.same(treeObject(join(local, 'Mail')), treeObject(join(remote, 'Mail')), 'converged');
    t.equal(readFileSync(join(local, 'Mail/cur/victim:2,S'), 'utf8'), msg('victim', 'ORIGINAL body\n'));
  });

  t.test('REPLACEHEADER: the header fetched is not the announced one: skipped, the local message untouched', async (t) => {
    const { local, remote } = sides(t);
    put(remote, 'Mail/cur/v:2,S', msg('first', 'body\n'));
    const first = await syncThroughPipes(local, remote, null, () => undefined);
    t.equal(first.client.code, 0, first.client.stderr);
    put(remote, 'Mail/cur/v:2,S', msg('second', 'body\n'));
    const r = await syncThroughPipes(local, remote, 'REPLACEHEADER Mail/cur/v:2,S', () => {
      writeFileSync(join(remote, 'Mail/cur/v:2,S'), msg('SECOND', 'body\n'));
    });
    t.ok(r.fired, 'a REPLACEHEADER was announced');
    t.equal(r.client.code, 0, r.client.stderr);
    t.match(r.client.stderr, /^WARNING: REPLACEHEADER Mail\/cur\/v:2,S: skipped for this run \(the server sent another header than announced/m);
    t.equal(readFileSync(join(local, 'Mail/cur/v:2,S'), 'utf8'), msg('first', 'body\n'), 'untouched');
    t.same(tmpFiles(local), []);
    const again = await syncThroughPipes(local, remote, null, () => undefined);
    t.equal(again.client.code, 0, again.client.stderr);
    t.same(treeObject(join(local, 'Mail')), treeObject(join(remote, 'Mail')), 'converged');
  });

  t.test('COPYBODY: the target header fetched is not the announced one: skipped, no target left behind', async (t) => {
    const { local, remote } = sides(t);
    const body = 'a long shared body\n'.repeat(20);
    put(remote, 'Mail/cur/s:2,S', msg('source', body));
    const first = await syncThroughPipes(local, remote, null, () => undefined);
    t.equal(first.client.code, 0, first.client.stderr);
    put(remote, 'Mail/cur/t:2,S', msg('target', body));
    const r = await syncThroughPipes(local, remote, 'COPYBODY Mail/cur/s:2,S', () => {
      writeFileSync(join(remote, 'Mail/cur/t:2,S'), msg('TARGET', body));
    });
    t.ok(r.fired, 'a COPYBODY was announced');
    t.equal(r.client.code, 0, r.client.stderr);
    t.match(r.client.stderr, /^WARNING: COPYBODY Mail\/cur\/s:2,S → Mail\/cur\/t:2,S: skipped for this run \(the server sent another header than announced/m);
    t.notOk(existsSync(join(local, 'Mail/cur/t:2,S')), 'no half-made target');
    t.same(tmpFiles(local), []);
    const again = await syncThroughPipes(local, remote, null, () => undefined);
    t.equal(again.client.code, 0, again.client.stderr);
    t.same(treeObject(join(local, 'Mail')), treeObject(join(remote, 'Mail')), 'converged');
  });
});
