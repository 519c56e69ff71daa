/**
 * Durability before placement (issue "Throughput and scale": batched
 * placement): the group commit of received messages, the temp files
 * created ahead, the native syncfs and the no-clobber rename, on real
 * files. The end-to-end kill test is placement-kill.test.ts.
 */
import t from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileSystemSync, renameNoReplace } from '@smd/maildir';
import { Durability } from '../packages/client/src/durable.js';
import { TempFile, TempFileSource, placeNoClobber } from '../packages/client/src/files.js';
import { temp } from './helpers/tree-listing.js';

const MSG = 'Subject: x\n\nbody\n';

function tmpDir(t: { teardown(fn: () => void): void }): string {
  const d = join(temp(t, 'smd-durable-'), 'tmp');
  mkdirSync(d);
  return d;
}

function written(dir: string, data = MSG): TempFile {
  const f = new TempFile(dir);
  f.write(Buffer.from(data, 'latin1'));
  return f;
}

/** A file-system sync the test controls: each call waits until released, and records how many files were closed when it started. */
function controlledSync(closedNow: () => number) {
  const calls: Array<{ dir: string; closedAtStart: number; release(e?: Error): void }> = [];
  const sync = (dir: Buffer): Promise<void> => new Promise((resolve, reject) => {
    calls.push({ dir: dir.toString('latin1'), closedAtStart: closedNow(), release: (e) => (e ? reject(e) : resolve()) });
  });
  return { calls, sync };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

t.test('group commit: files closed while a sync runs wait for the next one, which covers them all', async (t) => {
  const dir = tmpDir(t);
  let closed = 0;
  const { calls, sync } = controlledSync(() => closed);
  const d = new Durability(sync, { delayMs: 0 });
  t.equal(d.waitingLimit, 256, 'a batch may hold up to 256 messages');
  const done: number[] = [];
  const finish = (i: number): Promise<unknown> => {
    const f = written(dir, `Subject: ${i}\n\nbody ${i}\n`);
    const p = d.finish(f, dir).then((h) => { done.push(i); return h; });
    closed++;
    return p;
  };
  const first = finish(0);
  await tick();
  t.equal(calls.length, 1, 'the first file starts a sync at once');
  const rest = [1, 2, 3, 4, 5].map(finish);
  await tick();
  t.equal(calls.length, 1, 'no second sync while one runs');
  t.same(done, [], 'nothing is durable before its sync ends');
  calls[0].release();
  const h0 = await first;
  t.same(done, [0], 'the first sync covered only the file closed before it started');
  t.match(h0, { header: /^[0-9a-f]{40}$/, body: /^[0-9a-f]{40}$/ }, 'the hashes of what was written');
  await tick();
  t.equal(calls.length, 2, 'the next sync starts as soon as the first ends');
  t.equal(calls[1].closedAtStart, 6, 'after all five waiting files were closed');
  calls[1].release();
  await Promise.all(rest);
  t.same(done, [0, 1, 2, 3, 4, 5]);
  t.equal(d.syncs, 2, 'six files, two syncs');
  t.equal(d.synced, 6);
  t.equal(calls[0].dir, dir, 'the sync is asked for the directory of the files');
});

t.test('group commit: a sync starts once enough files wait, or the oldest waited long enough', async (t) => {
  const dir = tmpDir(t);
  const { calls, sync } = controlledSync(() => 0);
  const bySize = new Durability(sync, { batch: 3, delayMs: 60_000 });
  const two = [bySize.finish(written(dir), dir), bySize.finish(written(dir), dir)];
  await tick();
  t.equal(calls.length, 0, 'two files of a batch of three: no sync yet');
  const third = bySize.finish(written(dir), dir);
  await tick();
  t.equal(calls.length, 1, 'the third starts it');
  calls[0].release();
  await Promise.all([...two, third]);
  t.equal(bySize.synced, 3, 'one sync for the three');
  const byAge = new Durability(sync, { batch: 100, delayMs: 40 });
  const one = byAge.finish(written(dir), dir);
  await new Promise((r) => setTimeout(r, 10));
  t.equal(calls.length, 1, 'one file, 10 ms old: still waiting for company');
  await new Promise((r) => setTimeout(r, 60));
  t.equal(calls.length, 2, 'after 40 ms it is synced alone');
  calls[1].release();
  await one;
});

t.test('group commit: a failed sync fails its batch only; the next batch syncs again', async (t) => {
  const dir = tmpDir(t);
  const { calls, sync } = controlledSync(() => 0);
  const d = new Durability(sync, { delayMs: 0 });
  const a = d.finish(written(dir), dir);
  await tick();
  const b = d.finish(written(dir), dir);
  const eio = Object.assign(new Error('EIO: i/o error, syncfs'), { code: 'EIO', syscall: 'syncfs' });
  calls[0].release(eio);
  await t.rejects(a, eio, 'the file of the failed sync is not durable: its placement fails');
  await tick();
  t.equal(calls.length, 2, 'the file closed meanwhile gets a sync of its own');
  calls[1].release();
  await t.resolves(b);
});

t.test('a slow file-system sync (a big copy beside it): the rest of the run fsyncs each file', async (t) => {
  const dir = tmpDir(t);
  const { calls, sync } = controlledSync(() => 0);
  const d = new Durability(sync, { slowMs: 30, delayMs: 0 });
  const first = d.finish(written(dir), dir);
  await tick();
  const second = d.finish(written(dir), dir);
  await new Promise((r) => setTimeout(r, 60));
  calls[0].release();
  await first;
  t.notOk(d.grouped, 'after a sync slower than the bound');
  await tick();
  t.equal(calls.length, 2, 'a file closed before the switch still gets its file-system sync');
  calls[1].release();
  await second;
  await d.finish(written(dir), dir);
  t.equal(calls.length, 2, 'a file closed after it is fsync\'ed on its own');
  t.equal(d.syncs, 2);
});

t.test('without a file-system sync: an fsync per file, 64 waiting at most', async (t) => {
  const dir = tmpDir(t);
  const d = new Durability(null);
  t.equal(d.waitingLimit, 64, 'each waiting file holds an open descriptor');
  const hs = await Promise.all([0, 1, 2].map(() => d.finish(written(dir), dir)));
  t.equal(hs.length, 3);
  t.equal(d.syncs, 0, 'no file-system sync');
  t.notOk(d.grouped);
});

t.test('the native syncfs and the no-clobber rename, on this file system', async (t) => {
  const sync = fileSystemSync();
  const dir = tmpDir(t);
  if (sync === null) { t.comment('no native helper (SMD_NATIVE=0 or not built): fsync per file, link + unlink'); }
  else {
    await t.resolves(sync(Buffer.from(dir)), 'syncfs of the file system of a directory');
    await t.rejects(sync(Buffer.from(join(dir, 'missing'))), { code: 'ENOENT' }, 'a missing directory is an errno error');
    const utf8Bytes = join(tmpDir(t), 'Bo\xc3\xaete'); // "Boîte" as a ByteString: its UTF-8 bytes, one char each
    mkdirSync(Buffer.from(utf8Bytes, 'latin1'));
    await t.resolves(sync(Buffer.from(utf8Bytes, 'latin1')), 'a directory whose name is not ASCII (the path is bytes)');
  }
  writeFileSync(join(dir, 'a'), 'a');
  writeFileSync(join(dir, 'b'), 'b');
  const r = renameNoReplace(join(dir, 'a'), join(dir, 'b'));
  if (r === 'unsupported') { t.equal(sync, null, 'only without the helper'); return; }
  t.equal(r, 'exists', 'an existing target is reported, not replaced');
  t.equal(readFileSync(join(dir, 'b'), 'utf8'), 'b', 'the target is untouched');
  t.ok(existsSync(join(dir, 'a')), 'the source stays');
  t.equal(renameNoReplace(join(dir, 'a'), join(dir, 'c')), 'renamed');
  t.same(readdirSync(dir).sort(), ['b', 'c']);
  t.throws(() => renameNoReplace(join(dir, 'gone'), join(dir, 'd')), { code: 'ENOENT', syscall: 'rename' }, 'other failures are errno errors');
  const latin1 = Buffer.from('caf\xe9', 'latin1').toString('latin1');
  writeFileSync(Buffer.from(join(dir, latin1), 'latin1'), 'x');
  t.equal(renameNoReplace(join(dir, latin1), join(dir, `${latin1}2`)), 'renamed', 'names are bytes (not UTF-8)');
  t.ok(existsSync(Buffer.from(join(dir, `${latin1}2`), 'latin1')));
});

t.test('placeNoClobber: a message that appeared at the name is never replaced', async (t) => {
  const dir = tmpDir(t);
  const target = join(dir, '..', 'cur-x');
  writeFileSync(target, 'the mail program was faster');
  const f = written(dir);
  f.finish();
  t.equal(placeNoClobber(f, target), 'exists');
  t.equal(readFileSync(target, 'utf8'), 'the mail program was faster');
  t.ok(existsSync(f.path), 'the temp file stays for the caller to compare and discard');
  const g = written(dir);
  g.finish();
  t.equal(placeNoClobber(g, join(dir, '..', 'cur-y')), 'placed');
  t.notOk(existsSync(g.path), 'moved, not copied');
  t.equal(readFileSync(join(dir, '..', 'cur-y'), 'latin1'), MSG);
});

t.test('TempFileSource: one spare ahead per directory, for four directories; close removes the spares', async (t) => {
  const dirs = [0, 1, 2, 3, 4].map(() => tmpDir(t));
  const src = new TempFileSource();
  const a = await src.take(dirs[0]);
  await tick();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(readdirSync(dirs[0]).length, 2, 'the taken file and a spare created ahead');
  const b = await src.take(dirs[0]);
  t.not(b.path, a.path, 'the spare is a new file');
  for (const d of dirs.slice(1)) (await src.take(d)).discard();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(readdirSync(dirs[0]).length, 2, 'the spare of the least recent directory was removed (a, b remain)');
  for (const d of dirs.slice(1)) t.equal(readdirSync(d).length, 1, 'one spare in each of the last four');
  await src.close();
  t.same(dirs.slice(1).map((d) => readdirSync(d).length), [0, 0, 0, 0], 'no spare is left behind');
  a.discard();
  b.discard();
  t.same(readdirSync(dirs[0]), []);
  const failing = new TempFileSource();
  await t.rejects(failing.take(join(dirs[0], 'missing')), { code: 'ENOENT' }, 'a temp directory that cannot be written fails the take');
  await failing.close();
});
