/**
 * Mail programs at work on both sides while smd-pull and smd-push run (the
 * real wrappers, over the fake ssh): new mail is delivered into new/, read
 * mail moves to cur/ with `:2,S`, flags change (renames). Every run must
 * succeed (a message that changed meanwhile is left for the next run), and
 * once the mail programs stop, a final pull + push converge with no message
 * lost (every Message-Id ever delivered is on both sides).
 *
 * Also the deterministic form of the race: a message renamed on the server
 * between its scan and the client's GET.
 */
import t from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deliver, remoteConfig, smd, twoHomes, writeConfig } from './helpers/sync-fixture.js';
import { relay } from './helpers/relay.js';
import { PLAIN_NODE } from './helpers/plain-node.js';
import { dbLines, expectedDb, message, messages, pairHomes, put, stackTraceIn } from './helpers/hostile-fixture.js';

/** A mail program on one Maildir: delivers, reads (new/ -> cur/:2,S) and flags (renames in cur/). */
class MailProgram {
  readonly delivered = new Set<string>();
  private n = 0;
  private seed: number;
  private timer: NodeJS.Timeout | null = null;
  actions = 0;

  constructor(private readonly root: string, private readonly tag: string, seed: number) {
    this.seed = seed;
    for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(root, d), { recursive: true });
  }

  private rnd(k: number): number {
    this.seed = (this.seed * 16807) % 2147483647;
    return this.seed % k;
  }

  deliverOne(): void {
    this.n += 1;
    const id = `${this.tag}-${this.n}`;
    const name = `${1800000000 + this.n}.M${this.n}P1.${this.tag}`;
    writeFileSync(join(this.root, 'tmp', name), message(id, `mail ${id}\n${'z'.repeat(500 + this.rnd(5000))}\n`));
    renameSync(join(this.root, 'tmp', name), join(this.root, 'new', name));
    this.delivered.add(id);
  }

  /** One action: deliver, read one new message, or change the flags of one message. */
  step(): void {
    this.actions += 1;
    const r = this.rnd(3);
    try {
      if (r === 0) { this.deliverOne(); return; }
      if (r === 1) {
        const fresh = readdirSync(join(this.root, 'new'));
        if (fresh.length === 0) return;
        const f = fresh[this.rnd(fresh.length)];
        if (!existsSync(join(this.root, 'cur', `${f}:2,S`))) renameSync(join(this.root, 'new', f), join(this.root, 'cur', `${f}:2,S`));
        return;
      }
      const cur = readdirSync(join(this.root, 'cur'));
      if (cur.length === 0) return;
      const f = cur[this.rnd(cur.length)];
      const i = f.indexOf(':2,');
      const base = i < 0 ? f : f.slice(0, i);
      const flags = ['S', 'RS', 'FS', 'FRS', ''][this.rnd(5)];
      // A careful mail program never renames onto another file (rename(2) would replace it): the
      // test below shows what a careless one does to a message that exists twice.
      const to = join(this.root, 'cur', `${base}:2,${flags}`);
      if (!existsSync(to)) renameSync(join(this.root, 'cur', f), to);
    } catch { /* the other program (smd) moved it first: a mail program just goes on */ }
  }

  start(everyMs: number): void {
    this.timer = setInterval(() => this.step(), everyMs);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }
}

/** Message-Ids present in a Maildir tree (every cur/ and new/). */
function idsIn(root: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (dir: string): void => {
    for (const n of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, n.name);
      if (n.isDirectory()) { if (n.name !== 'tmp') walk(p); continue; }
      const m = /^Message-Id: <(.*)@test>$/m.exec(readFileSync(p, 'latin1'));
      if (m) out.set(m[1], (out.get(m[1]) ?? 0) + 1);
    }
  };
  walk(root);
  return out;
}

t.test('mail programs on both sides during pulls and pushes: every run succeeds, nothing is lost', async (t) => {
  const h = twoHomes(t);
  h.env = { ...h.env, ...PLAIN_NODE };
  writeConfig(h.local, 'default', remoteConfig());
  const remote = new MailProgram(join(h.remote, 'Mail'), 'srv', 7);
  const local = new MailProgram(join(h.local, 'Mail'), 'cli', 11);
  for (let i = 0; i < 40; i++) remote.deliverOne();
  for (let i = 0; i < 10; i++) deliver(h.remote, 'Mail/.Lists');
  const first = await smd('smd-pull', [], h.env, { timeoutMs: 120_000 });
  t.equal(first.status, 0, `first pull: ${first.stdout}`);
  for (let i = 0; i < 10; i++) local.deliverOne();

  remote.start(7);
  local.start(11);
  const runs: { cmd: string; status: number | null; out: string }[] = [];
  try {
    for (const cmd of ['smd-pull', 'smd-push', 'smd-pull', 'smd-push', 'smd-pull']) {
      const r = await smd(cmd, [process.env.SMD_CONCURRENCY_DEBUG ? '-v' : '-s'], h.env, { timeoutMs: 120_000 });
      runs.push({ cmd, status: r.status, out: r.stdout + r.stderr });
    }
  } finally {
    remote.stop();
    local.stop();
  }
  t.comment(`mail program actions during the runs: ${remote.actions} on the server, ${local.actions} on the client`);
  t.ok(remote.actions > 20 && local.actions > 20, 'the mail programs really worked during the runs');
  for (const [i, r] of runs.entries()) {
    t.equal(r.status, 0, `run ${i + 1} (${r.cmd}) succeeds while the mail programs work: ${r.out.slice(-600)}`);
    t.equal(stackTraceIn(r.out), null, `run ${i + 1}: no stack trace`);
  }

  // The mail programs stopped: the next runs converge.
  for (const cmd of ['smd-pull', 'smd-push', 'smd-pull']) {
    const r = await smd(cmd, process.env.SMD_CONCURRENCY_DEBUG ? ['-v'] : [], h.env, { timeoutMs: 120_000 });
    runs.push({ cmd, status: r.status, out: r.stdout + r.stderr });
    t.equal(r.status, 0, `${cmd} after the activity: ${r.stdout.slice(-600)}`);
  }
  t.same(messages(h.local), messages(h.remote), 'both trees are the same');
  const onServer = idsIn(join(h.remote, 'Mail'));
  const onClient = idsIn(join(h.local, 'Mail'));
  const lost = [...remote.delivered, ...local.delivered].filter((id) => !onServer.has(id) || !onClient.has(id));
  t.same(lost, [], `0 lost out of ${remote.delivered.size + local.delivered.size} messages delivered`);
  if (lost.length > 0 && process.env.SMD_CONCURRENCY_DEBUG) {
    // What every run said about the lost messages (their file names hold the Message-Id's number).
    for (const id of lost) {
      const [tag, n] = id.split('-');
      const key = `M${n}P1.${tag}`;
      t.comment(`lost ${id}:\n${runs.map((r, i) => `run ${i + 1} ${r.cmd}:\n${r.out.split('\n').filter((l) => l.includes(key)).join('\n')}`).join('\n')}`);
    }
  }
});

t.test('a message renamed on the server between its scan and its GET: skipped, the run succeeds, the db-file stays truthful', async (t) => {
  const p = pairHomes(t);
  for (let i = 0; i < 4; i++) put(p.server, `Mail/cur/m${i}:2,S`, message(`m${i}`));
  put(p.server, 'Mail/new/X', message('X'));
  const ARGS = ['laptop', 'Mail'];
  const r = await relay({
    server: { home: p.server, args: ARGS },
    client: { home: p.client, args: ARGS },
    timeoutMs: 90_000,
    // The mail program reads X just before the request for it reaches the server.
    onClient: (f) => {
      if (f.line === 'GET Mail/new/X') renameSync(join(p.server, 'Mail/new/X'), join(p.server, 'Mail/cur/X:2,S'));
      return undefined;
    },
  });
  t.notOk(r.hung, 'no hang (the server flushes its ABORT)');
  t.equal(r.client.code, 0, `the run succeeds: ${r.client.stderr.slice(-600)}`);
  t.equal(r.server.code, 0, `the server too: ${r.server.stderr.slice(-600)}`);
  t.equal(stackTraceIn(r.client.stderr + r.server.stderr), null, 'no stack trace');
  t.notOk(existsSync(join(p.client, 'Mail/new/X')), 'X was not received');
  const db = join(p.client, '.smd/laptop__Mail.db.txt');
  t.same(dbLines(db), expectedDb(p.client), 'the client db-file claims exactly the messages the client has');
  t.same(dbLines(db), dbLines(join(p.server, '.smd/laptop__Mail.db.txt')), 'both db-files agree');
  const again = await relay({ server: { home: p.server, args: ARGS }, client: { home: p.client, args: ARGS }, timeoutMs: 90_000 });
  t.equal(again.client.code, 0, 'the next run succeeds');
  t.same(messages(p.client), messages(p.server), 'and picks X up under its new name');
  t.same(dbLines(db), expectedDb(p.server), 'the db-file describes the tree');
});

t.test('overlapping runs: the working directory of a running client is removed; the client ends instead of spinning', async (t) => {
  // What a second smd-pull does to the first one's client when the lock was removed by hand: it resets
  // ~/.smd/workarea, the client's working directory. Node's mkdirSync(relative, { recursive: true }) then
  // loops for ever on ENOENT (mkdir("Mail") / mkdir("Mail/cur"), 100% CPU) and, being synchronous, the
  // client never sees its input end either. (Fixed by MailboxRoots: real absolute roots, one mkdir per component.)
  const p = pairHomes(t);
  for (let i = 0; i < 3; i++) put(p.server, `Mail/.B/cur/b${i}:2,S`, message(`b${i}`));
  const ARGS = ['laptop', 'Mail'];
  let removed = false;
  const r = await relay({
    server: { home: p.server, args: ARGS },
    client: { home: p.client, args: ARGS },
    timeoutMs: 30_000,
    onServer: (f) => {
      if (!removed && f.phase === 'diff' && f.line.startsWith('ADD Mail/.B/')) { removed = true; rmSync(p.client, { recursive: true, force: true }); }
      return undefined;
    },
  });
  t.ok(removed, 'the client\'s working directory was removed mid-run');
  t.notOk(r.hung, `the client ends by itself: ${r.log.slice(-4).join(' | ')}`);
  t.not(r.client.code, 0, 'and fails');
  t.match(r.client.stderr, /^ERROR: /m, 'with an ERROR line');
  t.equal(stackTraceIn(r.client.stderr), null, 'no stack trace');
});

t.test('the same message flagged differently on both sides between two syncs: one file each side, the flags merged, nothing lost', async (t) => {
  // Before the flag merge, the pull left the message under two names (B:2,FS and B:2,RS) on each side;
  // a mail program renaming one onto the other then made each side DELETE the other's last copy.
  const p = pairHomes(t);
  const ARGS = ['laptop', 'Mail'];
  const pull = (): ReturnType<typeof relay> => relay({ server: { home: p.server, args: ARGS }, client: { home: p.client, args: ARGS }, timeoutMs: 90_000 });
  const push = (): ReturnType<typeof relay> => relay({ server: { home: p.client, args: ARGS }, client: { home: p.server, args: ARGS }, timeoutMs: 90_000 });
  put(p.server, 'Mail/cur/B:2,S', message('flagged on both sides'));
  put(p.server, 'Mail/cur/other:2,S', message('other'));
  const steps: [string, number | null, number | null][] = [];
  const step = async (what: string, run: () => ReturnType<typeof relay>): Promise<void> => {
    const r = await run();
    steps.push([what, r.client.code, r.server.code]);
  };
  await step('pull', pull);
  const mv = (home: string, from: string, to: string): void => renameSync(join(home, 'Mail/cur', from), join(home, 'Mail/cur', to));
  mv(p.server, 'B:2,S', 'B:2,FS');
  mv(p.client, 'B:2,S', 'B:2,RS');
  await step('pull', pull);
  await step('push', push);
  await step('pull', pull);
  t.same(steps.map(([, c, s]) => [c, s]), steps.map(() => [0, 0]), `every run succeeds: ${JSON.stringify(steps)}`);
  const copies = (home: string): string[] => messages(home).filter((l) => l.startsWith('Mail/cur/B:2,'));
  t.same(copies(p.client).map((l) => l.split(' ')[0]), ['Mail/cur/B:2,FRS'], 'the client holds one file, with both changes');
  t.same(copies(p.server).map((l) => l.split(' ')[0]), ['Mail/cur/B:2,FRS'], 'the server too');
  t.same(messages(p.client), messages(p.server), 'both sides agree');
});
