import { readFileSync, unlinkSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { MailboxRoots, PathRefusal, toUtf8, type ByteString } from '@smd/maildir';
import { diffMaildir, formatCommand, dbFingerprint, commitDbFile, discardDbNew, reviseDbNew, type ScanResult } from '@smd/snapshot';
import {
  WireReader, WireWriter, ProtocolError, TaggedError, exchangeHandshake, decideHandshake, dbMismatchError,
  logFailure, openDbPatch, createXdeltaPatch, xdeltaUnavailable, EMPTY_PATCH, type DbPatch, type Dialect, type SessionLog,
} from '@smd/protocol';
import { OpenMessage, ServeRefusal, type Part } from './messages.js';

export interface ServerOptions {
  input: Readable;
  output: Writable;
  log: SessionLog;
  /** The peer's endpoint name (for log lines only). */
  endpoint?: string;
  /** Mailbox roots (ByteStrings, %-decoded), relative to the cwd. */
  mailboxes: ByteString[];
  /** The db-file path. */
  dbFile: string;
  excludes?: ByteString[];
  dryRun?: boolean;
  noDelete?: boolean;
  noMove?: boolean;
  /** Exit right after END (smd-uniform-names); `cleanup` files are removed first. */
  stopAfterDiff?: boolean;
  cleanup?: string[];
  /** The longest wait for the client, in ms (default DEFAULT_IDLE_TIMEOUT_MS; 0: none). */
  idleTimeoutMs?: number;
  /** Directories (besides the roots) a folder symlink may lead into (--follow). */
  follow?: ByteString[];
  /** Read the client's protocol line before sending ours, and speak upstream's protocol to an upstream client (--listen-first). */
  listenFirst?: boolean;
}

/** Exit codes of smd-server (upstream section 4). */
export const ServerExit = {
  OK: 0,
  CLIENT_DIED: 3,
  PATCH_FAILED: 4,
  CLIENT_ABORTED: 5,
  INVALID_COMMAND: 6,
  FAILURE: 7,
} as const;

/** Longest time a diff line waits in the output buffer while the scan runs. */
const FLUSH_MS = 20;

const REQUEST = /^(GET|GETHEADER|GETBODY) (.+)$/s;
const SKIP = /^SKIP (.+)$/s;
const PARTS: Record<string, Part> = { GET: 'whole', GETHEADER: 'header', GETBODY: 'body' };

/**
 * One smd-server session: handshake, the diff streamed as it is computed,
 * END, then requests answered strictly in order until COMMIT + DONE, ABORT
 * or EOF. Only messages of the current scan are ever sent.
 */
export async function runServer(o: ServerOptions): Promise<number> {
  const log = o.log;
  const wire = { idleTimeoutMs: o.idleTimeoutMs };
  const reader = new WireReader(o.input, wire);
  const writer = new WireWriter(o.output, wire);
  const db = o.dbFile;
  const dry = o.dryRun === true;
  try {
    // Phase 0: handshake.
    log.progress('Phase 0: handshake');
    const mine = dbFingerprint(db, { create: !dry });
    const { peer, dialect } = await exchangeHandshake(reader, writer, mine,
      { listenFirst: o.listenFirst, upstreamUnavailable: () => (dry ? null : xdeltaUnavailable()) });
    if (dialect === 'upstream') log.info('The client is upstream syncmaildir 1.3: speaking its protocol (xdelta3 db-file patch)');
    const decision = decideHandshake(mine, peer);
    if (decision === 'mismatch') throw dbMismatchError(db);
    if (decision === 'adopt-new') {
      log.info(`The client already committed the last sync: renaming ${db}.new to ${db}`);
      if (!dry) commitDbFile(db);
    }

    // Phase 1: the diff, streamed as the scan produces it.
    log.progress('Phase 1: changes detection');
    const scan = diffMaildir({
      roots: o.mailboxes, dbFile: db, excludes: o.excludes ?? [], follow: o.follow, dryRun: dry, noDelete: o.noDelete, noMove: o.noMove,
      onWarning: (m) => log.info(`mddiff: ${m}`),
    });
    let step = scan.next();
    let commands = 0;
    // Lines are batched, but none waits more than FLUSH_MS: the client starts
    // applying (and requesting) while the scan goes on.
    let flushed = Date.now();
    while (step.done !== true) {
      await writer.line(formatCommand(step.value));
      commands += 1;
      if (commands === 1 || Date.now() - flushed >= FLUSH_MS) {
        await writer.flush();
        flushed = Date.now();
      }
      step = scan.next();
    }
    const result: ScanResult = step.value;
    await writer.line('END');
    await writer.flush();
    log.info(`${commands} changes sent for ${result.messages} messages${o.endpoint ? ` to ${o.endpoint}` : ''}`);
    if (o.stopAfterDiff === true) {
      for (const f of o.cleanup ?? []) removeQuietly(f);
      await writer.end();
      return ServerExit.OK;
    }

    // Phase 2: requests, answered in order.
    log.progress('Phase 2: synchronization');
    const roots = new MailboxRoots(o.mailboxes, { follow: o.follow });
    let served = 0;
    // Names whose agreement stays as it was (protocol.md 5.1): refused requests and the client's SKIPs.
    const skipped = new Set<ByteString>();
    for (;;) {
      // Replies are batched while requests are buffered; before waiting for the client, everything goes out
      // (an ABORT alone in the buffer, with the client waiting for it, was a deadlock).
      if (!reader.hasLine()) await writer.flush();
      const line = await reader.readLine();
      if (line === null) {
        logFailure(log, 'Communication with client died unexpectedly',
          { context: 'communication', probableCause: 'network', humanIntervention: 'avoidable', suggestedActions: ['retry'] });
        return ServerExit.CLIENT_DIED;
      }
      const req = REQUEST.exec(line);
      if (req !== null) {
        if (!await serve(req[2], PARTS[req[1]], result, roots, writer, log)) skipped.add(req[2]);
        served += 1;
        continue;
      }
      const skip = SKIP.exec(line);
      if (skip !== null) {
        // A command has at most two names: more SKIPs than that is not a client of this diff.
        if (skipped.size >= 2 * commands + 2) {
          log.error(`Invalid command: more SKIP lines than the ${commands} changes sent can justify`);
          return ServerExit.INVALID_COMMAND;
        }
        skipped.add(skip[1]);
        continue;
      }
      if (line === 'COMMIT') return await commit(reader, writer, log, db, dry, result, skipped, dialect);
      if (line === 'ABORT') {
        log.error(`Client aborted, removing ${db}.new and ${db}.mtime.new`);
        if (!dry) discardDbNew(db);
        return ServerExit.CLIENT_ABORTED;
      }
      log.error(`Invalid command ${JSON.stringify(toUtf8(line).slice(0, 200))} after ${served} requests`);
      return ServerExit.INVALID_COMMAND;
    }
  } catch (e) {
    if (e instanceof TaggedError) {
      logFailure(log, e.message, e.tags);
      return ServerExit.FAILURE;
    }
    if (e instanceof ProtocolError) {
      logFailure(log, `Communication with client failed: ${e.message}`,
        { context: 'communication', probableCause: 'network', humanIntervention: 'avoidable', suggestedActions: ['retry'] });
      return e.kind === 'eof' || e.kind === 'timeout' ? ServerExit.CLIENT_DIED : ServerExit.INVALID_COMMAND;
    }
    logFailure(log, `smd-server failed: ${(e as Error).message}`,
      { context: 'internal-error', probableCause: 'unknown', humanIntervention: 'necessary' });
    return ServerExit.FAILURE;
  } finally {
    // Replies still queued (e.g. before an invalid line) go out before we exit.
    await writer.flush().catch(() => undefined);
  }
}

/**
 * Answers one GET / GETHEADER / GETBODY: a chunk, or ABORT for anything that
 * is not a message of this scan (or no longer readable). Resolves to false
 * when it answered ABORT.
 */
async function serve(name: ByteString, part: Part, result: ScanResult, roots: MailboxRoots, writer: WireWriter, log: SessionLog): Promise<boolean> {
  if (!result.has(name)) {
    log.error(`Refusing to send ${JSON.stringify(toUtf8(name))}: it is not a message of the mailbox being synchronized`);
    await writer.line('ABORT');
    return false;
  }
  let msg: OpenMessage;
  try {
    // Read where the name resolves under the roots (never through a link that leads out), without following the file itself.
    const slash = name.lastIndexOf('/');
    const dir = roots.resolveDir(name.slice(0, slash), false);
    if (dir === null) throw new ServeRefusal(`${toUtf8(name)}: its folder is gone`, true);
    msg = OpenMessage.open(`${dir.real}${name.slice(slash)}`, part);
  } catch (e) {
    if (e instanceof PathRefusal) {
      log.error(`Refusing to send ${JSON.stringify(toUtf8(name))}: ${e.message}`);
      await writer.line('ABORT');
      return false;
    }
    if (!(e instanceof ServeRefusal)) throw e;
    // Usually a mail program renamed or deleted it since the scan: the client skips it, the next run takes it.
    if (e.gone) log.info(`Not sending ${toUtf8(name)}: ${e.message} (changed by a mail program since the scan: the next run takes it)`);
    else log.warn(`Not sending ${toUtf8(name)}: ${e.message}; it is left out until this is fixed`);
    await writer.line('ABORT');
    return false;
  }
  try {
    await writer.chunk(msg.size, msg.pieces());
  } catch (e) {
    if (e instanceof ProtocolError) throw e;
    // The announced size can no longer be honoured: the only honest move is to close the connection.
    throw new TaggedError(`Unable to send ${toUtf8(name)}: ${(e as Error).message}; closing the connection`,
      { context: 'transmit', probableCause: 'simultaneous-mailbox-edit', humanIntervention: 'avoidable', suggestedActions: ['retry'] }, ServerExit.FAILURE);
  } finally {
    msg.close();
  }
  return true;
}

/** COMMIT: send the db-file patch, wait for DONE, then make the new db-file current. */
async function commit(reader: WireReader, writer: WireWriter, log: SessionLog, db: string, dry: boolean, result: ScanResult,
  skipped: ReadonlySet<ByteString>, dialect: Dialect): Promise<number> {
  log.progress('Phase 3: agreement');
  if (!result.ok) {
    log.error('The client committed a diff that contained an ERROR: refusing');
    await writer.line('ABORT');
    await writer.flush();
    return ServerExit.PATCH_FAILED;
  }
  // Our patch is produced in pieces as it is sent (a first sync of a million messages sends ~140 MB).
  let patch: Buffer | DbPatch;
  try {
    if (!dry && skipped.size > 0) {
      const n = reviseDbNew(db, skipped);
      log.info(`${skipped.size} name(s) skipped by this run keep their previous state in the db-file (${n} line(s) changed)`);
    }
    patch = dry ? EMPTY_PATCH : dialect === 'upstream' ? xdeltaPatch(db) : openDbPatch(db, `${db}.new`);
  } catch (e) {
    logFailure(log, `Unable to compute the db-file patch: ${(e as Error).message}`,
      { context: 'commit', probableCause: 'db-patch-failed', humanIntervention: 'necessary' });
    await writer.line('ABORT');
    await writer.flush();
    return ServerExit.PATCH_FAILED;
  }
  if ('pieces' in patch) {
    try {
      await writer.chunk(patch.size, patch.pieces());
    } finally {
      patch.close();
    }
  } else {
    await writer.chunk(patch.length, patch);
  }
  await writer.flush();
  const answer = await reader.readLine();
  if (answer === 'DONE') {
    if (!dry) commitDbFile(db);
    await writer.end();
    return ServerExit.OK;
  }
  if (answer === 'ABORT') {
    log.error(`Client aborted, removing ${db}.new and ${db}.mtime.new`);
    if (!dry) discardDbNew(db);
    return ServerExit.CLIENT_ABORTED;
  }
  logFailure(log, answer === null ? 'Communication with client died unexpectedly' : `Invalid command ${JSON.stringify(answer.slice(0, 80))} instead of DONE`,
    { context: 'communication', probableCause: 'network', humanIntervention: 'avoidable', suggestedActions: ['retry'] });
  return answer === null ? ServerExit.CLIENT_DIED : ServerExit.INVALID_COMMAND;
}

/** Upstream's patch: `xdelta3 -e -s <db> <db>.new <db>.xdelta`, sent and removed. */
function xdeltaPatch(db: string): Buffer {
  const file = `${db}.xdelta`;
  try {
    createXdeltaPatch(db, `${db}.new`, file);
    return readFileSync(file);
  } finally {
    removeQuietly(file);
  }
}

function removeQuietly(f: string): void {
  try {
    unlinkSync(f);
  } catch { /* absent */ }
}
