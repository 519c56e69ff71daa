/**
 * Every verification the product relies on, fed a lie through the code path
 * the product actually uses:
 * - end to end with the real smd-server and smd-client connected by pipes:
 *   the server's mailbox changes between the scan and the request (the
 *   server then honestly sends bytes that do not match what it announced),
 *   for a whole message (GET), a header (GETHEADER of a REPLACEHEADER) and
 *   the header of a COPYBODY target: the client writes nothing for it, says
 *   so (WARNING ... skipped, SKIP to the server), the rest of the run
 *   commits, and the next run takes the new version; and a db-file that
 *   differs from the one agreed (the handshake fingerprints), on either
 *   side, through smd-pull;
 * - with the scripted server (helpers/fake-server.ts): replies of the right
 *   size but the wrong bytes, and db-file patches that apply but produce a
 *   different file (the client's file-based applyDbPatch, not the in-memory
 *   twin).
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

t.test('end to end: a db-file that is not the agreed one is caught by the handshake fingerprints (smd-pull)', async (t) => {
  for (const side of ['local', 'remote'] as const) {
    t.test(`${side} db-file changed by one byte`, async (t) => {
      const h = twoHomes(t);
      writeConfig(h.local, 'default', remoteConfig());
      deliver(h.remote, 'Mail');
      t.equal((await smd('smd-pull', [], h.env)).status, 0);
      deliver(h.remote, 'Mail');
      const db = join(side === 'local' ? h.local : h.remote, '.smd/laptop__Mail.db.txt');
      const text = readFileSync(db, 'latin1');
      writeFileSync(db, Buffer.from(text.replace(/^(.)/, (c: string) => (c === '0' ? '1' : '0')), 'latin1'));
      const before = treeObject(join(h.local, 'Mail'));
      const r = await smd('smd-pull', ['-s'], h.env);
      t.equal(r.status, 1, r.stdout);
      t.match(r.stdout, /TAGS: error::context\(handshake\) probable-cause\(db-mismatch\) human-intervention\(necessary\)/);
      t.same(treeObject(join(h.local, 'Mail')), before, 'nothing applied');
    });
  }
});

const home = (t: Test): string => {
  const h = tempDir(t, 'smd-verify-client-');
  mkdirSync(join(h, '.smd'), { recursive: true });
  return h;
};

t.test('scripted server: replies of the right size with the wrong bytes are never written (skipped, SKIP before COMMIT)', async (t) => {
  const A = msg('a', 'body a\n');
  const A2 = msg('a (edited)', 'body a\n');
  const flip = (s: string): Buffer => { const b = Buffer.from(s, 'latin1'); b[b.length - 2] ^= 0x20; return b; };
  const x = hashes;
  const skipped = (t: Test, r: Awaited<ReturnType<typeof runAgainst>>, line: RegExp, name: string): void => {
    t.equal(r.status, 0, r.stderr);
    t.match(r.stderr, line, 'the warning names it and says why');
    const skip = r.requests.indexOf(`SKIP ${name}`);
    t.ok(skip >= 0 && skip < r.requests.indexOf('COMMIT'), 'SKIP sent before COMMIT');
  };

  t.test('GET of an ADD', async (t) => {
    const h = home(t);
    const r = await runAgainst({ home: h, args: ['laptop', 'Mail'], script: {
      diff: [addLine('Mail/cur/a', A)], files: new Map([['Mail/cur/a', A]]),
      lie: (q) => (q === 'GET Mail/cur/a' ? { kind: 'data', data: flip(A) } : undefined),
    } });
    skipped(t, r, /WARNING: ADD Mail\/cur\/a: skipped for this run \(the server sent other content than announced/, 'Mail/cur/a');
    t.notOk(existsSync(join(h, 'Mail/cur/a')));
    t.same(tmpFiles(h), []);
  });

  t.test('GET of a REPLACE returning the old version', async (t) => {
    const h = home(t);
    const D = msg('d', 'old body\n');
    const D2 = msg('d', 'new body\n');
    put(h, 'Mail/cur/d', D);
    const r = await runAgainst({ home: h, args: ['laptop', 'Mail'], script: {
      diff: [`REPLACE Mail/cur/d ${x(D).h} ${x(D).b} WITH ${x(D2).h} ${x(D2).b}`],
      files: new Map([['Mail/cur/d', D]]),
    } });
    skipped(t, r, /WARNING: REPLACE Mail\/cur\/d: skipped for this run \(the server sent other content than announced/, 'Mail/cur/d');
    t.equal(readFileSync(join(h, 'Mail/cur/d'), 'utf8'), D, 'the local version stays');
  });

  t.test('GETHEADER of a REPLACEHEADER, same length, other bytes', async (t) => {
    const h = home(t);
    put(h, 'Mail/cur/a', A);
    const r = await runAgainst({ home: h, args: ['laptop', 'Mail'], script: {
      diff: [`REPLACEHEADER Mail/cur/a ${x(A).h} ${x(A).b} WITH ${x(A2).h}`],
      files: new Map([['Mail/cur/a', A2.replace('edited', 'EDITED')]]),
    } });
    skipped(t, r, /WARNING: REPLACEHEADER Mail\/cur\/a: skipped for this run \(the server sent another header than announced/, 'Mail/cur/a');
    t.equal(readFileSync(join(h, 'Mail/cur/a'), 'utf8'), A);
  });

  t.test('GETHEADER of a COPYBODY target', async (t) => {
    const h = home(t);
    put(h, 'Mail/cur/s', A);
    const T = msg('target', 'body a\n');
    const r = await runAgainst({ home: h, args: ['laptop', 'Mail'], script: {
      diff: [`COPYBODY Mail/cur/s ${x(A).b} TO Mail/cur/t ${x(T).h}`],
      files: new Map([['Mail/cur/t', T.replace('target', 'TARGET')]]),
    } });
    skipped(t, r, /WARNING: COPYBODY Mail\/cur\/s → Mail\/cur\/t: skipped for this run \(the server sent another header than announced/, 'Mail/cur/t');
    t.notOk(existsSync(join(h, 'Mail/cur/t')), 'no target');
    t.equal(readFileSync(join(h, 'Mail/cur/s'), 'utf8'), A, 'the source stays');
    t.same(tmpFiles(h), []);
  });
});

t.test('scripted server: a db-file patch that applies but does not give the promised file is refused (the client applies it to its file)', async (t) => {
  const A = msg('a', 'body a\n');
  const truth = `${hashes(A).h} ${hashes(A).b} Mail/cur/a\n`;
  const other = truth.replace('Mail/cur/a', 'Mail/cur/b');
  /** A plain patch from the empty db-file inserting `inserted`, promising `to` / `size`. */
  const patch = (inserted: string, to: string, size: number): Buffer => {
    const ops = `+${inserted.length}\n${inserted}`;
    return Buffer.from(`${PATCH_MAGIC}\nfrom ${EMPTY}\nto ${to} ${size}\nops plain ${ops.length}\n${ops}`, 'latin1');
  };
  const cases: Array<[string, Buffer]> = [
    ['other bytes of the same size (only the SHA-1 tells)', patch(other, sha1(truth), truth.length)],
    ['the promised SHA-1 but one byte short', patch(truth.slice(0, -1), sha1(truth), truth.length)],
    ['made for another db-file', Buffer.from(patch(truth, sha1(truth), truth.length).toString('latin1').replace(`from ${EMPTY}`, `from ${sha1('x')}`), 'latin1')],
  ];
  for (const [what, raw] of cases) {
    t.test(what, async (t) => {
      const h = home(t);
      const script: Script = { diff: [addLine('Mail/cur/a', A)], files: new Map([['Mail/cur/a', A]]), commit: { raw } };
      const r = await runAgainst({ home: h, args: ['laptop', 'Mail'], script });
      t.equal(r.status, 4, r.stderr);
      t.match(r.stderr, /^ERROR: Applying the db-file patch failed: /m);
      t.match(r.stderr, /TAGS: error::context\(db-patch\) probable-cause\(bad-patch\) human-intervention\(necessary\)/);
      t.ok(r.requests.includes('ABORT'), 'ABORT, not DONE');
      t.notOk(r.requests.includes('DONE'));
      t.equal(readFileSync(join(h, '.smd/laptop__Mail.db.txt'), 'latin1'), '', 'the db-file is unchanged');
      t.same(readdirSync(join(h, '.smd')).sort(), ['laptop__Mail.db.txt'], 'no .new and no temp file in ~/.smd');
    });
  }
  t.test('control: the honest patch is accepted', async (t) => {
    const h = home(t);
    const r = await runAgainst({ home: h, args: ['laptop', 'Mail'], script: { diff: [addLine('Mail/cur/a', A)], files: new Map([['Mail/cur/a', A]]), commit: { raw: patch(truth, sha1(truth), truth.length) } } });
    t.equal(r.status, 0, r.stderr);
    t.equal(readFileSync(join(h, '.smd/laptop__Mail.db.txt'), 'latin1'), truth);
  });
});
