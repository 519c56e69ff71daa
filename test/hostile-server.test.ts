/**
 * A lying server: the real smd-server behind the scripted relay, which lies
 * to the real smd-client under test (names, symlinks on the client side,
 * every command, chunks, hashes, malformed lines, early close, patches).
 *
 * Everywhere: nothing outside the client's mailbox and the state dirs is
 * read or changed (a sentinel tree outside, compared by content and listing,
 * and its secret never copied in), no stack trace, a clear error naming the
 * cause, the right exit code and TAGS, no hang.
 *
 * Cases the product does not pass yet are `todo` with the issue section
 * (issue 8); the lead removes the todo when the fix lands.
 */
import t, { type Test } from 'tap';
import { mkdirSync, readFileSync, rmSync, symlinkSync, existsSync } from 'node:fs';
import { constants as zlibConstants, deflateRawSync } from 'node:zlib';
import { join } from 'node:path';
import { type Frame, type Hook, type Item, type RelayResult, relay } from './helpers/relay.js';
import {
  type Pair, changesOutside, enc, errorTags, filesContaining, hashes, maildir, message, messages, pairHomes, pool, put, sha1,
  snapshot, stackTraceIn,
} from './helpers/hostile-fixture.js';

const ARGS = ['laptop', 'Mail'];
/** Local message of the client (source of COPY, MOVE, COPYBODY, target of REPLACE...). */
const L = 'Mail/cur/local:2,S';
const LC = message('local');
/** A new name in the mailbox. */
const N = 'Mail/cur/dest:2,S';
/** Content the lying server wants written. */
const EV = message('evil', 'EVIL-CONTENT\n');
const NH = 'From: x@example.org\nSubject: new header\n\n';

interface Lie {
  line: string;
  /** Replies the relay gives instead of the server: request line -> bytes. */
  answers: Record<string, string>;
}

/** Diff lines a lying server sends, with the replies it gives for them (names: wire form, raw form). */
type Name = { wire: string; raw: string };
const nm = (raw: string): Name => ({ wire: enc(raw), raw });

const lies = {
  add: (x: Name): Lie => { const { h, b } = hashes(EV); return { line: `ADD ${x.wire} ${h} ${b}`, answers: { [`GET ${x.raw}`]: EV } }; },
  copy: (s: Name, d: Name, sc: string): Lie => { const { h, b } = hashes(sc); return { line: `COPY ${s.wire} ${h} ${b} TO ${d.wire}`, answers: {} }; },
  move: (s: Name, d: Name, sc: string): Lie => { const { h, b } = hashes(sc); return { line: `MOVE ${s.wire} ${h} ${b} TO ${d.wire}`, answers: {} }; },
  copybody: (s: Name, d: Name, sc: string): Lie => {
    const { b } = hashes(sc);
    return { line: `COPYBODY ${s.wire} ${b} TO ${d.wire} ${sha1(NH)}`, answers: { [`GETHEADER ${d.raw}`]: NH } };
  },
  del: (x: Name, xc: string): Lie => { const { h, b } = hashes(xc); return { line: `DELETE ${x.wire} ${h} ${b}`, answers: {} }; },
  replace: (x: Name, xc: string): Lie => {
    const o = hashes(xc);
    const n = hashes(EV);
    return { line: `REPLACE ${x.wire} ${o.h} ${o.b} WITH ${n.h} ${n.b}`, answers: { [`GET ${x.raw}`]: EV } };
  },
  replaceheader: (x: Name, xc: string): Lie => {
    const o = hashes(xc);
    return { line: `REPLACEHEADER ${x.wire} ${o.h} ${o.b} WITH ${sha1(NH)}`, answers: { [`GETHEADER ${x.raw}`]: NH } };
  },
};

const SLOTS = ['ADD', 'COPY to', 'COPY from', 'MOVE to', 'MOVE from', 'COPYBODY to', 'COPYBODY from', 'DELETE', 'REPLACE', 'REPLACEHEADER'];

/** Every command with the name `x` in each of its name slots (other slots: L, N). `xc`: the content the lie claims x has. */
function everySlot(x: Name, xc: string): [string, Lie][] {
  return [
    ['ADD', lies.add(x)],
    ['COPY to', lies.copy(nm(L), x, LC)],
    ['COPY from', lies.copy(x, nm(N), xc)],
    ['MOVE to', lies.move(nm(L), x, LC)],
    ['MOVE from', lies.move(x, nm(N), xc)],
    ['COPYBODY to', lies.copybody(nm(L), x, LC)],
    ['COPYBODY from', lies.copybody(x, nm(N), xc)],
    ['DELETE', lies.del(x, xc)],
    ['REPLACE', lies.replace(x, xc)],
    ['REPLACEHEADER', lies.replaceheader(x, xc)],
  ];
}

interface Case {
  title: string;
  /** Extra setup of the homes (symlinks, files). */
  setup?: (p: Pair) => void;
  /** Diff lines injected before the real END (after the server's real changes). */
  inject?: (p: Pair) => Lie[];
  /** Or a hand-written hook on the server's frames / the client's requests. */
  onServer?: (p: Pair) => Hook;
  onClient?: (p: Pair) => Hook;
  clientEnv?: NodeJS.ProcessEnv;
  /** Expected client exit code(s). */
  code: number | number[];
  /** The TAGS line of the client must match (failures). */
  tags?: RegExp;
  /** The client's stderr must match: the cause, in words. */
  cause?: RegExp | ((p: Pair) => RegExp);
  /** Extra checks (`o`: the todo marker of the case, for their assertions). */
  check?: (t: Tap, p: Pair, r: RelayResult, o: { todo?: string }) => void;
  /** Files of the client's Mail (relative) the setup itself filled with the secret. */
  secretCopies?: string[];
  /** Paths (relative to the case's base) a run may change; default: the client's Mail and both .smd. */
  allowed?: string[];
  /** Issue 8 section that makes this pass, when main does not yet. */
  todo?: string;
  timeoutMs?: number;
}
type Tap = Test;

const HOSTILE = /^TAGS: error::context\(receive-delta\) probable-cause\(hostile-or-broken-server\) human-intervention\(necessary\)/;
const NETWORK = /^TAGS: error::context\([a-z-]+\) probable-cause\(network\) human-intervention\(avoidable\) suggested-actions\(retry\)/;
const BAD_REPLY = /^TAGS: error::context\([a-z-]+\) probable-cause\(hostile-or-broken-server\) human-intervention\(necessary\)/;
const SYMLINK = /^TAGS: error::context\(mailbox-path\) probable-cause\(symlink-leaves-mailbox\) human-intervention\(necessary\)/;
/** A refusal the user must look at. */
const NECESSARY = /^TAGS: error::context\([a-z-]+\) probable-cause\([a-z-]+\) human-intervention\(necessary\)/;

const cases: Case[] = [];

// ---------------------------------------------------------------- names
// Names a server may not send, in every command slot: refused before anything is written.
const badNames = (p: Pair): Record<string, Name> => ({
  '..': nm('Mail/cur/../../../elsewhere/F/cur/secret:2,S'),
  'absolute': nm(p.secretFile),
  '%2F': { wire: 'Mail%2F..%2F..%2Felsewhere%2FF%2Fcur%2Fsecret:2,S', raw: 'Mail/../../elsewhere/F/cur/secret:2,S' },
  'NUL': { wire: 'Mail/cur/secret:2,S%00x', raw: 'Mail/cur/secret:2,S\0x' },
  'newline': { wire: 'Mail/cur/secret:2,S%0Ax', raw: 'Mail/cur/secret:2,S\nx' },
  'tmp/': nm('Mail/tmp/secret:2,S'),
  'other root': nm('Other/cur/secret:2,S'),
  'not in a Maildir folder': nm('Mail/secret:2,S'),
});
const namesSetup = (p: Pair): void => {
  // What a buggy client would hit: the sentinel, a tmp/ file and another root, all holding the secret message.
  const sc = readFileSync(p.secretFile, 'latin1');
  put(p.client, 'Mail/tmp/secret:2,S', sc);
  put(p.client, 'Other/cur/secret:2,S', sc);
  maildir(p.client, 'Other');
};
// Every slot for one kind (the check is the same function for every name of a command), a few for the others.
const slotsOf: Record<string, string[]> = { '..': SLOTS, 'absolute': ['ADD', 'COPY from', 'MOVE to', 'DELETE', 'REPLACEHEADER'] };
for (const kind of ['..', 'absolute', '%2F', 'NUL', 'newline', 'tmp/', 'other root', 'not in a Maildir folder']) {
  const slots = slotsOf[kind] ?? ['ADD', 'DELETE'];
  for (const slot of slots) {
    cases.push({
      title: `name ${kind} in ${slot}`,
      setup: namesSetup,
      inject: (p) => {
        const x = badNames(p)[kind];
        const lie = everySlot(x, readFileSync(p.secretFile, 'latin1')).find(([s]) => s === slot)![1];
        return [lie];
      },
      code: 6, tags: HOSTILE, cause: /unacceptable name|malformed diff line|name contains/, secretCopies: ['tmp/secret:2,S'],
      check: (t, p, _r, o) => {
        t.equal(readFileSync(join(p.client, 'Mail/tmp/secret:2,S'), 'latin1'), readFileSync(p.secretFile, 'latin1'), 'the tmp/ file is untouched', o);
      },
    });
  }
}
// The refused line as the very first change (no valid line before it).
cases.push({
  title: 'a refused name as the first diff line',
  onServer: (p) => (f) => f.phase === 'diff' && f.index === 2 ? [{ line: lies.add(nm(p.secretFile)).line }, { line: f.line }] : undefined,
  code: 6, tags: HOSTILE, cause: /unacceptable name/,
});

// ---------------------------------------------------------------- symlinks
// Symlinks in the client's mailbox that lead outside it: a name through them is refused, with an error naming the symlink.
interface LinkKind { title: string; setup: (p: Pair) => void; existing: string; fresh: string; link: string; slots?: string[] }
const linkKinds: LinkKind[] = [
  { title: 'folder symlink to an absolute path', setup: (p) => symlinkSync(join(p.elsewhere, 'F'), join(p.client, 'Mail/.Link')),
    existing: 'Mail/.Link/cur/secret:2,S', fresh: 'Mail/.Link/cur/evil:2,S', link: 'Mail/.Link' },
  { title: 'cur/ symlink', setup: (p) => {
    mkdirSync(join(p.client, 'Mail/.C/new'), { recursive: true });
    mkdirSync(join(p.client, 'Mail/.C/tmp'), { recursive: true });
    symlinkSync(join(p.elsewhere, 'F/cur'), join(p.client, 'Mail/.C/cur'));
  }, existing: 'Mail/.C/cur/secret:2,S', fresh: 'Mail/.C/cur/evil:2,S', link: 'Mail/.C/cur', slots: ['ADD', 'MOVE to', 'COPYBODY from', 'DELETE', 'REPLACE'] },
  { title: 'relative folder symlink leading out', setup: (p) => symlinkSync('../../elsewhere/F', join(p.client, 'Mail/.Rel')),
    existing: 'Mail/.Rel/cur/secret:2,S', fresh: 'Mail/.Rel/cur/evil:2,S', link: 'Mail/.Rel', slots: ['ADD', 'MOVE from', 'COPY to', 'COPYBODY to', 'REPLACEHEADER'] },
];

for (const k of linkKinds) {
  for (const slot of k.slots ?? SLOTS) {
    // A name through the link: an existing outside file for the "from"/in-place slots, a new one for the "to" slots.
    const fromSlot = slot.endsWith('from') || ['DELETE', 'REPLACE', 'REPLACEHEADER'].includes(slot);
    cases.push({
      title: `${k.title}: ${slot}`,
      setup: (p) => { k.setup(p); put(p.client, L, LC); },
      inject: (p) => {
        const x = nm(fromSlot ? k.existing : k.fresh);
        return [everySlot(x, readFileSync(p.secretFile, 'latin1')).find(([s]) => s === slot)![1]];
      },
      code: 3, tags: SYMLINK, cause: new RegExp(`${k.link.replace(/\./g, '\\.')} is a symbolic link`),
    });
  }
}
// tmp/ symlink: every write of a temporary file would go outside.
for (const [slot, mk] of [
  ['ADD', () => lies.add(nm('Mail/cur/evil:2,S'))],
  ['COPY', () => lies.copy(nm(L), nm(N), LC)],
  ['COPYBODY', () => lies.copybody(nm(L), nm(N), LC)],
  ['REPLACE', () => lies.replace(nm(L), LC)],
  ['REPLACEHEADER', () => lies.replaceheader(nm(L), LC)],
] as [string, () => Lie][]) {
  cases.push({
    title: `tmp/ symlink: ${slot}`,
    setup: (p) => {
      maildir(p.client, 'Mail/.T');
      put(p.client, L, LC);
      // The INBOX's tmp/ leads outside.
      rmSync(join(p.client, 'Mail/tmp'), { recursive: true });
      symlinkSync(join(p.elsewhere, 'F/tmp'), join(p.client, 'Mail/tmp'));
    },
    inject: () => [mk()],
    code: 3, tags: SYMLINK, cause: /Mail\/tmp is a symbolic link/,
  });
}
// A message file that is a symlink to a file outside: never written through, never read into the mailbox.
for (const [slot, mk] of [
  ['REPLACE', (x: Name, xc: string) => lies.replace(x, xc)],
  ['REPLACEHEADER', (x: Name, xc: string) => lies.replaceheader(x, xc)],
  ['DELETE', (x: Name, xc: string) => lies.del(x, xc)],
  ['MOVE from', (x: Name, xc: string) => lies.move(x, nm(N), xc)],
  ['COPY from', (x: Name, xc: string) => lies.copy(x, nm(N), xc)],
  ['COPYBODY from', (x: Name, xc: string) => lies.copybody(x, nm(N), xc)],
] as [string, (x: Name, xc: string) => Lie][]) {
  // A copy from the symlink may be skipped (exit 0); the others are refused.
  const reads = slot === 'COPY from' || slot === 'COPYBODY from' || slot === 'MOVE from';
  cases.push({
    title: `message file symlink: ${slot}`,
    setup: (p) => symlinkSync(p.secretFile, join(p.client, 'Mail/cur/link:2,S')),
    inject: (p) => [mk(nm('Mail/cur/link:2,S'), readFileSync(p.secretFile, 'latin1'))],
    // Not written through and not read (the checks of every case); refused or left alone.
    code: reads ? [0, 3] : 3,
  });
}
// A symlink that stays inside the mailbox is followed.
cases.push({
  title: 'relative folder symlink inside the mailbox: followed',
  setup: (p) => { maildir(p.client, 'Mail/.Real'); symlinkSync('.Real', join(p.client, 'Mail/.Alias')); },
  inject: () => [lies.add(nm('Mail/.Alias/cur/ok:2,S'))],
  code: 0,
  check: (t, p, _r, o) => t.equal(readFileSync(join(p.client, 'Mail/.Real/cur/ok:2,S'), 'latin1'), EV, 'written in the real folder', o),
});

// ---------------------------------------------------------------- commands on real local files
cases.push({
  title: 'MOVE X TO X is a no-op',
  setup: (p) => put(p.client, L, LC),
  inject: () => [lies.move(nm(L), nm(L), LC)],
  code: 0,
  check: (t, p, _r, o) => t.equal(existsSync(join(p.client, L)) ? readFileSync(join(p.client, L), 'latin1') : null, LC, 'X is still there', o),
});
cases.push({
  title: 'an ERROR line: no COMMIT, the run fails with the server\'s text',
  inject: () => [{ line: 'ERROR the scan of the server failed', answers: {} }],
  code: [3, 6], tags: NECESSARY, cause: /the scan of the server failed/,
  check: (t, _p, r, o) => t.notMatch(r.toServer.toString('latin1'), /\nCOMMIT\n/, 'no COMMIT after an ERROR', o),
});

// ---------------------------------------------------------------- malformed and overlong lines
for (const [title, line] of [
  ['an unknown command', 'FOO Mail/cur/x'],
  ['a bad hash', 'ADD Mail/cur/x zz yy'],
  ['missing fields', 'ADD Mail/cur/x'],
  ['a double space', `ADD  Mail/cur/x ${sha1('a')} ${sha1('b')}`],
  ['MOVE without a destination', `MOVE Mail/cur/x ${sha1('a')} ${sha1('b')} TO`],
  ['a bad %-escape', `ADD Mail/cur/x%zz ${sha1('a')} ${sha1('b')}`],
  ['an empty line', ''],
  ['a line of 20,000 bytes', `ADD Mail/cur/${'x'.repeat(20_000)} ${sha1('a')} ${sha1('b')}`],
]) {
  cases.push({
    title: `malformed diff line: ${title}`,
    inject: () => [{ line, answers: {} }],
    code: 6, tags: HOSTILE, cause: /server sent|overlong|malformed|bad|unknown|invalid/i,
  });
}
cases.push({
  title: 'a line without its LF, then EOF',
  onServer: () => async (f, c) => {
    if (f.phase !== 'diff') return undefined;
    await c.toClient({ raw: `ADD Mail/cur/x ${sha1('a')}` });
    await c.closeToClient();
    return [];
  },
  code: 6, tags: NETWORK, cause: /closed|network/i,
});

// ---------------------------------------------------------------- handshake
for (const [title, index, line, tags, cause] of [
  ['an upstream server (protocol 1.3)', 0, 'protocol 1.3', /handshake\) probable-cause\(protocol-mismatch\)/, /upstream|syncmaildir/i],
  ['a garbage protocol line', 0, 'hello', /handshake\) probable-cause\(protocol-mismatch\)/, /protocol/],
  ['a bad dbfile line', 1, 'dbfile nothex -', /handshake\) probable-cause\(protocol-mismatch\)/, /dbfile|protocol/],
  ['a db-file that does not match', 1, `dbfile ${sha1('other')} -`, /handshake\) probable-cause\(db-mismatch\).*suggested-actions\(run\(rm /, /db-file|database|rm /i],
  ['an overlong first line', 0, 'x'.repeat(100_000), /handshake\)/, /line|protocol/i],
] as [string, number, string, RegExp, RegExp][]) {
  cases.push({
    title: `handshake: ${title}`,
    onServer: () => (f) => f.phase === 'handshake' && f.index === index ? [{ line }] : undefined,
    code: 6, tags: new RegExp(`^TAGS: error::context\\(${tags.source}`), cause,
  });
}

// ---------------------------------------------------------------- early close
/** Hook: at the frame `when` picks, send `items` (instead of the frame) and close the stream to the client. */
const closeAt = (when: (f: Frame) => boolean, items: (f: Frame) => Item[] = () => []): (() => Hook) => () => async (f, c) => {
  if (!when(f)) return undefined;
  await c.toClient(...items(f));
  await c.closeToClient();
  return [];
};
const firstReply = (f: Frame): boolean => f.phase === 'reply' && f.request !== null && f.request.startsWith('GET ');
const patchReply = (f: Frame): boolean => f.phase === 'reply' && f.request === 'COMMIT';
for (const [title, hook, tags, code] of [
  ['after the first handshake line', closeAt((f) => f.index === 1), NETWORK, 6],
  ['during the diff', closeAt((f) => f.phase === 'diff' && f.index === 3, (f) => [{ line: f.line }]), NETWORK, 6],
  ['instead of END', closeAt((f) => f.line === 'END'), NETWORK, 6],
  ['instead of a reply', closeAt(firstReply), NETWORK, [1, 6]],
  ['inside a reply', closeAt(firstReply, (f) => [{ raw: Buffer.concat([Buffer.from(`chunk ${f.data.length}\n`), f.data.subarray(0, 10)]) }]), NETWORK, [1, 6]],
  ['instead of the patch', closeAt(patchReply), NETWORK, 6],
  ['inside the patch', closeAt(patchReply, (f) => [{ raw: Buffer.concat([Buffer.from(`chunk ${f.data.length}\n`), f.data.subarray(0, f.data.length >> 1)]) }]), NETWORK, 6],
] as [string, () => Hook, RegExp, number | number[]][]) {
  cases.push({
    title: `early close ${title}`,
    onServer: hook,
    code, tags, cause: /network|closed|connection/i,
    check: (t, p, _r, o) => t.equal(readFileSync(join(p.client, '.smd/laptop__Mail.db.txt'), 'latin1'), '', 'the db-file is not committed', o),
  });
}
cases.push({
  title: 'a server that stops talking: the idle timeout ends the run',
  clientEnv: { SMD_IDLE_TIMEOUT: '2' },
  onServer: () => (f) => (f.phase === 'reply' ? [] : undefined),
  code: [1, 6], tags: NETWORK, cause: /timeout|idle|nothing|silent/i,
  timeoutMs: 50_000,
});

// ---------------------------------------------------------------- chunks and hashes
const replyWith = (mk: (f: Frame) => Item[], close = false): (() => Hook) => () => async (f, c) => {
  if (!firstReply(f)) return undefined;
  await c.toClient(...mk(f));
  if (close) await c.closeToClient();
  return [];
};
for (const [title, hook, code, tags, cause] of [
  ['a short chunk (fewer bytes than announced, then EOF)', replyWith((f) => [{ raw: `chunk ${f.data.length + 100}\n${f.data.toString('latin1')}` }], true), [1, 6], NETWORK, /network|closed/i],
  ['a chunk over the 1 GiB limit', replyWith(() => [{ raw: 'chunk 2000000000\n' }]), 1, BAD_REPLY, /limit|exceeds/],
  ['a 1 GiB chunk that never comes', replyWith(() => [{ raw: 'chunk 1073741824\nFrom: x\n' }], true), [1, 6], NETWORK, /network|closed/i],
  ['a chunk header with a leading zero', replyWith(() => [{ raw: 'chunk 066\n' }]), 1, BAD_REPLY, /chunk/],
  ['a negative chunk size', replyWith(() => [{ raw: 'chunk -1\n' }]), 1, BAD_REPLY, /chunk/],
  ['an upper-case CHUNK', replyWith((f) => [{ raw: `CHUNK ${f.data.length}\n` }, { raw: f.data }]), 1, BAD_REPLY, /chunk/i],
  ['a chunk size of 17 digits', replyWith(() => [{ raw: 'chunk 12345678901234567\n' }]), 1, BAD_REPLY, /chunk/],
] as [string, () => Hook, number | number[], RegExp, RegExp][]) {
  cases.push({ title, onServer: hook, code, tags, cause });
}
// Lying content: the message differs from what the diff announced. Never placed; the run skips it (5.1) or fails.
for (const [title, mk] of [
  ['other bytes of the same size', (f: Frame) => Buffer.from(f.data.toString('latin1').replace(/body/, 'BODY'), 'latin1')],
  ['a longer message', (f: Frame) => Buffer.concat([f.data, Buffer.from('more\n')])],
  ['an empty chunk', () => Buffer.alloc(0)],
] as [string, (f: Frame) => Buffer][]) {
  cases.push({
    title: `lying content: ${title}`,
    onServer: replyWith((f) => [{ chunk: mk(f) }]),
    code: [0, 1],
    check: (t, p, r) => {
      const lied = /^C> GET (.*)$/m.exec(r.log.join('\n'))?.[1] ?? '';
      t.not(lied, '', 'the client asked for a message');
      if (existsSync(join(p.client, lied))) t.equal(sha1(readFileSync(join(p.client, lied))), sha1(readFileSync(join(p.server, lied))), 'only the true message may be placed');
      t.match(r.client.stderr, /different|skipp|announced/i, 'the lie is named');
    },
  });
}
for (const [title, lie] of [
  ['REPLACEHEADER with a lying header', (): Lie => ({ ...lies.replaceheader(nm(L), LC), answers: { [`GETHEADER ${L}`]: 'From: liar\n\n' } })],
  ['COPYBODY with a lying header', (): Lie => ({ ...lies.copybody(nm(L), nm(N), LC), answers: { [`GETHEADER ${N}`]: 'From: liar\n\n' } })],
] as [string, () => Lie][]) {
  cases.push({
    title: `lying hash: ${title}`,
    setup: (p) => put(p.client, L, LC),
    inject: () => [lie()],
    code: [0, 1],
    check: (t, p) => {
      t.equal(readFileSync(join(p.client, L), 'latin1'), LC, 'the local message is untouched');
      t.notOk(existsSync(join(p.client, N)), 'nothing placed');
    },
  });
}

// ---------------------------------------------------------------- patches
const patchWith = (mk: (f: Frame, p: Pair) => Item[]): ((p: Pair) => Hook) => (p) => (f) => (patchReply(f) ? mk(f, p) : undefined);
const patchHeader = (p: Pair, size: number, enc2: string, opsLength: number): string =>
  `smd-dbpatch 1\nfrom ${sha1(readFileSync(join(p.client, '.smd/laptop__Mail.db.txt')))}\nto ${sha1('x')} ${size}\nops ${enc2} ${opsLength}\n`;
for (const [title, mk, code, tags, cause] of [
  ['garbage instead of a patch', () => [{ chunk: 'hello world\n' }], 4, /db-patch\) probable-cause\(bad-patch\)/, /patch/],
  ['an xdelta3 patch (upstream)', () => [{ chunk: Buffer.from([0xd6, 0xc3, 0xc4, 0, 0, 1, 2]) }], 4, /db-patch/, /xdelta3/],
  ['a patch for another db-file', (f: Frame) => [{ chunk: Buffer.from(f.data.toString('latin1').replace(/^from [0-9a-f]{40}/m, `from ${sha1('other')}`), 'latin1') }], 4, /db-patch/, /SHA-1/],
  ['a patch whose result has another SHA-1', (f: Frame) => [{ chunk: Buffer.from(f.data.toString('latin1').replace(/^to [0-9a-f]{40}/m, `to ${sha1('other')}`), 'latin1') }], 4, /db-patch/, /SHA-1/],
  ['a patch announcing a 2 GiB db-file', (_f: Frame, p: Pair) => [{ chunk: `${patchHeader(p, 2 ** 31, 'plain', 3)}=1\n` }], 4, /db-patch/, /bytes/],
  ['a chunk of 2 GB instead of a patch', () => [{ raw: 'chunk 2000000000\n' }], 6, /receive-db-patch\) probable-cause\(hostile-or-broken-server\)/, /limit|exceeds/],
] as [string, (f: Frame, p: Pair) => Item[], number, RegExp, RegExp][]) {
  cases.push({
    title: `patch: ${title}`,
    onServer: patchWith(mk),
    code, tags: new RegExp(`^TAGS: error::context\\(${tags.source}`), cause,
    check: (t, p, _r, o) => t.equal(readFileSync(join(p.client, '.smd/laptop__Mail.db.txt'), 'latin1'), '', 'the db-file is untouched', o),
  });
}
cases.push({
  title: 'patch: a 3.5 MB patch bomb (inflates to 3.4 GiB) is refused quickly, in little memory',
  onServer: (p) => (f) => {
    if (!patchReply(f)) return undefined;
    const zeros = deflateRawSync(Buffer.alloc(1 << 20), { level: 9, finishFlush: zlibConstants.Z_SYNC_FLUSH });
    const body = Buffer.concat([...Array<Buffer>(3400).fill(zeros), deflateRawSync(Buffer.alloc(0))]);
    return [{ chunk: Buffer.concat([Buffer.from(patchHeader(p, 1 << 30, 'deflate', body.length)), body]) }];
  },
  code: 4, tags: /^TAGS: error::context\(db-patch\)/, cause: /patch/,
  check: (t, _p, r) => {
    const peak = /peak RSS (\d+)/.exec(r.log.join('\n'));
    t.ok(peak !== null && Number(peak[1]) < 400 * 1024, `client peak RSS ${peak?.[1]} kB`);
  },
});

// ---------------------------------------------------------------- running the cases

/** The base scenario: the server has three new messages, so fetches are in flight when the lie comes. */
function scenario(p: Pair): void {
  for (let i = 0; i < 3; i++) put(p.server, `Mail/cur/real${i}:2,S`, message(`real${i}`));
}

/** Peak RSS (kB) of a process, from /proc, sampled until it exits. */
function watchPeak(pid: number, log: string[]): void {
  let peak = 0;
  const iv = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]));
    } catch { clearInterval(iv); log.push(`peak RSS ${peak} kB`); }
  }, 20);
}

async function runCase(c: Case): Promise<{ p: Pair; r: RelayResult; before: Map<string, string>; after: Map<string, string> }> {
  const p = pairHomes(t);
  scenario(p);
  c.setup?.(p);
  const injected = c.inject?.(p) ?? [];
  const answers: Record<string, string> = Object.assign({}, ...injected.map((l) => l.answers));
  const before = snapshot(p.base);
  let watching = false;
  const onServer: Hook | undefined = c.onServer?.(p) ?? (injected.length > 0
    ? (f) => (f.phase === 'diff' && f.line === 'END' ? [...injected.map((l) => ({ line: l.line })), { line: 'END' }] : undefined)
    : undefined);
  const r = await relay({
    server: { home: p.server, args: ARGS },
    client: { home: p.client, args: ARGS, env: c.clientEnv },
    // Generous: a loaded CI machine may take many seconds per run; a hang is still caught.
    timeoutMs: c.timeoutMs ?? 60_000,
    onServer: async (f, ctl) => {
      if (!watching) { watching = true; watchPeak(ctl.client.pid!, ctl.log); }
      return onServer?.(f, ctl);
    },
    onClient: c.onClient?.(p) ?? ((f) => (f.line in answers ? { answer: [{ chunk: answers[f.line] }] } : undefined)),
  });
  await new Promise((res) => setTimeout(res, 50));
  return { p, r, before, after: snapshot(p.base) };
}

// HOSTILE_ONLY=<regexp> runs the matching cases only (debugging).
const only = process.env.HOSTILE_ONLY ? new RegExp(process.env.HOSTILE_ONLY) : null;
const selected = only === null ? cases : cases.filter((c) => only.test(c.title));
const started = Date.now();
const results = await pool(3, selected.map((c) => async () => {
  const t0 = Date.now();
  const res = await runCase(c);
  if (process.env.HOSTILE_VERBOSE) process.stderr.write(`${((Date.now() - t0) / 1000).toFixed(1)} s ${c.title}${res.r.hung ? ` HUNG\n${res.r.log.slice(-12).join("\n")}\n${res.r.client.stderr}` : ""}\n`);
  return res;
}));
t.comment(`${selected.length} lying-server cases ran in ${((Date.now() - started) / 1000).toFixed(1)} s`);

selected.forEach((c, i) => {
  const { p, r, before, after } = results[i];
  // A todo case runs all its checks; their failures are reported as TODO (tap skips a todo subtest's function).
  const o = c.todo !== undefined ? { todo: c.todo } : {};
  t.test(c.title, async (t) => {
    const why = `client exit ${r.client.code}${r.hung ? ' (hung)' : ''}:\n${r.client.stderr.slice(-1500)}`;
    t.notOk(r.hung, 'no hang: both programs ended by themselves', o);
    t.equal(stackTraceIn(r.client.stderr), null, 'no stack trace or internal error from the client', o);
    t.equal(stackTraceIn(r.server.stderr), null, 'no stack trace or internal error from the server', o);
    const codes = Array.isArray(c.code) ? c.code : [c.code];
    t.ok(codes.includes(r.client.code ?? -1), `client exit code in ${codes.join('|')}: ${why}`, o);
    if (c.tags) t.match(errorTags(r.client.stderr) ?? '', c.tags, 'TAGS', o);
    if (c.cause) t.match(r.client.stderr, typeof c.cause === 'function' ? c.cause(p) : c.cause, 'the error names the cause', o);
    if (codes.every((x) => x !== 0)) t.ok(/^ERROR: /m.test(r.client.stderr), 'an ERROR line', o);
    t.same(changesOutside(before, after, c.allowed ?? ['client/Mail', 'client/.smd', 'server/.smd']), [], 'nothing changed outside the mailbox and the state dirs', o);
    t.same(filesContaining(join(p.client, 'Mail'), p.secret).filter((f) => !(c.secretCopies ?? []).includes(f)), [], 'nothing read from outside into the mailbox', o);
    c.check?.(t, p, r, o);
  });
});
