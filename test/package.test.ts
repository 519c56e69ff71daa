/**
 * The installed package: `npm pack` at the root (once), `npm install -g
 * --prefix` of that one tarball into fresh prefixes, offline with an empty
 * npm cache (the tarball must carry everything), one of them without a C
 * compiler (the native helper is optional); then real syncs with the
 * installed commands only. Also where smd-pull finds the other host's
 * programs: the remote PATH, REMOTESMDSERVER / REMOTESMDCLIENT, SMD_REMOTE_BIN.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseEndpointConfig } from '@smd/endpoint';
import { remoteCommand, OWN_BIN } from '@smd/cli/sync/remote';
import { ROOT, tempDir } from './helpers/maildir-fixture.js';
import { startSshd } from './helpers/sshd.js';
import { deliver, tmpFiles, treeObject, writeConfig } from './helpers/sync-fixture.js';

// npm pack (tsc -b + bundling) and two installs that compile the native helper: minutes on a loaded machine.
t.setTimeout(600_000);

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

t.test('where the programs of the other host are', async (t) => {
  const config = (text: string) => parseEndpointConfig(`CLIENTNAME=c\nMAILBOX=Mail\n${text}`, '/h/.smd/config.x', 'x', { env: { HOME: '/h' } });
  const ssh = config('SERVERNAME=mail.example.org\n');
  t.same(remoteCommand('smd-server', ssh, {}), ['smd-server'], 'by default a plain name, found on the remote PATH');
  t.same(remoteCommand('smd-client', ssh, {}), ['smd-client']);
  t.same(remoteCommand('mddiff', ssh, {}), ['mddiff']);
  const local = config('SERVERNAME=localhost\nSMDCLIENTOPTS=-l\n');
  t.same(remoteCommand('smd-server', local, {}), [join(OWN_BIN, 'smd-server')], 'local mode: this installation');
  t.same(remoteCommand('smd-client', local, {}), [join(OWN_BIN, 'smd-client')]);

  const set = config('SERVERNAME=s\nREMOTESMDSERVER=/opt/smd/bin/smd-server\nREMOTESMDCLIENT="nice -n 5 smd-client"\n');
  t.same(remoteCommand('smd-server', set, {}), ['/opt/smd/bin/smd-server'], 'REMOTESMDSERVER');
  t.same(remoteCommand('smd-client', set, {}), ['nice', '-n', '5', 'smd-client'], 'REMOTESMDCLIENT, split into words like upstream');
  t.same(remoteCommand('mddiff', set, {}), ['/opt/smd/bin/mddiff'], 'mddiff next to REMOTESMDSERVER');
  t.same(remoteCommand('mddiff', config('SERVERNAME=s\nREMOTESMDSERVER="env X=1 smd-server"\n'), {}), ['env', 'X=1', 'mddiff']);
  t.same(remoteCommand('smd-server', config('SERVERNAME=s\nREMOTESMDSERVER="  "\n'), {}), ['smd-server'], 'blank is unset');
  t.same(remoteCommand('smd-client', set, { SMD_REMOTE_BIN: '/r' }), ['/r/smd-client'], 'SMD_REMOTE_BIN (a directory) wins');
  t.same(remoteCommand('mddiff', local, { SMD_REMOTE_BIN: '/r' }), ['/r/mddiff']);
  t.same(remoteCommand('smd-server', ssh, { SMD_REMOTE_BIN: '' }), ['smd-server'], 'an empty SMD_REMOTE_BIN is unset');
});

interface Run { status: number | null; stdout: string; stderr: string }

/**
 * Runs a program, bounded in time (a hang fails the test instead of stalling the suite).
 * Through `env -u NODE_OPTIONS`: tap puts its own loader in the NODE_OPTIONS of every child.
 */
function run(cmd: string, args: string[], opts: { cwd?: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', cmd, ...args], { cwd: opts.cwd ?? opts.env.HOME, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (e) => { stderr += String(e); });
    child.on('close', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
  });
}

/** This environment without npm's own variables (npm test sets npm_config_*, which would steer the inner npm). */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && !k.startsWith('TAP')) env[k] = v;
  return { ...env, ...extra };
}

/** Every path under dir (files, directories, links). */
function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) walk(p, out);
  }
  return out;
}

/** The PATH of a host where only the installed package is: its bin, node, the system. */
const hostPath = (prefix: string): string => [join(prefix, 'bin'), dirname(process.execPath), '/usr/bin', '/bin'].join(':');

t.test('npm pack makes one tarball; npm install -g installs it as a copy, offline, and it syncs', async (t) => {
  const base = tempDir(t, 'smd-pkg-');
  const packed = await run('npm', ['pack', '--json', '--pack-destination', base], { cwd: ROOT, env: cleanEnv(), timeoutMs: 300_000 });
  t.equal(packed.status, 0, `npm pack: ${packed.stderr}`);
  const manifest = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; files: { path: string }[]; bundled: string[] }[];
  t.equal(manifest.length, 1, 'one tarball');
  const tarball = join(base, manifest[0].filename);
  t.match(manifest[0].filename, /^smd-.*\.tgz$/);
  const files = manifest[0].files.map((f) => f.path);
  for (const f of ['bin/smd-pull', 'bin/smd-server', 'bin/smd-client', 'bin/mddiff', 'lib/smd-pull.js', 'lib/smd-server.js', 'lib/smd-client.js',
    'lib/hash-worker.js', 'node_modules/@smd/native/binding.gyp', 'node_modules/@smd/native/dist/index.js', 'node_modules/fast-diff/diff.js']) {
    t.ok(files.includes(f), `the tarball holds ${f}`);
  }
  t.same(files.filter((f) => /^(packages|test|bench|scripts)\//.test(f) || /native\/build\//.test(f) || f.endsWith('.tsbuildinfo')), [],
    'no workspace sources, tests, or a native build of this machine');
  t.same([...manifest[0].bundled].sort(), ['@smd/native', 'fast-diff']);

  // Two installs of the same tarball: this machine as it is, and one whose C compiler fails.
  const cache = join(base, 'npm-cache');
  const install = (prefix: string, extra: NodeJS.ProcessEnv) => run('npm', [
    'install', '-g', '--prefix', prefix, '--offline', '--cache', cache, '--registry', 'http://127.0.0.1:9/',
    '--no-audit', '--no-fund', tarball,
  ], { cwd: base, env: cleanEnv(extra), timeoutMs: 300_000 });
  const withCc = join(base, 'prefix');
  const withoutCc = join(base, 'prefix-no-cc');
  const [a, b] = await Promise.all([install(withCc, {}), install(withoutCc, { CC: '/bin/false', CXX: '/bin/false' })]);
  t.equal(a.status, 0, `npm install -g: ${a.stderr}`);
  t.equal(b.status, 0, `npm install -g without a compiler: ${b.stderr}`);

  for (const prefix of [withCc, withoutCc]) {
    const pkgDir = join(prefix, 'lib', 'node_modules', 'smd-ts');
    t.ok(lstatSync(pkgDir).isDirectory() && !lstatSync(pkgDir).isSymbolicLink(), 'the package is a directory of the prefix');
    const inside = walk(pkgDir);
    t.same(inside.filter((p) => lstatSync(p).isSymbolicLink()), [], 'no symlink in the installed package');
    t.same(inside.filter((p) => /\/(bin|lib)\/[^/]+$/.test(p) && lstatSync(p).isFile() && readFileSync(p, 'latin1').includes(ROOT)), [],
      'no installed program names the checkout');
    for (const cmd of ['smd-pull', 'smd-push', 'smd-server', 'smd-client', 'mddiff', 'smd-loop', 'smd-translate', 'smd-check-conf', 'smd-uniform-names', 'smd-restricted-shell']) {
      const link = join(prefix, 'bin', cmd);
      t.equal(realpathSync(link), join(pkgDir, 'bin', cmd), `${cmd} leads into the installed copy`);
    }
    const v = await run(join(prefix, 'bin', 'smd-client'), ['--version'], { env: { PATH: hostPath(prefix), HOME: base } });
    t.equal(v.stdout, `${VERSION}\n`, 'the version of the checkout');
  }
  const addon = (prefix: string): boolean => existsSync(join(prefix, 'lib', 'node_modules', 'smd-ts', 'node_modules', '@smd', 'native', 'build', 'Release', 'smd_native.node'));
  // This machine built the helper for the checkout, so it can for the install.
  t.equal(addon(withCc), existsSync(join(ROOT, 'packages', 'native', 'build', 'Release', 'smd_native.node')), 'the native helper was built');
  t.equal(addon(withoutCc), false, 'without a compiler there is no native helper, and the install still succeeded');

  for (const prefix of [withCc, withoutCc]) {
    await t.test(`local mode with the installed commands (${prefix === withCc ? 'native helper' : 'no native helper'})`, async (t) => {
      const home = join(base, `home-${prefix === withCc ? 'a' : 'b'}`);
      const env = { PATH: hostPath(prefix), HOME: home, LANG: 'C.UTF-8' };
      writeConfig(home, 'default', {
        SERVERNAME: 'localhost', SMDCLIENTOPTS: '-l', CLIENTNAME: 'laptop', MAILBOX: '',
        MAILBOX_REMOTE: 'Mail', MAILBOX_LOCAL: 'Laptop/Mail',
        TRANSLATOR_RL: 'smd-translate -m move -d RL default', TRANSLATOR_LR: 'smd-translate -m move -d LR default',
      });
      // More than 48 messages to read: the scan hashes them on its worker threads (lib/hash-worker.js).
      const inbox: string[] = [];
      for (let i = 0; i < 50; i++) inbox.push(deliver(home, 'Mail'));
      for (let i = 0; i < 20; i++) deliver(home, 'Mail/.Work');
      const first = await run(join(prefix, 'bin', 'smd-pull'), [], { env });
      t.equal(first.status, 0, `first pull: ${first.stdout}${first.stderr}`);
      t.match(first.stdout, /70 new/);
      t.same(treeObject(join(home, 'Laptop', 'Mail')), treeObject(join(home, 'Mail')), 'the copy equals the mailbox');
      if (prefix === withoutCc) return;

      unlinkSync(join(home, inbox[0]));
      deliver(home, 'Mail/.Work');
      const laptopInbox = join(home, 'Laptop', inbox[1]);
      renameSync(laptopInbox, `${laptopInbox}S`);
      deliver(home, 'Laptop/Mail/.Sent');
      const push = await run(join(prefix, 'bin', 'smd-push'), [], { env });
      t.equal(push.status, 0, `push: ${push.stdout}${push.stderr}`);
      const pull = await run(join(prefix, 'bin', 'smd-pull'), [], { env });
      t.equal(pull.status, 0, `pull: ${pull.stdout}${pull.stderr}`);
      t.same(treeObject(join(home, 'Laptop', 'Mail')), treeObject(join(home, 'Mail')), 'both converge');
      const idle = await run(join(prefix, 'bin', 'smd-pull'), ['-s'], { env });
      t.match(idle.stdout, /stats::new-mails\(0\), del-mails\(0\)/, 'nothing left to do');
      t.same(tmpFiles(home), []);
    });
  }

  await t.test('over ssh, the other host runs its installed programs from its PATH, or from REMOTESMDSERVER / REMOTESMDCLIENT', async (t) => {
    const local = join(base, 'laptop');
    const remote = join(base, 'server');
    const fakeBin = join(base, 'fakebin');
    for (const d of [local, remote, fakeBin]) mkdirSync(d, { recursive: true });
    // A fake ssh (like a login on the server): the command runs with the server's HOME and REMOTE_PATH.
    writeFileSync(join(fakeBin, 'ssh'), `#!/bin/sh\nshift\ncd "${remote}" || exit 255\nHOME="${remote}" PATH="$REMOTE_PATH" exec sh -c "$*"\n`);
    chmodSync(join(fakeBin, 'ssh'), 0o755);
    const env = (remotePath: string): NodeJS.ProcessEnv => ({ PATH: `${fakeBin}:${hostPath(withCc)}`, HOME: local, LANG: 'C.UTF-8', REMOTE_PATH: remotePath });
    for (let i = 0; i < 5; i++) deliver(remote, 'Mail');
    writeConfig(local, 'default', { SERVERNAME: 'server', CLIENTNAME: 'laptop', MAILBOX: 'Mail' });

    const pull = await run(join(withCc, 'bin', 'smd-pull'), [], { env: env(hostPath(withCc)) });
    t.equal(pull.status, 0, `pull, smd-server found on the remote PATH: ${pull.stdout}${pull.stderr}`);
    t.same(treeObject(join(local, 'Mail')), treeObject(join(remote, 'Mail')));

    // The server's PATH has no smd: the plain name fails; the config variables name the programs.
    const bare = `${dirname(process.execPath)}:/usr/bin:/bin`;
    deliver(remote, 'Mail');
    const missing = await run(join(withCc, 'bin', 'smd-pull'), [], { env: env(bare) });
    t.equal(missing.status, 1, 'smd-server not on the remote PATH');
    t.match(readFileSync(join(local, '.smd', 'log', 'server.default.log'), 'utf8'), /smd-server.*not found/);
    const installedBin = join(withCc, 'lib', 'node_modules', 'smd-ts', 'bin');
    writeConfig(local, 'default', {
      SERVERNAME: 'server', CLIENTNAME: 'laptop', MAILBOX: 'Mail',
      REMOTESMDSERVER: join(installedBin, 'smd-server'), REMOTESMDCLIENT: join(installedBin, 'smd-client'),
    });
    const named = await run(join(withCc, 'bin', 'smd-pull'), [], { env: env(bare) });
    t.equal(named.status, 0, `pull with REMOTESMDSERVER: ${named.stdout}${named.stderr}`);
    deliver(local, 'Mail');
    const push = await run(join(withCc, 'bin', 'smd-push'), [], { env: env(bare) });
    t.equal(push.status, 0, `push with REMOTESMDCLIENT: ${push.stdout}${push.stderr}`);
    t.same(treeObject(join(local, 'Mail')), treeObject(join(remote, 'Mail')), 'both hosts hold the same messages');
  });

  await t.test('the installed smd-pull through a real sshd with the built-in ssh2 client (ssh2 is in the bundles)', async (t) => {
    const sshd = await startSshd();
    t.teardown(() => sshd.stop());
    // This host has only the installed package; the server runs the checkout's programs (sshd's SMD_REMOTE_BIN).
    const env = { ...sshd.env, PATH: `${sshd.clientBin}:${hostPath(withCc)}` };
    writeConfig(sshd.home, 'default', { SERVERNAME: sshd.sshConfigAlias, CLIENTNAME: 'laptop', MAILBOX: 'Mail', TRANSPORT: 'ssh2' });
    for (let i = 0; i < 5; i++) deliver(sshd.remoteHome, 'Mail');
    const pull = await run(join(withCc, 'bin', 'smd-pull'), [], { env });
    t.equal(pull.status, 0, `ssh2 pull: ${pull.stdout}${pull.stderr}`);
    t.same(treeObject(join(sshd.home, 'Mail')), treeObject(join(sshd.remoteHome, 'Mail')));
  });
});
