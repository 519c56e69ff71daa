/**
 * smd-client end to end: the real bin/smd-client (HOME = a temp dir, run in
 * it) against a scripted fake server (helpers/fake-server.ts).
 */
import t from 'tap';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { runAgainst, addLine, hashes, sha1, EMPTY, CLIENT, type Script, type Result } from './helpers/fake-server.js';

function home(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'smd-client-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** path → sha1 of contents (or `dir`, `-> link`) of every entry under `dir`. */
function tree(dir: string, rel = ''): Record<string, string> {
  const out: Record<string, string> = {};
  // A missing top directory throws (readdirSync): two missing trees must not compare equal.
  for (const e of readdirSync(join(dir, rel))) {
    const r = rel ? `${rel}/${e}` : e;
    const st = lstatSync(join(dir, r));
    if (st.isSymbolicLink()) out[r] = `-> ${readlinkSync(join(dir, r))}`;
    else if (st.isDirectory()) { out[r] = 'dir'; Object.assign(out, tree(dir, r)); } else out[r] = sha1(readFileSync(join(dir, r)));
  }
  return out;
}

function put(h: string, name: string, data: string): void {
  mkdirSync(join(h, name, '..'), { recursive: true });
  writeFileSync(join(h, name), Buffer.from(data, 'latin1'));
}
const read = (h: string, name: string): string => readFileSync(join(h, name), 'latin1');
const tmpFiles = (h: string): string[] => Object.keys(tree(h)).filter((p) => /(^|\/)tmp\/./.test(p));
const run = (h: string, script: Script, args: string[] = ['laptop', 'Mail'], extra: { cwd?: string } = {}): Promise<Result> =>
  runAgainst({ home: h, args, script, ...extra });
const DB = (h: string): string => join(h, '.smd', 'laptop__Mail.db.txt');
const dbLine = (name: string, data: string): string => { const x = hashes(data); return `${x.h} ${x.b} ${name}\n`; };

const A = 'Subject: a\nFrom: x@y\n\nbody a\n';
const B = 'Subject: b\n\nbody b\n';
const C = 'Subject: c\n\nbody c, no final newline';

t.test('first sync: ADDs fetched, verified, placed; db patched; no temp files', async (t) => {
  const h = home(t);
  const files = new Map<string, string>([
    ['Mail/cur/1.a:2,S', A], ['Mail/new/2.b', B], ['Mail/.Foo Bar/cur/3 c', C], ['Mail/.Foo Bar/cur/50%', B],
  ]);
  const diff = [...files].map(([n, d]) => addLine(n, d));
  const newDb = [...files].map(([n, d]) => dbLine(n, d)).join('');
  const r = await run(h, { diff, files, commit: { old: '', new: newDb } }, ['-v', 'laptop', 'Mail']);
  t.equal(r.status, 0, r.stderr);
  t.same(r.handshake, ['protocol 1.3+fastdiff', `dbfile ${EMPTY} -`], 'handshake with the empty db-file');
  for (const [n, d] of files) t.equal(read(h, n), d, `${n} in place`);
  t.same(r.requests.filter((q) => q.startsWith('GET ')).sort(), [...files.keys()].map((n) => `GET ${n}`).sort(), 'raw names in GET');
  t.equal(read(h, '.smd/laptop__Mail.db.txt'), newDb, 'db-file patched');
  t.notOk(existsSync(`${DB(h)}.new`));
  t.same(tmpFiles(h), [], 'tmp/ is empty');
  t.ok(existsSync(join(h, 'Mail/.Foo Bar/tmp')) && existsSync(join(h, 'Mail/.Foo Bar/new')), 'whole Maildir folder created');
  t.equal(lstatSync(join(h, 'Mail/cur')).mode & 0o777, 0o700, 'folders 0700');
  const bytes = [...files.values()].reduce((s, d) => s + d.length, 0);
  t.match(r.stderr, new RegExp(`TAGS: stats::new-mails\\(4\\), del-mails\\(0\\), bytes-received\\(${bytes}\\), xdelta-received\\(\\d+\\)`));
  t.match(r.stderr, /PROGRESS: Phase 0: handshake/);
  t.match(r.stderr, /PROGRESS: transfer 4\/4 messages/);
  t.same(r.events.slice(-3), ['sent patch', 'recv DONE', 'DONE']);

  // Second run: the db-file is the new one; a crash after the server's rename is recovered (adopt .new).
  writeFileSync(`${DB(h)}.new`, 'other\n');
  const r2 = await run(h, { db: sha1('other\n'), diff: [], commit: { old: 'other\n', new: 'other\n' } });
  t.equal(r2.status, 0, `adopt-new: ${r2.stderr}`);
  t.equal(read(h, '.smd/laptop__Mail.db.txt'), 'other\n', '.new renamed over the db-file');
});

t.test('every command applied; header merges keep the body bytes exactly (B2)', async (t) => {
  const h = home(t);
  const A2 = 'Subject: a (edited)\nFrom: x@y\n\nbody a\n';
  const C2 = 'Subject: c\nX-Flag: 1\n\nbody c, no final newline';
  const D = 'Subject: d\n\nbody d\n';
  const D2 = 'Subject: d\n\nbody d, replaced\n';
  const E = 'Subject: e\n\nbody c, no final newline';
  put(h, 'Mail/cur/a', A);
  put(h, 'Mail/cur/c', C);
  put(h, 'Mail/cur/d', D);
  put(h, 'Mail/cur/m', B);
  put(h, 'Mail/cur/del', B + 'x');
  put(h, 'Mail/cur/empty', '');
  const x = (d: string) => hashes(d);
  const diff = [
    `COPY Mail/cur/a ${x(A).h} ${x(A).b} TO Mail/.Other/cur/a-copy`,
    `MOVE Mail/cur/m ${x(B).h} ${x(B).b} TO Mail/new/m-moved`,
    `REPLACEHEADER Mail/cur/a ${x(A).h} ${x(A).b} WITH ${x(A2).h}`,
    `REPLACEHEADER Mail/cur/c ${x(C).h} ${x(C).b} WITH ${x(C2).h}`,
    `COPYBODY Mail/cur/c ${x(C).b} TO Mail/cur/e ${x(E).h}`,
    `REPLACE Mail/cur/d ${x(D).h} ${x(D).b} WITH ${x(D2).h} ${x(D2).b}`,
    `DELETE Mail/cur/del ${x(B + 'x').h} ${x(B + 'x').b}`,
    addLine('Mail/cur/empty', B),
  ];
  const files = new Map([['Mail/cur/a', A2], ['Mail/cur/c', C2], ['Mail/cur/e', E], ['Mail/cur/d', D2], ['Mail/cur/empty', B]]);
  const r = await run(h, { diff, files });
  t.equal(r.status, 0, r.stderr);
  t.equal(read(h, 'Mail/.Other/cur/a-copy'), A, 'COPY done locally');
  t.equal(read(h, 'Mail/new/m-moved'), B, 'MOVE renamed');
  t.notOk(existsSync(join(h, 'Mail/cur/m')));
  t.equal(read(h, 'Mail/cur/a'), A2, 'REPLACEHEADER merged');
  t.equal(read(h, 'Mail/cur/c'), C2, 'REPLACEHEADER: body without final newline kept exactly');
  t.equal(read(h, 'Mail/cur/e'), E, 'COPYBODY: new header + local body');
  t.equal(read(h, 'Mail/cur/d'), D2, 'REPLACE fetched over the old version');
  t.notOk(existsSync(join(h, 'Mail/cur/del')), 'DELETE');
  t.equal(read(h, 'Mail/cur/empty'), B, 'an empty file counts as absent and is replaced');
  t.same(r.requests.filter((q) => q !== 'COMMIT' && q !== 'DONE').sort(),
    ['GET Mail/cur/d', 'GET Mail/cur/empty', 'GETHEADER Mail/cur/a', 'GETHEADER Mail/cur/c', 'GETHEADER Mail/cur/e'], 'only what is needed is fetched');
  t.match(r.stderr, /new-mails\(2\), del-mails\(1\)/);
  t.same(tmpFiles(h), []);
});

t.test('already-done commands need nothing', async (t) => {
  const h = home(t);
  put(h, 'Mail/cur/a', A);
  put(h, 'Mail/cur/b', B);
  const x = (d: string) => hashes(d);
  const before = tree(h);
  const diff = [
    addLine('Mail/cur/a', A),
    `DELETE Mail/cur/gone ${x(A).h} ${x(A).b}`,
    `COPY Mail/cur/a ${x(A).h} ${x(A).b} TO Mail/cur/a`,
    `COPY Mail/cur/zz ${x(A).h} ${x(A).b} TO Mail/cur/a`,
    `MOVE Mail/cur/zz ${x(B).h} ${x(B).b} TO Mail/cur/b`,
    `REPLACEHEADER Mail/cur/a ${x(B).h} ${x(A).b} WITH ${x(A).h}`,
    `COPYBODY Mail/cur/b ${x(A).b} TO Mail/cur/a ${x(A).h}`,
    `REPLACE Mail/cur/b ${x(A).h} ${x(A).b} WITH ${x(B).h} ${x(B).b}`,
  ];
  const r = await run(h, { diff });
  t.equal(r.status, 0, r.stderr);
  t.same(r.requests, ['COMMIT', 'DONE'], 'no request at all');
  t.same(tree(h), { ...before, '.smd': 'dir', '.smd/laptop__Mail.db.txt': sha1('') }, 'nothing changed');
  // MOVE with both present and S unchanged: S deleted.
  const r2 = await run(h, { diff: [`MOVE Mail/cur/b ${x(B).h} ${x(B).b} TO Mail/cur/b2`] });
  t.equal(r2.status, 0);
  put(h, 'Mail/cur/b', B);
  const r3 = await run(h, { diff: [`MOVE Mail/cur/b ${x(B).h} ${x(B).b} TO Mail/cur/b2`] });
  t.equal(r3.status, 0);
  t.notOk(existsSync(join(h, 'Mail/cur/b')), 'both exist → source deleted');
  t.equal(read(h, 'Mail/cur/b2'), B);
});

t.test('conflicts: ABORT, exit 3, TAGS, local files untouched', async (t) => {
  const x = (d: string) => hashes(d);
  const cases: Array<[string, string, string]> = [
    [addLine('Mail/cur/a', B), 'mail-addition', 'run(mv -n'],
    [`DELETE Mail/cur/a ${x(B).h} ${x(B).b}`, 'delete-message', 'run(@@INVERSECOMMAND@@ @@ENDPOINT@@)'],
    [`COPY Mail/cur/b ${x(B).h} ${x(B).b} TO Mail/cur/a`, 'copy-message', 'display-mail'],
    [`MOVE Mail/cur/b ${x(B).h} ${x(B).b} TO Mail/cur/a`, 'move-message', 'display-mail'],
    [`MOVE Mail/cur/zz ${x(B).h} ${x(B).b} TO Mail/cur/a`, 'copy-message', 'display-mail'],
    [`REPLACEHEADER Mail/cur/a ${x(B).h} ${x(B).b} WITH ${x(C).h}`, 'header-replacement', 'display-mail'],
    [`COPYBODY Mail/cur/b ${x(B).b} TO Mail/cur/a ${x(C).h}`, 'copy-body', 'display-mail'],
    [`REPLACE Mail/cur/a ${x(B).h} ${x(B).b} WITH ${x(C).h} ${x(C).b}`, 'replace', 'display-mail'],
  ];
  await Promise.all(cases.map(async ([line, context, action]) => {
    const h = home(t);
    put(h, 'Mail/cur/a', A);
    put(h, 'Mail/cur/b', B);
    const before = tree(h);
    const r = await run(h, { diff: [addLine('Mail/cur/first', C), line], files: new Map([['Mail/cur/first', C]]) });
    t.equal(r.status, 3, `${context}: exit 3`);
    t.match(r.stderr, new RegExp(`TAGS: error::context\\(${context}\\) probable-cause\\(concurrent-mailbox-edit\\) human-intervention\\(necessary\\) suggested-actions\\(.*${action.replace(/[()@]/g, '\\$&')}`), context);
    t.match(r.stderr, /^ERROR: /m);
    t.ok(r.requests.includes('ABORT'), `${context}: ABORT sent`);
    t.notOk(r.requests.includes('COMMIT'));
    for (const k of Object.keys(before)) t.equal(tree(h)[k], before[k], `${context}: ${k} untouched`);
    t.same(tmpFiles(h), [], `${context}: no temp file`);
  }));
});

t.test('partial files of a dead client are removed, also when it is an unreaped zombie; a live one keeps its own', async (t) => {
  const h = home(t);
  // The short sleep exits after its shell has become `sleep 30` (exec), which never reaps it: a zombie.
  const parent = spawn('sh', ['-c', 'sleep 0.3 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => { parent.kill('SIGKILL'); });
  const zombie = Number(await new Promise<string>((r) => parent.stdout!.once('data', (d: Buffer) => r(d.toString()))));
  for (let i = 0; i < 100 && !/\) Z/.test(readFileSync(`/proc/${zombie}/stat`, 'latin1')); i++) await new Promise((r) => setTimeout(r, 50));
  t.match(readFileSync(`/proc/${zombie}/stat`, 'latin1'), /\) Z /, 'the zombie exists');
  const dead = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim();
  const parts = {
    zombie: `Mail/cur/../tmp/1700000000.P${zombie}Q1Rabcd1234.smd-part`,
    dead: `Mail/tmp/1700000000.P${dead}Q7Rabcd1234.smd-part`,
    live: `Mail/tmp/1700000000.P${parent.pid}Q1Rabcd1234.smd-part`,
    other: 'Mail/tmp/1700000000.P1Q1Rnot-ours',
  };
  for (const p of Object.values(parts)) put(h, p, 'partial');
  const r = await run(h, { diff: [addLine('Mail/cur/1', A)], files: new Map([['Mail/cur/1', A]]), commit: { old: '', new: dbLine('Mail/cur/1', A) } });
  t.equal(r.status, 0, r.stderr);
  t.notOk(existsSync(join(h, parts.zombie)), 'the file of the zombie is removed');
  t.notOk(existsSync(join(h, parts.dead)), 'the file of the dead process is removed');
  t.ok(existsSync(join(h, parts.live)), 'a running process keeps its file');
  t.ok(existsSync(join(h, parts.other)), 'a file that is not ours stays');
});

t.test('ERROR from mddiff', async (t) => {
  const h = home(t);
  let r = await run(h, { diff: ['ERROR Unable to open directory Mail/cur: No such file'] });
  t.equal(r.status, 3);
  t.match(r.stderr, /ERROR: mddiff failed: Unable to open directory/);
  t.match(r.stderr, /TAGS: error::context\(mddiff\) probable-cause\(directory-disappeared\) human-intervention\(avoidable\) /);
  t.ok(r.requests.includes('ABORT'));
  r = await run(h, { diff: ['ERROR out of memory'] });
  t.equal(r.status, 3);
  t.match(r.stderr, /context\(mddiff\) probable-cause\(unknown\) human-intervention\(necessary\)/);
});

t.test('dry run: no change at all, no GET, no GETHEADER', async (t) => {
  const h = home(t);
  put(h, 'Mail/cur/a', A);
  put(h, 'Mail/cur/m', B);
  put(h, 'Mail/cur/d', C);
  const x = (d: string) => hashes(d);
  const before = tree(h);
  const files = new Map([['Mail/new/n1', B], ['Mail/.X/cur/n2', C]]);
  const diff = [
    ...[...files].map(([n, d]) => addLine(n, d)),
    `MOVE Mail/cur/m ${x(B).h} ${x(B).b} TO Mail/cur/m2`,
    `REPLACEHEADER Mail/cur/a ${x(A).h} ${x(A).b} WITH ${x(C).h}`,
    `DELETE Mail/cur/d ${x(C).h} ${x(C).b}`,
  ];
  const r = await run(h, { diff, files, commit: { raw: Buffer.alloc(0) } }, ['-d', 'laptop', 'Mail']);
  t.equal(r.status, 0, r.stderr);
  t.same(r.requests, ['COMMIT', 'DONE'], 'only COMMIT and DONE');
  t.same(tree(h), before, 'no file created, renamed or deleted (not even ~/.smd)');
  t.match(r.stderr, /TAGS: stats::mail-transferred\(2 messages\)/, 'a count, not the names');
  const journal = r.stderr.split('\n').filter((l) => l.startsWith('JOURNAL: ')).map((l) => JSON.parse(l.slice(9)) as { action: string; path: string; dryRun?: boolean });
  t.same(journal.map((e) => [e.action, e.path, e.dryRun]).sort(), [
    ['deleted', 'Mail/cur/d', true], ['moved', 'Mail/cur/m2', true], ['header', 'Mail/cur/a', true],
    ['new', 'Mail/.X/cur/n2', true], ['new', 'Mail/new/n1', true]].sort(), 'what would be done, one JOURNAL line each');
  t.match(r.stderr, /INFO: MOVE Mail\/cur\/m → Mail\/cur\/m2: rename/);
  t.match(r.stderr, /del-mails\(1\)/);
});

t.test('hostile or broken server: refused, nothing written', async (t) => {
  const tag = Math.random().toString(36).slice(2);
  const hostile = [`../x${tag}/cur/a`, `/tmp/abs${tag}/cur/a`, `Mail/cur/../../x${tag}`, 'Other/cur/a', 'Mail/tmp/a', 'Mail/a',
    'Mail/cur/a%00b', `Mail/.x/../../y${tag}/cur/a`];
  await Promise.all(hostile.map(async (name) => {
    const h = home(t);
    mkdirSync(join(h, '.smd'));
    writeFileSync(DB(h), '');
    const before = tree(join(h, '..'), h.split('/').pop());
    const r = await run(h, { diff: [`ADD ${name} ${EMPTY} ${EMPTY}`], files: new Map([[name, A]]) }, ['laptop', 'Mail']);
    t.equal(r.status, 6, `${name}: exit 6`);
    t.match(r.stderr, /TAGS: error::context\(receive-delta\) probable-cause\(hostile-or-broken-server\) human-intervention\(necessary\)/);
    t.ok(r.requests.includes('ABORT'), `${name}: ABORT`);
    t.notOk(r.requests.some((q) => q.startsWith('GET')), `${name}: nothing fetched`);
    t.same(tree(join(h, '..'), h.split('/').pop()), before, `${name}: nothing written`);
    t.notOk(existsSync(`/tmp/abs${tag}`) || existsSync(join(h, '..', `x${tag}`)) || existsSync(join(h, '..', `y${tag}`)));
  }));
  const h = home(t);
  let r = await run(h, { diff: ['FROB Mail/cur/a'] });
  t.equal(r.status, 6, 'malformed diff line');
  t.match(r.stderr, /malformed diff line/);
  t.ok(r.requests.includes('ABORT'));
  r = await run(h, { diff: [addLine('Mail/cur/a', A)], end: false });
  t.equal(r.status, 6, 'EOF before END');
  t.match(r.stderr, /context\(receive-delta\) probable-cause\(network\) human-intervention\(avoidable\) suggested-actions\(retry\)/);
  r = await runAgainst({ home: h, args: ['laptop', '/abs/Mail'], script: { diff: [] } });
  t.equal(r.status, 6, 'absolute mailbox');
  t.match(r.stderr, /context\(main\) probable-cause\(mailbox-has--absolute-path\)/);
});

t.test('lying replies: exit 1, ABORT, no partial file visible', async (t) => {
  const files = new Map([['Mail/cur/ok', B], ['Mail/cur/bad', A]]);
  const diff = [addLine('Mail/cur/ok', B), addLine('Mail/cur/bad', A)];
  const lies: Array<[string, Script['lie'], RegExp]> = [
    ['short chunk then EOF', (q) => (q === 'GET Mail/cur/bad' ? { kind: 'short', announced: 1000, data: Buffer.from(A) } : undefined), /context\(receive\) probable-cause\(network\)/],
    ['oversize chunk', (q) => (q === 'GET Mail/cur/bad' ? { kind: 'line', line: 'chunk 2147483648' } : undefined), /context\(receive\) probable-cause\(hostile-or-broken-server\)/],
    ['malformed reply', (q) => (q === 'GET Mail/cur/bad' ? { kind: 'line', line: 'chunk -1' } : undefined), /hostile-or-broken-server/],
    ['EOF instead of reply', (q) => (q === 'GET Mail/cur/bad' ? { kind: 'eof' } : undefined), /probable-cause\(network\)/],
  ];
  await Promise.all(lies.map(async ([what, lie, tags]) => {
    const h = home(t);
    const r = await run(h, { diff, files, lie });
    t.equal(r.status, 1, `${what}: exit 1`);
    t.match(r.stderr, tags, what);
    t.notOk(existsSync(join(h, 'Mail/cur/bad')), `${what}: bad message not visible`);
    t.same(tmpFiles(h), [], `${what}: temp file removed`);
    t.notOk(r.requests.includes('COMMIT'), `${what}: no COMMIT`);
    t.notMatch(r.stderr, /Internal error|\n\s+at /, `${what}: no stack trace`);
  }));
});

t.test('a message the server cannot send or sends changed: skipped (SKIP), the run goes on and commits', async (t) => {
  const files = new Map([['Mail/cur/ok', B], ['Mail/cur/bad', A]]);
  const diff = [addLine('Mail/cur/bad', A), addLine('Mail/cur/ok', B)];
  const cases: Array<[string, Script['lie'], RegExp]> = [
    ['wrong content', (q) => (q === 'GET Mail/cur/bad' ? { kind: 'data', data: Buffer.from(A + 'x') } : undefined), /sent other content than announced/],
    ['ABORT reply', (q) => (q === 'GET Mail/cur/bad' ? { kind: 'abort' } : undefined), /could not send it/],
  ];
  await Promise.all(cases.map(async ([what, lie, why]) => {
    const h = home(t);
    const r = await run(h, { diff, files, lie });
    t.equal(r.status, 0, `${what}: the run succeeds: ${r.stderr}`);
    t.match(r.stderr, new RegExp(`WARNING: ADD Mail/cur/bad: skipped for this run \\(.*${why.source}`), `${what}: the warning names it and says why`);
    t.match(r.stderr, /TAGS: stats::new-mails\(1\),.*\nTAGS: stats::skipped-mails\(1\)/, `${what}: counted`);
    t.notOk(existsSync(join(h, 'Mail/cur/bad')), `${what}: nothing written for it`);
    t.equal(read(h, 'Mail/cur/ok'), B, `${what}: the rest is applied`);
    t.same(tmpFiles(h), [], `${what}: temp file removed`);
    const skip = r.requests.indexOf('SKIP Mail/cur/bad');
    t.ok(skip >= 0 && skip < r.requests.indexOf('COMMIT'), `${what}: SKIP sent before COMMIT`);
    t.ok(r.events.includes('DONE'), `${what}: committed`);
  }));
  // A changed header for a merge.
  const h = home(t);
  put(h, 'Mail/cur/a', A);
  const x = hashes(A);
  const r = await run(h, { diff: [`REPLACEHEADER Mail/cur/a ${x.h} ${x.b} WITH ${hashes(B).h}`], files: new Map([['Mail/cur/a', 'Subject: other\n\nbody a\n']]) });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /WARNING: REPLACEHEADER Mail\/cur\/a: skipped for this run \(the server sent another header than announced/);
  t.ok(r.requests.includes('SKIP Mail/cur/a'));
  t.equal(read(h, 'Mail/cur/a'), A, 'untouched');
  t.same(tmpFiles(h), []);
});

t.test('handshake failures', async (t) => {
  const h = home(t);
  let r = await run(h, { db: sha1('something else\n'), diff: [addLine('Mail/cur/a', A)], files: new Map([['Mail/cur/a', A]]) });
  t.equal(r.status, 6, 'db mismatch');
  t.match(r.stderr, new RegExp(`context\\(handshake\\) probable-cause\\(db-mismatch\\) human-intervention\\(necessary\\) suggested-actions\\(run\\(rm "${DB(h)}"\\)\\)`));
  t.ok(r.requests.includes('ABORT'), 'ABORT sent (upstream sends none)');
  t.notOk(existsSync(join(h, 'Mail')));
  r = await run(h, { protocol: 'protocol 1.3', diff: [] });
  t.equal(r.status, 6);
  t.match(r.stderr, /probable-cause\(protocol-mismatch\)/);
});

t.test('pipelining: GETs leave before END and before the first reply', async (t) => {
  const h = home(t);
  const files = new Map<string, string>();
  for (let i = 0; i < 200; i++) files.set(`Mail/cur/${i}`, `Subject: ${i}\n\n${'x'.repeat(i)}\n`);
  const r = await run(h, { diff: [...files].map(([n, d]) => addLine(n, d)), files, holdEndForRequestMs: 5000, holdRepliesUntil: 200 });
  t.equal(r.status, 0, r.stderr);
  const end = r.events.indexOf('send END');
  const firstGet = r.events.findIndex((e) => e.startsWith('recv GET'));
  t.ok(firstGet >= 0 && firstGet < end, 'a GET arrived before END was sent');
  const firstReply = r.events.findIndex((e) => e.startsWith('reply'));
  const getsBefore = r.events.slice(0, firstReply).filter((e) => e.startsWith('recv GET')).length;
  t.equal(getsBefore, 200, 'all 200 GETs arrived before the first reply');
  for (const [n, d] of files) if (read(h, n) !== d) t.fail(n);
});

t.test('window: at most maxInFlight requests outstanding is not a batch', async (t) => {
  // 1,500 messages > the 1,000 window: the client must keep requesting as replies arrive.
  const h = home(t);
  const files = new Map<string, string>();
  for (let i = 0; i < 1500; i++) files.set(`Mail/new/${i}`, `Subject: ${i}\n\nb\n`);
  const r = await run(h, { diff: [...files].map(([n, d]) => addLine(n, d)), files });
  t.equal(r.status, 0, r.stderr);
  const firstReply = r.events.findIndex((e) => e.startsWith('reply'));
  const before = r.events.slice(0, firstReply).filter((e) => e.startsWith('recv GET')).length;
  t.ok(before <= 1000, `no more than 1000 GETs before the first reply (${before})`);
  t.equal(readdirSync(join(h, 'Mail/new')).length, 1500);
});

t.test('a 20 MB message is streamed', async (t) => {
  const h = home(t);
  const big = Buffer.concat([Buffer.from('Subject: big\n\n'), Buffer.alloc(20 * 1024 * 1024, 'y'), Buffer.from('\n')]);
  const x = hashes(big);
  const r = await run(h, { diff: [`ADD Mail/cur/big ${x.h} ${x.b}`], files: new Map([['Mail/cur/big', big]]) });
  t.equal(r.status, 0, r.stderr);
  t.equal(sha1(readFileSync(join(h, 'Mail/cur/big'))), sha1(big));
  t.same(tmpFiles(h), []);
});

t.test('SIGKILL mid-transfer: cur/ holds only whole verified messages', async (t) => {
  const h = home(t);
  const files = new Map<string, string>();
  for (let i = 0; i < 400; i++) files.set(`Mail/cur/${i}`, `Subject: ${i}\n\n${String(i).repeat(2000)}\n`);
  const r = await run(h, {
    diff: [...files].map(([n, d]) => addLine(n, d)), files,
    afterReply: (n, child) => { if (n === 150) child.kill('SIGKILL'); },
  });
  t.equal(r.signal, 'SIGKILL');
  const got = readdirSync(join(h, 'Mail/cur'));
  t.ok(got.length > 0 && got.length < 400, `some messages arrived (${got.length})`);
  for (const f of got) if (read(h, `Mail/cur/${f}`) !== files.get(`Mail/cur/${f}`)) t.fail(`partial ${f}`);
  t.notOk(existsSync(`${DB(h)}.new`));
  t.equal(read(h, '.smd/laptop__Mail.db.txt'), '', 'db-file unchanged');
});

t.test('translator mode (-t): files under $HOME, nothing written in the workarea', async (t) => {
  const h = home(t);
  const wa = join(h, '.smd', 'workarea');
  mkdirSync(wa, { recursive: true });
  const files = new Map([['Mail/cur/a', A], ['Mail/.Sub/new/b', B]]);
  let r = await run(h, { diff: [...files].map(([n, d]) => addLine(n, d)), files }, ['-t', 'cat', 'laptop', 'Mail'], { cwd: wa });
  t.equal(r.status, 0, r.stderr);
  t.equal(read(h, 'Mail/cur/a'), A);
  t.equal(read(h, 'Mail/.Sub/new/b'), B);
  t.same(readdirSync(wa), [], 'the workarea is left alone (upstream wrote symlinks there; we write through $HOME directly)');
  // A real translator: Mail/.Sub/x → Local/Sub/x
  const files2 = new Map([['Mail/.Sub/cur/c', C]]);
  r = await run(h, { db: sha1(''), diff: [...files2].map(([n, d]) => addLine(n, d)), files: files2 },
    ['-t', "sed -u 's#^Mail/.Sub#Local/Sub#'", 'laptop', 'Mail'], { cwd: wa });
  t.equal(r.status, 0, r.stderr);
  t.equal(read(h, 'Local/Sub/cur/c'), C);
  // A translator answering ERROR.
  r = await run(h, { diff: [addLine('Mail/.Z/cur/d', C)], files: new Map([['Mail/.Z/cur/d', C]]) },
    ['-t', 'while read l; do echo ERROR; done', 'laptop', 'Mail'], { cwd: wa });
  t.equal(r.status, 6);
  t.match(r.stderr, /context\(translate\) probable-cause\(bad-translator\)/);
  r = await run(h, { diff: [addLine('Mail/.Z/cur/d', C)], files: new Map([['Mail/.Z/cur/d', C]]) },
    ['-t', "sed -u 's#^#../#'", 'laptop', 'Mail'], { cwd: wa });
  t.equal(r.status, 6, '.. in a translation refused');
});

t.test('-l, db patch failure, --rename-only, --override-db, usage', async (t) => {
  const h = home(t);
  const files = new Map([['Mail/cur/a', A]]);
  let r = await run(h, { diff: [addLine('Mail/cur/a', A)], files, commit: { raw: Buffer.from('garbage') } }, ['-l', 'laptop', 'Mail']);
  t.equal(r.status, 0, `-l skips the patch: ${r.stderr}`);
  t.equal(read(h, '.smd/laptop__Mail.db.txt'), '');
  r = await run(h, { diff: [], commit: { raw: Buffer.from('garbage') } });
  t.equal(r.status, 4, 'bad patch → exit 4');
  t.ok(r.requests.includes('ABORT'));
  t.equal(read(h, '.smd/laptop__Mail.db.txt'), '', 'db-file unchanged');

  const x = hashes(A);
  r = await run(h, { diff: [`COPY Mail/cur/a ${x.h} ${x.b} TO Mail/cur/a2`, `DELETE Mail/cur/a ${x.h} ${x.b}`] }, ['--rename-only', 'laptop', 'Mail']);
  t.equal(r.status, 0, r.stderr);
  t.equal(read(h, 'smd-rename.sh'), `#!/bin/sh\nmv '${h}/Mail/cur/a' '${h}/Mail/cur/a2'\n`);
  t.ok(existsSync(join(h, 'Mail/cur/a')), 'nothing renamed by the client itself');

  r = await run(h, { diff: [] }, ['--override-db', '~/other.db', 'laptop', 'Mail']);
  t.equal(r.status, 0, r.stderr);
  t.ok(existsSync(join(h, 'other.db')), '--override-db with ~');

  const u = spawnSync(process.execPath, [CLIENT, 'laptop'], { encoding: 'utf8' });
  t.equal(u.status, 2, 'usage error');
  t.match(u.stderr, /Usage: smd-client/);
  t.equal(spawnSync(process.execPath, [CLIENT, '-x', 'laptop', 'Mail'], { encoding: 'utf8' }).status, 2, 'unknown option');
});

t.test('a message that appears while its fetch is in flight is never overwritten', async (t) => {
  const h = home(t);
  const files = new Map([['Mail/cur/race', A]]);
  const r = await run(h, {
    diff: [addLine('Mail/cur/race', A)], files,
    lie: (q) => { if (q === 'GET Mail/cur/race') put(h, 'Mail/cur/race', B); return undefined; },
  });
  t.equal(r.status, 3, r.stderr);
  t.match(r.stderr, /context\(mail-addition\) probable-cause\(concurrent-mailbox-edit\)/);
  t.equal(read(h, 'Mail/cur/race'), B, 'the local message is untouched');
  t.same(tmpFiles(h), []);
  t.ok(r.requests.includes('ABORT'));
});
