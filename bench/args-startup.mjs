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

const launch = pathToFileURL(join(ROOT, 'packages/cli/dist/launch.js')).href;
// Each sample runs in a fresh Node that has first loaded launch.js, as bin/ does, so
// that the ESM loader's own first-use cost is not counted.
const inChild = (code) => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(launch)});\n${code}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
};
const fastCode = `
const c0 = process.cpuUsage();
const t0 = performance.now();
const { parseCommandLine } = await import(${JSON.stringify(args)});
const { SMD_CLIENT } = await import(${JSON.stringify(specs)});
const t1 = performance.now();
const c1 = process.cpuUsage(c0);
const a = await parseCommandLine(SMD_CLIENT, ['-v', '-t', 'cat', 'laptop', 'Mail']);
const t2 = performance.now();
if (typeof a === 'number') throw new Error('not parsed');
process.stdout.write(JSON.stringify({ import: t1 - t0, cpu: (c1.user + c1.system) / 1000, parse: t2 - t1 }));`;
// the same dynamic import of a module that does nothing
const emptyCode = `
const c0 = process.cpuUsage();
const t0 = performance.now();
await import('data:text/javascript,export const x = 1;');
const c = process.cpuUsage(c0);
process.stdout.write(JSON.stringify({ import: performance.now() - t0, cpu: (c.user + c.system) / 1000 }));`;
const fullCode = `
const c0 = process.cpuUsage();
const t0 = performance.now();
await import(${JSON.stringify(full)});
const c = process.cpuUsage(c0);
process.stdout.write(JSON.stringify({ import: performance.now() - t0, cpu: (c.user + c.system) / 1000 }));`;

const home = mkdtempSync(join(tmpdir(), 'smd-bench-args-'));
// wall and CPU (user + system) seconds of a whole run, from GNU time
const whole = (argv) => {
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %U %S', join(ROOT, 'bin/smd-client'), ...argv], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HOME: home }, cwd: home, encoding: 'utf8' });
  const m = /TIME (\S+) (\S+) (\S+)/.exec(r.stderr);
  if (m === null) throw new Error(r.stderr);
  return { wall: Number(m[1]) * 1000, cpu: (Number(m[2]) + Number(m[3])) * 1000 };
};

const samples = { emptyImport: [], emptyCpu: [], fastImport: [], fastCpu: [], fastParse: [], yargsImport: [], yargsCpu: [], help: [], helpCpu: [], valid: [], validCpu: [] };
for (let i = 0; i < N; i++) {
  // interleaved, so that each variant sees the same minutes of a busy machine
  const e = inChild(emptyCode);
  samples.emptyImport.push(e.import); samples.emptyCpu.push(e.cpu);
  const f = inChild(fastCode);
  samples.fastImport.push(f.import); samples.fastCpu.push(f.cpu);
  samples.fastParse.push(f.parse);
  const y = inChild(fullCode);
  samples.yargsImport.push(y.import); samples.yargsCpu.push(y.cpu);
  const h = whole(['--help']);
  samples.help.push(h.wall); samples.helpCpu.push(h.cpu);
  const v = whole(['-v', 'laptop', 'Mail']);
  samples.valid.push(v.wall); samples.validCpu.push(v.cpu);
}
rmSync(home, { recursive: true, force: true });

const show = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const ms = (x) => (x < 1 ? x.toFixed(2) : x.toFixed(0));
  return `${ms(s[Math.floor(s.length / 2)])} ms (${ms(s[0])}-${ms(s[s.length - 1])})`;
};
console.log(`runs: ${N}                                       wall                CPU (user+sys)`);
console.log(`import an empty module (baseline):         ${show(samples.emptyImport)}   ${show(samples.emptyCpu)}`);
console.log(`import the parser + the specs (fast path): ${show(samples.fastImport)}   ${show(samples.fastCpu)}`);
console.log(`parse a valid smd-client command line:     ${show(samples.fastParse)}`);
console.log(`import the yargs half (full.js):           ${show(samples.yargsImport)}   ${show(samples.yargsCpu)}`);
console.log(`whole run, smd-client --help:              ${show(samples.help)}   ${show(samples.helpCpu)}`);
console.log(`whole run, smd-client -v laptop Mail (EOF): ${show(samples.valid)}   ${show(samples.validCpu)}`);
