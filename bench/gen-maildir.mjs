#!/usr/bin/env node
// Deterministic synthetic Maildir for benchmarks.
//   node bench/gen-maildir.mjs OUTDIR N [SEED] [--small]
// Mix: most messages 2–50 KB, every 500th 1–5 MB (unless --small: all 1–3 KB),
// 25 folders (INBOX + 24 Maildir++ .Folders), 90% in cur/ with flags, 10% in new/,
// mtimes 30 days in the past.
import { mkdirSync, openSync, writeSync, closeSync, utimesSync } from 'node:fs';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const small = process.argv.includes('--small');
const [out, nStr, seedStr] = args;
if (!out || !nStr) { console.error('usage: gen-maildir.mjs OUTDIR N [SEED] [--small]'); process.exit(2); }
const N = Number(nStr);
let seed = Number(seedStr ?? 42) >>> 0;
function rnd() { // mulberry32
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const folders = ['', ...Array.from({ length: 24 }, (_, i) => `.Folder${String(i).padStart(2, '0')}${i % 5 === 0 ? '.Sub' : ''}`)];
for (const f of folders) for (const d of ['cur', 'new', 'tmp']) mkdirSync(`${out}/${f}${f ? '/' : ''}${d}`, { recursive: true });
const words = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua'.split(' ');
let filler = '';
while (filler.length < 6 * 1024 * 1024) filler += words[Math.floor(rnd() * words.length)] + (rnd() < 0.1 ? '\n' : ' ');
const fillerBuf = Buffer.from(filler, 'latin1');
const old = Date.now() / 1000 - 30 * 86400;
let bytes = 0;
for (let i = 0; i < N; i++) {
  const size = small ? 1024 + Math.floor(rnd() * 2048)
    : i % 500 === 499 ? 1048576 + Math.floor(rnd() * 4 * 1048576)
    : rnd() < 0.65 ? 2048 + Math.floor(rnd() * 22000) : 2048 + Math.floor(rnd() * 49152);
  const f = folders[Math.floor(rnd() * folders.length)];
  const inNew = rnd() < 0.1;
  const t = Math.floor(old - i * 10);
  const name = `${t}.M${i}P${1000 + (i % 30000)}.bench${inNew ? '' : ':2,S'}`;
  const path = `${out}/${f}${f ? '/' : ''}${inNew ? 'new' : 'cur'}/${name}`;
  const header = `Return-Path: <user${i % 97}@example.org>\nMessage-ID: <${i}.${seed}@bench>\nFrom: User ${i % 97} <user${i % 97}@example.org>\nTo: me@example.org\nSubject: message number ${i}\nDate: ${new Date(t * 1000).toUTCString()}\n\n`;
  const fd = openSync(path, 'w');
  writeSync(fd, header);
  const bodyLen = Math.max(1, size - header.length);
  const off = Math.floor(rnd() * (fillerBuf.length - bodyLen));
  writeSync(fd, `${i}\n`);
  writeSync(fd, fillerBuf, off, bodyLen);
  closeSync(fd);
  utimesSync(path, t, t);
  bytes += header.length + bodyLen;
}
console.log(`${N} messages, ${(bytes / 1e6).toFixed(0)} MB in ${out}`);
