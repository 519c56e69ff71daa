#!/usr/bin/env node
// Size and time of the db-file patch (@smd/protocol createDbPatch/applyDbPatch)
// on a synthetic 1,000,000-line db-file. Build first: npx tsc -b packages/protocol
// Usage: node bench/db-patch.mjs [lines]
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { createDbPatch, applyDbPatch } from '../packages/protocol/dist/index.js';

const N = Number(process.argv[2] ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'smd-bench-patch-'));
const sha = (s) => createHash('sha1').update(s).digest('hex');
const line = (i, flags) => `${sha(`h${i}`)} ${sha(`b${i}`)} Mail/.folder${i % 25}/cur/${1700000000 + i}.M${i}P4242.host,S=${8000 + i}:2,${flags}\n`;

// Upstream's db-file order: survivors keep their order, changed ones go to the end.
function build(changed) {
  const kept = [];
  const moved = [];
  for (let i = 0; i < N; i++) (changed.has(i) ? moved : kept).push(i);
  return kept.map((i) => line(i, 'S')).join('') + moved.map((i) => line(i, 'RS')).join('');
}
function pick(k) {
  const s = new Set();
  let x = 12345; // mulberry32
  const rnd = () => { x = (x + 0x6d2b79f5) | 0; let t = Math.imul(x ^ (x >>> 15), 1 | x); t ^= t + Math.imul(t ^ (t >>> 7), 61 | t); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
  while (s.size < k) s.add(Math.floor(rnd() * N));
  return s;
}

const oldText = build(new Set());
const oldPath = join(dir, 'old.db.txt');
const emptyPath = join(dir, 'empty.db.txt');
writeFileSync(oldPath, oldText, 'latin1');
writeFileSync(emptyPath, '');
console.log(`db-file: ${N} lines, ${(Buffer.byteLength(oldText, 'latin1') / 1e6).toFixed(1)} MB (node ${process.version})`);
console.log('case                         | patch bytes | create s | apply s | peak RSS MB');

const cases = [
  ['1 change', 1],
  ['1,000 changes', 1000],
  ['10% changes', Math.round(N / 10)],
  ['a folder of 5,000 deleted', 'folder'],
  ['first sync (empty old db)', 'first'],
];
for (const [label, k] of cases) {
  const from = k === 'first' ? emptyPath : oldPath;
  const newText = k === 'first' ? oldText
    : k === 'folder' ? oldText.split('\n').filter((_, i) => i < N / 2 || i >= N / 2 + 5000).join('\n')
      : build(pick(k));
  const newPath = join(dir, 'new.db.txt');
  writeFileSync(newPath, newText, 'latin1');
  globalThis.gc?.();
  let t = performance.now();
  const patch = createDbPatch(from, newPath);
  const tc = (performance.now() - t) / 1000;
  t = performance.now();
  const out = join(dir, 'out.db.txt');
  applyDbPatch(from, patch, out);
  const ta = (performance.now() - t) / 1000;
  if (!readFileSync(out).equals(readFileSync(newPath))) throw new Error(`${label}: round trip failed`);
  const rss = process.memoryUsage().rss / 1e6;
  console.log(`${label.padEnd(28)} | ${String(patch.length).padStart(11)} | ${tc.toFixed(2).padStart(8)} | ${ta.toFixed(2).padStart(7)} | ${rss.toFixed(0)}`);
}
rmSync(dir, { recursive: true, force: true });
