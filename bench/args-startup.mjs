#!/usr/bin/env node
// What the argument parser costs at start-up (bench/README.md, "Argument parsing").
// In one fresh Node per sample: the time to import the parser and parse a valid
// smd-client command line (the fast path), and to import the yargs half (what
// --help, --version and usage errors load). Then the wall time of whole runs:
// `smd-client --help` against a valid `smd-client -v laptop Mail` that stops at
// the handshake (stdin is empty). Median and range of N runs (default 9).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = resolve(import.meta.dirname, '..');
const N = Number(process.argv[2] ?? 9);
const args = pathToFileURL(join(ROOT, 'packages/cli/dist/args/index.js')).href;
const specs = pathToFileURL(join(ROOT, 'packages/cli/dist/args/specs.js')).href;
const full = pathToFileURL(join(ROOT, 'packages/cli/dist/args/full.js')).href;

const inChild = (code) => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
};
const fastCode = `
const t0 = performance.now();
const { parseCommandLine } = await import(${JSON.stringify(args)});
const { SMD_CLIENT } = await import(${JSON.stringify(specs)});
const t1 = performance.now();
const a = await parseCommandLine(SMD_CLIENT, ['-v', '-t', 'cat', 'laptop', 'Mail']);
const t2 = performance.now();
if (typeof a === 'number') throw new Error('not parsed');
process.stdout.write(JSON.stringify({ import: t1 - t0, parse: t2 - t1 }));`;
const fullCode = `
const t0 = performance.now();
await import(${JSON.stringify(full)});
process.stdout.write(JSON.stringify({ import: performance.now() - t0 }));`;

const home = mkdtempSync(join(tmpdir(), 'smd-bench-args-'));
const wall = (argv) => {
  const t0 = performance.now();
  spawnSync(join(ROOT, 'bin/smd-client'), argv, { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, HOME: home }, cwd: home });
  return performance.now() - t0;
};

const samples = { fastImport: [], fastParse: [], yargsImport: [], help: [], valid: [] };
for (let i = 0; i < N; i++) {
  // interleaved, so that each variant sees the same minutes of a busy machine
  const f = inChild(fastCode);
  samples.fastImport.push(f.import);
  samples.fastParse.push(f.parse);
  samples.yargsImport.push(inChild(fullCode).import);
  samples.help.push(wall(['--help']));
  samples.valid.push(wall(['-v', 'laptop', 'Mail']));
}
rmSync(home, { recursive: true, force: true });

const show = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const ms = (x) => (x < 1 ? x.toFixed(2) : x.toFixed(0));
  return `${ms(s[Math.floor(s.length / 2)])} ms (${ms(s[0])}-${ms(s[s.length - 1])})`;
};
console.log(`runs: ${N}`);
console.log(`import the parser + the specs (fast path): ${show(samples.fastImport)}`);
console.log(`parse a valid smd-client command line:     ${show(samples.fastParse)}`);
console.log(`import the yargs half (full.js):            ${show(samples.yargsImport)}`);
console.log(`wall, smd-client --help:                    ${show(samples.help)}`);
console.log(`wall, smd-client -v laptop Mail (EOF):      ${show(samples.valid)}`);
