/**
 * Names are resolved under the mailbox roots (issue "Trust in daily use",
 * section 2): the real smd-client fed every command through symbolic links
 * that lead out of its mailbox, and the real smd-server asked to serve
 * through one. MailboxRoots as a unit: mailbox-roots.test.ts.
 */
import t from 'tap';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAgainst, addLine, hashes, sha1, type Script, type Result } from './helpers/fake-server.js';
import { listing, temp } from './helpers/tree-listing.js';


const A = 'Subject: a\nFrom: x@y\n\nbody a\n';
const B = 'Subject: b\n\nbody b\n';

/** The client's HOME with `Mail/` and a sentinel tree outside it, reachable through `links` (name under HOME → target, or DIR: a real directory). */
function homeWithLinks(t: { teardown(fn: () => void): void }, links: Record<string, string>): { h: string; out: string } {
  const base = temp(t, 'smd-roots-client-');
  const h = join(base, 'home');
  const out = join(base, 'outside');
  for (const p of [join(h, 'Mail', 'cur'), join(h, 'Mail', 'new'), join(h, 'Mail', 'tmp'), join(out, 'cur'), join(out, 'new'), join(out, 'tmp')]) mkdirSync(p, { recursive: true });
  writeFileSync(join(out, 'cur', 'victim'), A);
  writeFileSync(join(out, 'cur', 'other'), B);
  for (const [name, target] of Object.entries(links)) {
    mkdirSync(join(h, name, '..'), { recursive: true });
    if (target === 'DIR') mkdirSync(join(h, name), { recursive: true });
    else symlinkSync(target.replace('$OUT', out), join(h, name));
  }
  return { h, out };
}

const run = (h: string, script: Script): Promise<Result> => runAgainst({ home: h, args: ['laptop', 'Mail'], script });

t.test('smd-client: no command reads, writes, moves or deletes through a symlink leading out', async (t) => {
  const a = hashes(A);
  const b = hashes(B);
  // [case, links to create, the diff line, a message of the server for GETs]
  const cases: Array<[string, Record<string, string>, string]> = [
    ['ADD into a folder symlink', { 'Mail/.Link': '$OUT' }, addLine('Mail/.Link/cur/new-one', B)],
    ['ADD into a relative folder symlink', { 'Mail/.Rel': '../../outside' }, addLine('Mail/.Rel/cur/new-one', B)],
    ['ADD into a cur/ symlink', { 'Mail/.F/cur': '$OUT/cur', 'Mail/.F/new': 'DIR', 'Mail/.F/tmp': 'DIR' }, addLine('Mail/.F/cur/new-one', B)],
    ['ADD with a tmp/ symlink', { 'Mail/.T/cur': 'DIR', 'Mail/.T/new': 'DIR', 'Mail/.T/tmp': '$OUT/tmp' }, addLine('Mail/.T/cur/x', B)],
    ['ADD with a new/ symlink (the sibling the client creates)', { 'Mail/.N/cur': 'DIR', 'Mail/.N/new': '$OUT/new', 'Mail/.N/tmp': 'DIR' }, addLine('Mail/.N/cur/x', B)],
    ['DELETE through a folder symlink', { 'Mail/.Link': '$OUT' }, `DELETE Mail/.Link/cur/victim ${a.h} ${a.b}`],
    ['MOVE from a folder symlink', { 'Mail/.Link': '$OUT' }, `MOVE Mail/.Link/cur/victim ${a.h} ${a.b} TO Mail/cur/stolen`],
    ['MOVE into a folder symlink', { 'Mail/.Link': '$OUT' }, `MOVE Mail/cur/mine ${a.h} ${a.b} TO Mail/.Link/cur/planted`],
    ['COPY from a folder symlink', { 'Mail/.Link': '$OUT' }, `COPY Mail/.Link/cur/victim ${a.h} ${a.b} TO Mail/cur/copied`],
    ['COPY into a folder symlink', { 'Mail/.Link': '$OUT' }, `COPY Mail/cur/mine ${a.h} ${a.b} TO Mail/.Link/cur/planted`],
    ['COPYBODY from a folder symlink', { 'Mail/.Link': '$OUT' }, `COPYBODY Mail/.Link/cur/victim ${a.b} TO Mail/cur/copied ${b.h}`],
    ['REPLACE through a folder symlink', { 'Mail/.Link': '$OUT' }, `REPLACE Mail/.Link/cur/victim ${a.h} ${a.b} WITH ${b.h} ${b.b}`],
    ['REPLACEHEADER through a folder symlink', { 'Mail/.Link': '$OUT' }, `REPLACEHEADER Mail/.Link/cur/victim ${a.h} ${a.b} WITH ${b.h}`],
    ['ADD into a folder symlink to a parent of the mailbox', { 'Mail/.Up': '$OUT/..' }, addLine('Mail/.Up/outside/cur/new-one', B)],
  ];
  await Promise.all(cases.map(async ([what, links, line]) => {
    const { h, out } = homeWithLinks(t, links);
    writeFileSync(join(h, 'Mail', 'cur', 'mine'), A);
    const before = listing(out);
    const mailBefore = listing(join(h, 'Mail'));
    const files = new Map<string, string>([['Mail/.Link/cur/new-one', B], ['Mail/.Rel/cur/new-one', B], ['Mail/cur/copied', B],
      ['Mail/.F/cur/new-one', B], ['Mail/.T/cur/x', B], ['Mail/.N/cur/x', B], ['Mail/.Up/outside/cur/new-one', B]]);
    const r = await run(h, { diff: [line], files });
    t.not(r.status, 0, `${what}: the run fails (${r.status})`);
    t.match(r.stderr, /Mail\/\.[A-Za-z]+(\/(cur|new|tmp))? is a symbolic link to \/.*, outside the mailboxes: it is not followed/, `${what}: the error names the link`);
    t.match(r.stderr, /TAGS: error::context\(mailbox-path\) probable-cause\(symlink-leaves-mailbox\) human-intervention\(necessary\)/, `${what}: TAGS`);
    t.notMatch(r.stderr, /Internal error|\n\s+at /, `${what}: no stack trace`);
    t.notOk(r.requests.some((q) => q.startsWith('GET')), `${what}: nothing was fetched for it`);
    t.same(listing(out), before, `${what}: nothing outside was read into the mailbox, written, moved or deleted`);
    t.same(listing(join(h, 'Mail')), mailBefore, `${what}: the mailbox is unchanged`);
    t.ok(r.events.includes('ABORT'), `${what}: ABORT sent`);
  }));
});

t.test('smd-client: a message file that is a symlink is never read or written through', async (t) => {
  const { h, out } = homeWithLinks(t, {});
  symlinkSync(join(out, 'cur', 'victim'), join(h, 'Mail', 'cur', 'x'));
  const before = listing(out);
  const a = hashes(A);
  for (const line of [`DELETE Mail/cur/x ${a.h} ${a.b}`, `REPLACE Mail/cur/x ${a.h} ${a.b} WITH ${hashes(B).h} ${hashes(B).b}`, `MOVE Mail/cur/x ${a.h} ${a.b} TO Mail/cur/y`]) {
    const r = await run(h, { diff: [line], files: new Map([['Mail/cur/x', B], ['Mail/cur/y', A]]) });
    t.notMatch(r.stderr, /Internal error|\n\s+at /, `${line.split(' ')[0]}: no stack trace`);
    t.same(listing(out), before, `${line.split(' ')[0]}: the link target is untouched`);
    t.equal(readlinkSync(join(h, 'Mail', 'cur', 'x')), join(out, 'cur', 'victim'), `${line.split(' ')[0]}: the link itself is left alone`);
  }
});

t.test('smd-client: `MOVE X TO X` is nothing to do', async (t) => {
  const { h } = homeWithLinks(t, {});
  writeFileSync(join(h, 'Mail', 'cur', 'x'), A);
  const a = hashes(A);
  const r = await run(h, { diff: [`MOVE Mail/cur/x ${a.h} ${a.b} TO Mail/cur/x`] });
  t.equal(r.status, 0, r.stderr);
  t.equal(readFileSync(join(h, 'Mail', 'cur', 'x'), 'latin1'), A, 'the message is still there');
  t.match(r.stderr, /del-mails\(0\)/);
});

t.test('smd-client: FOLLOW lets a folder kept elsewhere through a symlink be synchronized', async (t) => {
  const { h, out } = homeWithLinks(t, { 'Mail/.Archive': '$OUT' });
  const r = await runAgainst({ home: h, args: ['--follow', out, 'laptop', 'Mail'], script: { diff: [addLine('Mail/.Archive/cur/n', B)], files: new Map([['Mail/.Archive/cur/n', B]]) } });
  t.equal(r.status, 0, r.stderr);
  t.equal(readFileSync(join(out, 'cur', 'n'), 'latin1'), B, 'written where the allowed link leads');
  t.notOk(existsSync(join(out, 'tmp', 'x')));
});

t.test('smd-server: a folder symlink leading out stops the scan (nothing becomes a DELETE); FOLLOW_REMOTE allows it', async (t) => {
  const { deliver, remoteConfig, smd, treeObject, twoHomes, writeConfig } = await import('./helpers/sync-fixture.js');
  const h = twoHomes(t);
  const outside = join(h.remote, '..', 'archive-disk');
  writeConfig(h.local, 'default', remoteConfig());
  deliver(h.remote, 'Mail');
  deliver(outside, '.');
  const first = await smd('smd-pull', [], h.env, { timeoutMs: 150_000 });
  t.equal(first.status, 0, first.stdout);
  symlinkSync(realpathSync(outside), join(h.remote, 'Mail', '.Archive'));
  const local = treeObject(join(h.local, 'Mail'));
  const refused = await smd('smd-pull', ['-s'], h.env, { timeoutMs: 150_000 });
  t.equal(refused.status, 1, 'the pull fails');
  t.match(refused.stdout, /Mail\/\.Archive is a symbolic link to .*archive-disk, outside the mailboxes: it is not followed .*FOLLOW_REMOTE/, 'the message names the link and the way out');
  t.match(refused.stdout, /human-intervention\(necessary\)/);
  t.same(treeObject(join(h.local, 'Mail')), local, 'nothing changed here');
  writeConfig(h.local, 'default', remoteConfig({ FOLLOW_REMOTE: realpathSync(outside) }));
  const allowed = await smd('smd-pull', [], h.env, { timeoutMs: 150_000 });
  t.equal(allowed.status, 0, allowed.stdout);
  t.match(allowed.stdout, /1 new/);
  t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')), 'the folder kept elsewhere is synchronized');
});
