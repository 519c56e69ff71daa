import t, { type Test } from 'tap';
type TapTest = Test;
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, existsSync, statSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import {
  SmdHome, parseEndpointConfig, loadEndpointConfig, ConfigError, ConfigMissingError, parseShellAssignments,
  configTemplate, loopTemplate, writeTemplate, Lock, LockBusyError, SYNC_LOCK_PROGRAMS, runHooks, runHookDir, describeHookFailure, listHooks,
  createTranslator, ProcessTranslator, IdentityTranslator, TranslatorError, translateName, TranslateError,
  parseLoopConfig,
} from '@smd/endpoint';

function throwsWith(t: TapTest, fn: () => unknown, pred: (e: unknown) => boolean, msg?: string): void {
  try {
    fn();
  } catch (e) {
    t.ok(pred(e), msg ?? 'expected error', { error: String(e) });
    return;
  }
  t.fail(`${msg ?? ''}: did not throw`);
}

async function rejectsWith(t: TapTest, p: Promise<unknown>, pred: (e: unknown) => boolean, msg?: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    t.ok(pred(e), msg ?? 'expected rejection', { error: String(e) });
    return;
  }
  t.fail(`${msg ?? ''}: did not reject`);
}

const made: string[] = [];
const tmp = (): string => { const d = mkdtempSync(join(tmpdir(), 'smd-endpoint-')); made.push(d); return d; };
t.teardown(() => { for (const d of made) rmSync(d, { recursive: true, force: true }); });
const HOST = hostname();

function envFor(home: string): NodeJS.ProcessEnv {
  return { HOME: home, USER: 'alice', PATH: process.env.PATH };
}

t.test('shell subset parser', async (t) => {
  const env = { HOME: '/home/a', USER: 'alice', PATH: '/bin' };
  const text = [
    '# a comment',
    '',
    'A=plain   # trailing comment',
    "B='single $A \"q\"'",
    'C="double $A ${USER} \\$x \\"q\\" \\\\"',
    'export D=$A-${A}x',
    'E=~/Mail',
    'F=`hostname`-default',
    'G=$(hostname -s)',
    'H="a b"c\' d\'',
    'I=x\\ y',
    'J=',
    'K=$UNSET_VAR_X',
    'L=1; M=2',
    'export N',
    'O="multi',
    'line"',
    'P=after',
  ].join('\n');
  const a = parseShellAssignments(text, 'cfg', env);
  const v = Object.fromEntries(a.map((x) => [x.name, x.value]));
  t.equal(v.A, 'plain');
  t.equal(v.B, 'single $A "q"');
  t.equal(v.C, 'double plain alice $x "q" \\');
  t.equal(v.D, 'plain-plainx');
  t.equal(v.E, '/home/a/Mail');
  t.equal(v.F, `${HOST}-default`);
  t.equal(v.G, HOST.split('.')[0]);
  t.equal(v.H, 'a bc d');
  t.equal(v.I, 'x y');
  t.equal(v.J, '');
  t.equal(v.K, '');
  t.equal(v.L, '1');
  t.equal(v.M, '2');
  t.equal(v.O, 'multi\nline');
  t.equal(a.find((x) => x.name === 'P')!.line, 18, 'line numbers survive multi-line quotes');
  t.equal(a.find((x) => x.name === 'D')!.exported, true);

  const bad: [string, number, RegExp][] = [
    ['A=1\nif true; then B=2; fi', 2, /control structures/],
    ['A=1\n\nls -l', 3, /commands are not supported/],
    ['A=`whoami`', 1, /command substitution.*whoami/],
    ['A=$(rm -rf x)', 1, /command substitution/],
    ['A=1 | cat', 1, /pipes/],
    ['A=1 > f', 1, /redirections/],
    ['A=1 && B=2', 1, /&&/],
    ['f() { A=1; }', 1, /subshells and functions|commands/],
    ["A='open", 1, /unterminated single quote/],
    ['A=${B:-x}', 1, /parameter expansion/],
    ['A=$1', 1, /special parameter/],
    ['for x in a; do A=1; done', 1, /control structures/],
  ];
  for (const [src, line, re] of bad) {
    throwsWith(t, () => parseShellAssignments(src, 'the-file', env), (e: unknown) => e instanceof ConfigError && e.line === line && e.file === 'the-file' && re.test(e.message) && e.message.startsWith(`the-file:${line}:`), src);
  }
});

t.test('endpoint config: variables, post-processing, validation', async (t) => {
  const home = tmp();
  const env = envFor(home);
  const full = [
    'SERVERNAME=smd-server-x',
    'CLIENTNAME=`hostname`-x',
    'MAILBOX="Mail/ Other%20Box/"',
    'EXCLUDE="Mail/.Spam Mail/.Trash%20Can"',
    'EXCLUDE_REMOTE="R/.Junk"',
    'SMDCLIENTOPTS="-v"',
    'SMDSERVEROPTS="-n"',
    'DEBUG=true',
    'SSH="ssh -p 2222"',
    'TRANSPORT=ssh2',
    'CUSTOM=kept',
  ].join('\n');
  const c = parseEndpointConfig(full, 'f', 'x', { env });
  t.equal(c.serverName, 'smd-server-x');
  t.equal(c.clientName, `${HOST}-x`);
  t.equal(c.mailbox, 'Mail/ Other%20Box', 'one trailing / stripped from the whole value');
  t.same(c.mailboxLocal, ['Mail/', 'Other%20Box']);
  t.same(c.mailboxRemote, ['Mail/', 'Other%20Box']);
  t.equal(c.translatorMode, false);
  t.same(c.translatorLR, { raw: '', command: 'cat', identity: true });
  t.same(c.exclude, ['Mail/.Spam', 'Mail/.Trash%20Can'], '%20 stays encoded');
  t.same(c.excludeLocal, c.exclude, 'EXCLUDE_LOCAL defaults to EXCLUDE');
  t.same(c.excludeRemote, ['R/.Junk']);
  t.same(c.smdClientOpts, ['-v']);
  t.same(c.smdServerOpts, ['-n']);
  t.equal(c.debug, true);
  t.same(c.ssh, ['ssh', '-p', '2222']);
  t.equal(c.transport, 'ssh2');
  t.equal(c.localSync, false);
  t.equal(c.raw.CUSTOM, 'kept');
  t.equal(c.raw.MAILBOX, 'Mail/ Other%20Box/', 'raw values kept');

  const d = parseEndpointConfig('SERVERNAME=localhost\nCLIENTNAME=c\nMAILBOX=Mail\nSMDCLIENTOPTS=-l', 'f', 'x', { env });
  t.equal(d.localSync, true);
  t.same(d.ssh, ['ssh']);
  t.equal(d.transport, 'ssh');
  t.equal(d.debug, false);
  const e = parseEndpointConfig('SERVERNAME=localhost\nCLIENTNAME=c\nMAILBOX=Mail', 'f', 'x', { env });
  t.equal(e.localSync, false);
  t.equal(e.localhostWithoutLocalSync, true);

  // translator mode
  writeFileSync(join(home, 'mytr'), '#!/bin/sh\ncat\n', { mode: 0o755 });
  const tr = parseEndpointConfig([
    'SERVERNAME=s', 'CLIENTNAME=c', 'MAILBOX=',
    'MAILBOX_LOCAL=Mail/', 'MAILBOX_REMOTE="Maildir/"',
    'TRANSLATOR_LR="mytr -x"', 'TRANSLATOR_RL="sh -c cat"',
  ].join('\n'), 'f', 'x', { env });
  t.equal(tr.translatorMode, true);
  t.same(tr.mailboxLocal, ['Mail']);
  t.same(tr.mailboxRemote, ['Maildir']);
  t.equal(tr.translatorLR.command, join(home, 'mytr -x'), '$HOME/<cmd> when executable there');
  t.equal(tr.translatorRL.command, 'sh -c cat', 'on PATH');
  const abs = parseEndpointConfig('SERVERNAME=s\nCLIENTNAME=c\nMAILBOX_LOCAL=a\nMAILBOX_REMOTE=b\nTRANSLATOR_LR="/x/y z"\nTRANSLATOR_RL=cat', 'f', 'x', { env });
  t.equal(abs.translatorLR.command, '/x/y z', 'absolute path as is');
  t.equal(abs.translatorRL.identity, true);

  const errs: [string, RegExp, number | null][] = [
    ['MAILBOX=Mail\nMAILBOX_LOCAL=x', /both set/, 2],
    ['MAILBOX=\nMAILBOX_LOCAL=x\nMAILBOX_REMOTE=y', /go together/, null],
    ['SERVERNAME=s', /MAILBOX is empty/, null],
    ['MAILBOX_LOCAL=../x\nMAILBOX_REMOTE=y\nTRANSLATOR_LR=cat\nTRANSLATOR_RL=cat', /can't contain \.\./, 1],
    ['MAILBOX=Mail/../etc', /can't contain \.\./, 1],
    ['MAILBOX_LOCAL=x\nMAILBOX_REMOTE=y\nTRANSLATOR_LR=no-such-translator-zz\nTRANSLATOR_RL=cat', /TRANSLATOR_LR.*not found/, 3],
    ['MAILBOX=Mail\nTRANSPORT=telnet', /TRANSPORT/, 2],
  ];
  for (const [src, re, line] of errs) {
    throwsWith(t, () => parseEndpointConfig(src, 'cfgfile', 'x', { env }), (err: unknown) => err instanceof ConfigError && re.test(err.message) && err.line === line && err.message.startsWith('cfgfile'), src);
  }
  const noRes = parseEndpointConfig('MAILBOX_LOCAL=x\nMAILBOX_REMOTE=y\nTRANSLATOR_LR=no-such-translator-zz\nTRANSLATOR_RL=cat', 'f', 'x', { env, resolveTranslators: false });
  t.equal(noRes.translatorLR.command, 'no-such-translator-zz');
});

t.test('SmdHome layout, templates, old config rename', async (t) => {
  const h = tmp();
  const home = new SmdHome(h);
  mkdirSync(home.dir, { mode: 0o755 });
  writeFileSync(home.oldConfig, 'MAILBOX=Mail\n');
  const r = home.ensure();
  t.equal(r.renamedOldConfig, true);
  t.equal(statSync(home.dir).mode & 0o777, 0o700);
  t.ok(existsSync(home.config('default')) && !existsSync(home.oldConfig));
  for (const d of [home.logDir, home.fifoDir, home.workarea, home.hookDir('pre', 'pull'), home.hookDir('post', 'push'), home.needsHumanHookDir]) t.ok(statSync(d).isDirectory(), d);
  t.match(readFileSync(home.hooksReadme, 'utf8'), /HOOK pre\|post/);
  t.equal(home.clientLog('x'), join(h, '.smd/log/client.x.log'));
  t.equal(home.serverLog('x'), join(h, '.smd/log/server.x.log'));
  t.equal(home.loopLock, join(h, '.smd/loop.lock'));
  t.equal(home.ensure().renamedOldConfig, false, 'idempotent');

  // config template: written once, parses to the documented defaults
  t.equal(writeTemplate(home.config('work'), configTemplate('work')), true);
  t.equal(writeTemplate(home.config('work'), 'other'), false, 'never overwrites');
  t.equal(statSync(home.config('work')).mode & 0o777, 0o600);
  const c = loadEndpointConfig(home, 'work', { env: envFor(h) });
  t.equal(c.serverName, 'smd-server-work');
  t.equal(c.clientName, `${HOST}-work`);
  t.same(c.mailboxLocal, ['Mail']);
  t.same(c.exclude, []);
  t.throws(() => loadEndpointConfig(home, 'missing', { env: envFor(h) }), ConfigMissingError);
  t.same(parseLoopConfig(loopTemplate(), 'loop'), [{ pull: 3, push: 10, endpoint: 'default', line: 8 }]);
});

t.test('lock', async (t) => {
  const h = tmp();
  const path = join(h, 'lock');
  const notices: string[] = [];
  // stale lock from a dead pid
  const dead = spawnSync('true').pid!;
  writeFileSync(path, `${dead}\n`);
  const l = Lock.acquire(path, { programs: SYNC_LOCK_PROGRAMS, notice: (m) => notices.push(m), releaseAtExit: false });
  t.same(notices, ['Found lockfile of a dead instance. Ignored.']);
  t.equal(readFileSync(path, 'utf8').trim(), String(process.pid));
  l.release();
  t.notOk(existsSync(path), 'released');

  // a live process that is not an smd program, or garbage content: stale too,
  // taken over with the notice, the lock then holds our PID, release removes it
  for (const [what, content] of [['a live non-smd process', `${process.ppid}\n`], ['garbage', 'garbage\n']]) {
    writeFileSync(path, content);
    const seen: string[] = [];
    const taken = Lock.acquire(path, { programs: SYNC_LOCK_PROGRAMS, notice: (m) => seen.push(m), releaseAtExit: false });
    t.same(seen, ['Found lockfile of a dead instance. Ignored.'], `${what}: stale, with the notice`);
    t.equal(readFileSync(path, 'utf8'), `${process.pid}\n`, `${what}: the lock now holds our PID`);
    t.equal(taken.pid, process.pid);
    taken.release();
    t.notOk(existsSync(path), `${what}: released`);
    t.same(readdirSync(h).filter((f) => f.startsWith('lock.')), [], `${what}: no temporary or set-aside file left`);
  }

  // a live holder named smd-pull: refused
  const bin = join(h, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'smd-pull'), '#!/bin/sh\nsleep 30\n', { mode: 0o755 });
  const holder = spawn(join(bin, 'smd-pull'), [], { stdio: 'ignore' });
  t.teardown(() => { holder.kill('SIGKILL'); });
  await new Promise((r) => setTimeout(r, 200));
  writeFileSync(path, `${holder.pid}\n`);
  throwsWith(t, () => Lock.acquire(path, { programs: SYNC_LOCK_PROGRAMS, notice: () => {} }), (e: unknown) =>
    e instanceof LockBusyError && e.pid === holder.pid && e.program === 'smd-pull'
    && e.message === `Already running: smd-pull (pid ${holder.pid}) holds ${path}; wait for it to finish, or stop it (kill ${holder.pid})`
    // never "remove the lock": its holder is alive
    && e.tags === `TAGS: error::context(locking) probable-cause(another-instance-is-running) human-intervention(necessary) suggested-actions(run(kill ${holder.pid}))`);
  t.equal(readFileSync(path, 'utf8').trim(), String(holder.pid), 'untouched');
  holder.kill('SIGKILL');
  await new Promise((r) => holder.once('exit', r));
  rmSync(path);

  // released at exit, and on SIGTERM, in a child process
  const script = `import { Lock } from '@smd/endpoint'; Lock.acquire(${JSON.stringify(path)}, { programs: [] }); process.stdout.write('held\\n'); setTimeout(() => {}, 30000);`;
  // A plain node (tap's NODE_OPTIONS would add its own signal handlers to the child).
  const cleanEnv = { ...process.env };
  delete cleanEnv.NODE_OPTIONS;
  // (tap re-injects it into every spawn: `env -u` removes it in the child itself)
  const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'], cwd: process.cwd(), env: cleanEnv });
  await new Promise<void>((r) => child.stdout.once('data', () => r()));
  t.ok(existsSync(path), 'held by the child');
  child.kill('SIGTERM');
  const [code] = await new Promise<[number | null]>((r) => child.once('exit', (c) => r([c])));
  t.equal(code, 143, 'default signal status kept');
  t.notOk(existsSync(path), 'released on SIGTERM');
  const child2 = spawnSync(process.execPath, ['--input-type=module', '-e', `import { Lock } from '@smd/endpoint'; Lock.acquire(${JSON.stringify(path)}, { programs: [] });`], { env: cleanEnv });
  t.equal(child2.status, 0);
  t.notOk(existsSync(path), 'released at normal exit');
});

t.test('hooks', async (t) => {
  const h = tmp();
  const home = new SmdHome(h);
  home.ensure();
  const dir = home.hookDir('post', 'pull');
  const rec = join(h, 'rec');
  writeFileSync(join(dir, '20-b'), `#!/bin/sh\necho "b $*" >> ${rec}\necho out-b\necho err-b >&2\n`, { mode: 0o755 });
  writeFileSync(join(dir, '10-a'), `#!/bin/sh\necho "a $*" >> ${rec}\n`, { mode: 0o755 });
  writeFileSync(join(dir, '15-noexec'), `#!/bin/sh\necho "noexec" >> ${rec}\n`, { mode: 0o644 });
  writeFileSync(join(dir, '.hidden'), `#!/bin/sh\necho "hidden" >> ${rec}\n`, { mode: 0o755 });
  const log = home.clientLog('ep');
  writeFileSync(log, 'before\n');
  t.same(listHooks(dir).map((p) => p.slice(dir.length + 1)), ['10-a', '20-b']);
  const r = await runHooks(home, 'post', 'pull', 'ep', 1, log);
  t.equal(r.failure, null);
  t.equal(r.ran.length, 2);
  t.equal(readFileSync(rec, 'utf8'), 'a post pull ep 1\nb post pull ep 1\n');
  t.equal(readFileSync(log, 'utf8'), 'before\nout-b\nerr-b\n', 'output appended to the log');

  const pre = home.hookDir('pre', 'push');
  writeFileSync(join(pre, 'a-fails'), '#!/bin/sh\nexit 3\n', { mode: 0o755 });
  writeFileSync(join(pre, 'b-never'), `#!/bin/sh\necho never >> ${rec}\n`, { mode: 0o755 });
  const f = await runHooks(home, 'pre', 'push', 'ep', 0, log);
  t.same(f.failure, { hook: join(pre, 'a-fails'), code: 3, signal: null });
  t.equal(f.ran.length, 1, 'stops at the first failure');
  t.notMatch(readFileSync(rec, 'utf8'), /never/);
  t.same((await runHooks(home, 'pre', 'pull', 'ep', 0, log)).ran, [], 'empty dir');

  // smd-loop's needs-human hooks: output line by line, every hook run, each one bounded.
  const nh = home.needsHumanHookDir;
  writeFileSync(join(nh, '10-fails'), '#!/bin/sh\necho "one $1"\necho "two $2" >&2\nexit 2\n', { mode: 0o755 });
  writeFileSync(join(nh, '20-background'), '#!/bin/sh\nsleep 30 &\necho "three $3"\n', { mode: 0o755 });
  writeFileSync(join(nh, '30-hangs'), '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
  const got: string[] = [];
  const started = Date.now();
  const all = await runHookDir(nh, ['ep', 'error::x', 'msg'], { output: (l) => got.push(l), env: process.env, cwd: h, keepGoing: true, timeoutMs: 1500 });
  t.ok(Date.now() - started < 20_000, 'neither a background child holding the output nor a hung hook blocks');
  t.same(all.ran.map((p) => p.slice(nh.length + 1)), ['10-fails', '20-background', '30-hangs'], 'keeps going after a failure');
  t.same(got.sort(), ['one ep', 'three msg', 'two error::x']);
  t.same(all.failures.map((f) => [f.hook.slice(nh.length + 1), f.code, f.signal]), [['10-fails', 2, null], ['30-hangs', null, 'SIGKILL']]);
  t.match(describeHookFailure(all.failures[1]), /30-hangs: still running after 2 s: killed/);
});

t.test('translators', async (t) => {
  const id = createTranslator('cat');
  t.ok(id instanceof IdentityTranslator && id.identity);
  t.equal(await id.translate('Mail/x y/cur'), 'Mail/x y/cur');

  const p = createTranslator("sed -u -e 's,^Maildir,Mail,'");
  t.ok(p instanceof ProcessTranslator);
  t.equal(await p.translate('Maildir/.a/cur'), 'Mail/.a/cur');
  const both = await Promise.all([p.translate('Maildir/b/cur'), p.translate('Maildir/\xe9/new')]);
  t.same(both, ['Mail/b/cur', 'Mail/\xe9/new'], 'in order, bytes preserved');
  await p.close();

  const e = new ProcessTranslator('while read l; do if [ "$l" = bad ]; then echo ERROR; echo because; else echo "ok-$l"; fi; done');
  t.equal(await e.translate('x'), 'ok-x');
  await rejectsWith(t, e.translate('bad'), (err: unknown) => err instanceof TranslatorError && err.kind === 'error');
  await t.rejects(e.translate('y'), TranslatorError, 'dead after an error');
  await e.close();

  const dd = new ProcessTranslator('while read l; do echo "../$l"; done');
  await rejectsWith(t, dd.translate('x'), (err: unknown) => err instanceof TranslatorError && err.kind === 'unsafe');
  await dd.close();
  const ab = new ProcessTranslator('while read l; do echo "/etc/$l"; done');
  await rejectsWith(t, ab.translate('x'), (err: unknown) => err instanceof TranslatorError && err.kind === 'unsafe');
  await ab.close();
  const eof = new ProcessTranslator('read l; exit 0');
  await rejectsWith(t, eof.translate('x'), (err: unknown) => err instanceof TranslatorError && err.kind === 'eof');
  await eof.close();
  const okdots = new ProcessTranslator('while read l; do echo "Mail/..a.b/cur"; done');
  t.equal(await okdots.translate('x'), 'Mail/..a.b/cur', 'a ..a.b component is a plain name');
  await okdots.close();

  // built-in modes
  const L = 'Mail', R = 'Maildir';
  const cases: [Parameters<typeof translateName>[0], 'LR' | 'RL', string, string][] = [
    ['oimap-dovecot', 'LR', 'Mail/cur', 'Maildir/cur'],
    ['oimap-dovecot', 'LR', 'Mail/foo/cur', 'Maildir/.foo/cur'],
    ['default', 'LR', 'Mail/a.b/new', 'Maildir/.a.b/new'],
    ['oimap-dovecot', 'RL', 'Maildir/.foo/cur', 'Mail/foo/cur'],
    ['oimap-dovecot', 'RL', 'Maildir/tmp', 'Mail/tmp'],
    ['nodots', 'LR', 'Mail/a/b/cur', 'Maildir/.a.b/cur'],
    ['nodots', 'LR', 'Mail/new', 'Maildir/new'],
    ['nodots', 'RL', 'Maildir/.a.b/cur', 'Mail/a/b/cur'],
    ['nodots2', 'LR', 'Mail/..a.b/cur', 'Maildir/a/b/cur'],
    ['nodots2', 'RL', 'Maildir/a/b/cur', 'Mail/..a.b/cur'],
    ['move', 'LR', 'Mail/x/y/cur', 'Maildir/x/y/cur'],
    ['move', 'RL', 'Maildir/.x/cur', 'Mail/.x/cur'],
    ['cat', 'LR', 'anything/cur', 'anything/cur'],
  ];
  for (const [m, d, i, o] of cases) t.equal(translateName(m, d, i, L, R), o, `${m} ${d} ${i}`);
  t.throws(() => translateName('move', 'LR', 'Other/cur', L, R), TranslateError);
  t.throws(() => translateName('move', 'LR', 'MailX/cur', L, R), TranslateError, 'prefix must end at a /');
  t.throws(() => translateName('nodots', 'LR', 'Mail/a.b/cur', L, R), TranslateError, 'not reversible');
});

