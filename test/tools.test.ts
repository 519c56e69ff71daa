import t from 'tap';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { splitCommandLine, checkArguments, allowedProgram, RefusedError } from '@smd/cli/commands/smd-restricted-shell';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin');
const made: string[] = [];
const tmp = (): string => { const d = mkdtempSync(join(tmpdir(), 'smd-tools-')); made.push(d); return d; };
t.teardown(() => { for (const d of made) rmSync(d, { recursive: true, force: true }); });

interface Result { code: number | null; stdout: string; stderr: string }

function start(prog: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(join(BIN, prog), args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
}

function collect(child: ChildProcess, input?: string, timeoutMs = 20000): Promise<Result> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString('latin1'); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  if (input !== undefined) child.stdin!.end(Buffer.from(input, 'latin1'));
  else child.stdin!.end();
  return new Promise((res) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => { clearTimeout(timer); res({ code, stdout, stderr }); });
  });
}

const run = (prog: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<Result> => collect(start(prog, args, env), input);

function baseEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: home, ...extra };
}

t.test('smd-translate', async (t) => {
  const home = tmp();
  mkdirSync(join(home, '.smd'));
  writeFileSync(join(home, '.smd', 'config.tr'), [
    '# translator-mode endpoint',
    'SERVERNAME=s', 'CLIENTNAME=c', 'MAILBOX=""',
    'MAILBOX_LOCAL="Mail/"', "MAILBOX_REMOTE='Maildir/'",
    'TRANSLATOR_LR="smd-translate -m oimap-dovecot -d LR tr"',
    'TRANSLATOR_RL="smd-translate -m oimap-dovecot -d RL tr"',
  ].join('\n'));
  writeFileSync(join(home, '.smd', 'config.plain'), 'MAILBOX=Mail/\n');
  const env = baseEnv(home);
  const cases: [string, string, string, string, string][] = [
    // mode, dir, endpoint, input, expected output
    ['oimap-dovecot', 'LR', 'tr', 'Mail/cur\nMail/foo/new\nMail/a.b/cur\n', 'Maildir/cur\nMaildir/.foo/new\nMaildir/.a.b/cur\n'],
    ['default', 'RL', 'tr', 'Maildir/cur\nMaildir/.foo/new\nMaildir/.a.b/cur\n', 'Mail/cur\nMail/foo/new\nMail/a.b/cur\n'],
    ['nodots', 'LR', 'tr', 'Mail/tmp\nMail/a/b/cur\n', 'Maildir/tmp\nMaildir/.a.b/cur\n'],
    ['nodots', 'RL', 'tr', 'Maildir/.a.b/cur\n', 'Mail/a/b/cur\n'],
    ['nodots2', 'LR', 'tr', 'Mail/..a.b/cur\n', 'Maildir/a/b/cur\n'],
    ['nodots2', 'RL', 'tr', 'Maildir/a/b/cur\n', 'Mail/..a.b/cur\n'],
    ['move', 'LR', 'tr', 'Mail/x/cur\n', 'Maildir/x/cur\n'],
    ['move', 'RL', 'tr', 'Maildir/.x/cur\n', 'Mail/.x/cur\n'],
    ['cat', 'LR', 'tr', 'what/ever\n', 'what/ever\n'],
    ['move', 'LR', 'plain', 'Mail/x/cur\n', 'Mail/x/cur\n'],
    ['default', 'LR', 'tr', 'Mail/caf\xe9 n/cur\n', 'Maildir/.caf\xe9 n/cur\n'],
  ];
  for (const [m, d, ep, input, out] of cases) {
    const r = await run('smd-translate', ['-m', m, '-d', d, ep], env, input);
    t.same({ code: r.code, stdout: r.stdout }, { code: 0, stdout: out }, `${m} ${d} ${JSON.stringify(input)}`);
  }

  // one line in, one line out, before stdin ends (translators must be line-buffered)
  const child = start('smd-translate', ['-m', 'default', '-d', 'LR', 'tr'], env);
  const first = await new Promise<string>((res) => {
    child.stdout!.once('data', (d: Buffer) => res(d.toString()));
    child.stdin!.write('Mail/x/cur\n');
  });
  t.equal(first, 'Maildir/.x/cur\n', 'answered while stdin is still open');
  child.stdin!.end();
  await new Promise((r) => child.once('close', r));

  const errs: [string[], string, RegExp][] = [
    [['-m', 'default', '-d', 'LR', 'tr'], 'Elsewhere/cur\n', /not under/],
    [['-m', 'bogus', '-d', 'LR', 'tr'], '', /unknown mode/],
    [['-m', 'default', '-d', 'XX', 'tr'], '', /LR or RL/],
    [['-m', 'default', '-d', 'LR', 'missing'], '', /No config file|missing/],
    [['-m', 'nodots', '-d', 'LR', 'tr'], 'Mail/a.b/cur\n', /dot/],
  ];
  for (const [args, input, re] of errs) {
    const r = await run('smd-translate', args, env, input);
    t.equal(r.code, 1, args.join(' '));
    t.equal(r.stdout.split('\n')[0], 'ERROR', 'ERROR first on stdout');
    t.match(r.stdout, re);
  }
  const h = await run('smd-translate', ['--help'], env);
  t.equal(h.code, 0);
  t.match(h.stdout, /Usage: smd-translate/);
});

t.test('smd-restricted-shell', async (t) => {
  const home = tmp();
  const rs = (cmd: string | undefined) => run('smd-restricted-shell', [], baseEnv(home, cmd === undefined ? {} : { SSH_ORIGINAL_COMMAND: cmd }));
  const refused = [
    undefined,
    'bash -i',
    'ls; smd-server x Mail',
    '/usr/local/bin/smd-server x Mail',
    'smd-server --dump-stdin ~/.ssh/authorized_keys x y',
    'smd-server --override-db /etc/passwd x Mail',
    'smd-server --get-mddiff-cmdline x Mail',
    'smd-client -t "sh -c id" x Mail',
    'smd-client --translator=cat x Mail',
    'smd-client --rename-only x Mail',
    'smd-server x /etc',
    'smd-server x Mail/../../etc',
    'smd-server x Mail%2F..%2F..',
    'smd-server x $(id)',
    'smd-server x `id`',
    'smd-server x Mail > /tmp/f',
    'smd-server -vd x Mail',
    'smd-client "x" "Mail" | sh',
  ];
  for (const cmd of refused) {
    const r = await rs(cmd);
    t.equal(r.code, 1, `refused: ${cmd}`);
    t.match(r.stderr, /refused/);
    t.equal(r.stdout, '');
  }
  // allowed: the program runs (whatever it then says), the shell itself does not refuse
  for (const cmd of ['smd-client --version', `${BIN}/smd-server --help`, 'smd-server -v --exclude "Mail/.Spam*" laptop Mail']) {
    const r = await rs(cmd);
    t.notMatch(r.stderr, /smd-restricted-shell: refused/, `allowed: ${cmd}`);
  }

  // Paths are judged by their spelling, never by the file system: whether /tmp/<dir> exists must not change the answer.
  const existing = tmp();
  mkdirSync(join(home, '.smd'), { recursive: true });
  // both spell /tmp; only the first walks through directories that exist
  for (const tmpDir of [`${existing}/..`, `${existing}/missing/../..`]) {
    const db = await rs(`smd-server --override-db ${tmpDir}/${basename(home)}/.smd/rename-db x Mail`);
    t.same(db, { code: 1, stdout: '', stderr: 'smd-restricted-shell: refused: --override-db is only allowed with ~/.smd/rename-db\n' }, `${tmpDir}: rename-db`);
  }

  // the pure pieces
  t.same(splitCommandLine(`smd-server --exclude 'a b*' "c\\"d" e\\ f ~/x`, '/h'), ['smd-server', '--exclude', 'a b*', 'c"d', 'e f', '/h/x']);
  for (const nl of ["x 'a\nb'", 'x "a\nb"', 'x a\\\nb', 'x\nb']) t.throws(() => splitCommandLine(nl, '/h'), RefusedError, `a newline: ${JSON.stringify(nl)}`);
  t.equal(allowedProgram('smd-client', BIN), 'smd-client');
  t.equal(allowedProgram(join(BIN, 'smd-server'), BIN), 'smd-server');
  t.equal(allowedProgram(join(BIN, 'mddiff'), BIN), null);
  t.equal(allowedProgram('/tmp/smd-server', BIN), null);
  t.same(checkArguments('smd-server', ['--no-move', '--stop-after-diff', '--override-db', '/h/.smd/rename-db', 'c', 'Mail'], '/h'),
    ['--no-move', '--stop-after-diff', '--override-db', '/h/.smd/rename-db', 'c', 'Mail']);
  t.same(checkArguments('smd-server', ['--dump-stdin', '.smd/rename-db', 'c', 'Mail'], '/h'), ['--dump-stdin', '/h/.smd/rename-db', 'c', 'Mail'],
    'relative to HOME; the program gets the absolute path');
  t.same(checkArguments('smd-server', ['--dump-stdin', '~/.smd/rename-db', 'c', 'Mail'], '/h'), ['--dump-stdin', '/h/.smd/rename-db', 'c', 'Mail'],
    'a literal ~/ (quoted by the sender) means HOME, as smd-server reads it');
  t.throws(() => checkArguments('smd-server', ['--override-db', '/x/../h/.smd/rename-db', 'c', 'Mail'], '/h'), RefusedError);
  t.throws(() => checkArguments('smd-server', ['--override-db', '/h//.smd/rename-db', 'c', 'Mail'], '/h'), RefusedError);
  t.throws(() => checkArguments('smd-server', ['--dump-stdin', '~/.smd/./rename-db', 'c', 'Mail'], '/h'), RefusedError);
  t.equal(allowedProgram(`/x/..${BIN}/smd-server`, BIN), null, 'a program path must be spelled plainly');
  t.throws(() => checkArguments('smd-server', ['--dump-stdin', '/h/.smd/other', 'c', 'Mail'], '/h'), RefusedError);
  t.doesNotThrow(() => checkArguments('smd-client', ['-v', '-d', '-l', 'c', 'Mail', 'Other'], '/h'));
  t.doesNotThrow(() => checkArguments('smd-server', ['--follow', 'Archive', 'c', 'Mail'], '/h'), '--follow below HOME');
  t.throws(() => checkArguments('smd-client', ['--follow', '/', 'c', 'Mail'], '/h'), RefusedError, '--follow elsewhere');
  t.throws(() => checkArguments('smd-server', ['--follow', 'a/../..', 'c', 'Mail'], '/h'), RefusedError);
  t.doesNotThrow(() => checkArguments('smd-server', ['c', '--dump-stdin'], '/h'), 'after the first positional everything is positional (as the programs parse it)');
});

/** Writes a fake program (sh script) that logs its calls and behaves by call number. */
function fake(dir: string, name: string, body: string): void {
  writeFileSync(join(dir, name), `#!/bin/sh\nn=$(cat "${dir}/${name}.count" 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > "${dir}/${name}.count"\necho "$0 $*" >> "${dir}/calls"\n${body}\n`, { mode: 0o755 });
}

const TRANSIENT = 'default: smd-client@localhost: TAGS: error::context(receive) probable-cause(network) human-intervention(avoidable) suggested-actions(retry)';
const PERMANENT = 'default: smd-server@host: TAGS: error::context(handshake) probable-cause(db-mismatch) human-intervention(necessary) suggested-actions(run(rm x))';

async function waitFor(pred: () => boolean, ms = 15000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

function count(dir: string, name: string): number {
  try { return Number(readFileSync(join(dir, `${name}.count`), 'utf8').trim()); } catch { return 0; }
}

t.test('smd-loop', async (t) => {
  const children: ChildProcess[] = [];
  t.teardown(() => { for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); });
  const loop = (home: string, fakes: string, args: string[] = []) => {
    const c = start('smd-loop', args, baseEnv(home, { PATH: `${fakes}:${process.env.PATH}`, SMD_LOOP_MINUTE_SECONDS: '0.1' }));
    children.push(c);
    return c;
  };
  const setup = (loopFile: string | null) => {
    const home = tmp();
    const fakes = join(home, 'fakebin');
    mkdirSync(fakes, { recursive: true });
    if (loopFile !== null) { mkdirSync(join(home, '.smd'), { recursive: true }); writeFileSync(join(home, '.smd', 'loop'), loopFile); }
    return { home, fakes };
  };

  await t.test('-t writes the template; missing config exits 1', async (t) => {
    const a = setup(null);
    const r = await collect(loop(a.home, a.fakes, ['-t']));
    t.equal(r.code, 0);
    t.match(readFileSync(join(a.home, '.smd', 'loop'), 'utf8'), /^3 10 default$/m);
    const b = setup(null);
    const r2 = await collect(loop(b.home, b.fakes));
    t.equal(r2.code, 1);
    t.match(r2.stdout, new RegExp(join(b.home, '.smd', 'loop')));
    t.ok(existsSync(join(b.home, '.smd', 'loop')));
    const c = setup('0 0 default\n');
    const r3 = await collect(loop(c.home, c.fakes));
    t.equal(r3.code, 1);
    t.match(r3.stderr, /nothing to do/);
    const d = setup('# ok\n1 2\n');
    const r4 = await collect(loop(d.home, d.fakes));
    t.equal(r4.code, 1);
    t.match(r4.stderr, /loop:2:/);
  });

  // The loop as a service (retries, pauses, signals) with real syncs: loop-*.test.ts. Here: fake jobs.
  await t.test('transient failures are retried and never end the loop; one instance; SIGTERM exits 0', async (t) => {
    const { home, fakes } = setup('1 0 default\n');
    fake(fakes, 'smd-pull', `if [ $n -le 2 ]; then echo "${TRANSIENT}"; exit 1; fi\necho "pull ok $n"`);
    const child = loop(home, fakes, ['-v']);
    const res = collect(child);
    t.ok(await waitFor(() => count(fakes, 'smd-pull') >= 4), 'kept running after two transient failures in a row');
    const second = await collect(loop(home, fakes));
    t.equal(second.code, 1, 'second loop refused');
    t.match(second.stderr, /another smd-loop is running \(pid \d+\)/);
    child.kill('SIGTERM');
    const r = await res;
    t.equal(r.code, 0, 'SIGTERM: exit 0');
    t.match(r.stdout, /pull ok 3/);
    t.notMatch(r.stdout.split('\n').filter((l) => !l.includes('output:')).join('\n'), /TAGS/, 'transient failure output not printed as a report');
    t.match(readFileSync(join(fakes, 'calls'), 'utf8'), /smd-pull -s default/);
    const log = readFileSync(join(home, '.smd', 'log', 'loop.log'), 'utf8');
    t.match(log, /: output: pull ok 3/);
    t.equal(log.split('\n').filter((l) => /failed with a transient error/.test(l)).length, 1, 'the streak is logged once');
    t.match(log, /succeeded again after 2 failed tries/);
    t.notOk(existsSync(join(home, '.smd', 'loop.lock')), 'loop.lock released');
  });

  await t.test('a failure that needs a human: output printed once, pull before push, that endpoint paused, the loop runs on', async (t) => {
    const { home, fakes } = setup('1 1 default\n');
    fake(fakes, 'smd-pull', 'echo "pulled"');
    fake(fakes, 'smd-push', `echo "${PERMANENT}"; echo "push broke" >&2; exit 1`);
    const child = loop(home, fakes);
    const res = collect(child);
    t.ok(await waitFor(() => count(fakes, 'smd-push') >= 1), 'the push ran');
    await new Promise((r) => setTimeout(r, 1000));
    t.equal(count(fakes, 'smd-push'), 1, 'not retried at every slot (a paused endpoint is checked every 30 minutes)');
    t.equal(child.exitCode, null, 'the loop runs on');
    child.kill('SIGTERM');
    const r = await res;
    t.equal(r.code, 0);
    t.match(r.stdout, /pulled/);
    t.match(r.stdout, /db-mismatch/);
    t.match(r.stdout, /push broke/);
    t.match(r.stderr, /smd-loop: default needs a human: /);
    const calls = readFileSync(join(fakes, 'calls'), 'utf8').trim().split('\n').map((l) => l.replace(/^.*\//, ''));
    t.same(calls.slice(0, 2), ['smd-pull -s default', 'smd-push -s default'], 'pull before push');
    t.notOk(existsSync(join(home, '.smd', 'loop.lock')));
  });

  await t.test('stale loop.lock is taken over', async (t) => {
    const { home, fakes } = setup('1 0 default\n');
    writeFileSync(join(home, '.smd', 'loop.lock'), '999999999\n');
    fake(fakes, 'smd-pull', 'echo "x"');
    const child = loop(home, fakes);
    const res = collect(child);
    t.ok(await waitFor(() => count(fakes, 'smd-pull') >= 1), 'the loop runs');
    child.kill('SIGTERM');
    const r = await res;
    t.equal(r.code, 0);
    t.match(r.stdout, /Found lockfile of a dead instance\. Ignored\./);
  });
});
