/** The client's queues and waits hold what is queued, no more: a first pull of a million messages queues its whole diff. */
import t from 'tap';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { WireWriter } from '@smd/protocol';
import { LineQueue } from '../packages/client/src/queue.js';
import { RequestPipeline } from '../packages/client/src/pipeline.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** A full collection, twice around a pause: V8 frees ArrayBuffer backing stores on a background thread. */
async function settledGc(): Promise<void> {
  gc();
  await new Promise((r) => setTimeout(r, 50));
  gc();
}

t.test('LineQueue: lines come out in order, across chunks, with the end marker', async (t) => {
  const q = new LineQueue();
  const lines = Array.from({ length: 30000 }, (_, i) => `ADD Mail/cur/${i}\xe9:2,S ${'a'.repeat(40)} ${String(i).repeat(1 + (i % 50))}`);
  lines.push('x'.repeat(3 << 20)); // longer than a chunk
  lines.push('');
  for (const l of lines) q.push(l);
  q.push(null);
  t.equal(q.size, lines.length + 1);
  const got: (string | null)[] = [];
  for (;;) { const l = await q.next(); got.push(l); if (l === null) break; }
  t.same(got.slice(0, -1), lines, 'every line, in order, latin1 intact');
  t.equal(got.at(-1), null, 'then the end');
  t.equal(q.size, 0);
  // A taker waiting before the push gets the line directly.
  const waiting = q.next();
  q.push('late');
  t.equal(await waiting, 'late');
});

t.test('LineQueue: a queued line costs its bytes, not a string', async (t) => {
  const q = new LineQueue();
  gc();
  const before = process.memoryUsage();
  const n = 200000;
  for (let i = 0; i < n; i++) q.push(`ADD Mail/.Folder${i % 25}/cur/${1700000000 + i}.M${i}P1.host:2,S ${'b'.repeat(40)} ${'c'.repeat(40)}`);
  gc();
  const after = process.memoryUsage();
  // The bytes are in Buffers (whose release after a GC is lazy, so not measured here): no string per line on the heap.
  const perLine = (after.heapUsed - before.heapUsed) / n;
  t.ok(perLine < 16, `${perLine.toFixed(1)} bytes of heap per ~130-byte line`);
  t.equal(q.size, n);
});

t.test('RequestPipeline.wait: finished waits leave nothing behind', async (t) => {
  const writer = { flush: async () => undefined, line: async () => undefined } as unknown as WireWriter;
  const p = new RequestPipeline(writer, 10);
  const round = async (n: number): Promise<void> => { for (let i = 0; i < n; i++) await p.wait(Promise.resolve(i)); };
  await round(1000);
  gc();
  const before = process.memoryUsage().heapUsed;
  await round(200000);
  gc();
  const grew = process.memoryUsage().heapUsed - before;
  t.ok(grew < 8 * 1024 * 1024, `200,000 waits grew the heap by ${(grew / 1024).toFixed(0)} KiB`);
  // Still rejects a wait in progress when the session fails.
  const never = p.wait(new Promise<void>(() => undefined));
  p.abort(new Error('boom'));
  await t.rejects(never, /boom/, 'a wait in progress rejects when the session fails');
  await t.rejects(p.wait(new Promise<void>(() => undefined)), /boom/, 'and so does a wait begun after');
});

t.test('LineQueue with a spill file: memory holds a bounded number of chunks, the rest goes through an unlinked file, in order', async (t) => {
  const { mkdtempSync, readdirSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'smd-spill-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const q = new LineQueue({ dir, chunksInMemory: 2 });
  // ~9 MiB of lines: 9 chunks of 1 MiB, at most 2 (+ the one being written) in memory.
  const lines = Array.from({ length: 60000 }, (_, i) => `ADD Mail/cur/${i}\xe9:2,S ${'a'.repeat(40)} ${'b'.repeat(100 + (i % 61))}`);
  await settledGc();
  const before = process.memoryUsage().arrayBuffers;
  for (const l of lines) q.push(l);
  q.push(null);
  await settledGc();
  const held = process.memoryUsage().arrayBuffers - before;
  t.ok(held < 4.5 * (1 << 20), `about 3 chunks held in memory for 9 MiB of lines (${(held / (1 << 20)).toFixed(1)} MiB)`);
  t.ok(q.spilled >= 5, `full chunks went to the file (${q.spilled})`);
  t.same(readdirSync(dir), [], 'the file has no name: nothing to clean after a kill');
  const fds = () => readdirSync('/proc/self/fd').length;
  const open = fds();
  const got: (string | null)[] = [];
  for (;;) {
    const l = await q.next();
    got.push(l);
    if (l === null) break;
    if (got.length === 30000) q.push('interleaved'); // pushes while reading still come after what was queued
  }
  t.equal(got.length, lines.length + 1);
  t.same(got.slice(0, lines.length), lines, 'every line back, in order, bytes intact');
  t.equal(got.at(-1), null, 'then the end');
  t.equal(await q.next(), 'interleaved', 'a line pushed during the reading comes after what was queued before it');
  t.equal(fds(), open - 1, 'the file is closed once the queue is empty');
  const none = new LineQueue({ dir: join(dir, 'missing'), chunksInMemory: 1 });
  for (const l of lines.slice(0, 30000)) none.push(l);
  t.equal(none.spilled, 0, 'a state dir that cannot hold the file: the lines stay in memory');
  let n = 0;
  while (none.size > 0) { await none.next(); n++; }
  t.equal(n, 30000);
});

t.test('LocalMailbox: where messages are is kept per folder, not per message (a translator makes every path differ from its name)', async (t) => {
  const { mkdtempSync, realpathSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { LocalMailbox } = await import('../packages/client/src/local.js');
  const home = realpathSync(mkdtempSync(join(tmpdir(), 'smd-local-')));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const log = { info() {}, error() {}, warn() {}, progress() {}, tags() {}, journal() {} };
  const local = new LocalMailbox({ translator: 'cat', home, dryRun: false, log });
  local.open(['Mail']);
  t.teardown(() => local.close());
  await local.ensureFolder('Mail/cur/x');
  const names = Array.from({ length: 20000 }, (_, i) => `Mail/cur/${1700000000 + i}.M${i}P1.host:2,S`);
  gc();
  const before = process.memoryUsage().heapUsed;
  let absent = 0;
  for (const n of names) if ((await local.observe(n)).kind === 'absent') absent++;
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  t.ok(grown < 512 * 1024, `20,000 names observed: ${(grown / 1024).toFixed(0)} KB more heap (a path each would be ~3 MB)`);
  t.equal(absent, names.length, 'none of them is there');
  t.equal(local.known(names[123]), `${home}/${names[123]}`, 'the path of a name is its folder\'s, translated');
  t.equal(await local.path(names[7]), `${home}/${names[7]}`);
  t.equal(local.known('Other/cur/y'), 'Other/cur/y', 'a folder never met: the name itself');
});
