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

/** Writes our two handshake lines. */
export async function sendHandshake(w: WireWriter, mine: DbFingerprint): Promise<void> {
  await w.line(`protocol ${PROTOCOL_VERSION}`);
  await w.line(`dbfile ${mine.db} ${mine.dbNew ?? '-'}`);
  await w.flush();
}

const NETWORK = (msg: string): TaggedError =>
  new TaggedError(msg, { context: 'handshake', probableCause: 'network', humanIntervention: 'avoidable', suggestedActions: ['retry'] }, 6);

/** Reads and checks the peer's two handshake lines. Throws TaggedError. */
export async function receiveHandshake(r: WireReader): Promise<DbFingerprint> {
  let l1: string | null;
  let l2: string | null;
  try {
    l1 = await r.readLine();
    if (l1 === null) throw NETWORK('Network error: the peer closed the connection before the handshake');
    if (l1 !== `protocol ${PROTOCOL_VERSION}`) {
      const hint = l1 === 'protocol 1.3'
        ? ' (the peer is upstream syncmaildir 1.3, whose db-file patches are xdelta: install this smd on both hosts)'
        : '';
      throw new TaggedError(`Wrong protocol version: expected "protocol ${PROTOCOL_VERSION}", got ${JSON.stringify(l1.slice(0, 80))}${hint}`,
        { context: 'handshake', probableCause: 'protocol-mismatch', humanIntervention: 'necessary' }, 6);
    }
    l2 = await r.readLine();
  } catch (e) {
    if (e instanceof ProtocolError) throw NETWORK(`Network error during the handshake: ${e.message}`);
    throw e;
  }
  if (l2 === null) throw NETWORK('Network error: the peer closed the connection during the handshake');
  const m = /^dbfile ([0-9a-f]{40}) ([0-9a-f]{40}|-)$/.exec(l2);
  if (!m) {
    throw new TaggedError(`Malformed handshake line: ${JSON.stringify(l2.slice(0, 120))}`,
      { context: 'handshake', probableCause: 'protocol-mismatch', humanIntervention: 'necessary' }, 6);
  }
  return { db: m[1], dbNew: m[2] === '-' ? null : m[2] };
}

/** The error for a `mismatch` decision, naming the db-file to remove. */
export function dbMismatchError(dbPath: string): TaggedError {
  return new TaggedError(
    `The db-file ${dbPath} does not match the one of the other side: remove it on both hosts to start a full (hash-only) resync`,
    { context: 'handshake', probableCause: 'db-mismatch', humanIntervention: 'necessary', suggestedActions: [`run(rm "${dbPath}")`] }, 6);
}
