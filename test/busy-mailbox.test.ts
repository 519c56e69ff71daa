/**
 * A mail program at work during a sync is normal life (issue "Trust in daily
 * use", section 1): a message renamed on the server between the scan and the
 * fetch is skipped for the run, everything else is applied, the db-files stay
 * truthful, the next run takes the message; a silent peer ends the run with a
 * retryable network error instead of a hang.
 */
import t from 'tap';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { deliver, remoteConfig, smd, tmpFiles, treeObject, twoHomes, writeConfig } from './helpers/sync-fixture.js';
import { writeBusySsh } from './helpers/busy-ssh.js';

function busyHomes(t: Parameters<typeof twoHomes>[0]) {
  const h = twoHomes(t);
  const bin = join(h.local, '..', 'busybin');
  mkdirSync(bin, { recursive: true });
  writeBusySsh(bin, h.remote);
  return { ...h, env: { ...h.env, PATH: `${bin}:${h.env.PATH}` } };
}

const dbNames = (home: string): string[] =>
  readFileSync(join(home, '.smd', 'laptop__Mail.db.txt'), 'latin1').split('\n').filter((l) => l !== '').map((l) => l.slice(82)).sort();

t.test('a message moved new/ -> cur/ on the server before its GET: skipped, the run succeeds, the next one takes it', async (t) => {
  const h = busyHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  const x = deliver(h.remote, 'Mail', { sub: 'new' });
  const others = [deliver(h.remote, 'Mail'), deliver(h.remote, 'Mail'), deliver(h.remote, 'Mail/.Work')];
  const xRead = `${x.replace('/new/', '/cur/')}:2,S`;
  const env = { ...h.env, BUSY_ON: `GET ${x}`, BUSY_FROM: join(h.remote, x), BUSY_TO: join(h.remote, xRead), BUSY_LOG: join(h.local, '..', 'busy.log') };

  const started = Date.now();
  const first = await smd('smd-pull', [], env, { timeoutMs: 150_000 });
  t.ok(Date.now() - started < 145_000, 'the pull ended (no hang)');
  t.equal(first.status, 0, `the pull succeeds: ${first.stdout}${first.stderr}`);
  t.ok(existsSync(env.BUSY_LOG), 'the mail program really renamed the message during the run');
  t.match(first.stdout, new RegExp(`WARNING: ADD ${x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: skipped for this run`), 'the skipped message is named');
  t.match(first.stdout, /smd-pull default: done .*3 new, 0 deleted, .*1 skipped/, 'the summary counts it');
  for (const o of others) t.ok(existsSync(join(h.local, o)), `${o} was applied`);
  t.notOk(existsSync(join(h.local, x)), 'the moved message is not here under its old name');
  t.same(dbNames(h.local), [...others].sort(), 'the client db-file claims only what the client has');
  t.same(dbNames(h.remote), dbNames(h.local), 'both db-files agree');
  t.same(tmpFiles(h.local), [], 'no temporary file left');

  const second = await smd('smd-pull', [], h.env, { timeoutMs: 150_000 });
  t.equal(second.status, 0, `the next pull: ${second.stdout}`);
  t.match(second.stdout, /1 new, 0 deleted/);
  t.ok(existsSync(join(h.local, xRead)), 'the message arrived under its new name');
  t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')), 'the trees converge');
  t.same(dbNames(h.local), dbNames(h.remote));
});

t.test('a message flagged on the server (renamed in cur/) before its GET during a MOVE: skipped, then converges', async (t) => {
  const h = busyHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  const m = deliver(h.remote, 'Mail', { flags: 'S' });
  const first = await smd('smd-pull', [], h.env, { timeoutMs: 150_000 });
  t.equal(first.status, 0, first.stdout);
  // Here the message is gone (deleted locally), there it moves to another folder; then, during the
  // pull, the mail program flags it again: the GET of the moved name finds nothing.
  renameSync(join(h.local, m), join(h.local, '..', 'deleted-here'));
  const moved = m.replace('Mail/cur', 'Mail/.Archive/cur');
  mkdirSync(join(h.remote, 'Mail/.Archive/cur'), { recursive: true });
  mkdirSync(join(h.remote, 'Mail/.Archive/new'), { recursive: true });
  renameSync(join(h.remote, m), join(h.remote, moved));
  const env = { ...h.env, BUSY_ON: `GET ${moved}`, BUSY_FROM: join(h.remote, moved), BUSY_TO: join(h.remote, `${moved}F`) };
  const second = await smd('smd-pull', [], env, { timeoutMs: 150_000 });
  t.equal(second.status, 0, `${second.stdout}${second.stderr}`);
  t.match(second.stdout, /MOVE .*skipped for this run/);
  t.same(dbNames(h.local), dbNames(h.remote), 'both db-files agree');
  t.same(dbNames(h.local), [m], 'the db keeps the previous agreement of both names of the skipped MOVE');
  const third = await smd('smd-pull', [], h.env, { timeoutMs: 150_000 });
  t.equal(third.status, 0, third.stdout);
  t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')), 'converged');
  t.ok(existsSync(join(h.local, `${moved}F`)));
});

t.test('a server that goes silent: the run ends with a retryable network error after IDLE_TIMEOUT', async (t) => {
  const h = busyHomes(t);
  writeConfig(h.local, 'default', remoteConfig({ IDLE_TIMEOUT: '2' }));
  deliver(h.remote, 'Mail');
  const started = Date.now();
  const r = await smd('smd-pull', ['-s'], { ...h.env, BUSY_STALL: '1' }, { timeoutMs: 150_000 });
  const took = Date.now() - started;
  t.not(r.status, 0, 'the run fails');
  t.ok(took < 100_000, `it ends in bounded time (${took} ms)`);
  t.match(r.stdout, /sent nothing for 2 s \(idle timeout\)/, 'the error says what happened');
  t.match(r.stdout, /smd-client@localhost: TAGS: error::context\([a-z-]+\) probable-cause\(network\) human-intervention\(avoidable\) suggested-actions\(retry\)/,
    'TAGS that smd-loop retries');
});
