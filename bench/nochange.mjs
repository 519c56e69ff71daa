#!/usr/bin/env node
// The everyday case: a pull with nothing to do, and what each process costs to start.
//
//   node bench/nochange.mjs [--messages 2000,100000] [--runs 7] [--checkout | --prefix DIR | --bin DIR]
//
// Programs: by default the product as users get it: `npm pack` of this
// checkout installed with `npm install -g --prefix bench/out/nochange-prefix`
// (offline); --prefix DIR uses an existing install; --checkout runs bin/ of
// this checkout (the compiled workspace, unbundled); --bin DIR the commands
// of any bin directory (e.g. another checkout's, to compare commits).
//
// For each size: a HOME under bench/out/nochange-N/ (generated once by
// gen-maildir.mjs --small, deterministic) with ~/Mail and a local-mode
// endpoint (SERVERNAME=localhost, SMDCLIENTOPTS=-l, MAILBOX_LOCAL=Laptop/Mail,
// the smd-translate move translators), synchronized once; then one untimed
// no-change pull and --runs timed ones through /usr/bin/time: wall, and CPU =
// user + sys of smd-pull and every process it waited for (smd-server,
// smd-client). One more pull with a preload (NODE_OPTIONS=--import) that
// records each Node process's own CPU and lifetime.
//
// Start-up: `<command> --version` of smd-pull, smd-server, smd-client, and
// `mddiff --sha1sum FILE` (all their static imports, then exit or a trivial
// task) against `node -e 0`, and which
// files of lib/ each command loads before it runs (its static imports).
//
// Medians (and minimum) of the runs; this machine's load varies a lot: compare
// figures of one invocation only.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'bench', 'out');
const arg = (name) => { const i = process.argv.indexOf(`--${name}`); return i < 0 ? undefined : process.argv[i + 1]; };
const SIZES = (arg('messages') ?? '2000,100000').split(',').map(Number);
const RUNS = Number(arg('runs') ?? 7);
const CHECKOUT = process.argv.includes('--checkout');

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}\n${r.stdout}${r.stderr}`);
  return r;
}

/** The bin directory of the programs to measure. */
function programs() {
  if (CHECKOUT) return join(ROOT, 'bin');
  if (arg('bin') !== undefined) return resolve(arg('bin'));
  if (arg('prefix') !== undefined) return join(resolve(arg('prefix')), 'bin');
  const prefix = join(OUT, 'nochange-prefix');
  const work = mkdtempSync(join(tmpdir(), 'smd-bench-pack-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  process.stdout.write('packing and installing ... ');
  const packed = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT, env }).stdout.replace(/^[^[]*/, ''));
  rmSync(prefix, { recursive: true, force: true });
  sh('npm', ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', join(work, packed[0].filename)], { cwd: work, env });
  rmSync(work, { recursive: true, force: true });
  console.log(prefix);
  return join(prefix, 'bin');
}

const BIN = programs();
/** The package root (PREFIX/bin holds symlinks into it). */
const PKG = dirname(dirname(realpathSync(join(BIN, 'smd-pull'))));
const NODE_DIR = dirname(process.execPath);

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const fmt = (x) => x.toFixed(2);

/** Runs argv through /usr/bin/time: wall, user + sys of it and its waited-for children. */
function timed(argv, env, cwd) {
  const f = join(tmpdir(), `smd-bench-time-${process.pid}`);
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S', '-o', f, ...argv], { env, cwd, encoding: 'utf8', maxBuffer: 1 << 28 });
  const [wall, user, sys] = readFileSync(f, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  rmSync(f, { force: true });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, wall, cpu: user + sys };
}

function series(label, argv, env, cwd, check = () => {}) {
  const xs = [];
  for (let i = 0; i < RUNS; i++) {
    const r = timed(argv, env, cwd);
    if (r.status !== 0) throw new Error(`${label}: exit ${r.status}\n${r.stdout}${r.stderr}`);
    check(r);
    xs.push(r);
  }
  const w = xs.map((x) => x.wall);
  const c = xs.map((x) => x.cpu);
  console.log(`${label.padEnd(34)} wall ${fmt(median(w))} s (min ${fmt(Math.min(...w))})   CPU ${fmt(median(c))} s (min ${fmt(Math.min(...c))})`);
}

/** The files of lib/ a bundle loads before it runs: itself and its static imports, transitively. */
function staticFiles(file, seen = new Map()) {
  if (seen.has(file)) return seen;
  const text = readFileSync(join(PKG, 'lib', file), 'utf8');
  seen.set(file, text.length);
  for (const m of text.matchAll(/^import\s*(?:[^'"();]*?\sfrom\s*)?"\.\/([^"]+)";?$/gm)) staticFiles(m[1], seen);
  return seen;
}

console.log(`programs: ${BIN}${existsSync(join(PKG, 'packages')) ? ' (a checkout: the compiled workspace)' : ''}; Node ${process.version}; ${RUNS} runs each`);
console.log('\n-- start-up: `--version`, medians');
const bareEnv = { PATH: `${BIN}:${NODE_DIR}:/usr/bin:/bin`, HOME: tmpdir() };
series('node -e 0', [process.execPath, '-e', '0'], bareEnv);
for (const c of ['smd-pull', 'smd-server', 'smd-client']) series(`${c} --version`, [join(BIN, c), '--version'], bareEnv);
// mddiff's --version goes through yargs; the command lines smd-server uses do not.
series('mddiff --sha1sum FILE', [join(BIN, 'mddiff'), '--sha1sum', fileURLToPath(import.meta.url)], bareEnv);
if (!existsSync(join(PKG, 'packages')) && existsSync(join(PKG, 'lib'))) {
  console.log('\n-- what each command loads (lib/ files, static imports)');
  for (const c of ['smd-pull', 'smd-server', 'smd-client', 'mddiff', 'smd-translate']) {
    const files = staticFiles(`${c}.js`);
    const bytes = [...files.values()].reduce((a, b) => a + b, 0);
    console.log(`${c.padEnd(14)} ${String(files.size).padStart(2)} files, ${(bytes / 1024).toFixed(0).padStart(4)} KB`);
  }
}

const probe = join(tmpdir(), `smd-bench-probe-${process.pid}.mjs`);
writeFileSync(probe, `import { appendFileSync } from 'node:fs';
process.on('exit', () => {
  const u = process.cpuUsage();
  appendFileSync(process.env.SMD_BENCH_PROBE, JSON.stringify({ program: (process.argv[1] ?? '').split('/').pop(), cpu: (u.user + u.system) / 1e6, life: performance.now() / 1000 }) + '\\n');
});
`);

for (const n of SIZES) {
  const dir = join(OUT, `nochange-${n}`);
  const home = join(dir, 'home');
  if (!existsSync(join(dir, 'generated'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(home, '.smd'), { recursive: true });
    sh(process.execPath, [join(ROOT, 'bench', 'gen-maildir.mjs'), join(home, 'Mail'), String(n), '42', '--small']);
    writeFileSync(join(home, '.smd', 'config.default'), [
      'SERVERNAME=localhost', 'SMDCLIENTOPTS=-l', 'CLIENTNAME=bench', 'MAILBOX=""',
      'MAILBOX_REMOTE=Mail', 'MAILBOX_LOCAL=Laptop/Mail',
      'TRANSLATOR_RL="smd-translate -m move -d RL default"', 'TRANSLATOR_LR="smd-translate -m move -d LR default"', '',
    ].join('\n'));
    writeFileSync(join(dir, 'generated'), '');
  }
  const env = { PATH: `${BIN}:${NODE_DIR}:/usr/bin:/bin`, HOME: home, LANG: 'C.UTF-8' };
  console.log(`\n-- ${n} messages (${home})`);
  const first = timed([join(BIN, 'smd-pull')], env, home);
  if (first.status !== 0) throw new Error(`first pull: ${first.stdout}${first.stderr}`);
  console.log(`${'pull to bring the copy up to date'.padEnd(34)} wall ${fmt(first.wall)} s   CPU ${fmt(first.cpu)} s   ${first.stdout.trim().split('\n').pop()}`);
  series('no-change pull', [join(BIN, 'smd-pull')], env, home, (r) => {
    if (!/ 0 new, 0 deleted/.test(r.stdout)) throw new Error(`not a no-change pull: ${r.stdout}`);
  });
  const probeLog = join(tmpdir(), `smd-bench-probe-${process.pid}.log`);
  rmSync(probeLog, { force: true });
  const p = timed([join(BIN, 'smd-pull')], { ...env, NODE_OPTIONS: `--import=${probe}`, SMD_BENCH_PROBE: probeLog }, home);
  if (p.status !== 0) throw new Error(`probe pull: ${p.stdout}${p.stderr}`);
  const procs = readFileSync(probeLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  console.log(`one more (with a probe): wall ${fmt(p.wall)} s, CPU ${fmt(p.cpu)} s; ` +
    procs.map((x) => `${x.program} ${fmt(x.cpu)} s CPU in ${fmt(x.life)} s`).join(', '));
  rmSync(probeLog, { force: true });
}
rmSync(probe, { force: true });
