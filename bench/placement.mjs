#!/usr/bin/env node
// What this file system rewards for placing N small received messages durably
// (issue 10, batched placement): each strategy writes N files of 2 KB into
// tmp/ and makes them visible in cur/, in a fresh directory of --dir (default
// bench/out/placement, i.e. the file system of the checkout).
//
//   node bench/placement.mjs [--messages 5000] [--dir DIR]
//
// Strategies: fsync per file (sequential; 64 in flight on the thread pool, the
// client before batching), batches made durable by parallel fsyncs or by one
// syncfs (`sync -f`, the coreutils command calling syncfs(2); the client uses
// the native helper), and no durability at all (the floor: what `tar -x` does).
import { closeSync, fsync, fsyncSync, linkSync, mkdirSync, openSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const arg = (name, dflt) => { const i = process.argv.indexOf(`--${name}`); return i < 0 ? dflt : process.argv[i + 1]; };
const N = Number(arg('messages', 5000));
const base = join(resolve(arg('dir', join(dirname(fileURLToPath(import.meta.url)), 'out'))), 'placement');
const buf = Buffer.alloc(2000, 'x');
const p = (i) => join(base, 'tmp', `t${i}`);
const q = (i) => join(base, 'cur', `m${i}`);
const fsyncAsync = (fd) => new Promise((res, rej) => fsync(fd, (e) => (e ? rej(e) : res())));
const create = (i) => { const fd = openSync(p(i), 'wx'); writeSync(fd, buf); return fd; };

async function run(name, fn) {
  rmSync(base, { recursive: true, force: true });
  mkdirSync(join(base, 'tmp'), { recursive: true });
  mkdirSync(join(base, 'cur'));
  spawnSync('sync');
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  console.log(`${name.padEnd(58)} ${(ms / 1000).toFixed(2).padStart(6)} s  ${(ms / N * 1000).toFixed(0).padStart(5)} us/message`);
}

console.log(`${N} messages of 2 KB in ${base}; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
await run('fsync each, sequential, link + unlink', () => {
  for (let i = 0; i < N; i++) { const fd = create(i); fsyncSync(fd); closeSync(fd); linkSync(p(i), q(i)); unlinkSync(p(i)); }
});
await run('fsync each, 64 in flight on the thread pool, link + unlink', async () => {
  const inflight = new Set();
  for (let i = 0; i < N; i++) {
    const fd = create(i);
    const pr = fsyncAsync(fd).then(() => { closeSync(fd); linkSync(p(i), q(i)); unlinkSync(p(i)); inflight.delete(pr); });
    inflight.add(pr);
    if (inflight.size >= 64) await Promise.race(inflight);
  }
  await Promise.all(inflight);
});
for (const B of [64, 256]) {
  await run(`batches of ${B}: parallel fsync of the batch, rename`, async () => {
    for (let s = 0; s < N; s += B) {
      const fds = [];
      for (let i = s; i < Math.min(N, s + B); i++) fds.push(create(i));
      await Promise.all(fds.map(fsyncAsync));
      for (const fd of fds) closeSync(fd);
      for (let i = s; i < Math.min(N, s + B); i++) renameSync(p(i), q(i));
    }
  });
}
for (const B of [64, 256, 1024]) {
  await run(`batches of ${B}: one syncfs (sync -f), rename`, () => {
    for (let s = 0; s < N; s += B) {
      for (let i = s; i < Math.min(N, s + B); i++) closeSync(create(i));
      spawnSync('sync', ['-f', base]);
      for (let i = s; i < Math.min(N, s + B); i++) renameSync(p(i), q(i));
    }
  });
}
await run('no durability (the floor), rename', () => {
  for (let i = 0; i < N; i++) { closeSync(create(i)); renameSync(p(i), q(i)); }
});
rmSync(base, { recursive: true, force: true });
