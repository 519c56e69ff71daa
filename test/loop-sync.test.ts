/**
 * smd-loop driving the real smd-pull (through the fake ssh of the sync
 * fixture), with a one-second "minute": a transient failure is retried, a
 * permanent one ends the loop with its report.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, deliver, messageCount, remoteConfig, treeObject, twoHomes, writeConfig } from './helpers/sync-fixture.js';

interface Loop { output: () => string; exited: Promise<number | null>; stop: () => void }

function startLoop(env: NodeJS.ProcessEnv): Loop {
  const child = spawn(join(BIN, 'smd-loop'), [], { env, cwd: env.HOME, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  exited.then(() => clearTimeout(killer), () => undefined);
  return { output: () => out, exited, stop: () => child.kill('SIGTERM') };
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return cond();
}

t.test('a transient failure (the link is down once) is retried at the next slot', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  writeFileSync(join(h.local, '.smd', 'loop'), '# pull every minute, never push\n1 0 default\n');
  for (let i = 0; i < 5; i++) deliver(h.remote, 'Mail');
  const loop = startLoop({ ...h.env, SMD_LOOP_MINUTE_SECONDS: '1', FAKE_SSH_FAIL_ONCE: join(h.local, 'failed-once') });
  t.teardown(() => loop.stop());
  const synced = await until(() => messageCount(join(h.local, 'Mail')) === 5, 30_000);
  t.ok(synced, synced ? "the second pull synchronized the mailbox" : loop.output());
  t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')));
  const log = readFileSync(join(h.local, '.smd', 'log', 'loop.log'), 'utf8');
  t.match(log, /human-intervention\(avoidable\)/, 'the transient failure is in the loop log');
  loop.stop();
  t.equal(await loop.exited, 1, 'SIGTERM ends the loop');
});

t.test('a permanent failure (a conflict) ends the loop and is reported', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  writeFileSync(join(h.local, '.smd', 'loop'), '1 0 default\n');
  const m = deliver(h.remote, 'Mail');
  const first = startLoop({ ...h.env, SMD_LOOP_MINUTE_SECONDS: '1' });
  t.ok(await until(() => messageCount(join(h.local, 'Mail')) === 1, 30_000), 'first pull done');
  first.stop();
  await first.exited;
  writeFileSync(join(h.remote, m), 'From: a@example.org\nSubject: server edit\n\nserver\n');
  writeFileSync(join(h.local, m), 'From: a@example.org\nSubject: local edit\n\nlocal\n');
  const loop = startLoop({ ...h.env, SMD_LOOP_MINUTE_SECONDS: '1' });
  t.teardown(() => loop.stop());
  t.equal(await loop.exited, 1, 'the loop gave up');
  t.match(loop.output(), /concurrent-mailbox-edit/);
  t.match(loop.output(), /human-intervention\(necessary\)/);
  t.equal(readFileSync(join(h.local, m), 'utf8'), 'From: a@example.org\nSubject: local edit\n\nlocal\n', 'local edit kept');
});
