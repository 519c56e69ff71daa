#!/usr/bin/env node
// The least a warm scan must do, in Node, with no diff logic at all: start
// Node, read the db-file, list every cur/new folder in readdir order, stat
// every file and look it up by name, write the db-file back and fsync it.
// bench/scan.mjs runs it to show how close the real scan is to this floor.
//   node bench/scan-floor.mjs ROOT DBFILE      (cwd = parent of ROOT, like mddiff)
import { closeSync, fsyncSync, opendirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';

const [root, dbFile] = process.argv.slice(2);
const db = readFileSync(dbFile);
const names = new Map();
for (let s = 0, i = db.indexOf(10), n = 0; i >= 0; s = i + 1, i = db.indexOf(10, s)) names.set(db.latin1Slice(s + 82, i), n++);
let files = 0;
let known = 0;
const walk = (dir) => {
  const d = opendirSync(dir, { encoding: 'latin1' });
  const subdirs = [];
  const mail = dir.endsWith('/cur') || dir.endsWith('/new');
  for (let e; (e = d.readSync()) !== null;) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) { if (e.name !== 'tmp') subdirs.push(p); continue; }
    if (!mail) continue;
    statSync(p);
    files++;
    if (names.has(p)) known++;
  }
  d.closeSync();
  for (const s of subdirs) walk(s);
};
walk(root);
const fd = openSync(`${dbFile}.floor`, 'w');
writeSync(fd, db);
fsyncSync(fd);
closeSync(fd);
renameSync(`${dbFile}.floor`, `${dbFile}.floor-done`);
console.log(`${files} files stat'ed, ${known} known`);
