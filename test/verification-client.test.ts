/**
 * Verifications fed a lie (continued from verification.test.ts): a db-file
 * that is not the agreed one, through smd-pull (the handshake fingerprints);
 * the scripted server (helpers/fake-server.ts) sending replies of the right
 * size with the wrong bytes, and db-file patches that apply but do not give
 * the promised file, through the client's file-based applyDbPatch.
 */
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PATCH_MAGIC } from '@smd/protocol';
import { tempDir } from './helpers/maildir-fixture.js';
import { deliver, remoteConfig, smd, tmpFiles, treeObject, twoHomes, writeConfig } from './helpers/sync-fixture.js';
import { runAgainst, addLine, hashes, sha1, EMPTY, type Script } from './helpers/fake-server.js';

const msg = (subject: string, body: string): string => `From: a@example.org\nSubject: ${subject}\n\n${body}`;
const put = (home: string, rel: string, data: string): void => {
  for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(home, 'Mail', d), { recursive: true });
  writeFileSync(join(home, rel), data);
};

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
