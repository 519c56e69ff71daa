/**
 * @smd/protocol's wire (WireReader, WireWriter) and handshake, in-process and
 * fast (the mutation run of wire.ts and handshake.ts uses this file); the
 * db-file patch is patch.test.ts (fast) and protocol.test.ts (heavy).
 */
import t, { type Test } from 'tap';
import { PassThrough, Writable } from 'node:stream';
import {
  WireReader, WireWriter, ProtocolError, MAX_LINE, MAX_CHUNK, PROTOCOL_VERSION,
  decideHandshake, sendHandshake, receiveHandshake, exchangeHandshake, dbMismatchError, TaggedError, UPSTREAM_PROTOCOL_VERSION,
} from '@smd/protocol';
import { rejectsKind } from './helpers/protocol-errors.js';

/** An async iterable yielding the given pieces (latin1 strings or Buffers). */
async function* pieces(...ps: (string | Buffer)[]): AsyncGenerator<Buffer> {
  for (const p of ps) yield typeof p === 'string' ? Buffer.from(p, 'latin1') : p;
}

async function readAll(r: WireReader, n: number): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const p of r.readBytes(n)) out.push(Buffer.from(p));
  return Buffer.concat(out);
}


t.test('WireReader', async (t) => {
  t.test('lines split across pieces, latin1 bytes kept', async (t) => {
    const r = new WireReader(pieces('proto', 'col 1', '.3\nADD a%20b ', Buffer.from([0xe9, 0xff, 0x0a]), '\n', 'END\n'));
    t.equal(await r.readLine(), 'protocol 1.3');
    t.equal(await r.readLine(), 'ADD a%20b \u00e9\u00ff');
    t.equal(await r.readLine(), '');
    t.equal(await r.readLine(), 'END');
    t.equal(await r.readLine(), null, 'clean EOF');
    t.equal(await r.readLine(), null, 'EOF again');
  });

  t.test('chunk bodies split across pieces, lines after them', async (t) => {
    const r = new WireReader(pieces('chu', 'nk 11\nhel', 'lo', ' worl', 'dchunk 0\n', 'chunk 3\nab', 'cEND\n'));
    t.equal(await r.readChunkHeader(), 11);
    t.equal((await readAll(r, 11)).toString(), 'hello world');
    t.equal((await r.readChunk()).length, 0, 'empty chunk');
    t.equal((await r.readChunk()).toString(), 'abc');
    t.equal(await r.readLine(), 'END');
    t.ok(await r.atEnd());
  });

  t.test('EOF in the middle of a chunk', async (t) => {
    const r = new WireReader(pieces('chunk 10\nshort'));
    await rejectsKind(t, r.readChunk(), 'eof', 'short chunk');
  });

  t.test('EOF in the middle of a line', async (t) => {
    const r = new WireReader(pieces('GET no-newline'));
    await rejectsKind(t, r.readLine(), 'eof', 'unterminated line');
  });

  t.test('EOF while waiting for a chunk header', async (t) => {
    await rejectsKind(t, new WireReader(pieces()).readChunkHeader(), 'eof', 'no reply');
  });

  t.test('oversize chunk', async (t) => {
    await rejectsKind(t, new WireReader(pieces('chunk 1000\n')).readChunkHeader(999), 'limit', 'chunk over the limit');
    await rejectsKind(t, new WireReader(pieces('chunk 99999999999999999\n')).readChunkHeader(), 'syntax', 'absurd size');
  });

  t.test('bad chunk headers', async (t) => {
    for (const bad of ['chunk -1', 'chunk 01', 'chunk', 'chunk 1 2', 'CHUNK 1', 'chunk 0x10', 'ADD x']) {
      await rejectsKind(t, new WireReader(pieces(`${bad}\n`)).readChunkHeader(), 'syntax', JSON.stringify(bad));
    }
  });

  t.test('ABORT reply', async (t) => {
    const r = new WireReader(pieces('ABORT\nchunk 2\nok'));
    await rejectsKind(t, r.readChunkHeader(), 'abort', 'ABORT');
    t.equal((await r.readChunk()).toString(), 'ok', 'the stream goes on after ABORT');
  });

  t.test('too-long line', async (t) => {
    const long = 'x'.repeat(MAX_LINE + 10);
    await rejectsKind(t, new WireReader(pieces(long.slice(0, 5000), long.slice(5000), '\n')).readLine(), 'limit', 'long line');
    await rejectsKind(t, new WireReader(pieces('a'.repeat(200) + '\n')).readLine(100), 'limit', 'custom max');
    t.equal(await new WireReader(pieces('a'.repeat(100) + '\n')).readLine(100), 'a'.repeat(100), 'exactly max is fine');
  });
});

t.test('WireWriter', async (t) => {
  t.test('lines, chunks from buffers and async pieces, byte exact', async (t) => {
    const out: Buffer[] = [];
    const sink = new Writable({ write(c: Buffer, _e, cb) { out.push(c); cb(); } });
    const w = new WireWriter(sink);
    await w.line('dbfile \u00e9');
    await w.chunk(3, Buffer.from('abc'));
    await w.chunk(5, pieces('12', '345'));
    await w.chunk(0, Buffer.alloc(0));
    await w.line('END');
    await w.end();
    t.same(Buffer.concat(out), Buffer.from('dbfile \u00e9\nchunk 3\nabcchunk 5\n12345chunk 0\nEND\n', 'latin1'));
  });

  t.test('a body that does not match the announced size throws', async (t) => {
    const w = new WireWriter(new PassThrough().resume());
    await t.rejects(w.chunk(4, Buffer.from('abc')), /announced/);
    await t.rejects(w.chunk(4, pieces('ab')), /announced 4/);
    await t.rejects(w.chunk(2, pieces('ab', 'c')), /beyond the announced/);
  });

  t.test('reader and writer through a pipe, with backpressure', async (t) => {
    const pipe = new PassThrough({ highWaterMark: 1024 });
    const w = new WireWriter(pipe);
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    const writing = (async () => {
      for (let i = 0; i < 100; i++) await w.line(`GET name ${i}`);
      await w.chunk(big.length, (async function* () { for (let o = 0; o < big.length; o += 65536) yield big.subarray(o, o + 65536); })());
      await w.end();
    })();
    const r = new WireReader(pipe);
    for (let i = 0; i < 100; i++) t.equal(await r.readLine(), `GET name ${i}`);
    t.ok((await r.readChunk()).equals(big));
    t.equal(await r.readLine(), null);
    await writing;
  });
});

t.test('handshake', async (t) => {
  const A = 'a'.repeat(40);
  const B = 'b'.repeat(40);
  const C = 'c'.repeat(40);
  t.equal(decideHandshake({ db: A, dbNew: null }, { db: C, dbNew: A }), 'ok', 'rule 1: the peer is behind, it will rename its .new');
  t.equal(decideHandshake({ db: A, dbNew: B }, { db: B, dbNew: null }), 'adopt-new', 'rule 2: I crashed before renaming my .new');
  t.equal(decideHandshake({ db: A, dbNew: null }, { db: A, dbNew: null }), 'ok', 'rule 3: same db');
  t.equal(decideHandshake({ db: A, dbNew: B }, { db: A, dbNew: C }), 'ok', 'rule 3 with stale .new files');
  t.equal(decideHandshake({ db: A, dbNew: null }, { db: B, dbNew: C }), 'mismatch', 'rule 4');
  t.equal(decideHandshake({ db: A, dbNew: B }, { db: C, dbNew: B }), 'mismatch', 'equal .new files alone do not agree');
  t.equal(decideHandshake({ db: A, dbNew: B }, { db: B, dbNew: A }), 'ok', 'rule 1 wins over rule 2');

  t.test('lines on the wire', async (t) => {
    const pipe = new PassThrough();
    await sendHandshake(new WireWriter(pipe), { db: A, dbNew: null });
    pipe.end();
    const text = Buffer.concat(await pipe.toArray()).toString('latin1');
    t.equal(text, `protocol ${PROTOCOL_VERSION}\ndbfile ${A} -\n`);
    t.same(await receiveHandshake(new WireReader(pieces(text))), { db: A, dbNew: null });
    t.same(await receiveHandshake(new WireReader(pieces(`protocol ${PROTOCOL_VERSION}\ndbfile ${A} ${B}\n`))), { db: A, dbNew: B });
  });

  t.test('failures carry TAGS', async (t) => {
    const fail = async (input: string, cause: string, human: string): Promise<void> => {
      try {
        await receiveHandshake(new WireReader(pieces(input)));
        t.fail(`no error for ${JSON.stringify(input)}`);
      } catch (e) {
        t.ok(e instanceof TaggedError, 'TaggedError');
        t.equal((e as TaggedError).tags.probableCause, cause, `${JSON.stringify(input)} -> ${cause}`);
        t.equal((e as TaggedError).tags.humanIntervention, human);
      }
    };
    await fail('', 'network', 'avoidable');
    await fail(`protocol ${PROTOCOL_VERSION}\n`, 'network', 'avoidable');
    await fail('protocol 1.3\ndbfile x -\n', 'protocol-mismatch', 'necessary');
    await fail(`protocol ${PROTOCOL_VERSION}\ndbfile nothex -\n`, 'protocol-mismatch', 'necessary');
    await fail(`protocol ${PROTOCOL_VERSION}\ndbf`, 'network', 'avoidable');
  });
});

t.test('handshake: each refusal in full, the fingerprint line exactly, both dialects', async (t) => {
  const A = 'a'.repeat(40);
  const B = '0123456789abcdef0123456789abcdef01234567';
  const P = `protocol ${PROTOCOL_VERSION}\n`;
  const failure = async (p: Promise<unknown>): Promise<TaggedError> => {
    try { await p; } catch (e) { if (e instanceof TaggedError) return e; throw e; }
    throw new Error('no error');
  };
  const refused = async (input: string, message: string, cause: string, what: string): Promise<void> => {
    const e = await failure(receiveHandshake(new WireReader(pieces(input))));
    t.same([e.message, e.tags, e.exitCode], [message, cause === 'network'
      ? { context: 'handshake', probableCause: 'network', humanIntervention: 'avoidable', suggestedActions: ['retry'] }
      : { context: 'handshake', probableCause: cause, humanIntervention: 'necessary' }, 6], what);
  };
  await refused('', 'Network error: the peer closed the connection before the handshake', 'network', 'nothing at all');
  await refused(P, 'Network error: the peer closed the connection during the handshake', 'network', 'no dbfile line');
  await refused(`${'x'.repeat(MAX_LINE + 10)}\n`, `Network error during the handshake: line longer than ${MAX_LINE} bytes`, 'network', 'a line too long');
  await refused('protocol 1.3\ndbfile x -\n', `Wrong protocol version: expected "protocol ${PROTOCOL_VERSION}", got "protocol 1.3" (the peer is upstream syncmaildir 1.3: ` +
    'this side spoke first, so it could not answer in its protocol; start the synchronization from this smd\'s smd-pull/smd-push, which speak upstream\'s protocol to it)',
  'protocol-mismatch', 'upstream, with the hint');
  await refused(`protocol ${PROTOCOL_VERSION}x\n`, `Wrong protocol version: expected "protocol ${PROTOCOL_VERSION}", got "protocol ${PROTOCOL_VERSION}x"`, 'protocol-mismatch', 'a longer version');
  await refused(`${'y'.repeat(100)}\n`, `Wrong protocol version: expected "protocol ${PROTOCOL_VERSION}", got "${'y'.repeat(80)}"`, 'protocol-mismatch', 'shown up to 80 bytes');
  for (const bad of [`dbfile ${A}`, `dbfile ${A} `, `dbfile ${A} -x`, ` dbfile ${A} -`, `xdbfile ${A} -`, `dbfile ${A.toUpperCase()} -`, `dbfile ${A.slice(1)} -`,
    `dbfile ${A}a -`, `dbfile ${A} ${B.slice(1)}`, `dbfile ${A} ${B}0`, `dbfile  ${A} -`, `dbfile ${A}  -`, `dbfile ${'g'.repeat(40)} -`]) {
    await refused(`${P}${bad}\n`, `Malformed handshake line: ${JSON.stringify(bad)}`, 'protocol-mismatch', JSON.stringify(bad));
  }
  await refused(`${P}dbfile ${'z'.repeat(200)}\n`, `Malformed handshake line: ${JSON.stringify(`dbfile ${'z'.repeat(113)}`)}`, 'protocol-mismatch', 'shown up to 120 bytes');
  t.same(await receiveHandshake(new WireReader(pieces(`${P}dbfile ${B} ${A}\n`))), { db: B, dbNew: A }, 'every hex digit');

  const talk = async (peerSays: string, opts: Parameters<typeof exchangeHandshake>[3]) => {
    const pipe = new PassThrough();
    const res = await exchangeHandshake(new WireReader(pieces(peerSays)), new WireWriter(pipe), { db: A, dbNew: B }, opts).then((v) => v, (e: unknown) => e);
    pipe.end();
    return { res, sent: Buffer.concat(await pipe.toArray()).toString('latin1') };
  };
  let x = await talk(`${P}dbfile ${B} -\n`, {});
  t.same(x, { res: { peer: { db: B, dbNew: null }, dialect: 'smd' }, sent: `${P}dbfile ${A} ${B}\n` }, 'speaking first: ours, then the peer\'s');
  x = await talk('', {});
  t.equal(x.sent, `${P}dbfile ${A} ${B}\n`, 'speaking first: sent before anything is read');
  t.equal((x.res as TaggedError).tags.probableCause, 'network');
  x = await talk(`protocol ${UPSTREAM_PROTOCOL_VERSION}\ndbfile ${B} -\n`, {});
  t.match((x.res as TaggedError).message, /^Wrong protocol version: .*the peer is upstream/, 'speaking first, we speak ours only');
  x = await talk(`${P}dbfile ${B} -\n`, { listenFirst: true });
  t.same(x, { res: { peer: { db: B, dbNew: null }, dialect: 'smd' }, sent: `${P}dbfile ${A} ${B}\n` }, 'listening first to smd: answers in ours');
  x = await talk(`protocol ${UPSTREAM_PROTOCOL_VERSION}\ndbfile ${B} -\n`, { listenFirst: true, upstreamUnavailable: () => null });
  t.same(x, { res: { peer: { db: B, dbNew: null }, dialect: 'upstream' }, sent: `protocol 1.3\ndbfile ${A} ${B}\n` }, 'listening first to upstream: answers in its protocol');
  x = await talk(`protocol ${UPSTREAM_PROTOCOL_VERSION}\ndbfile ${B} -\n`, { listenFirst: true });
  t.equal((x.res as { dialect: string }).dialect, 'upstream', 'nothing said against upstream: spoken');
  x = await talk(`protocol ${UPSTREAM_PROTOCOL_VERSION}\ndbfile ${B} -\n`, { listenFirst: true, upstreamUnavailable: () => 'xdelta3 is not installed' });
  t.same([(x.res as TaggedError).message, (x.res as TaggedError).tags.probableCause, x.sent],
    ['The peer is upstream syncmaildir 1.3 (protocol 1.3), and xdelta3 is not installed', 'protocol-mismatch', ''], 'upstream but unavailable: refused, nothing sent');
  x = await talk(`${P}dbfile ${B} -\n`, { listenFirst: true, upstreamUnavailable: () => 'xdelta3 is not installed' });
  t.equal((x.res as { dialect: string }).dialect, 'smd', 'unavailable upstream does not matter to an smd peer');
  x = await talk('protocol 2.0\n', { listenFirst: true });
  t.same([(x.res as TaggedError).tags.probableCause, x.sent], ['protocol-mismatch', ''], 'listening first to something else: refused, nothing sent');

  const m = dbMismatchError('/h/.smd/ep__Mail.db.txt');
  t.same([m.message, m.tags, m.exitCode], ['The db-file /h/.smd/ep__Mail.db.txt does not match the one of the other side: remove it on both hosts to start a full (hash-only) resync',
    { context: 'handshake', probableCause: 'db-mismatch', humanIntervention: 'necessary', suggestedActions: ['run(rm "/h/.smd/ep__Mail.db.txt")'] }, 6]);
  t.equal(decideHandshake({ db: A, dbNew: null }, { db: B, dbNew: null }), 'mismatch', 'no .new on either side, other db-files');
  t.equal(decideHandshake({ db: A, dbNew: null }, { db: B, dbNew: B }), 'mismatch', 'a peer .new equal to its own db is not mine');
});

/** A source that yields `ps` and then never anything again (a silent peer). */
async function* thenSilent(...ps: string[]): AsyncGenerator<Buffer> {
  for (const p of ps) yield Buffer.from(p, 'latin1');
  await new Promise<never>(() => undefined);
}

/** A source that yields `p` after `ms`. */
async function* late(ms: number, p: string): AsyncGenerator<Buffer> {
  await new Promise((r) => setTimeout(r, ms));
  yield Buffer.from(p, 'latin1');
}

/** The ProtocolError `p` rejects with, as [kind, message]. */
async function refusal(p: Promise<unknown>): Promise<[string, string]> {
  try { await p; } catch (e) { if (e instanceof ProtocolError) return [e.kind, e.message]; throw e; }
  throw new Error('no error');
}

t.test('WireReader: every bound and refusal, with its message', async (t) => {
  t.same(await refusal(new WireReader(thenSilent('GET a'), { idleTimeoutMs: 600 }).readLine()),
    ['timeout', 'the peer sent nothing for 1 s (idle timeout)'], 'a silent peer: timeout, in seconds');
  t.same(await refusal(new WireReader(thenSilent(), { idleTimeoutMs: 600 }).readChunkHeader()),
    ['timeout', 'the peer sent nothing for 1 s (idle timeout)'], 'silent while a reply is awaited');
  t.equal(await new WireReader(late(100, 'late\n'), { idleTimeoutMs: 0 }).readLine(), 'late', '0: no bound');
  t.equal(await new WireReader(late(100, 'late\n')).readLine(), 'late', 'the default bound is not immediate');
  t.equal(await new WireReader(late(100, 'late\n'), { idleTimeoutMs: 5000 }).readLine(), 'late', 'a peer within the bound');

  // A peer streaming bytes without a newline is refused once it passes the
  // bound, not buffered until it stops.
  t.same(await refusal(new WireReader(thenSilent('a'.repeat(101)), { idleTimeoutMs: 0 }).readLine(100)),
    ['limit', 'line longer than 100 bytes'], 'no newline yet, over the bound');
  t.same(await refusal(new WireReader(pieces('a'.repeat(101), '\n')).readLine(100)), ['limit', 'line longer than 100 bytes'], 'newline in the next piece');
  t.equal(await new WireReader(pieces('a'.repeat(100), '\n')).readLine(100), 'a'.repeat(100), 'exactly max, newline in the next piece');
  t.equal(await new WireReader(pieces('a'.repeat(MAX_LINE), '\n')).readLine(), 'a'.repeat(MAX_LINE), 'exactly MAX_LINE by default');
  t.same(await refusal(new WireReader(pieces('a'.repeat(MAX_LINE + 1), '\n')).readLine()), ['limit', `line longer than ${MAX_LINE} bytes`], 'MAX_LINE + 1 by default');
  const r = new WireReader(pieces(`x\n${'a'.repeat(100)}\n${'b'.repeat(101)}\n`));
  t.equal(await r.readLine(100), 'x');
  t.equal(await r.readLine(100), 'a'.repeat(100), 'the bound counts from the line start, not the buffer start');
  t.same(await refusal(r.readLine(100)), ['limit', 'line longer than 100 bytes'], 'a later line over the bound');

  t.same(await refusal(new WireReader(pieces('GET x')).readLine()), ['eof', 'connection closed in the middle of a line']);
  t.same(await refusal(new WireReader(pieces()).readChunkHeader()), ['eof', 'connection closed while waiting for data']);
  t.same(await refusal(new WireReader(pieces('ABORT\n')).readChunkHeader()), ['abort', 'peer refused the request (ABORT)']);
  t.same(await refusal(new WireReader(pieces('chunk x\n')).readChunkHeader()), ['syntax', 'expected "chunk N", got "chunk x"']);
  t.same(await refusal(new WireReader(pieces(`${'c'.repeat(100)}\n`)).readChunkHeader()), ['syntax', `expected "chunk N", got "${'c'.repeat(80)}"`], 'shown up to 80 bytes');
  t.same(await refusal(new WireReader(pieces('chunk 10\nshort')).readChunk()), ['eof', 'connection closed 5 bytes before the end of a 10-byte chunk']);

  t.equal(await new WireReader(pieces('chunk 999\n')).readChunkHeader(999), 999, 'exactly the limit');
  t.same(await refusal(new WireReader(pieces('chunk 1000\n')).readChunkHeader(999)), ['limit', 'chunk of 1000 bytes exceeds the limit of 999']);
  t.equal(await new WireReader(pieces(`chunk ${MAX_CHUNK}\n`)).readChunkHeader(), MAX_CHUNK, 'MAX_CHUNK by default');
  t.same(await refusal(new WireReader(pieces(`chunk ${MAX_CHUNK + 1}\n`)).readChunkHeader()), ['limit', `chunk of ${MAX_CHUNK + 1} bytes exceeds the limit of ${MAX_CHUNK}`]);
  t.same(await refusal(new WireReader(pieces('chunk 1000000000000000\n')).readChunkHeader()), ['limit', `chunk of 1000000000000000 bytes exceeds the limit of ${MAX_CHUNK}`], '16 digits: a number, over the limit');
  t.same(await refusal(new WireReader(pieces('chunk 10\n12345')).readChunk(8)), ['limit', 'chunk of 10 bytes exceeds the limit of 8'], 'readChunk passes its limit on');
  t.same(await refusal(new WireReader(pieces(`chunk ${MAX_CHUNK + 1}\n`)).readChunk()), ['limit', `chunk of ${MAX_CHUNK + 1} bytes exceeds the limit of ${MAX_CHUNK}`], 'readChunk: MAX_CHUNK by default');
});

t.test('WireReader: counts, hasLine, atEnd', async (t) => {
  const r = new WireReader(pieces('ab\nchu', 'nk 3\nxyz', 'rest'));
  t.equal(r.hasLine(), false, 'nothing read yet');
  t.equal(await r.readLine(), 'ab');
  t.equal(r.bytesRead, 3);
  t.equal(r.hasLine(), false, 'the rest of the piece has no newline');
  t.equal(await r.readChunkHeader(), 3);
  t.equal(r.bytesRead, 11);
  t.equal(r.hasLine(), false);
  t.equal((await readAll(r, 3)).toString(), 'xyz');
  t.equal(r.bytesRead, 14);
  t.equal(await r.atEnd(), false, 'bytes left');
  t.equal((await readAll(r, 4)).toString(), 'rest', 'atEnd consumed nothing');
  t.equal(await r.atEnd(), true);
  const r2 = new WireReader(pieces('a\nb\n'));
  t.equal(await r2.readLine(), 'a');
  t.equal(r2.hasLine(), true, 'a whole line buffered');
  t.equal(await r2.atEnd(), false);
  t.equal(await r2.readLine(), 'b');
  t.equal(r2.hasLine(), false);
  t.equal(await r2.atEnd(), true);
});

t.test('WireWriter: bounds, batching, closed streams', async (t) => {
  // A peer that reads nothing: the write waits for 'drain', bounded.
  const stuck = new Writable({ highWaterMark: 16, write(_c, _e, _cb) { /* never done */ } });
  const w = new WireWriter(stuck, { idleTimeoutMs: 600 });
  t.same(await refusal(w.raw(Buffer.alloc(100))), ['timeout', 'the peer read nothing for 1 s (idle timeout)']);
  stuck.destroy();

  const failing = new Writable({ highWaterMark: 16, write(_c, _e, _cb) { /* never done */ } });
  const wf = new WireWriter(failing, { idleTimeoutMs: 0 });
  const p = refusal(wf.raw(Buffer.alloc(100)));
  failing.destroy(new Error('EPIPE here'));
  t.same(await p, ['eof', 'write failed: EPIPE here'], 'an error while waiting');

  const closing = new Writable({ highWaterMark: 16, write(_c, _e, _cb) { /* never done */ } });
  const wc = new WireWriter(closing, { idleTimeoutMs: 0 });
  const pc = refusal(wc.raw(Buffer.alloc(100)));
  closing.destroy();
  t.same(await pc, ['eof', 'connection closed while writing'], 'closed while waiting');
  t.same(await refusal(wc.raw(Buffer.alloc(1))), ['eof', 'connection closed while writing'], 'writing to a destroyed stream');

  const out: Buffer[] = [];
  const sink = new Writable({ write(c: Buffer, _e, cb) { out.push(Buffer.from(c)); cb(); } });
  const ws = new WireWriter(sink);
  await ws.line('x'.repeat(64 * 1024 - 2));
  t.equal(out.length, 0, 'under 64 KiB: queued');
  await ws.line('');
  t.equal(Buffer.concat(out).length, 64 * 1024, 'at 64 KiB: written without a flush');
  t.equal(ws.bytesWritten, 64 * 1024);
  await ws.line('GET a');
  await ws.chunk(100_000, Buffer.alloc(100_000, 1));
  t.equal(Buffer.concat(out).length, 64 * 1024 + 6 + 13 + 100_000, 'a big body is written at once, after what was queued');
  t.ok(Buffer.concat(out).subarray(64 * 1024).equals(Buffer.concat([Buffer.from('GET a\nchunk 100000\n'), Buffer.alloc(100_000, 1)])), 'in order');
  await ws.chunk(3, Buffer.from('abc'));
  t.equal(Buffer.concat(out).length, 64 * 1024 + 6 + 13 + 100_000, 'a small body is queued');
  await ws.end();
  t.equal(Buffer.concat(out).length, 64 * 1024 + 6 + 13 + 100_000 + 11, 'end flushes');
  t.equal(ws.bytesWritten, 64 * 1024 + 6 + 13 + 100_000 + 11);
  await ws.end();
  t.same(await refusal(ws.raw(Buffer.alloc(1))), ['eof', 'connection closed while writing'], 'writing after end');
});

t.test('handshake: the version on the wire, and only peer faults become network errors', async (t) => {
  t.equal(PROTOCOL_VERSION, '1.3+fastdiff', 'what upstream 1.3 peers refuse cleanly (protocol.md)');
  t.equal(UPSTREAM_PROTOCOL_VERSION, '1.3');
  const pipe = new PassThrough();
  await sendHandshake(new WireWriter(pipe), { db: 'a'.repeat(40), dbNew: null });
  pipe.end();
  t.equal(Buffer.concat(await pipe.toArray()).toString('latin1'), `protocol 1.3+fastdiff\ndbfile ${'a'.repeat(40)} -\n`);
  await t.rejects(receiveHandshake(new WireReader(pieces('protocol \n'))), /Wrong protocol version/, 'an empty version is refused');
  // Our own failure (not the peer's) is not disguised as a retryable network error.
  const bug = new TypeError('a bug of ours');
  async function* broken(): AsyncGenerator<Buffer> { throw bug; }
  try {
    await receiveHandshake(new WireReader(broken()));
    t.fail('no error');
  } catch (e) {
    t.equal(e, bug, 'rethrown as is');
  }
});

t.test('wire: after the wire.ts measurement (survivors of it)', async (t) => {
  for (const bad of ['xchunk 1', ' chunk 1', 'ADD chunk 1']) {
    t.same(await refusal(new WireReader(pieces(`${bad}\n`)).readChunkHeader()), ['syntax', `expected "chunk N", got ${JSON.stringify(bad)}`], 'anchored at the line start');
  }
  const r = new WireReader(pieces('a\n', '\nz'));
  t.equal(await r.readLine(), 'a');
  t.equal(await r.atEnd(), false);
  t.equal(r.hasLine(), true, 'a newline first in a fresh piece');
  // Each wait for 'drain' leaves no listener behind (a long session waits thousands of times).
  const slow = new Writable({ highWaterMark: 16, write(_c, _e, cb) { setTimeout(cb, 5); } });
  const w = new WireWriter(slow);
  for (let i = 0; i < 3; i++) await w.raw(Buffer.alloc(100));
  t.same([slow.listenerCount('drain'), slow.listenerCount('error'), slow.listenerCount('close')], [0, 0, 0]);
  t.equal(await new WireReader((async function* () { yield 'li'; yield 'ne\n'; })()).readLine(), 'line', 'string pieces (a stream with an encoding) are latin1');
  t.equal(await new WireReader((async function* () { yield '\u00e9\n'; })()).readLine(), '\u00e9');
});
