/**
 * smd-server end to end: the real bin/smd-server on a temporary Maildir, with
 * HOME in a temporary directory, driven by a scripted client written with
 * WireReader/WireWriter.
 */
import t from 'tap';
import {
  mkdtempSync, mkdirSync, writeFileSync, readFileSync, existsSync, renameSync, readdirSync, symlinkSync, rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { WireReader, WireWriter, PROTOCOL_VERSION, ProtocolError, applyDbPatch, parseDbPatch } from '@smd/protocol';

const ROOT = resolve(import.meta.dirname, '..');
const SERVER = join(ROOT, 'bin', 'smd-server');
const EMPTY = 'da39a3ee5e6b4b0d3255bfef95601890afd80709';
const sha1 = (d: Buffer | string): string => createHash('sha1').update(typeof d === 'string' ? Buffer.from(d, 'latin1') : d).digest('hex');
const enc = (n: string): string => n.replace(/%/g, '%25').replace(/ /g, '%20');
const B = (s: string): Buffer => Buffer.from(s, 'latin1');

interface Fixture { home: string; work: string; db: string }

/** A work directory with a Maildir `Mail`, HOME beside it. Names are latin1 strings. */
const bases: string[] = [];
t.teardown(() => { for (const b of bases) rmSync(b, { recursive: true, force: true }); });

function fixture(messages: Record<string, string | Buffer>): Fixture {
  const base = mkdtempSync(join(tmpdir(), 'smd-server-'));
  bases.push(base);
  const home = join(base, 'home');
  const work = join(base, 'work');
  mkdirSync(join(home, '.smd'), { recursive: true });
  for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(work, 'Mail', d), { recursive: true });
  for (const [name, data] of Object.entries(messages)) put(work, name, data);
  return { home, work, db: join(home, '.smd', 'laptop__Mail.db.txt') };
}

function put(work: string, name: string, data: string | Buffer): void {
  writeFileSync(Buffer.from(join(work, name), 'latin1'), typeof data === 'string' ? B(data) : data);
}

interface Session {
  child: ChildProcess;
  r: WireReader;
  w: WireWriter;
  exit: Promise<{ code: number | null; stderr: string; stdout: Buffer }>;
}

function start(f: Fixture, args: string[], opts: { keepStdout?: boolean } = {}): Session {
  const child = spawn(SERVER, args, { cwd: f.work, env: { PATH: process.env.PATH, HOME: f.home }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString('latin1'); });
  child.stdin!.on('error', () => { /* the server may exit before reading everything */ });
  const out: Buffer[] = [];
  if (opts.keepStdout) child.stdout!.on('data', (d: Buffer) => out.push(d));
  const exit = new Promise<{ code: number | null; stderr: string; stdout: Buffer }>((res) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
    child.once('close', (code) => { clearTimeout(timer); res({ code, stderr, stdout: Buffer.concat(out) }); });
  });
  return { child, r: opts.keepStdout ? new WireReader((async function* () { /* unused */ })()) : new WireReader(child.stdout!), w: new WireWriter(child.stdin!), exit };
}

/** Both handshake lines of the client; returns the server's two lines. */
async function handshake(s: Session, db = EMPTY, dbNew: string | null = null): Promise<[string | null, string | null]> {
  await s.w.line(`protocol ${PROTOCOL_VERSION}`);
  await s.w.line(`dbfile ${db} ${dbNew ?? '-'}`);
  await s.w.flush();
  return [await s.r.readLine(), await s.r.readLine()];
}

async function diffLines(s: Session): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const l = await s.r.readLine();
    if (l === null) throw new Error(`EOF before END after ${JSON.stringify(lines)}`);
    if (l === 'END') return lines;
    lines.push(l);
  }
}

/** Reads one reply: the bytes, or 'ABORT'. */
async function reply(s: Session): Promise<Buffer | 'ABORT'> {
  try {
    return await s.r.readChunk();
  } catch (e) {
    if (e instanceof ProtocolError && e.kind === 'abort') return 'ABORT';
    throw e;
  }
}

const MSG1 = 'From: a@example.org\nSubject: one\n\nbody one\n';
const SPACE_NAME = 'Mail/cur/2 two \u00e9t\u00e9 100%:2,S';
const MSG2 = 'Subject: two\n\n\nbody two starts with an empty line\n\n';
const CRLF_NAME = 'Mail/new/3.crlf';
const MSG3 = 'Subject: crlf\r\nX: y\r\n\r\nbody\r\nmore\r\n';
const BIG_NAME = 'Mail/cur/4.big:2,S';
const BIG = Buffer.concat([B('Subject: big\n\n'), Buffer.alloc(9 * 1024 * 1024 + 123, 0x61)]); // above the 8 MiB whole-read limit

t.test('first sync: handshake, streamed diff, requests, COMMIT, DONE', async (t) => {
  const f = fixture({ 'Mail/cur/1.one:2,S': MSG1, [SPACE_NAME]: MSG2, [CRLF_NAME]: MSG3, [BIG_NAME]: BIG, 'Mail/tmp/5.notyet': MSG1 });
  writeFileSync(join(f.work, 'secret.txt'), 'not a message\n\nbut it has a blank line\n');
  symlinkSync(join(f.work, 'secret.txt'), join(f.work, 'Mail', 'cur', '6.link:2,S'));
  const s = start(f, ['-v', 'laptop', 'Mail']);
  const [p, d] = await handshake(s);
  t.equal(p, `protocol ${PROTOCOL_VERSION}`);
  t.equal(d, `dbfile ${EMPTY} -`, 'empty db-file created and announced');
  t.ok(existsSync(f.db), 'db-file created');

  // A pipelined request sent before reading the diff: answered after END.
  await s.w.line('GET Mail/cur/1.one:2,S');
  await s.w.flush();
  const diff = await diffLines(s);
  const h = (m: string | Buffer, sep = '\n\n'): string[] => {
    const b = typeof m === 'string' ? B(m) : m;
    const k = b.indexOf(sep) + sep.length;
    return [sha1(b.subarray(0, k)), sha1(b.subarray(k))];
  };
  t.same(diff.slice().sort(), [
    `ADD Mail/cur/1.one:2,S ${h(MSG1).join(' ')}`,
    `ADD ${enc(SPACE_NAME)} ${h(MSG2).join(' ')}`,
    `ADD ${CRLF_NAME} ${h(MSG3, '\r\n\r\n').join(' ')}`,
    `ADD ${BIG_NAME} ${h(BIG).join(' ')}`,
  ].sort(), 'one ADD per message, names %-encoded, CRLF message included, tmp/ and symlinks left out');

  t.same(await reply(s), B(MSG1), 'request sent before END answered after END');
  // Pipelined batch, answered strictly in order.
  const reqs: [string, Buffer | 'ABORT'][] = [
    [`GET ${SPACE_NAME}`, B(MSG2)],
    [`GETHEADER ${SPACE_NAME}`, B('Subject: two\n\n')],
    [`GETBODY ${SPACE_NAME}`, B('\nbody two starts with an empty line\n\n')],
    [`GETHEADER ${CRLF_NAME}`, B('Subject: crlf\r\nX: y\r\n\r\n')],
    [`GETBODY ${CRLF_NAME}`, B('body\r\nmore\r\n')],
    ['GET ../../etc/passwd', 'ABORT'],
    ['GET /etc/passwd', 'ABORT'],
    [`GET ${resolve(f.work, 'Mail/cur/1.one:2,S')}`, 'ABORT'],
    ['GET Mail/tmp/5.notyet', 'ABORT'],
    ['GET secret.txt', 'ABORT'],
    ['GET Mail/cur/6.link:2,S', 'ABORT'],
    ['GET Mail/cur/../cur/1.one:2,S', 'ABORT'],
    [`GET ${f.db}`, 'ABORT'],
    ['GETHEADER Mail/cur/1.one:2,S', B('From: a@example.org\nSubject: one\n\n')],
    [`GET ${BIG_NAME}`, BIG],
    [`GETBODY ${BIG_NAME}`, BIG.subarray(14)],
  ];
  for (const [req] of reqs) await s.w.line(req);
  await s.w.flush();
  for (const [req, want] of reqs) {
    const got = await reply(s);
    if (want === 'ABORT') t.equal(got, 'ABORT', `${req} -> ABORT`);
    else t.ok(Buffer.isBuffer(got) && got.equals(want), `${req}: bytes exact`);
  }

  // A message that vanished after the scan: ABORT, the session goes on.
  renameSync(join(f.work, 'Mail/cur/1.one:2,S'), join(f.work, 'Mail/cur/1.one:2,RS'));
  await s.w.line('GET Mail/cur/1.one:2,S');
  await s.w.line(`GETHEADER ${CRLF_NAME}`);
  await s.w.flush();
  t.equal(await reply(s), 'ABORT', 'vanished file -> ABORT');
  t.same(await reply(s), B('Subject: crlf\r\nX: y\r\n\r\n'), 'and the next request is served');

  await s.w.line('COMMIT');
  await s.w.flush();
  const patch = await s.r.readChunk();
  const parsed = parseDbPatch(patch);
  t.equal(parsed.from, EMPTY, 'patch applies to the empty db-file');
  const clientDb = join(f.home, 'client.db.txt');
  writeFileSync(clientDb, '');
  applyDbPatch(clientDb, patch, clientDb);
  const serverNew = readFileSync(`${f.db}.new`);
  t.ok(readFileSync(clientDb).equals(serverNew), 'applyDbPatch turns the client db into the server db.new exactly');
  t.notMatch(serverNew.toString('latin1'), / Mail\/cur\/1\.one:2,S\n/, 'the message the client could not get keeps its previous agreement (none)');
  t.match(serverNew.toString('latin1'), new RegExp(` ${CRLF_NAME.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n`), 'the others are agreed');
  t.ok(existsSync(`${f.db}.mtime.new`));
  await s.w.line('DONE');
  await s.w.end();
  const { code, stderr } = await s.exit;
  t.equal(code, 0, 'exit 0 after DONE');
  t.ok(readFileSync(f.db).equals(serverNew), 'db.new renamed to db');
  t.notOk(existsSync(`${f.db}.new`), 'no db.new left');
  t.notOk(existsSync(`${f.db}.mtime.new`), 'no db.mtime.new left');
  t.ok(existsSync(`${f.db}.mtime`), 'db.mtime in place');
  t.match(stderr, /ERROR: .*etc\/passwd/, 'refusals are logged');
  t.match(stderr, /PROGRESS: Phase 0: handshake/);
  t.notMatch(stderr, /TAGS: error/, 'no error TAGS on success');

  t.test('second sync: a flag change is a MOVE and the patch is small', async (t) => {
    // 1.one was renamed above; rename the CRLF one too, add one.
    renameSync(join(f.work, CRLF_NAME), join(f.work, 'Mail/cur/3.crlf:2,S'));
    put(f.work, 'Mail/new/7.new', 'Subject: seven\n\nseven\n');
    const s = start(f, ['laptop', 'Mail']);
    const dbSha = sha1(readFileSync(clientDb));
    const [, d] = await handshake(s, dbSha);
    t.equal(d, `dbfile ${dbSha} -`);
    const diff = await diffLines(s);
    t.ok(diff.some((l) => l.startsWith('ADD Mail/cur/1.one:2,RS ')), 'the message the client could not get last time is new to it');
    t.ok(diff.some((l) => l.startsWith(`MOVE ${CRLF_NAME} `)), 'MOVE of the CRLF message');
    t.ok(diff.some((l) => l.startsWith('ADD Mail/new/7.new ')), 'ADD of the new one');
    await s.w.line('GET Mail/cur/1.one:2,S');
    await s.w.line('GET Mail/new/7.new');
    await s.w.line('COMMIT');
    await s.w.flush();
    t.equal(await reply(s), 'ABORT', 'the old name is not a message of this scan any more');
    t.same(await reply(s), B('Subject: seven\n\nseven\n'));
    const patch = await s.r.readChunk();
    applyDbPatch(clientDb, patch, clientDb);
    t.ok(readFileSync(clientDb).equals(readFileSync(`${f.db}.new`)), 'client db follows');
    await s.w.line('DONE');
    await s.w.end();
    t.equal((await s.exit).code, 0);
    t.ok(readFileSync(f.db).equals(readFileSync(clientDb)), 'both db-files agree');
  });
});

t.test('a big message that shrinks while being sent: connection closed', async (t) => {
  const f = fixture({ [BIG_NAME]: BIG });
  const s = start(f, ['laptop', 'Mail']);
  await handshake(s);
  await diffLines(s);
  await s.w.line(`GET ${BIG_NAME}`);
  await s.w.flush();
  const size = await s.r.readChunkHeader();
  t.equal(size, BIG.length, 'announced the size of the file');
  // The server blocks on the full pipe; shrink the file meanwhile.
  await new Promise((res) => setTimeout(res, 300));
  writeFileSync(join(f.work, BIG_NAME), 'Subject: big\n\nshort\n');
  let got = 0;
  try {
    for await (const p of s.r.readBytes(size)) got += p.length;
    t.fail('the whole announced size arrived');
  } catch (e) {
    t.ok(e instanceof ProtocolError && e.kind === 'eof', `EOF inside the chunk after ${got} bytes`);
  }
  const { code, stderr } = await s.exit;
  t.equal(code, 7);
  t.match(stderr, /shrank/);
  t.match(stderr, /TAGS: error::context\(transmit\) probable-cause\(simultaneous-mailbox-edit\) human-intervention\(avoidable\) suggested-actions\(retry\)/);
});

t.test('endings: ABORT, EOF, garbage, mismatches', async (t) => {
  t.test('ABORT -> .new removed, exit 5', async (t) => {
    const f = fixture({ 'Mail/cur/1:2,S': MSG1 });
    const s = start(f, ['laptop', 'Mail']);
    await handshake(s);
    await diffLines(s);
    t.ok(existsSync(`${f.db}.new`), 'scan wrote db.new');
    await s.w.line('ABORT');
    await s.w.end();
    const { code, stderr } = await s.exit;
    t.equal(code, 5);
    t.notOk(existsSync(`${f.db}.new`));
    t.notOk(existsSync(`${f.db}.mtime.new`));
    t.match(stderr, `Client aborted, removing ${f.db}.new and ${f.db}.mtime.new`);
  });

  t.test('ABORT after COMMIT -> exit 5', async (t) => {
    const f = fixture({ 'Mail/cur/1:2,S': MSG1 });
    const s = start(f, ['laptop', 'Mail']);
    await handshake(s);
    await diffLines(s);
    await s.w.line('COMMIT');
    await s.w.flush();
    await s.r.readChunk();
    await s.w.line('ABORT');
    await s.w.end();
    t.equal((await s.exit).code, 5);
    t.notOk(existsSync(`${f.db}.new`));
    t.equal(readFileSync(f.db, 'latin1'), '', 'db untouched');
  });

  t.test('EOF -> exit 3, .new files kept', async (t) => {
    const f = fixture({ 'Mail/cur/1:2,S': MSG1 });
    const s = start(f, ['laptop', 'Mail']);
    await handshake(s);
    await diffLines(s);
    await s.w.end();
    const { code, stderr } = await s.exit;
    t.equal(code, 3);
    t.match(stderr, /Communication with client died unexpectedly/);
    t.match(stderr, /TAGS: error::context\(communication\) probable-cause\(network\) human-intervention\(avoidable\) suggested-actions\(retry\)/);
    t.ok(existsSync(`${f.db}.new`), 'the next run overwrites it');
  });

  t.test('EOF in the handshake -> exit 7, network TAGS', async (t) => {
    const f = fixture({});
    const s = start(f, ['laptop', 'Mail']);
    await s.w.end();
    const { code, stderr } = await s.exit;
    t.equal(code, 7);
    t.match(stderr, /TAGS: error::context\(handshake\) probable-cause\(network\)/);
  });

  t.test('garbage line -> exit 6', async (t) => {
    const f = fixture({ 'Mail/cur/1:2,S': MSG1 });
    const s = start(f, ['laptop', 'Mail']);
    await handshake(s);
    await diffLines(s);
    await s.w.line('GET Mail/cur/1:2,S');
    await s.w.line('RM -rf /');
    await s.w.flush();
    t.same(await reply(s), B(MSG1), 'requests before the garbage are answered');
    const { code, stderr } = await s.exit;
    t.equal(code, 6);
    t.match(stderr, /Invalid command/);
  });

  t.test('protocol mismatch -> exit 7 with TAGS', async (t) => {
    const f = fixture({ 'Mail/cur/1:2,S': MSG1 });
    const s = start(f, ['laptop', 'Mail']);
    await s.w.line('protocol 1.3');
    await s.w.line(`dbfile ${EMPTY} -`);
    await s.w.flush();
    const { code, stderr } = await s.exit;
    t.equal(code, 7);
    t.match(stderr, /TAGS: error::context\(handshake\) probable-cause\(protocol-mismatch\) human-intervention\(necessary\)/);
    t.match(stderr, /upstream syncmaildir/);
    t.notOk(existsSync(`${f.db}.new`), 'no scan ran');
  });

  t.test('db mismatch -> exit 7 with TAGS and the rm action', async (t) => {
    const f = fixture({ 'Mail/cur/1:2,S': MSG1 });
    const s = start(f, ['laptop', 'Mail']);
    await handshake(s, 'a'.repeat(40), 'b'.repeat(40));
    const { code, stderr } = await s.exit;
    t.equal(code, 7);
    t.match(stderr, /TAGS: error::context\(handshake\) probable-cause\(db-mismatch\) human-intervention\(necessary\) suggested-actions\(run\(rm "/);
    t.match(stderr, f.db);
  });

  t.test('COMMIT after an ERROR diff -> ABORT reply, exit 4', async (t) => {
    const f = fixture({});
    const s = start(f, ['laptop', 'Mail', 'Missing']);
    await handshake(s);
    const diff = await diffLines(s);
    t.ok(diff.length > 0 && diff[diff.length - 1].startsWith('ERROR '), `ERROR line last (${JSON.stringify(diff)})`);
    await s.w.line('COMMIT');
    await s.w.flush();
    t.equal(await reply(s), 'ABORT');
    t.equal((await s.exit).code, 4);
  });
});

t.test('adopt-new recovery', async (t) => {
  // The client committed the last sync (its db = our db.new) but we crashed before renaming.
  const f = fixture({ 'Mail/cur/1:2,S': MSG1 });
  const s0 = start(f, ['laptop', 'Mail']);
  await handshake(s0);
  await diffLines(s0);
  await s0.w.line('COMMIT');
  await s0.w.flush();
  const patch = await s0.r.readChunk();
  s0.child.kill('SIGKILL'); // crash before DONE
  await s0.exit;
  const newDb = readFileSync(`${f.db}.new`);
  const newMtime = readFileSync(`${f.db}.mtime.new`, 'latin1');
  const clientDb = join(f.home, 'client.db');
  writeFileSync(clientDb, '');
  applyDbPatch(clientDb, patch, clientDb);

  const s = start(f, ['-v', 'laptop', 'Mail']);
  const [, d] = await handshake(s, sha1(readFileSync(clientDb)));
  t.equal(d, `dbfile ${EMPTY} ${sha1(newDb)}`, 'server announces its db.new');
  const diff = await diffLines(s);
  t.same(diff, [], 'after adopting db.new there is nothing to send');
  t.ok(readFileSync(f.db).equals(newDb), 'db.new became db');
  t.equal(readFileSync(`${f.db}.mtime`, 'latin1'), newMtime, 'mtime.new became mtime');
  await s.w.line('COMMIT');
  await s.w.flush();
  const p2 = await s.r.readChunk();
  applyDbPatch(clientDb, p2, clientDb);
  await s.w.line('DONE');
  await s.w.end();
  t.equal((await s.exit).code, 0);
  t.ok(readFileSync(f.db).equals(readFileSync(clientDb)));
});

t.test('options', async (t) => {
  t.test('--dry-run: empty patch, nothing written', async (t) => {
    const f = fixture({ 'Mail/cur/1:2,S': MSG1 });
    const s = start(f, ['-d', 'laptop', 'Mail']);
    const [, d] = await handshake(s);
    t.equal(d, `dbfile ${EMPTY} -`);
    t.equal((await diffLines(s)).length, 1);
    await s.w.line('GET Mail/cur/1:2,S');
    await s.w.line('COMMIT');
    await s.w.flush();
    t.same(await reply(s), B(MSG1));
    t.equal((await s.r.readChunk()).length, 0, 'empty patch');
    await s.w.line('DONE');
    await s.w.end();
    const { code, stderr } = await s.exit;
    t.equal(code, 0);
    t.match(stderr, /PROGRESS:/, '-d implies -v');
    t.same(readdirSync(join(f.home, '.smd')), [], 'no db-file, no .new files');
  });

  t.test('--stop-after-diff, with --override-db', async (t) => {
    const f = fixture({ 'Mail/cur/1:2,S': MSG1 });
    const over = join(f.home, '.smd', 'rename-db');
    writeFileSync(over, '');
    writeFileSync(`${over}.mtime`, '12');
    const s = start(f, ['--stop-after-diff', '--override-db', '~/.smd/rename-db', 'laptop', 'Mail']);
    await handshake(s);
    t.equal((await diffLines(s)).length, 1);
    const { code } = await s.exit;
    t.equal(code, 0, 'exit 0 right after END');
    for (const x of ['', '.mtime', '.new', '.mtime.new']) t.notOk(existsSync(`${over}${x}`), `rename-db${x} removed`);
    t.notOk(existsSync(f.db), 'the normal db-file is not used');

    const s2 = start(f, ['--stop-after-diff', 'laptop', 'Mail']);
    await handshake(s2);
    await diffLines(s2);
    t.equal((await s2.exit).code, 0);
    t.ok(existsSync(`${f.db}.new`), 'without --override-db the files stay');
  });

  t.test('--exclude, -n, mailbox %-decoding', async (t) => {
    const f = fixture({ 'Mail/cur/1:2,S': MSG1 });
    for (const d of ['cur', 'new', 'tmp']) {
      mkdirSync(join(f.work, 'Mail', '.Spam', d), { recursive: true });
      mkdirSync(join(f.work, 'My Box', d), { recursive: true });
    }
    put(f.work, 'Mail/.Spam/cur/9:2,S', 'Subject: spam\n\nspam\n');
    put(f.work, 'My Box/cur/8:2,S', 'Subject: box\n\nbox\n');
    const s = start(f, ['--exclude', 'Mail/.Sp%61m', 'laptop', 'Mail', 'My%20Box']);
    await handshake(s);
    const diff = await diffLines(s);
    t.same(diff.map((l) => l.split(' ')[1]).sort(), ['Mail/cur/1:2,S', 'My%20Box/cur/8:2,S'], 'excluded folder skipped, second root decoded');
    await s.w.line('GET My Box/cur/8:2,S');
    await s.w.line('ABORT');
    await s.w.flush();
    t.same(await reply(s), B('Subject: box\n\nbox\n'));
    t.equal((await s.exit).code, 5);
    t.ok(existsSync(join(f.home, '.smd', 'laptop__Mail__My_20Box.db.txt')), 'db-file name from the raw (encoded) arguments, % -> _');
  });

  t.test('--dump-stdin', async (t) => {
    const f = fixture({});
    mkdirSync(join(f.home, '.ssh'));
    writeFileSync(join(f.home, '.ssh', 'authorized_keys'), 'ssh-ed25519 AAAA me\n');
    for (const target of ['~/.ssh/authorized_keys', '~/.smd/../.ssh/authorized_keys', '/tmp/smd-dump-test', '~/.smd']) {
      const s = start(f, ['--dump-stdin', target, 'x', 'y']);
      s.child.stdin!.end('evil\n');
      const { code, stderr } = await s.exit;
      t.equal(code, 2, `${target} refused`);
      t.match(stderr, /only writes files under/);
    }
    symlinkSync(join(f.home, '.ssh'), join(f.home, '.smd', 'sshlink'));
    const sl = start(f, ['--dump-stdin', '~/.smd/sshlink/authorized_keys', 'x', 'y']);
    sl.child.stdin!.end('evil\n');
    const r = await sl.exit;
    t.equal(r.code, 2, 'a symlink inside ~/.smd leading outside is refused');
    t.match(r.stderr, /leads outside/);
    t.equal(readFileSync(join(f.home, '.ssh', 'authorized_keys'), 'latin1'), 'ssh-ed25519 AAAA me\n', 'authorized_keys untouched');
    const s = start(f, ['--dump-stdin', '~/.smd/sub/rename-db', 'x', 'y']);
    s.child.stdin!.end('line 1\nline 2\n');
    t.equal((await s.exit).code, 0);
    t.equal(readFileSync(join(f.home, '.smd', 'sub', 'rename-db'), 'latin1'), 'line 1\nline 2\n', 'written, parents created');
  });

  t.test('--get-mddiff-cmdline', async (t) => {
    const f = fixture({});
    const s = start(f, ['--get-mddiff-cmdline', '-n', '--exclude', "Mail/it's", 'laptop', 'Mail'], { keepStdout: true });
    s.child.stdin!.end();
    const { code, stdout } = await s.exit;
    t.equal(code, 0);
    const line = stdout.toString();
    t.match(line, /^mddiff /);
    t.match(line, f.db);
    t.match(line, / -n /);
    t.match(line, /--exclude 'Mail\/it'\\''s'/, 'shell-quoted');
    t.match(line, / Mail\n$/);
  });

  t.test('usage errors exit 2', async (t) => {
    const f = fixture({});
    for (const args of [[], ['laptop'], ['--bogus', 'laptop', 'Mail'], ['--exclude']]) {
      const s = start(f, args);
      s.child.stdin!.end();
      const { code, stderr } = await s.exit;
      t.equal(code, 2, JSON.stringify(args));
      t.match(stderr, /Usage: smd-server/);
    }
    // As upstream: options only while more than two arguments remain.
    const s = start(f, ['laptop', '-v'], {});
    await handshake(s);
    const diff = await diffLines(s);
    t.ok(diff[0]?.startsWith('ERROR '), '"-v" in last position is a mailbox');
    await s.w.line('ABORT');
    await s.w.end();
    await s.exit;
  });
});
