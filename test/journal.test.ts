/**
 * A sync that explains itself (issue 11), end to end with the real
 * programs: concurrent flag changes merge, the run journal (smd-log, hooks),
 * logs kept across runs, the dry-run summary, the progress line on a
 * terminal; plus the pure pieces (header decoding, journal lines, rotation,
 * progress text). The brake and Ctrl-C are in safety.test.ts.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { messageSummary, decodeHeaderValue } from '@smd/maildir';
import { formatJournalLine, parseJournalLine, streamLog, type JournalEntry } from '@smd/protocol';
import { RotatingLog, SmdHome, JournalWriter, readJournal, parseEndpointConfig } from '@smd/endpoint';
import { BIN, deliver, remoteConfig, smd, treeObject, twoHomes, writeConfig } from './helpers/sync-fixture.js';
import { tempDir } from './helpers/maildir-fixture.js';
import { currentRate, fit, statusLine } from '@smd/cli/sync/progress';
import { countEntries, describeCounts, dryRunLines } from '@smd/cli/sync/summary';
import { summaryLine } from '@smd/cli/sync/report';
import { parseSince } from '@smd/cli/sync/journal-view';

/** Renames a delivered message (path relative to home) to new flags; returns the new relative path. */
function setFlags(home: string, rel: string, flags: string): string {
  const to = rel.replace(/:2,[A-Za-z]*$/, `:2,${flags}`);
  renameSync(join(home, rel), join(home, to));
  return to;
}

/** `smd-log --json` of an endpoint: the records. */
async function journal(env: NodeJS.ProcessEnv, ...args: string[]): Promise<Array<JournalEntry & { run: string; direction: string }>> {
  const r = await smd('smd-log', ['--json', ...args], env);
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as JournalEntry & { run: string; direction: string });
}

const files = (home: string, dir: string): string[] => (existsSync(join(home, dir)) ? readdirSync(join(home, dir)).sort() : []);
const base = (rel: string): string => rel.slice(rel.lastIndexOf('/') + 1).replace(/:2,.*$/, '');

t.test('flags changed on both sides merge; deleted on one side and changed on the other is kept', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  const both = deliver(h.remote, 'Mail', { flags: 'S', subject: '=?utf-8?q?Caf=C3=A9?= au lait' });
  const addRemove = deliver(h.remote, 'Mail', { flags: 'FS' });
  const deletedThere = deliver(h.remote, 'Mail', { flags: 'S' });
  const deletedHere = deliver(h.remote, 'Mail', { flags: 'S' });
  const removedThere = deliver(h.remote, 'Mail', { flags: 'FS' });
  t.equal((await smd('smd-pull', [], h.env)).status, 0);

  // The server (its mail program) and this host change the same messages before the next sync.
  setFlags(h.remote, both, 'RS');
  setFlags(h.local, both, 'FS');
  setFlags(h.remote, addRemove, 'FRS');
  setFlags(h.local, addRemove, 'S');
  unlinkSync(join(h.remote, deletedThere));
  setFlags(h.local, deletedThere, 'ST');
  setFlags(h.remote, deletedHere, 'RS');
  unlinkSync(join(h.local, deletedHere));
  setFlags(h.remote, removedThere, 'S');

  const pull = await smd('smd-pull', [], h.env);
  t.equal(pull.status, 0, pull.stdout);
  t.match(pull.stdout, /done in .*: 1 new, 0 deleted, 3 flag changes, 1 kept/, 'the summary counts every kind');
  const push = await smd('smd-push', [], h.env);
  t.equal(push.status, 0, push.stdout);
  const again = await smd('smd-pull', ['-s'], h.env);
  t.match(again.stdout, /stats::new-mails\(0\), del-mails\(0\)/, 'nothing left to do');

  const want = [`${base(both)}:2,FRS`, `${base(addRemove)}:2,RS`, `${base(deletedThere)}:2,ST`, `${base(deletedHere)}:2,RS`, `${base(removedThere)}:2,S`].sort();
  t.same(files(h.local, 'Mail/cur'), want, 'here: one file per message, the union of the changes');
  t.same(files(h.remote, 'Mail/cur'), want, 'there: the same');
  t.same(treeObject(join(h.local, 'Mail')), treeObject(join(h.remote, 'Mail')));

  const records = await journal(h.env);
  const pulls = [...new Set(records.filter((r) => r.direction === 'pull').map((r) => r.run))];
  t.equal(pulls.length, 2, 'two pulls changed something');
  const pulled = records.filter((r) => r.run === pulls[1]);
  const of = (rel: string) => pulled.find((r) => r.path.includes(base(rel)));
  t.match(of(both), { action: 'flags', flags: { from: 'FS', to: 'FRS' }, subject: 'Café au lait', sender: 'a@example.org', note: /merged/ },
    'the merge is in the journal, with the decoded subject');
  t.match(of(addRemove), { action: 'flags', flags: { from: 'S', to: 'RS' } });
  t.match(of(deletedThere), { action: 'kept', note: /deleted on the other side, but its flags were changed here/ });
  t.match(of(deletedHere), { action: 'new', note: /deleted or moved away here, but changed on the other side/ });
  t.match(of(removedThere), { action: 'flags', flags: { from: 'FS', to: 'S' } });
  const pushed = records.filter((r) => r.direction === 'push');
  t.same(pushed.map((r) => `${r.action} ${base(r.path)}`).sort(),
    [`flags ${base(both)}`, `flags ${base(addRemove)}`, `new ${base(deletedThere)}`].sort(), 'the remote client\'s actions, through its stderr');
  t.equal(pushed[0]?.path.startsWith('Mail/cur/'), true, 'paths of the server');

  const table = await smd('smd-log', ['--last'], h.env);
  t.equal(table.status, 0);
  t.match(table.stdout, /^== smd-push default, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d: 1 new, 0 deleted, 2 flag changes\n/, 'a readable table of the last run');
  t.match(table.stdout, /flags +Mail +\S+:2,FRS +RS → FRS +"Café au lait" — a@example.org/);
});

t.test('the logs of earlier runs stay; they rotate by size; post hooks get the run journal', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  deliver(h.remote, 'Mail', { subject: 'first' });
  const hook = join(h.local, '.smd', 'hooks', 'post-pull.d');
  mkdirSync(hook, { recursive: true });
  const seen = join(h.local, 'seen.txt');
  writeFileSync(join(hook, '10-journal'), `#!/bin/sh\ncat "$SMD_RUN_JOURNAL" >> ${seen}\n`);
  chmodSync(join(hook, '10-journal'), 0o755);
  t.equal((await smd('smd-pull', [], h.env)).status, 0);
  deliver(h.remote, 'Mail', { subject: 'second' });
  t.equal((await smd('smd-pull', [], h.env)).status, 0);
  const log = join(h.local, '.smd', 'log', 'client.default.log');
  t.equal(readFileSync(log, 'utf8').match(/^=== smd-pull default /gm)?.length, 2, 'both runs are in the client log');
  t.equal(readFileSync(join(h.local, '.smd', 'log', 'server.default.log'), 'utf8').match(/^=== smd-pull default /gm)?.length, 2);
  t.notMatch(readFileSync(log, 'utf8'), /JOURNAL:/, 'journal lines are in the journal, not in the log');
  const hooked = readFileSync(seen, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { subject: string });
  t.same(hooked.map((r) => r.subject), ['first', 'second'], 'each post hook saw its own run\'s records');

  writeFileSync(log, 'x'.repeat(1024 * 1024 + 10));
  t.equal((await smd('smd-pull', [], h.env)).status, 0);
  t.ok(statSync(log).size < 100_000, 'a full log is rotated at the start of a run');
  t.equal(statSync(`${log}.1`).size, 1024 * 1024 + 10, 'the previous one is kept as .1');
  t.same((await journal(h.env)).map((r) => r.subject), ['first', 'second']);
  t.same((await journal(h.env, '--last')).map((r) => r.subject), ['second'], '--last: the last run that changed something');
  t.same(await journal(h.env, '--since', '2000-01-01'), await journal(h.env));
  const none = await smd('smd-log', ['--since', '1m', 'other'], h.env);
  t.match(none.stdout, /No change recorded for endpoint "other"/);
  t.equal((await smd('smd-log', ['--since', 'yesterday'], h.env)).status, 1, 'a bad --since is a usage error');
});

t.test('a dry run ends with a summary per folder, a short TAGS line, and writes no journal', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  deliver(h.remote, 'Mail');
  t.equal((await smd('smd-pull', [], h.env)).status, 0);
  const before = treeObject(join(h.local, 'Mail'));
  for (let i = 0; i < 40; i++) deliver(h.remote, 'Mail');
  for (let i = 0; i < 7; i++) deliver(h.remote, 'Mail/.Lists');
  const dry = await smd('smd-pull', ['-d'], h.env);
  t.equal(dry.status, 0, dry.stdout);
  t.match(dry.stdout, /smd-pull default: dry run, nothing was changed; per folder, the run would apply:\n {2}Mail +40 new, 0 deleted\n {2}Mail\/\.Lists {2}7 new, 0 deleted\n/);
  t.match(dry.stdout, /smd-pull default: dry run done in [\d.]+ s, nothing changed; it would apply: 47 new, 0 deleted\n$/);
  t.match(dry.stdout, /TAGS: stats::mail-transferred\(47 messages\)/, 'a count, not 47 names');
  t.ok(dry.stdout.split('\n').every((l) => l.length < 400), 'no giant line');
  t.same(treeObject(join(h.local, 'Mail')), before, 'nothing changed');
  t.equal((await journal(h.env)).length, 1, 'no journal record but the first pull\'s');
});

t.test('the progress line on a terminal fits its width; not a terminal: no progress', async (t) => {
  const h = twoHomes(t);
  writeConfig(h.local, 'default', remoteConfig());
  for (let i = 0; i < 60; i++) deliver(h.remote, 'Mail', { size: 30_000 });
  const tty = spawnSync('script', ['-qec', `stty cols 50; ${join(BIN, 'smd-pull')}`, '/dev/null'], { env: h.env, cwd: h.local, encoding: 'utf8', timeout: 120_000 });
  t.equal(tty.status, 0, tty.stdout);
  // Redraws are the pieces between carriage returns that end no line (the summary line does; the pty writes \r\n).
  const redraws = tty.stdout.replaceAll('\r\n', '\n').split('\r').filter((s) => !s.includes('\n')).map((s) => s.replace(/\x1b\[K/g, '')).filter((s) => s.startsWith('smd-pull'));
  t.ok(redraws.some((s) => s.startsWith('smd-pull default: scanning…')), 'scanning… first');
  t.ok(redraws.some((s) => /^smd-pull default: \d+\/60 messages/.test(s)), 'then done/total');
  t.ok(redraws.every((s) => [...s].length <= 49), `never wider than the terminal: ${redraws.filter((s) => [...s].length > 49).join(' | ')}`);
  t.match(tty.stdout, /smd-pull default: done in [\d.]+ s: 60 new, 0 deleted/);
  deliver(h.remote, 'Mail');
  const piped = await smd('smd-pull', [], h.env);
  t.equal(piped.stdout.includes('\r') || piped.stdout.includes('scanning'), false, 'no progress noise in a pipe');
});

t.test('pure pieces', async (t) => {
  t.test('Subject/From/Date decoded (RFC 2047)', async (t) => {
    t.equal(decodeHeaderValue('=?UTF-8?B?w6lsw6hu?= =?utf-8?Q?e_=C3=A9?= plain'), 'élène é plain', 'B and Q, adjacent words joined');
    t.equal(decodeHeaderValue('=?ISO-8859-1?Q?Andr=E9?= <a@b>'), 'André <a@b>');
    t.equal(decodeHeaderValue('=?UTF-8?B?4oKs?= =?UTF-8?B?4oI=?= =?UTF-8?B?rA==?='), '€€', 'a character split across words');
    t.equal(decodeHeaderValue('=?x-nope?Q?abc?= x'), '=?x-nope?Q?abc?= x', 'unknown charset left as is');
    const s = messageSummary(Buffer.from('Received: a\n b\nsubject: =?utf-8?q?Caf=C3=A9?=\n =?utf-8?q?_au_lait?=\nFrom: x@y\nDate: Mon, 1 Jan 2024\n\nSubject: body\n'));
    t.same(s, { subject: 'Café au lait', from: 'x@y', date: 'Mon, 1 Jan 2024' }, 'folded, case-insensitive, header only');
    t.same(messageSummary(Buffer.from('Subject: caf\xe9\r\n\r\n', 'latin1')), { subject: 'café', from: null, date: null }, '8-bit latin1, CRLF');
    t.equal(messageSummary(Buffer.from(`Subject: ${'x'.repeat(1000)}\n\n`)).subject?.length, 300, 'bounded');
  });
  t.test('JOURNAL lines', async (t) => {
    const e: JournalEntry = { time: '2026-12-01T10:00:00.000Z', action: 'flags', path: 'Mail/cur/a:2,RS', folder: 'Mail', flags: { from: 'S', to: 'RS' }, subject: 'é' };
    t.same(parseJournalLine(formatJournalLine(e)), e);
    t.equal(parseJournalLine('JOURNAL: {"action":"rm -rf"}'), null, 'a malformed line from a peer is ignored');
    t.equal(parseJournalLine('INFO: x'), null);
    let written = '';
    const log = streamLog(false, { write: (s: string) => { written += s; return true; } });
    log.journal(e);
    t.equal(written, '', 'batched');
    log.tags('TAGS: x');
    t.equal(written, `${formatJournalLine(e)}\nTAGS: x\n`, 'flushed before any other line, in order');
  });
  t.test('rotating logs and the journal file', async (t) => {
    const dir = tempDir(t, 'smd-rot-');
    const p = join(dir, 'x.log');
    const log = new RotatingLog(p, { maxBytes: 100, keep: 2 });
    for (let i = 0; i < 30; i++) log.line(`line ${i} ${'y'.repeat(10)}`);
    log.close();
    t.ok(statSync(p).size < 100 && existsSync(`${p}.1`) && existsSync(`${p}.2`) && !existsSync(`${p}.3`), 'rotated, two kept');
    t.match(readFileSync(`${p}.1`, 'utf8'), /^line \d+ /);
    const home = new SmdHome(dir);
    mkdirSync(home.logDir, { recursive: true });
    const w = new JournalWriter(home, 'ep', 'pull', '2026-12-01T10:00:00.000Z');
    w.append({ time: '2026-12-01T10:00:01.000Z', action: 'new', path: 'Mail/cur/a', folder: 'Mail' });
    w.close();
    writeFileSync(home.journal('ep'), readFileSync(home.journal('ep'), 'utf8') + '{"torn');
    t.same(readJournal(home, 'ep').map((r) => [r.run, r.endpoint, r.direction, r.action]), [['2026-12-01T10:00:00.000Z', 'ep', 'pull', 'new']], 'a torn line is skipped');
  });
  t.test('progress text', async (t) => {
    const who = 'smd-pull default';
    t.equal(statusLine(who, { phase: 'scanning', done: 0, requested: 0, bytes: 0 }, null), 'smd-pull default: scanning…');
    t.equal(statusLine(who, { phase: 'transfer', done: 25, requested: 100, bytes: 3 * 1048576 }, { bytes: 1048576, messages: 5 }),
      'smd-pull default: 25/100 messages (25%), ETA 0:15, 3.0 MiB at 1.0 MiB/s');
    t.equal(statusLine(who, { phase: 'transfer', done: 25, requested: 100, bytes: 1 }, { bytes: 0, messages: 0 }).includes('stalled'), true);
    t.equal(fit('x'.repeat(100), 40).length, 39);
    t.equal(fit('short', 40), 'short');
    // The current rate, not the average: fast at first, then slow.
    const samples = [{ at: 0, bytes: 0, done: 0 }, { at: 1000, bytes: 10_000_000, done: 100 }, { at: 20_000, bytes: 10_100_000, done: 101 }, { at: 21_000, bytes: 10_200_000, done: 102 }];
    const r = currentRate(samples, 21_000);
    t.ok(r !== null && r.bytes < 200_000, `the last seconds count (${r?.bytes})`);
  });
  t.test('summary words', async (t) => {
    const c = countEntries([
      { time: '', action: 'new', path: 'Mail/cur/a', folder: 'Mail', size: 10 },
      { time: '', action: 'flags', path: 'Mail/cur/b', folder: 'Mail' },
      { time: '', action: 'flags', path: 'Mail/.W/cur/c', folder: 'Mail/.W' },
      { time: '', action: 'moved', path: 'Mail/.W/cur/d', folder: 'Mail/.W' },
    ]);
    t.equal(describeCounts(c.total), '1 new, 0 deleted, 2 flag changes, 1 moved');
    t.equal(summaryLine('pull', 'default', 'done', { newMails: 1, delMails: 0, bytesReceived: 1258291, patchBytes: 9, skipped: 0 }, 2, c.total),
      'smd-pull default: done in 2.0 s: 1 new, 0 deleted, 2 flag changes, 1 moved, 1.2 MiB received');
    t.equal(summaryLine('push', 'x', 'interrupted', null, 1, null), 'smd-push x: INTERRUPTED after 1.0 s; nothing was changed; the next run goes on from there');
    t.same(dryRunLines('w', c).slice(1), ['  Mail     1 new, 0 deleted, 1 flag change', '  Mail/.W  0 new, 0 deleted, 1 flag change, 1 moved']);
  });
  t.test('--since', async (t) => {
    t.equal(parseSince('2h', 10_000_000), 10_000_000 - 7_200_000);
    t.equal(parseSince('2026-12-01'), new Date(2026, 11, 1).getTime());
    t.equal(parseSince('2026-12-01 10:30'), new Date(2026, 11, 1, 10, 30).getTime());
    t.equal(parseSince('tomorrow'), null);
  });
  t.test('MASS_DELETE_THRESHOLD is checked with the configuration', async (t) => {
    const cfg = (v: string) => parseEndpointConfig(`SERVERNAME=h\nCLIENTNAME=c\nMAILBOX=Mail\nMASS_DELETE_THRESHOLD=${v}\n`, 'f', 'default', { env: { HOME: '/h' } });
    t.equal(cfg('30').massDeleteThreshold, '30');
    t.equal(cfg('off').massDeleteThreshold, 'off');
    t.throws(() => cfg('150'), /MASS_DELETE_THRESHOLD must be a percentage from 0 to 100/);
  });
});
