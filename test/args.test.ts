/**
 * The argument parser of every command (packages/cli/src/args): the fast and
 * the yargs parser agree, upstream's grammar quirks, and for each of the ten
 * commands --help, --version, unknown options and extra arguments, run for real.
 */
import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { COMMAND_SPECS, parseFast, type CommandName, type CommandSpec, type ParsedArgs } from '@smd/cli/args/index';
import { parseFull } from '@smd/cli/args/full';
import { splitLeading } from '@smd/cli/args/fast';
import { SMD_CLIENT, SMD_PULL, SMD_SERVER, MDDIFF, SMD_TRANSLATE } from '@smd/cli/args/specs';
import { ROOT, tempDir } from './helpers/maildir-fixture.js';

const BIN = join(ROOT, 'bin');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

interface Run { status: number | null; stdout: string; stderr: string }
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(join(BIN, cmd), args, { env, cwd: env.HOME, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
  });
}

/**
 * Runs each command's main(argv) in turn in ONE child Node (the same modules bin/ runs,
 * without a Node start-up per case: 40 of them cost minutes on a loaded machine), with
 * its stdout and stderr captured. The exit code is what main resolves to.
 */
function runMains(cases: { cmd: string; argv: string[] }[], env: NodeJS.ProcessEnv): Promise<Run[]> {
  const commands = pathToFileURL(join(ROOT, 'packages/cli/dist/commands')).href;
  const harness = `
const cases = JSON.parse(process.env.SMD_CASES);
const realOut = process.stdout.write.bind(process.stdout);
const results = [];
for (const c of cases) {
  let stdout = '';
  let stderr = '';
  const capture = (add) => (chunk, enc, cb) => { add(String(chunk)); const f = typeof enc === 'function' ? enc : cb; if (f) f(); return true; };
  const [o, e] = [process.stdout.write, process.stderr.write];
  process.stdout.write = capture((x) => { stdout += x; });
  process.stderr.write = capture((x) => { stderr += x; });
  let status;
  try { status = await (await import(${JSON.stringify(commands)} + '/' + c.cmd + '.js')).main(c.argv); }
  catch (err) { status = 70; stderr += String(err && err.stack || err); }
  [process.stdout.write, process.stderr.write] = [o, e];
  results.push({ status, stdout, stderr });
}
realOut(JSON.stringify(results), () => process.exit(0));
`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', harness], {
      env: { ...env, SMD_CASES: JSON.stringify(cases) }, cwd: env.HOME, stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('close', () => {
      clearTimeout(timer);
      try { resolve(JSON.parse(out) as Run[]); } catch (e) { reject(new Error(`harness output: ${out}`, { cause: e })); }
    });
  });
}

/** A comparable picture of parsed arguments. */
function picture(spec: CommandSpec, a: ParsedArgs): Record<string, unknown> {
  const o: Record<string, unknown> = { args: [...a.args] };
  for (const opt of spec.options) {
    if (opt.value === undefined) { if (a.flag(opt.long)) o[opt.long] = true; } else if (a.values(opt.long).length > 0) o[opt.long] = [...a.values(opt.long)];
  }
  return o;
}

t.test('the fast parser and yargs read the same spec the same way', async (t) => {
  const cases: [CommandSpec, string[]][] = [
    [SMD_PULL, []], [SMD_PULL, ['-v']], [SMD_PULL, ['-v', '-s', '-t', '-d', '-n', 'work']], [SMD_PULL, ['work', '--no-delete']],
    [SMD_PULL, ['--', '-odd-endpoint']], [SMD_PULL, ['-']],
    [MDDIFF, ['--db-file', 'x.db', '--exclude', 'a', '--exclude', '-b', '-l', 'Mail', 'Other']],
    [MDDIFF, ['--max-mailno', '5', '--db-file', 'a', '--db-file', 'b', 'Mail']], [MDDIFF, ['--sha1sum', 'f', 'g']],
    [SMD_SERVER, ['-v', '--exclude', 'Mail/.Spam*', '-n', 'laptop', 'Mail']], [SMD_SERVER, ['laptop', '-v']],
    [SMD_SERVER, ['-v', 'laptop', '-x', '--y']], [SMD_SERVER, ['--override-db', '~/.smd/rename-db', '--stop-after-diff', '--no-move', 'c', 'Mail']],
    [SMD_CLIENT, ['-v', '-t', 'smd-translate -m move -d RL x', 'laptop', 'Mail']], [SMD_CLIENT, ['-l', '-d', 'laptop', 'Mail', 'Other']],
    [SMD_CLIENT, ['--listen-first', '--follow', '/srv/mail', '--follow', 'Other', '-t', 'cat', 'laptop', 'Mail']],
    [SMD_SERVER, ['--listen-first', '--follow', '/srv/mail', '-v', 'laptop', 'Mail']],
    [SMD_TRANSLATE, ['-m', 'move', '-d', 'LR', 'work']], [SMD_TRANSLATE, ['work', '-d', 'RL']],
  ];
  for (const [spec, argv] of cases) {
    const fast = parseFast(spec, argv);
    t.ok(fast !== null, `${spec.name} ${argv.join(' ')}: the fast parser takes it`);
    const full = await parseFull(spec, argv);
    t.equal(full.kind, 'ok', `${spec.name} ${argv.join(' ')}: so does yargs`);
    if (fast !== null && full.kind === 'ok') t.same(picture(spec, fast), picture(spec, full.args), `${spec.name} ${argv.join(' ')}: same result`);
  }
  // what the fast parser leaves to yargs, and what yargs then makes of it
  const slow: [CommandSpec, string[], Record<string, unknown> | RegExp][] = [
    [SMD_PULL, ['-vd', 'work'], { args: ['work'], verbose: true, 'dry-run': true }],
    [MDDIFF, ['--exclude=a', '--db-file=x', 'Mail'], { args: ['Mail'], exclude: ['a'], 'db-file': ['x'] }],
    [SMD_CLIENT, ['--translator=cat', 'laptop', 'Mail'], { args: ['laptop', 'Mail'], translator: ['cat'] }],
    [SMD_PULL, ['a', 'b'], /unexpected argument "b": only one ENDPOINT/],
    [SMD_PULL, ['-x'], /unknown option -x/],
    [SMD_PULL, ['--bogus', '-q'], /unknown options --bogus, -q/],
    [MDDIFF, ['--db-file', '', 'Mail'], /--db-file needs a value/],
    [MDDIFF, ['Mail', '--db-file'], /--db-file needs a value/],
    [MDDIFF, [], /missing PATH/],
    [SMD_SERVER, ['laptop'], /missing arguments: ENDPOINT and at least one MAILBOX/],
    [SMD_SERVER, ['--bogus', 'laptop', 'Mail'], /unknown option --bogus/],
    [SMD_CLIENT, ['-t', 'laptop', 'Mail'], /missing arguments/],
    [SMD_TRANSLATE, ['-m', 'move'], /missing one ENDPOINT/],
  ];
  for (const [spec, argv, want] of slow) {
    t.equal(parseFast(spec, argv), null, `${spec.name} ${argv.join(' ')}: left to yargs`);
    const full = await parseFull(spec, argv);
    if (want instanceof RegExp) t.match(full.kind === 'error' ? full.message : full.kind, want, `${spec.name} ${argv.join(' ')}`);
    else t.same(full.kind === 'ok' ? picture(spec, full.args) : full, want, `${spec.name} ${argv.join(' ')}`);
  }
});

t.test("smd-server/smd-client: options only while more than two arguments remain (upstream's rule)", async (t) => {
  const server = (argv: string[]): Record<string, unknown> | null => { const a = parseFast(SMD_SERVER, argv); return a && picture(SMD_SERVER, a); };
  t.same(server(['-v', 'laptop']), { args: ['-v', 'laptop'] }, 'two arguments: no option, -v is the endpoint');
  t.same(server(['laptop', '-n']), { args: ['laptop', '-n'] }, 'a mailbox named like an option, last');
  t.same(server(['-n', 'laptop', '--no-move']), { args: ['laptop', '--no-move'], 'no-delete': true }, 'the first argument ends the options');
  t.same(server(['-v', '-d', 'laptop', 'Mail']), { args: ['laptop', 'Mail'], verbose: true, 'dry-run': true });
  t.same(splitLeading(SMD_CLIENT, ['-t', 'tr x', '-v', 'laptop', 'Mail']), { options: ['-t', 'tr x', '-v'], args: ['laptop', 'Mail'] });
  t.same(splitLeading(SMD_CLIENT, ['-vt', 'tr', 'laptop', 'Mail']), { options: ['-vt', 'tr'], args: ['laptop', 'Mail'] }, 'a cluster ending in -t takes its value');
  t.same(splitLeading(SMD_SERVER, ['--help']), { options: ['--help'], args: [] }, 'a sole --help is an option');
  const full = await parseFull(SMD_SERVER, ['-v', 'laptop']);
  t.same(full.kind === 'ok' ? picture(SMD_SERVER, full.args) : full, { args: ['-v', 'laptop'] }, 'yargs keeps the rule');
});

/** Exit code of a usage error, as upstream (not read from the spec, which it checks). */
const USAGE_EXIT: Record<CommandName, number> = {
  'mddiff': 1, 'smd-server': 2, 'smd-client': 2, 'smd-pull': 1, 'smd-push': 1, 'smd-loop': 1, 'smd-check-conf': 1,
  'smd-translate': 1, 'smd-uniform-names': 1, 'smd-restricted-shell': 1,
};

t.test('every command: --help lists every option, --version, unknown options and extra arguments', async (t) => {
  const home = tempDir(t, 'smd-args-');
  const env = { PATH: process.env.PATH, HOME: home, LANG: 'C.UTF-8' };
  const names = Object.keys(COMMAND_SPECS) as CommandName[];
  t.same([...names].sort(), ['mddiff', 'smd-check-conf', 'smd-client', 'smd-loop', 'smd-pull', 'smd-push', 'smd-restricted-shell', 'smd-server', 'smd-translate', 'smd-uniform-names'], 'the ten commands');
  const cases: { cmd: string; argv: string[]; check: (r: Run) => void }[] = [];
  for (const name of names) {
    const spec: CommandSpec = COMMAND_SPECS[name];
    cases.push({ cmd: name, argv: ['--help'], check: (h) => {
      t.equal(h.status, 0, `${name} --help exits 0`);
      t.match(h.stdout, new RegExp(`^Usage: ${name}`), `${name} --help: usage first, on stdout`);
      for (const o of [...spec.options, { long: 'help', short: 'h' }, { long: 'version' }]) {
        const shown = h.stdout.split('\n').find((l) => new RegExp(`^  ${o.short !== undefined ? `-${o.short}, ` : '    '}--${o.long}( |$)`).test(l));
        t.ok(shown !== undefined, `${name} --help lists ${o.short !== undefined ? `-${o.short}, ` : ''}--${o.long}`);
      }
    } });
    cases.push({ cmd: name, argv: ['--version'], check: (v) => {
      t.same({ status: v.status, stdout: v.stdout }, { status: 0, stdout: `${VERSION}\n` }, `${name} --version`);
    } });
    // an unknown option: in front of valid arguments (for smd-server/smd-client it must be
    // followed by two, or it would be an argument)
    const valid = Array.from({ length: Math.max(spec.args.min, name === 'smd-server' || name === 'smd-client' ? 2 : 0) }, (_, k) => `arg${k}`);
    cases.push({ cmd: name, argv: ['--no-such-option', ...valid], check: (r) => {
      const out = spec.errorsTo === 'stderr' ? r.stderr : r.stdout;
      t.equal(r.status, USAGE_EXIT[name], `${name} --no-such-option: exit ${USAGE_EXIT[name]}`);
      t.match(out, new RegExp(`^${spec.errorsTo === 'translator' ? 'ERROR\\n' : ''}${name}: unknown option --no-such-option\\nUsage: ${name}`), `${name}: message and usage`);
      t.notMatch(r.stdout + r.stderr, /internal error|\n\s+at /, `${name}: no stack trace`);
    } });
    if (Number.isFinite(spec.args.max)) {
      const extra = Array.from({ length: spec.args.max + 1 }, (_, k) => `extra${k}`);
      cases.push({ cmd: name, argv: extra, check: (r) => {
        t.equal(r.status, USAGE_EXIT[name], `${name} ${extra.join(' ')}: exit ${USAGE_EXIT[name]}`);
        t.match(spec.errorsTo === 'stderr' ? r.stderr : r.stdout, new RegExp(`${name}: unexpected argument "extra${spec.args.max}"`), `${name}: names the extra argument`);
      } });
    } else {
      const few = Array.from({ length: spec.args.min - 1 }, (_, k) => `arg${k}`);
      cases.push({ cmd: name, argv: few, check: (r) => {
        t.equal(r.status, USAGE_EXIT[name], `${name} with ${few.length} argument(s): exit ${USAGE_EXIT[name]}`);
        t.match(spec.errorsTo === 'stderr' ? r.stderr : r.stdout, new RegExp(`${name}: missing`), `${name}: says what is missing`);
      } });
    }
  }
  const results = await runMains(cases, env);
  cases.forEach((c, k) => c.check(results[k]));
  t.notOk(existsSync(join(home, '.smd')), 'no usage error touched ~/.smd');

  // and through bin/ and the launcher, for real
  const help = await run('smd-client', ['--help'], env);
  t.same({ status: help.status, stdout: help.stdout }, { status: 0, stdout: results[cases.findIndex((c) => c.cmd === 'smd-client' && c.argv[0] === '--help')].stdout }, 'bin/smd-client --help');
  const version = await run('smd-client', ['--version'], env);
  t.same({ status: version.status, stdout: version.stdout }, { status: 0, stdout: `${VERSION}\n` }, 'bin/smd-client --version');
  const bad = await run('smd-server', ['--no-such-option', 'laptop', 'Mail'], env);
  t.equal(bad.status, 2, 'bin/smd-server --no-such-option laptop Mail: exit 2');
  t.match(bad.stderr, /^smd-server: unknown option --no-such-option\n/);
});

t.test('smd-pull a b refuses and writes no template', async (t) => {
  const home = tempDir(t, 'smd-args-');
  const env = { PATH: process.env.PATH, HOME: home };
  // (smd-push and the others: in the test above, which runs them without a Node each)
  const r = await run('smd-pull', ['a', 'b'], env);
  t.equal(r.status, 1, 'smd-pull a b');
  t.match(r.stderr, /^smd-pull: unexpected argument "b": only one ENDPOINT may be given\nUsage: smd-pull /);
  t.notOk(existsSync(join(home, '.smd', 'config.a')), 'no config.a');
  t.notOk(existsSync(join(home, '.smd', 'config.b')), 'no config.b');
  // yargs would speak the user's language around our English texts
  const de = await run('smd-pull', ['--bogus'], { ...env, LANG: 'de_DE.UTF-8', LC_ALL: 'de_DE.UTF-8' });
  t.match(de.stderr, /^smd-pull: unknown option --bogus\n/, 'English whatever LANG says');
  // one endpoint is fine: the template is written (and -t exits 0)
  const one = await run('smd-pull', ['-t', 'b'], env);
  t.equal(one.status, 0, one.stdout + one.stderr);
  t.ok(existsSync(join(home, '.smd', 'config.b')));
});

t.test('the valid common case does not load yargs (start-up: bench/README.md)', async (t) => {
  const home = tempDir(t, 'smd-args-');
  // a module hook that reports every module that is resolved to a path inside yargs
  const hooks = join(home, 'hooks.mjs');
  writeFileSync(hooks, `import { writeSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (/\\/node_modules\\/yargs(-parser)?\\//.test(r.url)) writeSync(2, 'LOADED ' + r.url + '\\n');
  return r;
}
`);
  const register = join(home, 'register.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  const env = { PATH: process.env.PATH, HOME: home, NODE_OPTIONS: `--import=${register}` };
  const loadsYargs = async (cmd: string, args: string[]): Promise<boolean> => /LOADED .*yargs/.test((await run(cmd, args, env)).stderr);
  // valid command lines (smd-client and smd-server then stop at the handshake: stdin is empty)
  t.notOk(await loadsYargs('smd-client', ['-v', '-t', 'cat', 'laptop', 'Mail']), 'smd-client, valid');
  t.notOk(await loadsYargs('smd-server', ['-v', '--exclude', 'Mail/.Spam', 'laptop', 'Mail']), 'smd-server, valid');
  t.notOk(await loadsYargs('smd-pull', ['-s', 'nothing-here']), 'smd-pull, valid');
  t.notOk(await loadsYargs('mddiff', ['--db-file', join(home, 'db'), home]), 'mddiff, valid');
  // and the check can see it when it happens
  t.ok(await loadsYargs('smd-client', ['--help']), 'smd-client --help loads yargs');
});
