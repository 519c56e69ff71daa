/**
 * Kills at every protocol step: the real smd-server and smd-client through
 * the relay, one of them SIGKILLed at a chosen frame (handshake, during the
 * diff, during the transfer, at COMMIT, after the patch, at DONE, while a
 * db-file is written), then a clean rerun. The rerun must converge with
 * nothing lost or duplicated and no stray temporary file, checked against
 * independent oracles: the sorted (name, SHA-1) lists of both trees and the
 * db-file computed here from the server's tree.
 */
import t from 'tap';
import { cpSync, existsSync, readdirSync, readFileSync, renameSync, unlinkSync, watch, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { type Frame, type Hook, type RelayResult, relay } from './helpers/relay.js';
import {
  type Pair, dbLines, expectedDb, maildir, message, messages, pairHomes, pool, put, stackTraceIn, strayTemps,
} from './helpers/hostile-fixture.js';
import { tempDir } from './helpers/maildir-fixture.js';

const ARGS = ['laptop', 'Mail'];
const DB = '.smd/laptop__Mail.db.txt';

const run = (p: { server: string; client: string }, hooks: { onServer?: Hook; onClient?: Hook } = {}): Promise<RelayResult> =>
  relay({ server: { home: p.server, args: ARGS }, client: { home: p.client, args: ARGS }, timeoutMs: 90_000, ...hooks });

/**
 * The state every case starts from: a first sync done, then the server's
 * mail program changed things (new, deleted, flagged, moved to another
 * folder, a header edited, a body edited, a copy), and the client has a
 * message of its own that a pull must leave alone.
 */
async function template(): Promise<Pair> {
  const p = pairHomes(t);
  maildir(p.server, 'Mail/.Work');
  for (let i = 0; i < 30; i++) put(p.server, `Mail/cur/m${i}:2,S`, message(`m${i}`, `body ${i}\n${'x'.repeat(2000 + i * 97)}\n`));
  for (let i = 0; i < 5; i++) put(p.server, `Mail/.Work/cur/w${i}:2,`, message(`w${i}`));
  const first = await run(p);
  if (first.client.code !== 0 || first.server.code !== 0) throw new Error(`first sync failed: ${first.client.stderr}${first.server.stderr}`);
  // The scan trusts files older than its db-file's .mtime (seconds): changes come a second later.
  await new Promise((r) => setTimeout(r, 1100));
  const s = (rel: string): string => join(p.server, rel);
  for (let i = 0; i < 12; i++) writeFileSync(s(`Mail/new/n${i}`), message(`n${i}`, `new ${i}\n${'y'.repeat(5000 + i * 311)}\n`));
  unlinkSync(s('Mail/cur/m0:2,S'));
  renameSync(s('Mail/cur/m1:2,S'), s('Mail/cur/m1:2,RS'));
  renameSync(s('Mail/cur/m2:2,S'), s('Mail/.Work/cur/m2:2,S'));
  writeFileSync(s('Mail/cur/m3:2,S'), readFileSync(s('Mail/cur/m3:2,S'), 'latin1').replace('Subject: m3', 'Subject: m3 (edited)'), 'latin1');
  writeFileSync(s('Mail/cur/m4:2,S'), message('m4', 'a new body\n'));
  cpSync(s('Mail/cur/m5:2,S'), s('Mail/.Work/cur/m5-copy:2,S'));
  put(p.client, 'Mail/cur/local-only:2,S', message('local-only'));
  return p;
}

interface Fault {
  title: string;
  victim: 'server' | 'client';
  /** The frame at which to kill (the frame is forwarded first if `after`). */
  onServer?: (f: Frame) => boolean;
  onClient?: (f: Frame) => boolean;
  after?: boolean;
  /** Custom hooks (for partial forwarding). */
  hooks?: (p: Pair) => { onServer?: Hook; onClient?: Hook };
  /** Extra setup of the copy. */
  setup?: (p: Pair) => void;
}

const killAt = (victim: 'server' | 'client', when: (f: Frame) => boolean, after: boolean): Hook => async (f, c) => {
  if (!when(f)) return undefined;
  if (!after) { c.kill(victim); return []; }
  if (f.from === 'server') await c.toClient(f.kind === 'chunk' ? { chunk: f.data } : { line: f.line });
  else await c.toServer({ line: f.line });
  await c.sleep(30);
  c.kill(victim);
  return [];
};

const reply = (f: Frame): boolean => f.phase === 'reply' && (f.request ?? '').startsWith('GET');
/** The 4th reply to a GET (a predicate with its own counter: one per fault). */
const fourthReply = (): ((f: Frame) => boolean) => { let n = 0; return (f) => reply(f) && ++n === 4; };
const faults: Fault[] = [];
for (const victim of ['client', 'server'] as const) {
  faults.push(
    { title: `${victim} killed in the handshake`, victim, onServer: (f) => f.phase === 'handshake' && f.index === 1 },
    { title: `${victim} killed during the diff`, victim, onServer: (f) => f.phase === 'diff' && f.index === 5, after: true },
    { title: `${victim} killed during the transfer`, victim, onServer: fourthReply(), after: true },
    { title: `${victim} killed at COMMIT`, victim, onClient: (f) => f.line === 'COMMIT', after: victim === 'client' },
    { title: `${victim} killed after the patch`, victim, onServer: (f) => f.phase === 'reply' && f.request === 'COMMIT', after: true },
    { title: `${victim} killed at DONE`, victim, onClient: (f) => f.line === 'DONE', after: victim === 'server' },
  );
}
faults.push({ title: 'server killed at DONE, before it reads it', victim: 'server', onClient: (f) => f.line === 'DONE' });
faults.push({
  title: 'client killed while writing its db-file (half of the patch received)',
  victim: 'client',
  hooks: () => ({
    onServer: async (f, c) => {
      if (!(f.phase === 'reply' && f.request === 'COMMIT')) return undefined;
      await c.toClient({ raw: Buffer.concat([Buffer.from(`chunk ${f.data.length}\n`), f.data.subarray(0, f.data.length >> 1)]) });
      await c.sleep(200);
      c.kill('client');
      return [];
    },
  }),
});
faults.push({
  title: 'server killed while writing its db-file',
  victim: 'server',
  hooks: (p) => {
    // The scan writes <db>.new through a temporary file: kill as soon as one appears.
    let killed = false;
    let server: { kill(s: NodeJS.Signals): boolean } | null = null;
    const w = watch(join(p.server, '.smd'), (_e, name) => {
      if (!killed && server !== null && String(name).includes('.tmp.')) { killed = true; server.kill('SIGKILL'); w.close(); }
    });
    setTimeout(() => w.close(), 60_000).unref();
    return { onServer: (_f, c) => { server ??= c.server; return undefined; } };
  },
  setup: (p) => {
    // A bigger db-file takes longer to write.
    for (let i = 0; i < 3000; i++) put(p.server, `Mail/.Work/cur/bulk${i}:2,S`, message(`bulk${i}`));
  },
});
faults.push({
  title: 'temporary files that killed runs left in ~/.smd (dead pids) are removed by the next run',
  victim: 'client',
  setup: (p) => {
    const dead = spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim();
    // What each side writes: the server its .new, .mtime.new and stat cache, the client its patched .new.
    for (const f of [`${DB}.new.tmp.${dead}.abc123`, `${DB}.mtime.new.tmp.${dead}.x1`, `${DB}.stat-cache.new.tmp.${dead}.y2`]) {
      writeFileSync(join(p.server, f), 'z'.repeat(100_000));
    }
    writeFileSync(join(p.client, `${DB}.new.tmp.${dead}.abc123`), 'z'.repeat(100_000));
  },
  onServer: () => false,
});

const base = await template();
const work = tempDir(t, 'smd-fault-');

interface Outcome { fault: Fault; p: Pair; faulty: RelayResult; rerun: RelayResult; killed: boolean }

async function runFault(fault: Fault, i: number): Promise<Outcome> {
  const dir = join(work, String(i));
  cpSync(base.base, dir, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  const p: Pair = { ...base, base: dir, server: join(dir, 'server'), client: join(dir, 'client'), elsewhere: join(dir, 'elsewhere') };
  fault.setup?.(p);
  const hooks = fault.hooks?.(p) ?? {
    onServer: fault.onServer ? killAt(fault.victim, fault.onServer, fault.after === true) : undefined,
    onClient: fault.onClient ? killAt(fault.victim, fault.onClient, fault.after === true) : undefined,
  };
  const faulty = await run(p, hooks);
  const killed = faulty.log.some((l) => l.startsWith('kill ')) || (faulty.server.signal === 'SIGKILL' || faulty.client.signal === 'SIGKILL');
  const rerun = await run(p);
  return { fault, p, faulty, rerun, killed };
}

const started = Date.now();
const outcomes = await pool(3, faults.map((f, i) => () => runFault(f, i)));
const tried = outcomes.length;
const failures = outcomes.filter((o) => o.rerun.client.code !== 0 || o.rerun.server.code !== 0).length;
t.comment(`fault suite: ${tried} kill points tried, ${failures} reruns failed, ${((Date.now() - started) / 1000).toFixed(1)} s`);

for (const o of outcomes) {
  t.test(o.fault.title, async (t) => {
    const { p, faulty, rerun } = o;
    t.notOk(faulty.hung, 'the faulty run ended (the survivor did not wait forever)');
    if (o.fault.title.startsWith('temporary files')) t.pass('no kill in this case');
    else t.ok(o.killed, `the ${o.fault.victim} was killed: ${faulty.log.filter((l) => l.startsWith('kill')).join(', ')}`);
    const survivor = o.fault.victim === 'server' ? faulty.client : faulty.server;
    t.equal(stackTraceIn(survivor.stderr), null, 'the survivor says what happened, without a stack trace');
    t.notOk(rerun.hung, 'the rerun ends');
    t.equal(rerun.client.code, 0, `the rerun succeeds (client): ${rerun.client.stderr.slice(-800)}`);
    t.equal(rerun.server.code, 0, `the rerun succeeds (server): ${rerun.server.stderr.slice(-800)}`);
    const server = messages(p.server);
    const client = messages(p.client);
    const local = client.filter((l) => l.startsWith('Mail/cur/local-only'));
    t.equal(local.length, 1, 'the client\'s own message is still there');
    t.same(client.filter((l) => !l.startsWith('Mail/cur/local-only')), server, 'the client has exactly the server\'s messages: nothing lost, nothing duplicated');
    const expected = expectedDb(p.server);
    t.same(dbLines(join(p.server, DB)), expected, 'the server db-file describes its tree (computed here)');
    t.same(dbLines(join(p.client, DB)), expected, 'the client db-file is the same');
    t.same(strayTemps(p.server), [], 'no stray temporary file on the server');
    t.same(strayTemps(p.client), [], 'no stray temporary file on the client');
    for (const home of [p.server, p.client]) {
      const left = readdirSync(join(home, '.smd')).filter((n) => n.endsWith('.new') || n.includes('.tmp.'));
      t.same(left, [], `nothing .new or .tmp left in ${home.endsWith('server') ? 'the server' : 'the client'}'s ~/.smd`);
    }
    t.ok(existsSync(join(p.server, `${DB}.mtime`)), 'the server has its .mtime');
  });
}
