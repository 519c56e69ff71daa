import { ProtocolError } from './errors.js';
import { TaggedError } from './tags.js';
import type { WireReader, WireWriter } from './wire.js';

/**
 * Our protocol line. Upstream speaks `protocol 1.3`; we differ in the db-file
 * patch sent after COMMIT (see protocol.md), so we announce a different
 * version and mixed peers fail cleanly at the handshake, not at COMMIT.
 */
export const PROTOCOL_VERSION = '1.3+fastdiff';

/** What one side announces: SHA-1 of its db-file and of its `<db>.new` (null if none). */
export interface DbFingerprint {
  readonly db: string;
  readonly dbNew: string | null;
}

/**
 * - `ok`: both sides agree (or the peer is one commit behind and will catch up);
 * - `adopt-new`: I crashed after the peer committed: rename my `<db>.new` over `<db>`;
 * - `mismatch`: no agreement; a human must remove the db-file (full resync).
 */
export type HandshakeDecision = 'ok' | 'adopt-new' | 'mismatch';

/** Upstream's decision rules, in order (pure). */
export function decideHandshake(mine: DbFingerprint, peer: DbFingerprint): HandshakeDecision {
  if (peer.dbNew !== null && peer.dbNew === mine.db) return 'ok';
  if (mine.dbNew !== null && peer.db === mine.dbNew) return 'adopt-new';
  if (peer.db === mine.db) return 'ok';
  return 'mismatch';
}

/**
 * Which protocol a session speaks: ours (`protocol 1.3+fastdiff`: SKIP
 * lines, our db-file patch) or upstream syncmaildir's (`protocol 1.3`:
 * xdelta3 patches, no SKIP).
 */
export type Dialect = 'smd' | 'upstream';

/** Upstream syncmaildir 1.3's protocol line. */
export const UPSTREAM_PROTOCOL_VERSION = '1.3';

const VERSION_OF: Record<Dialect, string> = { smd: PROTOCOL_VERSION, upstream: UPSTREAM_PROTOCOL_VERSION };

/** Writes our two handshake lines (in `dialect`, ours by default). */
export async function sendHandshake(w: WireWriter, mine: DbFingerprint, dialect: Dialect = 'smd'): Promise<void> {
  await w.line(`protocol ${VERSION_OF[dialect]}`);
  await w.line(`dbfile ${mine.db} ${mine.dbNew ?? '-'}`);
  await w.flush();
}

const NETWORK = (msg: string): TaggedError =>
  new TaggedError(msg, { context: 'handshake', probableCause: 'network', humanIntervention: 'avoidable', suggestedActions: ['retry'] }, 6);
const MISMATCH = (msg: string): TaggedError =>
  new TaggedError(msg, { context: 'handshake', probableCause: 'protocol-mismatch', humanIntervention: 'necessary' }, 6);

async function line(r: WireReader, eof: string): Promise<string> {
  let l: string | null;
  try {
    l = await r.readLine();
  } catch (e) {
    if (e instanceof ProtocolError) throw NETWORK(`Network error during the handshake: ${e.message}`);
    throw e;
  }
  if (l === null) throw NETWORK(eof);
  return l;
}

/** The peer's protocol line: the dialect it speaks, if `accepted`. Throws TaggedError. */
async function readProtocolLine(r: WireReader, accepted: readonly Dialect[]): Promise<Dialect> {
  const l1 = await line(r, 'Network error: the peer closed the connection before the handshake');
  for (const d of accepted) if (l1 === `protocol ${VERSION_OF[d]}`) return d;
  const hint = l1 === `protocol ${UPSTREAM_PROTOCOL_VERSION}`
    ? ' (the peer is upstream syncmaildir 1.3: this side spoke first, so it could not answer in its protocol; ' +
      'start the synchronization from this smd\'s smd-pull/smd-push, which speak upstream\'s protocol to it)'
    : '';
  throw MISMATCH(`Wrong protocol version: expected "protocol ${PROTOCOL_VERSION}", got ${JSON.stringify(l1.slice(0, 80))}${hint}`);
}

/** The peer's `dbfile` line. Throws TaggedError. */
async function readDbLine(r: WireReader): Promise<DbFingerprint> {
  const l2 = await line(r, 'Network error: the peer closed the connection during the handshake');
  const m = /^dbfile ([0-9a-f]{40}) ([0-9a-f]{40}|-)$/.exec(l2);
  if (!m) throw MISMATCH(`Malformed handshake line: ${JSON.stringify(l2.slice(0, 120))}`);
  return { db: m[1], dbNew: m[2] === '-' ? null : m[2] };
}

/** Reads and checks the peer's two handshake lines (ours only). Throws TaggedError. */
export async function receiveHandshake(r: WireReader): Promise<DbFingerprint> {
  await readProtocolLine(r, ['smd']);
  return readDbLine(r);
}

export interface HandshakeOptions {
  /**
   * Read the peer's protocol line before writing ours, and answer in its
   * dialect: how the local program (started by smd-pull/push) talks to a
   * remote one that may be upstream's, which always speaks first and
   * accepts only its own line. Two listening sides would wait for each
   * other: the remote program never listens first.
   */
  readonly listenFirst?: boolean;
  /** Why upstream's dialect cannot be spoken here (e.g. no xdelta3), or null. */
  readonly upstreamUnavailable?: () => string | null;
}

/** Both handshake lines each way; resolves to the peer's fingerprint and the dialect of the session. Throws TaggedError. */
export async function exchangeHandshake(r: WireReader, w: WireWriter, mine: DbFingerprint, opts: HandshakeOptions = {}): Promise<{ peer: DbFingerprint; dialect: Dialect }> {
  if (opts.listenFirst !== true) {
    await sendHandshake(w, mine, 'smd');
    await readProtocolLine(r, ['smd']);
    return { peer: await readDbLine(r), dialect: 'smd' };
  }
  const dialect = await readProtocolLine(r, ['smd', 'upstream']);
  if (dialect === 'upstream') {
    const why = opts.upstreamUnavailable?.() ?? null;
    if (why !== null) throw MISMATCH(`The peer is upstream syncmaildir 1.3 (protocol 1.3), and ${why}`);
  }
  await sendHandshake(w, mine, dialect);
  return { peer: await readDbLine(r), dialect };
}

/** The error for a `mismatch` decision, naming the db-file to remove. */
export function dbMismatchError(dbPath: string): TaggedError {
  return new TaggedError(
    `The db-file ${dbPath} does not match the one of the other side: remove it on both hosts to start a full (hash-only) resync`,
    { context: 'handshake', probableCause: 'db-mismatch', humanIntervention: 'necessary', suggestedActions: [`run(rm "${dbPath}")`] }, 6);
}
