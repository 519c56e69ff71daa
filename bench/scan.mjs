#!/usr/bin/env node
// Scan benchmark for bin/mddiff: cold (no db), warm (no change), 10% renamed (flag change).
//   node bench/scan.mjs MAILDIR [RUNS]
// Prints wall time and peak RSS (from /usr/bin/time -v, else from the child's
// process.resourceUsage via a preload). Warm page cache: run it twice.
// MAILDIR is left renamed back as it was; the db files go to a temp dir.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, renameSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const [maildirArg, runsArg] = process.argv.slice(2);
if (!maildirArg) { console.error('usage: scan.mjs MAILDIR [RUNS]'); process.exit(2); }
const maildir = resolve(maildirArg);
const runs = Number(runsArg ?? 3);
const mddiff = fileURLToPath(new URL('../bin/mddiff', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'smd-bench-'));
const db = join(work, 'db.txt');
const hasTime = existsSync('/usr/bin/time');

function run(label) {
  const cmd = hasTime ? '/usr/bin/time' : process.execPath;
  // Like smd-server: run in the parent directory with a relative root (names stay short).
  const rel = basename(maildir);
  const args = hasTime ? ['-v', process.execPath, mddiff, '--db-file', db, rel] : [mddiff, '--db-file', db, rel];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd: dirname(maildir), maxBuffer: 1 << 30, encoding: 'latin1' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) { console.error(r.stderr); throw new Error(`${label}: exit ${r.status}`); }
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr ?? '');
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  const ops = {};
  for (const l of lines) { const op = l.slice(0, l.indexOf(' ')); ops[op] = (ops[op] ?? 0) + 1; }
  return { ms, rssMB: rss ? Number(rss[1]) / 1024 : NaN, ops };
}
function commit() {
  renameSync(`${db}.new`, db);
  renameSync(`${db}.mtime.new`, `${db}.mtime`);
}
function reset() { rmSync(work, { recursive: true, force: true }); }
function report(label, xs) {
  const best = xs.reduce((a, b) => (a.ms < b.ms ? a : b));
  console.log(`${label.padEnd(28)} wall ${xs.map((x) => (x.ms / 1000).toFixed(2)).join(' / ')} s   peak RSS ${Math.max(...xs.map((x) => x.rssMB)).toFixed(0)} MB   ${JSON.stringify(best.ops)}`);
}

/** All files of cur/ dirs, for the flag-change step. */
function curFiles(dir, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) { if (e.name !== 'tmp') curFiles(p, out); }
    else if (e.isFile() && dir.endsWith('/cur')) out.push(p);
  }
  return out;
}

try {
  const cold = [];
  for (let i = 0; i < runs; i++) {
    rmSync(db, { force: true }); rmSync(`${db}.mtime`, { force: true });
    for (const f of readdirSync(work)) rmSync(join(work, f), { force: true });
    cold.push(run('cold'));
  }
  report('cold scan (no db)', cold);
  commit();
  // Let a second pass so mtimes are older than lastcheck (they are 30 days old anyway).
  const warm = [];
  for (let i = 0; i < runs; i++) warm.push(run('warm'));
  report('warm scan (no change)', warm);
  commit();
  // The floor: Node start + db read + readdir + stat + db write, no diff (bench/scan-floor.mjs).
  const floorScript = fileURLToPath(new URL('./scan-floor.mjs', import.meta.url));
  const floor = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [floorScript, basename(maildir), db], { cwd: dirname(maildir), encoding: 'latin1' });
    if (r.status !== 0) throw new Error(`floor: ${r.stderr}`);
    floor.push({ ms: Number(process.hrtime.bigint() - t0) / 1e6, rssMB: NaN, ops: {} });
  }
  console.log(`${'floor (no diff, see scan-floor)'.padEnd(28)} wall ${floor.map((x) => (x.ms / 1000).toFixed(2)).join(' / ')} s`);
  const files = curFiles(maildir);
  const renamed = [];
  const step = 10;
  for (let i = 0; i < runs; i++) {
    // 10% of the messages get a flag: ':2,S' -> ':2,RS' (and back on the next round).
    let n = 0;
    for (let k = 0; k < files.length; k += step) {
      const f = files[k];
      const g = f.endsWith(':2,S') ? f.slice(0, -1) + 'RS' : f.slice(0, -2) + 'S';
      renameSync(f, g); files[k] = g; n++;
    }
    const r = run('rename');
    renamed.push(r);
    commit();
  }
  report(`10% renamed (${Math.round(files.length / step)} flag changes)`, renamed);
  // Restore the original names.
  if (runs % 2 === 1) for (let k = 0; k < files.length; k += step) { const f = files[k]; renameSync(f, f.slice(0, -2) + 'S'); }
} finally {
  reset();
}
