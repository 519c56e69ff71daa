/**
 * A lying client: the real smd-client behind the scripted relay, which lies
 * to the real smd-server under test (requests for names outside the scan,
 * through symlinks on the server side, malformed and overlong lines,
 * handshake lies, SKIP floods, early close, ABORT, silence).
 *
 * Everywhere: the server sends nothing from outside its mailbox (the
 * sentinel's secret never appears in its output), changes nothing outside
 * its state dir, prints no stack trace, names the cause, exits with the
 * right code and TAGS, and never hangs.
 */
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { type Frame, type Hook, type RelayResult, relay } from './helpers/relay.js';
import {
  type Pair, changesOutside, errorTags, maildir, message, messages, pairHomes, pool, put, sha1, snapshot, stackTraceIn,
} from './helpers/hostile-fixture.js';

const ARGS = ['laptop', 'Mail'];
const DB = '.smd/laptop__Mail.db.txt';

interface Case {
  title: string;
  setup?: (p: Pair) => void;
  onClient?: (p: Pair, replies: string[]) => Hook;
  onServer?: (p: Pair, replies: string[]) => Hook;
  serverEnv?: NodeJS.ProcessEnv;
  /** Expected server exit code(s). */
  code: number | number[];
  tags?: RegExp;
  cause?: RegExp;
  check?: (t: Test, p: Pair, r: RelayResult, replies: string[], o: { todo?: string }) => void;
  todo?: string;
  timeoutMs?: number;
}

const NETWORK = /^TAGS: error::context\(communication\) probable-cause\(network\) human-intervention\(avoidable\) suggested-actions\(retry\)/;
const cases: Case[] = [];

/** Hook: before the client's first GET, inject `requests`; their replies are collected into `replies` (`ABORT` or `chunk N`). */
const injectBeforeFirstGet = (requests: (p: Pair) => string[]): ((p: Pair, replies: string[]) => Hook) => (p) => {
  let done = false;
  return async (f, c) => {
    if (done || !f.line.startsWith('GET ')) return undefined;
    done = true;
    await c.toServer(...requests(p).map((line) => ({ line })));
    return undefined;
  };
};
/** Hook: right after the client's handshake, inject `requests` (answered after the server's END, whatever the diff). */
const injectAfterHandshake = (requests: (p: Pair) => string[]): ((p: Pair, replies: string[]) => Hook) => (p) => async (f, c) => {
  if (!(f.phase === 'handshake' && f.index === 1)) return undefined;
  await c.toServer({ line: f.line }, ...requests(p).map((line) => ({ line })));
  return [];
};
/** Hook on the server: replies to injected requests are recorded (and not forwarded). */
const recordInjected = (_p: Pair, replies: string[]): Hook => (f) => {
  if (f.injected) replies.push(f.kind === 'chunk' ? `chunk ${f.data.length}` : f.line);
  return undefined;
};

// ---------------------------------------------------------------- names
const lyingNames = (p: Pair): string[] => [
  '../elsewhere/F/cur/secret:2,S',
  'Mail/../../elsewhere/F/cur/secret:2,S',
  'Mail/cur/real0:2,S/../../../../elsewhere/F/cur/secret:2,S',
  p.secretFile,
  'Mail%2F..%2F..%2Felsewhere%2FF%2Fcur%2Fsecret:2,S',
  'Mail/cur/real0:2,S\0',
  'Mail/tmp/tmpfile',
  'Other/cur/other:2,S',
  DB,
  'Mail/cur',
  'Mail/cur/not-there:2,S',
];
const everyPart = (names: string[]): string[] => names.flatMap((n) => [`GET ${n}`, `GETHEADER ${n}`, `GETBODY ${n}`]);

cases.push({
  title: 'requests for names that are not messages of the scan: ABORT each, the session goes on',
  setup: (p) => {
    put(p.server, 'Mail/tmp/tmpfile', message('tmp', `${p.secret}\n`));
    maildir(p.server, 'Other');
    put(p.server, 'Other/cur/other:2,S', message('other', `${p.secret}\n`));
  },
  onClient: injectBeforeFirstGet((p) => everyPart(lyingNames(p))),
  onServer: recordInjected,
  code: 0,
  check: (t, p, r, replies) => {
    t.same(replies, everyPart(lyingNames(p)).map(() => 'ABORT'), 'every lying request is answered ABORT');
    t.equal(r.client.code, 0, 'the real requests are still served: the run completes');
    t.same(messages(p.client), messages(p.server), 'the client got the real messages');
    t.match(r.server.stderr, /Refusing to send|not a message|Unable to send/, 'the server logs the refusals');
  },
});

// Symlinks on the server side: it serves only regular files reached without leaving its roots.
for (const [title, setup, name] of [
  ['a folder symlink to an absolute path', (p: Pair) => symlinkSync(join(p.elsewhere, 'F'), join(p.server, 'Mail/.Link')), 'Mail/.Link/cur/secret:2,S'],
  ['a cur/ symlink', (p: Pair) => {
    mkdirSync(join(p.server, 'Mail/.C/new'), { recursive: true });
    mkdirSync(join(p.server, 'Mail/.C/tmp'), { recursive: true });
    symlinkSync(join(p.elsewhere, 'F/cur'), join(p.server, 'Mail/.C/cur'));
  }, 'Mail/.C/cur/secret:2,S'],
  ['a relative folder symlink leading out', (p: Pair) => symlinkSync('../../elsewhere/F', join(p.server, 'Mail/.Rel')), 'Mail/.Rel/cur/secret:2,S'],
  ['a message file that is a symlink', (p: Pair) => symlinkSync(p.secretFile, join(p.server, 'Mail/cur/link:2,S')), 'Mail/cur/link:2,S'],
  ['a tmp/ symlink', (p: Pair) => {
    rmSync(join(p.server, 'Mail/tmp'), { recursive: true });
    symlinkSync(join(p.elsewhere, 'F/tmp'), join(p.server, 'Mail/tmp'));
    put(p.elsewhere, 'F/tmp/secret-tmp', message('tmp', `${p.secret}\n`));
  }, 'Mail/tmp/secret-tmp'],
] as [string, (p: Pair) => void, string][]) {
  // A folder symlink leading out stops the scan with an ERROR naming it (the client then aborts: exit 5);
  // a message symlink or a tmp/ symlink is simply not part of the scan.
  const folder = !title.includes('message file') && !title.includes('tmp/');
  cases.push({
    title: `server side ${title}: nothing from outside is sent`,
    setup,
    onClient: injectAfterHandshake(() => everyPart([name])),
    onServer: recordInjected,
    code: folder ? 5 : 0,
    check: (t, _p, r, replies, o) => {
      t.same(replies, ['ABORT', 'ABORT', 'ABORT'], `GET, GETHEADER, GETBODY ${name}: ABORT`, o);
      if (folder) t.match(r.client.stderr, /symbolic link/, 'the failure names the symlink', o);
    },
  });
}

// ---------------------------------------------------------------- malformed requests
/** Hook: the client's first GET is replaced by `line`. */
const replaceFirstGet = (line: string): ((p: Pair) => Hook) => () => {
  let done = false;
  return (f) => {
    if (done || !f.line.startsWith('GET ')) return undefined;
    done = true;
    return [{ line }];
  };
};
for (const [title, line] of [
  ['GET without a name', 'GET'],
  ['GET with an empty name', 'GET '],
  ['an unknown request', 'GETX Mail/cur/real0:2,S'],
  ['a lower-case request', 'get Mail/cur/real0:2,S'],
  ['an empty line', ''],
  ['COMMIT with an argument', 'COMMIT now'],
  ['DONE before COMMIT', 'DONE'],
  ['binary garbage', '\x00\x01\xff\xfe garbage'],
  ['a line of 20,000 bytes', `GET Mail/cur/${'x'.repeat(20_000)}`],
  ['a line of 10 MB without LF, then EOF', ''],
]) {
  const hook = title.includes('10 MB')
    ? (): Hook => {
      let done = false;
      return async (f, c) => {
        if (done || !f.line.startsWith('GET ')) return undefined;
        done = true;
        await c.toServer({ raw: Buffer.alloc(10 << 20, 0x41) });
        await c.closeToServer();
        return [];
      };
    }
    : replaceFirstGet(line);
  cases.push({
    title: `malformed request: ${title}`,
    onClient: hook,
    code: title.includes('10 MB') ? [3, 6] : 6,
    cause: /Invalid command|invalid|longer than|line/i,
    check: (t, p) => t.notOk(existsSync(join(p.server, `${DB}.new`)) && readFileSync(join(p.server, DB), 'latin1') !== '', 'the db-file is not committed'),
  });
}

// ---------------------------------------------------------------- handshake
for (const [title, index, line, code, tags] of [
  ['an upstream client (protocol 1.3)', 0, 'protocol 1.3', 7, /handshake\) probable-cause\(protocol-mismatch\)/],
  ['a garbage protocol line', 0, 'hello', 7, /handshake\) probable-cause\(protocol-mismatch\)/],
  ['a bad dbfile line', 1, 'dbfile nothex -', 7, /handshake\) probable-cause\(protocol-mismatch\)/],
  ['a db-file that does not match', 1, `dbfile ${sha1('other')} -`, 7, /handshake\) probable-cause\(db-mismatch\).*suggested-actions\(run\(rm /],
  ['an overlong first line', 0, 'x'.repeat(100_000), [6, 7], /handshake|communication/],
] as [string, number, string, number | number[], RegExp][]) {
  cases.push({
    title: `handshake: ${title}`,
    onClient: () => (f) => (f.phase === 'handshake' && f.index === index ? [{ line }] : undefined),
    code, tags: new RegExp(`^TAGS: error::context\\(${tags.source}`),
  });
}

// ---------------------------------------------------------------- early close, ABORT, silence
/** Hook: at the client frame `when` picks, send nothing more (the frame itself too if `forward`) and close. */
const closeAt = (when: (f: Frame) => boolean, forward: boolean): (() => Hook) => () => async (f, c) => {
  if (!when(f)) return undefined;
  if (forward) await c.toServer({ line: f.line });
  await c.closeToServer();
  return [];
};
for (const [title, hook, code, tags] of [
  ['after the first handshake line', closeAt((f) => f.index === 1, false), [3, 7], /^TAGS: error::context\((handshake|communication)\) probable-cause\(network\)/],
  ['after the handshake', closeAt((f) => f.phase === 'request', false), 3, NETWORK],
  ['after a GET', closeAt((f) => f.line.startsWith('GET '), true), 3, NETWORK],
  ['after COMMIT, before DONE', closeAt((f) => f.line === 'DONE', false), 3, NETWORK],
] as [string, () => Hook, number | number[], RegExp][]) {
  cases.push({
    title: `early close ${title}`,
    onClient: hook,
    code, tags,
    cause: /died|closed|network|connection/i,
    check: (t, p) => t.equal(readFileSync(join(p.server, DB), 'latin1'), '', 'the db-file is not committed without DONE'),
  });
}
for (const [title, when] of [
  ['ABORT right after the handshake', (f: Frame) => f.phase === 'request'],
  ['ABORT instead of a GET', (f: Frame) => f.line.startsWith('GET ')],
  ['ABORT instead of DONE', (f: Frame) => f.line === 'DONE'],
] as [string, (f: Frame) => boolean][]) {
  cases.push({
    title,
    onClient: () => {
      let done = false;
      return async (f, c) => {
        if (done || !when(f)) return undefined;
        done = true;
        await c.toServer({ line: 'ABORT' });
        return [];
      };
    },
    code: 5, cause: /Client aborted/,
    check: (t, p) => {
      t.equal(readFileSync(join(p.server, DB), 'latin1'), '', 'the db-file is not committed');
      t.notOk(existsSync(join(p.server, `${DB}.new`)), 'the .new db-file is removed');
      t.notOk(existsSync(join(p.server, `${DB}.mtime.new`)), 'and its .mtime.new');
    },
  });
}
cases.push({
  title: 'COMMIT twice (instead of DONE)',
  onClient: () => (f) => (f.line === 'DONE' ? [{ line: 'COMMIT' }] : undefined),
  code: 6, cause: /Invalid command|instead of DONE/,
  check: (t, p) => t.equal(readFileSync(join(p.server, DB), 'latin1'), '', 'the db-file is not committed'),
});
cases.push({
  title: 'a flood of SKIP lines: refused as invalid, not obeyed',
  onClient: injectBeforeFirstGet(() => Array.from({ length: 20 }, (_, i) => `SKIP Mail/cur/x${i}:2,S`)),
  code: 6, cause: /SKIP|Invalid command/,
});
cases.push({
  title: 'a client that stops talking: the idle timeout ends the server',
  // long enough for a client started on a loaded machine to finish its handshake (2 s was not, at load 15)
  serverEnv: { SMD_IDLE_TIMEOUT: '6' },
  onClient: () => (f) => (f.phase === 'request' ? [] : undefined),
  code: 3, tags: /^TAGS: error::context\([a-z-]+\) probable-cause\(network\) human-intervention\(avoidable\) suggested-actions\(retry\)/,
  cause: /timeout|idle|nothing|silent/i,
  timeoutMs: 50_000,
});

// ---------------------------------------------------------------- running the cases

function scenario(p: Pair): void {
  for (let i = 0; i < 3; i++) put(p.server, `Mail/cur/real${i}:2,S`, message(`real${i}`));
}

async function runCase(c: Case): Promise<{ p: Pair; r: RelayResult; replies: string[]; before: Map<string, string>; after: Map<string, string> }> {
  const p = pairHomes(t);
  scenario(p);
  c.setup?.(p);
  const replies: string[] = [];
  const before = snapshot(p.base);
  const r = await relay({
    server: { home: p.server, args: ARGS, env: c.serverEnv },
    client: { home: p.client, args: ARGS },
    timeoutMs: c.timeoutMs ?? 60_000,
    onClient: c.onClient?.(p, replies),
    onServer: (c.onServer ?? ((): Hook => () => undefined))(p, replies),
  });
  await new Promise((res) => setTimeout(res, 50));
  return { p, r, replies, before, after: snapshot(p.base) };
}

const only = process.env.HOSTILE_ONLY ? new RegExp(process.env.HOSTILE_ONLY) : null;
const selected = only === null ? cases : cases.filter((c) => only.test(c.title));
const started = Date.now();
const results = await pool(3, selected.map((c) => () => runCase(c)));
t.comment(`${selected.length} lying-client cases ran in ${((Date.now() - started) / 1000).toFixed(1)} s`);

selected.forEach((c, i) => {
  const { p, r, replies, before, after } = results[i];
  // A todo case runs all its checks; their failures are reported as TODO (tap skips a todo subtest's function).
  const o = c.todo !== undefined ? { todo: c.todo } : {};
  t.test(c.title, async (t) => {
    const why = `server exit ${r.server.code}${r.hung ? ' (hung)' : ''}:\n${r.server.stderr.slice(-1500)}`;
    t.notOk(r.hung, 'no hang: both programs ended by themselves', o);
    t.equal(stackTraceIn(r.server.stderr), null, 'no stack trace or internal error from the server', o);
    t.equal(stackTraceIn(r.client.stderr), null, 'no stack trace or internal error from the client', o);
    const codes = Array.isArray(c.code) ? c.code : [c.code];
    t.ok(codes.includes(r.server.code ?? -1), `server exit code in ${codes.join('|')}: ${why}`, o);
    if (c.tags) t.match(errorTags(r.server.stderr) ?? '', c.tags, 'TAGS', o);
    if (c.cause) t.match(r.server.stderr, c.cause, 'the log names the cause', o);
    t.notOk(r.serverSent.includes(Buffer.from(p.secret)), 'nothing from outside the mailbox was sent', o);
    t.same(changesOutside(before, after, ['client/Mail', 'client/.smd', 'server/.smd']), [], 'nothing changed outside the state dirs (and the client mailbox)', o);
    c.check?.(t, p, r, replies, o);
  });
});
