/**
 * The pure smd-client policy (upstream spec 5.4), row by row, plus the name
 * checks. The flag merge is flags.test.ts, the mass-deletion brake brake.test.ts.
 */
import t from 'tap';
import {
  decide, ABSENT, message, type LocalState, type Decision, type Sibling, refuseName, refuseCommand, checkMailboxRoot, folderOf, dirOf, baseOf, renameOnlyScript, upstreamTmpName, namesOf,
  countDbFolders,
} from '@smd/client';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommand } from '@smd/snapshot';

const H = 'a'.repeat(40);
const B = 'b'.repeat(40);
const H2 = 'c'.repeat(40);
const B2 = 'd'.repeat(40);
const X = 'e'.repeat(40);
const S = 'Mail/cur/s';
const T = 'Mail/cur/t';
const ctx = { absolute: (n: string) => `/home/u/${n}`, show: (n: string) => n };
const OTHER: LocalState = { kind: 'other', why: 'no header' };

function run(line: string, state: Record<string, LocalState>): Decision {
  return decide(parseCommand(line), (n) => state[n] ?? ABSENT, ctx);
}
const kind = (d: Decision): string => d.kind;
const conflictOf = (d: Decision): string => (d.kind === 'conflict' || d.kind === 'failure' ? `${d.tags.context}/${d.tags.probableCause}/${d.tags.humanIntervention}` : `not a conflict: ${d.kind}`);

t.test('ADD', async (t) => {
  const l = `ADD ${T} ${H} ${B}`;
  t.same(run(l, { [T]: message(H, B) }), { kind: 'ok', reason: 'already there' }, 'exists with (H,B) → ok');
  const c = run(l, { [T]: message(H2, B) });
  t.equal(conflictOf(c), 'mail-addition/concurrent-mailbox-edit/necessary', 'different → conflict');
  t.same(c.kind === 'conflict' && c.tags.suggestedActions, [`run(mv -n "/home/u/${T}" "/home/u/Mail/tmp/t")`]);
  t.equal(conflictOf(run(l, { [T]: OTHER })), 'mail-addition/concurrent-mailbox-edit/necessary', 'not a message → conflict');
  t.same(run(l, {}), { kind: 'fetch', name: T, header: H, body: B, replace: null }, 'absent → fetch');
});

t.test('DELETE', async (t) => {
  const l = `DELETE ${T} ${H} ${B}`;
  t.equal(kind(run(l, {})), 'ok', 'absent → ok');
  t.same(run(l, { [T]: message(H, B) }), { kind: 'unlink', name: T, header: H, body: B }, 'same → unlink');
  const c = run(l, { [T]: message(H, B2) });
  t.equal(conflictOf(c), 'delete-message/concurrent-mailbox-edit/necessary');
  t.same(c.kind === 'conflict' && c.tags.suggestedActions,
    [`display-mail("/home/u/${T}")`, `run(rm "/home/u/${T}")`, 'run(@@INVERSECOMMAND@@ @@ENDPOINT@@)']);
});

t.test('COPY', async (t) => {
  const l = `COPY ${S} ${H} ${B} TO ${T}`;
  t.equal(kind(run(l, { [S]: message(H, B), [T]: message(H, B) })), 'ok', 'both exist, both match → ok');
  t.equal(conflictOf(run(l, { [S]: message(H, B), [T]: message(X, B) })), 'copy-message/concurrent-mailbox-edit/necessary', 'both, T differs');
  t.equal(conflictOf(run(l, { [S]: message(X, B), [T]: message(H, B) })), 'copy-message/concurrent-mailbox-edit/necessary', 'both, S differs');
  t.same(run(l, { [S]: message(H, B) }), { kind: 'copy', from: S, to: T, header: H, body: B }, 'only S, matching → local copy');
  t.same(run(l, { [S]: message(X, B) }), { kind: 'fetch', name: T, header: H, body: B, replace: null }, 'only S, different → fetch T');
  t.equal(kind(run(l, { [T]: message(H, B) })), 'ok', 'only T, matching → ok');
  t.equal(conflictOf(run(l, { [T]: message(H, X) })), 'copy-message/concurrent-mailbox-edit/necessary', 'only T, different → conflict');
  t.same(run(l, {}), { kind: 'fetch', name: T, header: H, body: B, replace: null }, 'neither → fetch T');
});

t.test('MOVE', async (t) => {
  const l = `MOVE ${S} ${H} ${B} TO ${T}`;
  t.same(run(l, { [S]: message(H, B), [T]: message(H, B) }), { kind: 'unlink', name: S, header: H, body: B }, 'both, both match → delete S');
  t.equal(kind(run(l, { [S]: message(X, B), [T]: message(H, B) })), 'ok', 'both, S modified → ok (S kept)');
  t.equal(conflictOf(run(l, { [S]: message(H, B), [T]: message(X, B) })), 'move-message/concurrent-mailbox-edit/necessary', 'both, T differs');
  t.same(run(l, { [S]: message(H, B) }), { kind: 'rename', from: S, to: T, header: H, body: B }, 'only S matching → rename');
  t.same(run(l, { [S]: message(H, X) }), { kind: 'fetch', name: T, header: H, body: B, replace: null }, 'only S different → fetch T');
  t.equal(kind(run(l, { [T]: message(H, B) })), 'ok', 'only T matching → ok');
  t.equal(conflictOf(run(l, { [T]: message(X, X) })), 'copy-message/concurrent-mailbox-edit/necessary', 'only T different → conflict (context copy-message as upstream)');
  t.same(run(l, {}), { kind: 'fetch', name: T, header: H, body: B, replace: null,
    note: 'deleted or moved away here, but changed on the other side: fetched again (a message just changed is never lost)' }, 'neither → fetch T');
});

t.test('flags: concurrent changes in the policy', async (t) => {
  const src = 'Mail/cur/u:2,S';
  const theirs = 'Mail/cur/u:2,RS';
  const mine = 'Mail/cur/u:2,FS';
  const sib = (state: LocalState, name = mine): (() => Sibling[]) => () => [{ name, state }];
  const move = parseCommand(`MOVE ${src} ${H} ${B} TO ${theirs}`);
  t.same(decide(move, () => ABSENT, ctx, sib(message(H, B))),
    { kind: 'merge-flags', from: mine, to: 'Mail/cur/u:2,FRS', header: H, body: B, flags: { from: 'FS', to: 'FRS' } }, 'renamed on both sides → merged');
  t.equal(decide(move, () => ABSENT, ctx, sib(message(H, B2))).kind, 'fetch', 'a sibling with other content is not the same message');
  t.equal(decide(move, () => ABSENT, ctx, sib(message(H, B), 'Mail/cur/u:2,RS')).kind, 'fetch', 'the target itself is no sibling');
  t.same(decide(move, () => ABSENT, ctx, sib(message(H, B), 'Mail/cur/u:2,R')),
    { kind: 'ok', reason: 'flags changed on both sides: Mail/cur/u:2,R already has the merged flags' }, 'the local name already has the merged flags');
  t.equal(decide(move, (n) => (n === src ? message(H, B) : ABSENT), ctx, sib(message(H, B))).kind, 'rename', 'source still here: no merge');
  const del = parseCommand(`DELETE ${src} ${H} ${B}`);
  const kept = decide(del, () => ABSENT, ctx, sib(message(H, B)));
  t.equal(kept.kind, 'kept', 'deleted there, flags changed here → kept');
  t.match(kept.kind === 'kept' ? kept.note : '', /deleted on the other side, but its flags were changed here/);
  t.equal(decide(del, () => ABSENT, ctx, () => []).kind, 'ok', 'deleted on both sides');
});

t.test('every conflict and failure in full: message, TAGS, actions', async (t) => {
  const show = { absolute: (n: string) => `/home/u/${n}`, show: (n: string) => `<${n}>` };
  const full = (line: string, state: Record<string, LocalState>): Decision => decide(parseCommand(line), (n) => state[n] ?? ABSENT, show);
  const tags = (context: string, actions: string[]) => ({ context, probableCause: 'concurrent-mailbox-edit', humanIntervention: 'necessary', suggestedActions: actions });
  const look = (n: string) => [`display-mail("/home/u/${n}")`, `run(rm "/home/u/${n}")`];
  t.same(full(`ADD ${T} ${H} ${B}`, { [T]: message(X, B) }), { kind: 'conflict',
    message: `<${T}>: a new message with this name arrived, but a different local message has the same name`,
    tags: tags('mail-addition', [`run(mv -n "/home/u/${T}" "/home/u/Mail/tmp/t")`]) }, 'ADD');
  t.same(full(`DELETE ${T} ${H} ${B}`, { [T]: message(X, B) }), { kind: 'conflict',
    message: `<${T}>: deleted on the other side, but the local file has been modified meanwhile`,
    tags: tags('delete-message', [...look(T), 'run(@@INVERSECOMMAND@@ @@ENDPOINT@@)']) }, 'DELETE');
  t.same(full(`COPY ${S} ${H} ${B} TO ${T}`, { [S]: message(H, B), [T]: message(X, B) }), { kind: 'conflict',
    message: `<${T}>: copy of <${S}>, but the local file has been modified meanwhile`, tags: tags('copy-message', look(T)) }, 'COPY');
  t.same(full(`COPY ${S} ${H} ${B} TO ${T}`, { [T]: message(X, B) }), full(`COPY ${S} ${H} ${B} TO ${T}`, { [S]: message(H, B), [T]: message(X, B) }), 'COPY, only T');
  t.same(full(`MOVE ${S} ${H} ${B} TO ${T}`, { [S]: message(H, B), [T]: message(X, B) }), { kind: 'conflict',
    message: `<${T}>: move target of <${S}>, but the local file has been modified meanwhile`, tags: tags('move-message', look(T)) }, 'MOVE, both');
  t.same(full(`MOVE ${S} ${H} ${B} TO ${T}`, { [T]: message(X, B) }), { kind: 'conflict',
    message: `<${T}>: move target of <${S}>, but the local file has been modified meanwhile`, tags: tags('copy-message', look(T)) }, 'MOVE, only T');
  t.same(full(`REPLACEHEADER ${T} ${H} ${B} WITH ${H2}`, { [T]: message(X, B) }), { kind: 'conflict',
    message: `<${T}>: header changed on the other side, but the local file has been modified meanwhile`, tags: tags('header-replacement', look(T)) }, 'REPLACEHEADER');
  t.same(full(`COPYBODY ${S} ${B} TO ${T} ${H2}`, { [T]: message(X, B) }), { kind: 'conflict',
    message: `<${T}>: new message sharing its body with <${S}>, but the local file has been modified meanwhile`, tags: tags('copy-body', look(T)) }, 'COPYBODY');
  t.same(full(`REPLACE ${T} ${H} ${B} WITH ${H2} ${B2}`, { [T]: message(X, B) }), { kind: 'conflict',
    message: `<${T}>: replaced on the other side, but the local file has been modified meanwhile`, tags: tags('replace', look(T)) }, 'REPLACE');
  t.same(full('ERROR Unable to open directory Mail/cur: gone', {}), { kind: 'failure', message: 'mddiff failed: Unable to open directory Mail/cur: gone',
    tags: { context: 'mddiff', probableCause: 'directory-disappeared', humanIntervention: 'avoidable' } });
  t.same(full('ERROR out of memory', {}), { kind: 'failure', message: 'mddiff failed: out of memory', tags: { context: 'mddiff', probableCause: 'unknown', humanIntervention: 'necessary' } });
  t.same(full('ERROR unable to open directory x', {}).kind === 'failure' && (full('ERROR unable to open directory x', {}) as { tags: { probableCause: string } }).tags.probableCause, 'unknown', 'the prefix is exact');
});

t.test('every non-conflict decision in full (reasons, notes), odd states', async (t) => {
  t.same(run(`DELETE ${T} ${H} ${B}`, {}), { kind: 'ok', reason: 'already deleted' });
  t.same(run(`DELETE ${T} ${H} ${B}`, { [T]: OTHER }).kind, 'conflict', 'DELETE of something that is not the message');
  t.same(run(`COPY ${S} ${H} ${B} TO ${T}`, { [S]: message(H, B), [T]: message(H, B) }), { kind: 'ok', reason: 'already copied' });
  t.same(run(`COPY ${S} ${H} ${B} TO ${T}`, { [T]: message(H, B) }), { kind: 'ok', reason: 'already copied' });
  t.same(run(`COPY ${S} ${H} ${B} TO ${T}`, { [S]: OTHER }), { kind: 'fetch', name: T, header: H, body: B, replace: null }, 'COPY from something that is not a message: fetched');
  t.same(run(`MOVE ${S} ${H} ${B} TO ${T}`, { [S]: message(X, B), [T]: message(H, B) }), { kind: 'ok', reason: 'already moved (the source has local changes and is kept)' });
  t.same(run(`MOVE ${S} ${H} ${B} TO ${T}`, { [T]: message(H, B) }), { kind: 'ok', reason: 'already moved' });
  t.same(run(`MOVE ${S} ${H} ${B} TO ${S}`, { [S]: message(H, B) }), { kind: 'ok', reason: 'source and target are the same name' }, 'MOVE X TO X never deletes X');
  t.same(run(`MOVE ${S} ${H} ${B} TO ${S}`, {}), { kind: 'ok', reason: 'source and target are the same name' });
  t.same(run(`MOVE ${S} ${H} ${B} TO ${T}`, { [S]: OTHER, [T]: message(H, B) }), { kind: 'ok', reason: 'already moved (the source has local changes and is kept)' });
  t.same(run(`REPLACEHEADER ${T} ${H} ${B} WITH ${H2}`, { [T]: message(H2, B) }), { kind: 'ok', reason: 'header already replaced' });
  t.equal(run(`REPLACEHEADER ${T} ${H} ${B} WITH ${H2}`, { [T]: message(H2, B2) }).kind, 'conflict', 'the new header on another body');
  t.same(run(`COPYBODY ${S} ${B} TO ${T} ${H2}`, { [T]: message(H2, B) }), { kind: 'ok', reason: 'already there' });
  t.equal(run(`COPYBODY ${S} ${B} TO ${T} ${H2}`, { [T]: message(H2, B2) }).kind, 'conflict', 'the header on another body');
  t.same(run(`COPYBODY ${S} ${B} TO ${T} ${H2}`, { [S]: OTHER }), { kind: 'fetch', name: T, header: H2, body: B, replace: null }, 'the source is not a message');
  t.same(run(`REPLACE ${T} ${H} ${B} WITH ${H2} ${B2}`, { [T]: message(H2, B2) }), { kind: 'ok', reason: 'already replaced' });
  t.equal(run(`REPLACE ${T} ${H} ${B} WITH ${H2} ${B2}`, { [T]: message(H2, B) }).kind, 'conflict', 'only the new header');
  t.equal(run(`REPLACE ${T} ${H} ${B} WITH ${H2} ${B2}`, { [T]: OTHER }).kind, 'conflict', 'not a message');
  t.equal(run(`ADD ${T} ${H} ${B}`, { [T]: message(H, X) }).kind, 'conflict', 'same header, other body');

  // Siblings: asked only when a name is missing; the first usable one decides.
  const src = 'Mail/cur/u:2,S';
  const asked: string[] = [];
  const sibs = (list: Sibling[]) => (n: string): Sibling[] => { asked.push(n); return list; };
  const move = parseCommand(`MOVE ${src} ${H} ${B} TO Mail/cur/u:2,RS`);
  t.same(decide(move, () => ABSENT, ctx, sibs([{ name: 'Mail/cur/v:2,FS', state: message(H, B) }, { name: 'Mail/cur/u:2,FS', state: message(H, B) }])),
    { kind: 'merge-flags', from: 'Mail/cur/u:2,FS', to: 'Mail/cur/u:2,FRS', header: H, body: B, flags: { from: 'FS', to: 'FRS' } }, 'a sibling of another message is passed over');
  t.same(asked, [src], 'the siblings of the source are asked');
  t.same(decide(move, () => ABSENT, ctx, sibs([{ name: 'Mail/cur/u:2,FS', state: ABSENT }])).kind, 'fetch', 'an absent sibling is none');
  const del = parseCommand(`DELETE ${src} ${H} ${B}`);
  t.same(decide(del, () => ABSENT, ctx, sibs([{ name: 'Mail/cur/u:2,F', state: ABSENT }, { name: 'Mail/cur/u:2,FS', state: OTHER }])),
    { kind: 'kept', name: 'Mail/cur/u:2,FS', note: 'deleted on the other side, but its flags were changed here: kept, the other side gets it back at its next sync' }, 'the first present sibling is kept');
  asked.length = 0;
  decide(del, () => message(H, B), ctx, sibs([]));
  t.same(asked, [], 'a name that is here needs no siblings');

  t.same(namesOf(parseCommand(`ADD ${T} ${H} ${B}`)), [T]);
  t.same(namesOf(parseCommand(`DELETE ${T} ${H} ${B}`)), [T]);
  t.same(namesOf(parseCommand(`REPLACEHEADER ${T} ${H} ${B} WITH ${H2}`)), [T]);
  t.same(namesOf(parseCommand(`REPLACE ${T} ${H} ${B} WITH ${H2} ${B2}`)), [T]);
  t.same(namesOf(parseCommand(`COPY ${S} ${H} ${B} TO ${T}`)), [S, T]);
  t.same(namesOf(parseCommand(`MOVE ${S} ${H} ${B} TO ${T}`)), [S, T]);
  t.same(namesOf(parseCommand(`COPYBODY ${S} ${B} TO ${T} ${H2}`)), [S, T]);
  t.same(namesOf(parseCommand('ERROR x')), []);
  t.equal(upstreamTmpName('Mail/new/a'), 'Mail/tmp/a');
  t.equal(upstreamTmpName('Mail/cur/new/a'), 'Mail/cur/tmp/a', 'the last cur/new component');
  t.equal(upstreamTmpName('cur/a'), 'tmp/a', 'the first component too');
  t.equal(upstreamTmpName('Mail/a/cur'), 'Mail/a/cur', 'never the file name itself');
  t.equal(upstreamTmpName('a'), 'a');
});

t.test('messages per folder in a db-file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'smd-dbc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = join(dir, 'db');
  const line = (n: string): string => `${H} ${B} ${n}\n`;
  writeFileSync(db, [line('Mail/cur/a'), line('Mail/cur/b c'), line('Mail/.W/new/x'), line('Mail/cur/d'), line('Mail/.A b/cur/z')].join(''), 'latin1');
  t.same([...countDbFolders(db)].sort(), [['Mail', 3], ['Mail/.W', 1], ['Mail/.A b', 1]].sort());
  t.same([...countDbFolders(join(dir, 'none'))], [], 'no db-file: no messages');
});

t.test('REPLACEHEADER', async (t) => {
  const l = `REPLACEHEADER ${T} ${H} ${B} WITH ${H2}`;
  t.same(run(l, { [T]: message(H, B) }), { kind: 'merge-header', name: T, oldHeader: H, header: H2, body: B }, 'old → merge');
  t.equal(kind(run(l, { [T]: message(H2, B) })), 'ok', 'new → ok');
  t.equal(conflictOf(run(l, { [T]: message(X, B) })), 'header-replacement/concurrent-mailbox-edit/necessary');
  t.same(run(l, {}), { kind: 'fetch', name: T, header: H2, body: B, replace: null }, 'absent → fetch (H2,B)');
  const raw = decide(parseCommand(`REPLACEHEADER Mail/cur/a b ${H} ${B} WITH ${H2}`), () => ABSENT, ctx);
  t.same(raw, { kind: 'fetch', name: 'Mail/cur/a b', header: H2, body: B, replace: null }, 'raw (upstream B1) name with a space');
});

t.test('COPYBODY', async (t) => {
  const l = `COPYBODY ${S} ${B} TO ${T} ${H2}`;
  t.equal(kind(run(l, { [T]: message(H2, B) })), 'ok', 'T matches → ok');
  t.equal(conflictOf(run(l, { [T]: message(H, B) })), 'copy-body/concurrent-mailbox-edit/necessary', 'T differs');
  t.same(run(l, { [S]: message(H, B) }), { kind: 'copy-then-merge', from: S, to: T, header: H2, body: B }, 'S has the body → copy + merge');
  t.same(run(l, { [S]: message(H, B2) }), { kind: 'fetch', name: T, header: H2, body: B, replace: null }, 'S other body → fetch');
  t.same(run(l, {}), { kind: 'fetch', name: T, header: H2, body: B, replace: null }, 'S absent → fetch');
});

t.test('REPLACE', async (t) => {
  const l = `REPLACE ${T} ${H} ${B} WITH ${H2} ${B2}`;
  t.same(run(l, {}), { kind: 'fetch', name: T, header: H2, body: B2, replace: null }, 'absent → fetch');
  t.equal(kind(run(l, { [T]: message(H2, B2) })), 'ok', 'new → ok');
  t.same(run(l, { [T]: message(H, B) }), { kind: 'fetch', name: T, header: H2, body: B2, replace: { header: H, body: B } }, 'old → fetch, replacing');
  t.equal(conflictOf(run(l, { [T]: message(H, B2) })), 'replace/concurrent-mailbox-edit/necessary', 'else conflict');
});

t.test('ERROR', async (t) => {
  t.equal(conflictOf(run('ERROR Unable to open directory Mail/cur: gone', {})), 'mddiff/directory-disappeared/avoidable');
  t.equal(conflictOf(run('ERROR something else', {})), 'mddiff/unknown/necessary');
  t.equal(kind(run('ERROR x', {})), 'failure');
});

t.test('names from the server', async (t) => {
  const roots = ['Mail', 'Other/box'];
  t.equal(refuseName('Mail/cur/x', roots), null);
  t.equal(refuseName('Mail/.Foo Bar/new/x:2,S', roots), null);
  t.equal(refuseName('Other/box/.A/cur/y', roots), null);
  for (const bad of ['../x', '/abs/x', 'Mail/cur/../../x', 'Mail//cur/x', 'Mail/./cur/x', 'Mail/tmp/x', 'Mail/x', 'Mail/cur/a\0b',
    'Mail/cur/a\nb', 'Mailbox/cur/x', 'Other/cur/x', 'x/Mail/cur/x', 'Mail/cur/', 'Mail/cur/x/..', 'Mail/cur/..']) {
    t.not(refuseName(bad, roots), null, `refused: ${JSON.stringify(bad)}`);
  }
  t.same(checkMailboxRoot('/abs'), { ok: false, reason: 'absolute' });
  t.same(checkMailboxRoot('Mail/'), { ok: true, root: 'Mail' });
  t.same(checkMailboxRoot('a/../b'), { ok: false, reason: 'bad' });
  t.equal(upstreamTmpName('Mail/.x/cur/a:2,S'), 'Mail/.x/tmp/a:2,S');
});

t.test('names from the server: each refusal says why; commands; folder helpers', async (t) => {
  const roots = ['Mail', 'Other/box'];
  const why: Array<[string, string]> = [
    ['', 'empty name'],
    ['Mail/cur/a\0b', 'NUL, CR or LF in the name'],
    ['Mail/cur/a\rb', 'NUL, CR or LF in the name'],
    ['Mail/cur/a\nb', 'NUL, CR or LF in the name'],
    ['/Mail/cur/x', 'absolute name'],
    ['Mail//cur/x', 'empty path component'],
    ['Mail/cur/', 'empty path component'],
    ['Mail/./cur/x', '"." path component'],
    ['Mail/cur/..', '".." path component'],
    ['../Mail/cur/x', '".." path component'],
    ['cur/x', 'not in a Maildir folder'],
    ['Mail/tmp/x', 'not in a cur/ or new/ directory'],
    ['Mail/x/y', 'not in a cur/ or new/ directory'],
    ['Mailbox/cur/x', 'outside the mailboxes given on the command line'],
    ['Other/cur/x', 'outside the mailboxes given on the command line'],
  ];
  for (const [name, reason] of why) t.equal(refuseName(name, roots), reason, JSON.stringify(name));
  t.equal(refuseName('Mail/new/x', roots), null, 'new/ is fine');
  t.equal(refuseName('Other/box/cur/x', roots), null, 'a root with a slash');
  t.equal(refuseName('a/cur/x', ['a']), null, 'the shortest Maildir name');

  const move = parseCommand(`MOVE Mail/cur/a ${H} ${B} TO ../evil/cur/a`);
  t.same(refuseCommand(move, roots), { name: '../evil/cur/a', reason: '".." path component' }, 'the target of a MOVE is checked');
  t.same(refuseCommand(parseCommand(`COPY /etc/cur/x ${H} ${B} TO Mail/cur/a`), roots), { name: '/etc/cur/x', reason: 'absolute name' }, 'the source too');
  t.equal(refuseCommand(parseCommand(`COPY Mail/cur/x ${H} ${B} TO Mail/new/y`), roots), null);
  t.equal(refuseCommand(parseCommand('ERROR whatever'), roots), null, 'an ERROR names nothing');

  t.equal(folderOf('Mail/.Foo/cur/x'), 'Mail/.Foo');
  t.equal(folderOf('a/new/x'), 'a');
  t.equal(dirOf('Mail/.Foo/cur/x'), 'Mail/.Foo/cur');
  t.equal(baseOf('Mail/.Foo/cur/x:2,S'), 'x:2,S');

  t.same(checkMailboxRoot('Mail'), { ok: true, root: 'Mail' });
  t.same(checkMailboxRoot('Mail/Sub//'), { ok: false, reason: 'bad' }, 'only one trailing slash is removed');
  for (const bad of ['', '/', 'a//b', './Mail', 'Mail/.', '..', 'Ma\nil', 'Ma\ril', 'Ma\0il']) {
    t.same(checkMailboxRoot(bad), bad.startsWith('/') ? { ok: false, reason: 'absolute' } : { ok: false, reason: 'bad' }, JSON.stringify(bad));
  }
});

t.test('rename-only script', async (t) => {
  const cmds = [
    `COPY Mail/cur/a ${H} ${B} TO Mail/cur/a2`,
    `COPY Mail/cur/a ${H} ${B} TO Mail/cur/a3`,
    `COPY Mail/cur/b ${H} ${B} TO Mail/new/b2`,
    `COPY Mail/cur/c ${H} ${B} TO Mail/cur/c2`,
    `DELETE Mail/cur/a ${H} ${B}`,
    `DELETE Mail/cur/b ${H} ${B}`,
  ].map(parseCommand);
  t.equal(renameOnlyScript(cmds, (d) => `/h/${d}`),
    "#!/bin/sh\ncp '/h/Mail/cur/a' '/h/Mail/cur/a3'\nmv '/h/Mail/cur/a' '/h/Mail/cur/a2'\n");
});
