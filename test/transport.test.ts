import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  startRemote, teeRemote, resolveSshCommand, remoteWords, remoteCommandLine, splitCommandWords, TransportError,
  resolveSshHost, hostFieldMatches, fingerprintSha256,
  type RemoteProcess, type RemoteExit, type TransportSpec,
} from '@smd/transport';
import { quoteWord } from '@smd/shell';
import { startSshd, type TestSshd } from './helpers/sshd.js';

// ---------------------------------------------------------------- helpers

function collect(s: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (b: Buffer) => parts.push(b));
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  });
}

interface Ran { stdout: Buffer; stderr: string; exit: RemoteExit }

/** Runs argv through the transport, feeding `input` (then EOF), collecting everything. */
async function run(spec: TransportSpec, argv: string[], input: Buffer = Buffer.alloc(0)): Promise<Ran> {
  const r = await startRemote(spec, argv);
  return finish(r, input);
}

async function finish(r: RemoteProcess, input: Buffer = Buffer.alloc(0)): Promise<Ran> {
  const out = collect(r.stdout);
  const err = collect(r.stderr);
  r.stdin.end(input);
  const exit = await r.exit;
  return { stdout: await out, stderr: (await err).toString(), exit };
}

async function rejects(p: Promise<unknown>): Promise<TransportError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof TransportError) return e;
    throw e;
  }
  throw new Error('expected a TransportError');
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Arguments that a naive `ssh host cmd args...` would mangle or execute. */
const NASTY = [
  'plain', 'with space', "it's", '"double"', '$HOME', '${PATH}', 'a&b', 'x;touch /tmp/smd-pwned', '*', '`id`', '$(id)',
  '', '  ', 'line\nbreak', '-n', 'back\\slash', '~', 'é ü', 'tab\there', '|', '>out', "'", "''",
];
/** Remote program printing each argument followed by NUL. */
const PRINT_ARGS = ['printf', '%s\\0'];
const splitNul = (b: Buffer): string[] => { const s = b.toString('utf8'); return s === '' ? [] : s.slice(0, -1).split('\0'); };

/**
 * `exit` settles once the program has ended even if nobody reads its stdout
 * (smd-pull stops reading when its local program exits): within 10 s, or
 * 'stalled'.
 */
async function exitWithoutReading(spec: TransportSpec): Promise<RemoteExit | 'stalled'> {
  const r = await startRemote(spec, ['sh', '-c', 'echo unread; exit 3']);
  r.stderr.resume();
  r.stdin.end();
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([r.exit, new Promise<'stalled'>((res) => { timer = setTimeout(() => res('stalled'), 10_000); })]);
  clearTimeout(timer);
  r.kill();
  return exit;
}

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

// ---------------------------------------------------------------- pure parts

t.test('remote words and ssh command resolution', async (t) => {
  // one word per argument, quoted only when needed; a leading ~/ is left to the remote shell
  t.same(remoteWords(['/x/smd-server', '--exclude', 'Mail/.Spam*', '-v', 'c', 'Mail', 'a b', '~/.smd/rename-db', '~/a b', '~']),
    ['/x/smd-server', '--exclude', "'Mail/.Spam*'", '-v', 'c', 'Mail', "'a b'", '~/.smd/rename-db', "~/'a b'", "'~'"]);
  t.equal(remoteCommandLine(['/x/smd-server', 'c', 'My Mail']), "/x/smd-server c 'My Mail'");
  const back = execFileSync('sh', ['-c', `printf '%s\\0' ${remoteCommandLine(['~/x', '~/a b', ...NASTY])}`], { env: { ...process.env, HOME: '/rh' } });
  t.same(splitNul(back), ['/rh/x', '/rh/a b', ...NASTY], 'the remote sh reads the words back; ~/ is its HOME');
  t.throws(() => remoteWords([]), TransportError);

  t.same(splitCommandWords(`ssh -o "ControlPath=/tmp/a b" -i 'k e y'`), ['ssh', '-o', 'ControlPath=/tmp/a b', '-i', 'k e y']);
  t.equal((await rejects(Promise.resolve().then(() => splitCommandWords('ssh "x')))).kind, 'config');

  const dir = tempDir('smd-tr-path-');
  writeFileSync(join(dir, 'fakessh'), '#!/bin/sh\n', { mode: 0o755 });
  writeFileSync(join(dir, 'notexec'), '', { mode: 0o644 });
  const PATH = `/nonexistent:${dir}`;
  t.same(resolveSshCommand({ env: { PATH } }), ['ssh'], 'default ssh (left bare when not on PATH)');
  t.same(resolveSshCommand({ configValue: 'fakessh -C', env: { PATH } }), [join(dir, 'fakessh'), '-C'], 'config value, bare name found on PATH');
  t.same(resolveSshCommand({ configValue: 'fakessh -C', env: { PATH, SMD_SSH: "/opt/ssh -o 'A=b c'" } }), ['/opt/ssh', '-o', 'A=b c'], 'SMD_SSH wins');
  t.same(resolveSshCommand({ configValue: 'fakessh', env: { PATH, SMD_SSH: '  ' } }), [join(dir, 'fakessh')], 'blank SMD_SSH ignored');
  t.same(resolveSshCommand({ configValue: 'notexec', env: { PATH } }), ['notexec'], 'not executable: not picked');
  t.equal((await rejects(Promise.resolve().then(() => resolveSshCommand({ configValue: "ssh 'x", env: {} })))).kind, 'config');
});

t.test('ssh_config and known_hosts parsing', async (t) => {
  const dir = tempDir('smd-tr-cfg-');
  const cfg = join(dir, 'config');
  writeFileSync(join(dir, 'extra.conf'), 'Host inc\n  HostName included.example\n');
  writeFileSync(cfg, [
    'Include extra*.conf',
    'Host srv !nope* s?v2',
    '  HostName real.example',
    '  Port=2222',
    '  IdentityFile ~/.ssh/k_%r_%h_%u',
    '  IdentityFile "/abs/with space"',
    'Host srv',
    '  HostName ignored.example',
    '  User bob',
    'Host *',
    '  User alice',
    '  UserKnownHostsFile ~/kh1 %d/kh2',
    'Host proxied',
    '  ProxyJump elsewhere',
    'Host harmless',
    '  ProxyJump none',
    '  ControlMaster auto',
    '  ControlPath ~/.ssh/cm-%r@%h:%p',
    '  ForwardAgent yes',
    '  SendEnv LANG LC_*',
    '  IgnoreUnknown UseFancy*',
    '  UseFancyThing yes',
    'Host ciphered',
    '  Ciphers aes128-ctr',
    'Host typo',
    '  HostNmae x',
    '',
  ].join('\n'));
  const o = { home: '/h', localUser: 'me', files: [cfg] };
  const c = resolveSshHost('srv', o);
  t.equal(c.hostName, 'real.example');
  t.equal(c.port, 2222);
  t.equal(c.user, 'bob', 'first value wins');
  t.same(c.identityFiles, ['/h/.ssh/k_bob_real.example_me', '/abs/with space']);
  t.same(c.userKnownHostsFiles, ['/h/kh1', '/h/kh2']);
  t.equal(resolveSshHost('sxv2', o).hostName, 'real.example', '? wildcard');
  t.equal(resolveSshHost('nopesrv', o).hostName, 'nopesrv');
  t.equal(resolveSshHost('carol@srv', o).user, 'carol', 'user@ wins');
  t.equal(resolveSshHost('other', o).user, 'alice');
  t.equal(resolveSshHost('other', o).port, 22);
  t.same(resolveSshHost('other', o).identityFiles, []);
  t.equal(resolveSshHost('inc', o).hostName, 'included.example', 'Include with a wildcard');
  const proxied = await rejects(Promise.resolve().then(() => resolveSshHost('proxied', o)));
  t.equal(proxied.kind, 'config', 'ProxyJump is refused, not ignored');
  t.match(proxied.message, new RegExp(`^${cfg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+: ProxyJump \\(for proxied\\) is not supported by the built-in ssh client \\(TRANSPORT=ssh2\\): use the system ssh`));
  t.equal(resolveSshHost('harmless', o).hostName, 'harmless', 'keys that change nothing for smd are accepted (ProxyJump none, ControlMaster, IgnoreUnknown...)');
  t.match((await rejects(Promise.resolve().then(() => resolveSshHost('ciphered', o)))).message, /Ciphers \(for ciphered\) is not supported/, 'an algorithm list is not silently replaced');
  t.match((await rejects(Promise.resolve().then(() => resolveSshHost('typo', o)))).message, /HostNmae \(for typo\) is not supported/, 'an unknown key is refused, as OpenSSH does');
  t.equal((await rejects(Promise.resolve().then(() => resolveSshHost('-oProxyCommand=x', o)))).kind, 'config');

  t.ok(hostFieldMatches('a.example,[127.0.0.1]:2222', ['[127.0.0.1]:2222']));
  t.notOk(hostFieldMatches('*.example,!bad.example', ['bad.example']));
  t.ok(hostFieldMatches('*.example,!bad.example', ['good.example']));
  t.notOk(hostFieldMatches('[127.0.0.1]:2222', ['127.0.0.1']));
  const blob = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl', 'base64');
  t.match(fingerprintSha256(blob), /^SHA256:[A-Za-z0-9+/]{43}$/);
});

// ---------------------------------------------------------------- local

t.test('local transport', async (t) => {
  const cwd = tempDir('smd-tr-local-');
  const spec: TransportSpec = { kind: 'local', cwd };
  const echo = [process.execPath, '-e', `
    process.stderr.write('cwd=' + process.cwd() + '\\n');
    process.stdin.pipe(process.stdout);
    process.stdin.on('end', () => { process.exitCode = Number(process.argv[1] ?? 0); });`];
  const data = randomBytes(3 << 20);
  const r = await run(spec, [...echo, '0'], data);
  t.equal(sha(r.stdout), sha(data), 'round trip');
  t.equal(r.stderr, `cwd=${cwd}\n`, 'stderr captured; runs in cwd');
  t.same(r.exit, { code: 0, signal: null, connectionFailed: false });
  const r3 = await run(spec, [...echo, '3'], Buffer.from('x'));
  t.equal(r3.exit.code, 3);
  t.equal(r3.exit.connectionFailed, false);
  const args = await run(spec, [...PRINT_ARGS, ...NASTY]);
  t.same(splitNul(args.stdout), NASTY, 'no shell in between');
  const missing = await rejects(startRemote(spec, [join(cwd, 'no-such-program')]));
  t.equal(missing.kind, 'spawn');
  t.match(missing.message, /no-such-program/);

  const sleeper = await startRemote(spec, ['sleep', '30']);
  sleeper.kill();
  sleeper.kill();
  t.same(await sleeper.exit, { code: null, signal: 'SIGTERM', connectionFailed: false }, 'kill');
});

// ---------------------------------------------------------------- tee

t.test('tee logs exactly the bytes that crossed', async (t) => {
  const dir = tempDir('smd-tr-tee-');
  const sent = join(dir, 'c2s.log');
  const received = join(dir, 'received.log');
  writeFileSync(received, 'old content\n');
  // the program answers something different from what it gets: both directions are distinct
  const prog = [process.execPath, '-e', `
    const { createHash } = require('node:crypto');
    const h = createHash('sha1'); let n = 0;
    process.stdin.on('data', (b) => { h.update(b); n += b.length; process.stdout.write(b.subarray(0, 7)); });
    process.stdin.on('end', () => process.stdout.write('\\nDONE ' + n + ' ' + h.digest('hex') + '\\n'));`];
  const r = teeRemote(await startRemote({ kind: 'local', cwd: dir }, prog), { sent, received });
  const data = randomBytes(2 << 20);
  // write in pieces, honouring backpressure
  const out = collect(r.stdout);
  for (let off = 0; off < data.length; off += 65536) {
    if (!r.stdin.write(data.subarray(off, off + 65536))) await new Promise((res) => r.stdin.once('drain', res));
  }
  r.stdin.end();
  const got = await out;
  t.equal((await r.exit).code, 0);
  await r.logsClosed;
  t.match(got.toString('latin1'), new RegExp(`DONE ${data.length} ${createHash('sha1').update(data).digest('hex')}\\n$`));
  t.equal(sha(readFileSync(sent)), sha(data), 'sent log = every byte written');
  t.equal(sha(readFileSync(received)), sha(got), 'received log = every byte read (truncated first)');

  // append mode
  const r2 = teeRemote(await startRemote({ kind: 'local', cwd: dir }, ['cat']), { sent, received, mode: 'append' });
  const got2 = await finish(r2, Buffer.from('more\n'));
  await r2.logsClosed;
  t.equal(got2.stdout.toString(), 'more\n');
  t.equal(sha(readFileSync(sent)), sha(Buffer.concat([data, Buffer.from('more\n')])));
  t.equal(sha(readFileSync(received)), sha(Buffer.concat([got, Buffer.from('more\n')])));
});

// ---------------------------------------------------------------- a fake ssh

t.test('system ssh: SMD_SSH and a fake ssh found on PATH', async (t) => {
  const dir = tempDir('smd-tr-fake-');
  const record = join(dir, 'args');
  // A fake ssh: records its arguments, then plays sshd: the words after the
  // options and the host, joined with spaces, run by sh -c.
  writeFileSync(join(dir, 'fakessh'), `#!/bin/sh
: > '${record}'
for a in "$@"; do printf '%s\\0' "$a" >> '${record}'; done
shift 3
exec sh -c "$*"
`, { mode: 0o755 });
  const env = { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}`, SMD_SSH: `fakessh -o 'Opt=a b'` };
  const command = resolveSshCommand({ configValue: 'ssh -C', env });
  t.same(command, [join(dir, 'fakessh'), '-o', 'Opt=a b']);
  const r = await run({ kind: 'ssh', command, host: 'user@server', env }, [...PRINT_ARGS, ...NASTY]);
  t.equal(r.exit.code, 0, r.stderr);
  t.same(splitNul(r.stdout), NASTY, 'every argument arrives intact through the remote shell');
  const argv = splitNul(readFileSync(record));
  t.same(argv.slice(0, 3), ['-o', 'Opt=a b', 'user@server'], 'ssh options, then the host, nothing added');
  t.same(argv.slice(3), [...PRINT_ARGS, ...NASTY].map(quoteWord), 'then one argument per word, each quoted only when it needs it');
  t.equal(argv[3], 'printf', 'a plain word goes bare');
  t.notOk(existsSync('/tmp/smd-pwned'), 'no injection');

  const e = await rejects(startRemote({ kind: 'ssh', command: ['/nonexistent/ssh'], host: 'h' }, ['true']));
  t.equal(e.kind, 'spawn');
  const bad = await rejects(startRemote({ kind: 'ssh', command, host: '-oProxyCommand=touch /tmp/x' }, ['true']));
  t.equal(bad.kind, 'config');
});

/** The words smd-pull really sends (a plain path, options, %-encoded names, the rename-db). */
const SMD_WORDS = ['-v', '--exclude', 'Mail/.Spam%2A', '--override-db', '~/.smd/rename-db', 'laptop', 'Mail', 'Other%20Box', 'a=b,c@d:e+f'];

/** Wrappers users put in SSH / SMD_SSH that run their arguments themselves, with no shell in between. */
function execWrappers(dir: string): Record<string, string> {
  const here = join(dir, 'wrapped-cwd');
  mkdirSync(here);
  const w = {
    'shift; exec "$@"': '#!/bin/sh\nshift\nexec "$@"\n',
    'cd DIR && exec "$@"': `#!/bin/sh\nshift\ncd '${here}' && exec "$@"\n`,
    'a sudo-like wrapper (env)': '#!/bin/sh\nhost=$1; shift\nexec env SMD_WRAPPED_FOR="$host" "$@"\n',
  };
  const out: Record<string, string> = {};
  Object.entries(w).forEach(([name, body], i) => {
    const p = join(dir, `wrapper${i}`);
    writeFileSync(p, body, { mode: 0o755 });
    out[name] = p;
  });
  return out;
}

t.test('system ssh: wrappers that run their arguments themselves', async (t) => {
  const dir = tempDir('smd-tr-wrap-');
  const printArgs = join(dir, 'print-args');
  writeFileSync(printArgs, '#!/bin/sh\nprintf \'%s\\0\' "$@"\n', { mode: 0o755 });
  for (const [name, wrapper] of Object.entries(execWrappers(dir))) {
    const r = await run({ kind: 'ssh', command: [wrapper], host: 'server' }, [printArgs, ...SMD_WORDS]);
    t.equal(r.exit.code, 0, `${name}: ${r.stderr}`);
    t.same(splitNul(r.stdout), SMD_WORDS, `${name}: the program and each of its words arrive as they are`);
  }
});

// ---------------------------------------------------------------- real sshd

const sshd: TestSshd = await startSshd();
t.teardown(() => sshd.stop());

/** Runs `ssh-keygen -lf` to get OpenSSH's own fingerprint of the host key. */
function opensshFingerprint(pubLine: string): string {
  const f = join(tempDir('smd-tr-fp-'), 'k.pub');
  writeFileSync(f, `${pubLine}\n`);
  return /(SHA256:\S+)/.exec(execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', f]).toString())![1]!;
}

t.test('system ssh through a real sshd', async (t) => {
  const env = sshd.env;
  const command = resolveSshCommand({ env });
  t.equal(command[0], join(sshd.clientBin, 'ssh'), 'ssh found on the test PATH');
  const spec: TransportSpec = { kind: 'ssh', command, host: sshd.sshConfigAlias, env };

  const data = randomBytes(5 << 20);
  const r = await run(spec, ['cat'], data);
  t.equal(r.exit.code, 0, `${r.stderr}\n${sshd.log()}`);
  t.equal(sha(r.stdout), sha(data), '5 MiB round trip through cat');

  const a = await run(spec, [...PRINT_ARGS, ...NASTY]);
  t.same(splitNul(a.stdout), NASTY, 'arguments with spaces, quotes, $, & ... arrive intact');
  t.notOk(existsSync('/tmp/smd-pwned'), 'no injection');
  const smdWords = await run(spec, [...PRINT_ARGS, ...SMD_WORDS]);
  t.same(splitNul(smdWords.stdout), SMD_WORDS.map((x) => x.replace(/^~\//, `${sshd.remoteHome}/`)), "smd's words arrive, ~/ is the remote HOME");

  const x = await run(spec, ['sh', '-c', 'echo to-stderr >&2; exit 7']);
  t.same(x.exit, { code: 7, signal: null, connectionFailed: false }, 'remote exit status');
  t.equal(x.stderr, 'to-stderr\n', 'remote stderr');

  const where = await run(spec, ['sh', '-c', 'printf "%s\\n" "$HOME" "$SMD_TEST_HOME" "$(command -v smd-server)"']);
  t.same(where.stdout.toString().split('\n').slice(0, 3), [sshd.remoteHome, sshd.remoteHome, join(sshd.remoteBin, 'smd-server')],
    'remote HOME and PATH come from the helper');
  // Remote programs start in the remote HOME (as upstream's login does), whatever the
  // shell's cwd: a relative mailbox is found there. (Reading the wrapper would only check the helper.)
  for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(sshd.remoteHome, 'CwdProbe', d), { recursive: true });
  const listed = await run(spec, ['sh', '-c', 'cd / && mddiff -l CwdProbe']);
  t.equal(listed.exit.code, 0, listed.stderr);
  t.same(listed.stdout.toString().split('\n').filter((l) => l !== '').sort(), ['CwdProbe/cur', 'CwdProbe/new'],
    'a remote program resolves a relative mailbox against the remote HOME');

  // a refused connection: ssh's own failure is 255
  const refused = await run({ ...spec, command: [...command, '-o', 'Port=1'] }, ['true']);
  t.equal(refused.exit.code, 255);
  t.equal(refused.exit.connectionFailed, true, 'connection failure is flagged');
  t.match(refused.stderr, /refused|port 1/i, 'ssh error goes to stderr');

  const k = await startRemote(spec, ['cat']); // cat also ends when sshd closes its stdin: no orphan
  k.kill();
  const ke = await k.exit;
  t.not(ke.code, 0, 'killed');

  t.same(await exitWithoutReading(spec), { code: 3, signal: null, connectionFailed: false },
    'exit settles while stdout is unread');
});

/** A client HOME for ssh2 variants: its own .ssh/config, keys and known_hosts. */
function variantHome(opts: { config?: string; knownHosts?: string; keys?: boolean }): string {
  const home = tempDir('smd-tr-home-');
  const ssh = join(home, '.ssh');
  mkdirSync(ssh, { mode: 0o700 });
  writeFileSync(join(ssh, 'config'), opts.config ?? `Host ${sshd.sshConfigAlias}\n  HostName 127.0.0.1\n  Port ${sshd.port}\n`);
  writeFileSync(join(ssh, 'known_hosts'), opts.knownHosts ?? `[127.0.0.1]:${sshd.port} ${sshd.hostKeyPub}\n`);
  if (opts.keys !== false) {
    copyFileSync(sshd.clientKey, join(ssh, 'id_ed25519'));
    copyFileSync(`${sshd.clientKey}.pub`, join(ssh, 'id_ed25519.pub'));
  }
  return home;
}

const noAgentEnv = (home: string): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...sshd.env, HOME: home };
  delete env.SSH_AUTH_SOCK;
  return env;
};

t.test('ssh2 built-in client through the real sshd', async (t) => {
  const spec: TransportSpec = { kind: 'ssh2', host: sshd.sshConfigAlias, home: sshd.home, env: sshd.env, systemConfig: null };
  const data = randomBytes(5 << 20);
  const r = await run(spec, ['cat'], data);
  t.equal(r.exit.code, 0, `${r.stderr}\n${sshd.log()}`);
  t.equal(sha(r.stdout), sha(data), '5 MiB round trip (IdentityFile from ~/.ssh/config)');

  const a = await run(spec, [...PRINT_ARGS, ...NASTY]);
  t.same(splitNul(a.stdout), NASTY, 'arguments arrive intact');
  const smdWords = await run(spec, [...PRINT_ARGS, ...SMD_WORDS]);
  t.same(splitNul(smdWords.stdout), SMD_WORDS.map((x) => x.replace(/^~\//, `${sshd.remoteHome}/`)), "smd's words arrive, ~/ is the remote HOME");
  const x = await run(spec, ['sh', '-c', 'echo oops >&2; exit 5']);
  t.same(x.exit, { code: 5, signal: null, connectionFailed: false });
  t.equal(x.stderr, 'oops\n');

  // HOME defaults to env.HOME; user@ form
  const viaEnv = await run({ kind: 'ssh2', host: `${userInfo().username}@${sshd.sshConfigAlias}`, env: sshd.env, systemConfig: null }, ['echo', 'hi']);
  t.equal(viaEnv.stdout.toString(), 'hi\n');

  // default key file (no IdentityFile), hashed known_hosts entry
  const hashedHome = variantHome({});
  execFileSync('ssh-keygen', ['-H', '-f', join(hashedHome, '.ssh', 'known_hosts')], { stdio: 'ignore' });
  const hashed = readFileSync(join(hashedHome, '.ssh', 'known_hosts'), 'utf8');
  t.match(hashed, /^\|1\|/, 'known_hosts is hashed');
  const h = await run({ kind: 'ssh2', host: sshd.sshConfigAlias, home: hashedHome, env: noAgentEnv(hashedHome), systemConfig: null }, ['echo', 'hashed']);
  t.equal(h.stdout.toString(), 'hashed\n', 'hashed entry accepted, default ~/.ssh/id_ed25519 used');

  // host list + comment + other hosts' lines around
  const listHome = variantHome({
    knownHosts: `# comment\nother.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n` +
      `foo.example,[127.0.0.1]:${sshd.port} ${sshd.hostKeyPub}\n`,
  });
  const l = await run({ kind: 'ssh2', host: sshd.sshConfigAlias, home: listHome, env: noAgentEnv(listHome), systemConfig: null }, ['true']);
  t.equal(l.exit.code, 0, 'comma-separated host list');

  const fp = opensshFingerprint(sshd.hostKeyPub);

  // unknown host: refused with the fingerprint and the file
  const unknownHome = variantHome({ knownHosts: '' });
  const u = await rejects(startRemote({ kind: 'ssh2', host: sshd.sshConfigAlias, home: unknownHome, env: noAgentEnv(unknownHome), systemConfig: null }, ['true']));
  t.equal(u.kind, 'host-key-unknown');
  t.ok(u.message.includes(fp), `fingerprint ${fp} in: ${u.message}`);
  t.ok(u.message.includes(join(unknownHome, '.ssh', 'known_hosts')), 'known_hosts path in the message');

  // changed key: refused
  const otherKey = join(tempDir('smd-tr-k-'), 'k');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
  const changedHome = variantHome({ knownHosts: `[127.0.0.1]:${sshd.port} ${readFileSync(`${otherKey}.pub`, 'utf8')}` });
  const c = await rejects(startRemote({ kind: 'ssh2', host: sshd.sshConfigAlias, home: changedHome, env: noAgentEnv(changedHome), systemConfig: null }, ['true']));
  t.equal(c.kind, 'host-key-changed');
  t.match(c.message, /CHANGED/);
  t.ok(c.message.includes(fp), 'presented fingerprint in the message');

  // @revoked wins over a matching line
  const revokedHome = variantHome({ knownHosts: `[127.0.0.1]:${sshd.port} ${sshd.hostKeyPub}\n@revoked * ${sshd.hostKeyPub}\n` });
  const rv = await rejects(startRemote({ kind: 'ssh2', host: sshd.sshConfigAlias, home: revokedHome, env: noAgentEnv(revokedHome), systemConfig: null }, ['true']));
  t.equal(rv.kind, 'host-key-revoked');
  t.match(rv.message, /REVOKED/);

  // a key the server does not know: auth error
  const wrongHome = variantHome({ keys: false });
  copyFileSync(otherKey, join(wrongHome, '.ssh', 'id_ed25519'));
  const w = await rejects(startRemote({ kind: 'ssh2', host: sshd.sshConfigAlias, home: wrongHome, env: noAgentEnv(wrongHome), systemConfig: null }, ['true']));
  t.equal(w.kind, 'auth-refused', w.message);
  const none = variantHome({ keys: false });
  t.equal((await rejects(startRemote({ kind: 'ssh2', host: sshd.sshConfigAlias, home: none, env: noAgentEnv(none), systemConfig: null }, ['true']))).kind, 'auth-refused');

  // closed port: connect error
  const closedHome = variantHome({ config: `Host ${sshd.sshConfigAlias}\n  HostName 127.0.0.1\n  Port 1\n` });
  t.equal((await rejects(startRemote({ kind: 'ssh2', host: sshd.sshConfigAlias, home: closedHome, env: noAgentEnv(closedHome), systemConfig: null }, ['true']))).kind, 'connection-refused');

  // ssh2 emits the channel's 'close' only after its stdout was read to the end: exit must not wait for that
  t.same(await exitWithoutReading(spec), { code: 3, signal: null, connectionFailed: false },
    'exit settles while stdout is unread (the 30 s stall of every ssh2 pull)');

  // kill
  const k = await startRemote(spec, ['cat']); // cat also ends when sshd closes its stdin: no orphan
  const kerr = collect(k.stderr);
  k.stdout.resume();
  k.kill();
  t.same(await k.exit, { code: null, signal: 'SIGTERM', connectionFailed: false }, 'killed');
  t.equal((await kerr).toString(), '');

  // the connection breaks under a running program: 255 + connectionFailed + a stderr line
  const lost = await startRemote(spec, ['sh', '-c', 'echo $PPID $$; exec sleep 30']);
  const lerr = collect(lost.stderr);
  lost.stdout.once('data', (b: Buffer) => {
    const [sessionPid, sleepPid] = b.toString().trim().split(' ').map(Number);
    process.kill(sessionPid!, 'SIGKILL'); // sshd's process serving this connection
    process.kill(sleepPid!, 'SIGKILL');
  });
  t.same(await lost.exit, { code: 255, signal: null, connectionFailed: true }, 'connection lost');
  t.match((await lerr).toString(), /^ssh2: conn/);
});

t.test('ssh2 with ssh-agent', async (t) => {
  const dir = tempDir('smd-tr-agent-');
  const sock = join(dir, 'agent.sock');
  const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
  t.teardown(() => { agent.kill('SIGTERM'); });
  for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
  execFileSync('ssh-add', ['-q', sshd.clientKey], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
  const home = variantHome({ keys: false }); // no key file at all: only the agent can authenticate
  const env = { ...noAgentEnv(home), SSH_AUTH_SOCK: sock };
  const r = await run({ kind: 'ssh2', host: sshd.sshConfigAlias, home, env, systemConfig: null }, ['echo', 'agent']);
  t.equal(r.stdout.toString(), 'agent\n', r.stderr);
});

t.test('tee works with remote transports', async (t) => {
  const dir = tempDir('smd-tr-tee2-');
  for (const spec of [
    { kind: 'ssh2', host: sshd.sshConfigAlias, home: sshd.home, env: sshd.env, systemConfig: null },
    { kind: 'ssh', command: resolveSshCommand({ env: sshd.env }), host: sshd.sshConfigAlias, env: sshd.env },
  ] as TransportSpec[]) {
    const sent = join(dir, `${spec.kind}.sent`);
    const received = join(dir, `${spec.kind}.received`);
    const data = randomBytes(1 << 20);
    const r = teeRemote(await startRemote(spec, ['sh', '-c', 'cat; echo END']), { sent, received });
    const got = await finish(r, data);
    await r.logsClosed;
    t.equal(got.exit.code, 0, spec.kind);
    t.equal(sha(got.stdout), sha(Buffer.concat([data, Buffer.from('END\n')])), `${spec.kind}: flow unchanged`);
    t.equal(sha(readFileSync(sent)), sha(data), `${spec.kind}: sent log`);
    t.equal(sha(readFileSync(received)), sha(got.stdout), `${spec.kind}: received log`);
  }
});
