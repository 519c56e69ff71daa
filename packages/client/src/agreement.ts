/**
 * Phase 3, the agreement: COMMIT, receive and apply the db-file patch that
 * turns the db both sides agreed on into the server's new one, rename it
 * into place, then DONE. The client's db-file is renamed before DONE is
 * sent, so a crash in between is repaired by the next handshake (adopt-new).
 */
import { closeSync, fsyncSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fsyncDir } from '@smd/maildir';
import {
  type Dialect, type WireReader, type WireWriter, MAX_CHUNK, PatchError, ProtocolError, TaggedError, applyDbPatchStream, applyXdeltaPatch,
} from '@smd/protocol';
import { forEachLine } from '@smd/snapshot';
import { necessary, retry } from './errors.js';
import type { ExpectedDb } from './expected-db.js';

export interface AgreementOptions {
  readonly dbFile: string;
  readonly dryRun: boolean;
  /** -l: the server owns the (shared) db-file: do not patch nor rename it. */
  readonly localSync: boolean;
}

/**
 * Runs the agreement; resolves to the size of the patch received. In
 * upstream's dialect the patch is xdelta3's, and the result is checked
 * against `expected` (what the applied diff allows).
 */
export async function agree(o: AgreementOptions, reader: WireReader, writer: WireWriter, dialect: Dialect = 'smd', expected?: ExpectedDb): Promise<number> {
  if (dialect === 'upstream') return agreeUpstream(o, reader, writer, expected!);
  const { dbFile, dryRun, localSync } = o;
  let size: number;
  try {
    await writer.line('COMMIT');
    await writer.flush();
    size = await reader.readChunkHeader(MAX_CHUNK);
  } catch (e) {
    if (e instanceof ProtocolError) throw patchWireError(e);
    throw e;
  }
  if (!dryRun && !localSync) {
    // The patch is applied as it arrives, never held whole (a 3.5 MB patch can inflate to GiBs).
    // Every line of the new db-file is one of ours or comes from a diff line the server sent, so
    // the result cannot exceed our db-file plus what we received; twice that, plus some slack, in case.
    let maxSize: number;
    try { maxSize = 2 * statSync(dbFile).size + reader.bytesRead + (1 << 20); } catch { maxSize = reader.bytesRead + (1 << 20); }
    try {
      await applyDbPatchStream(dbFile, reader.readBytes(size), `${dbFile}.new`, { maxSize });
    } catch (e) {
      if (e instanceof ProtocolError) throw patchWireError(e);
      if (e instanceof PatchError || (e as NodeJS.ErrnoException).code !== undefined) {
        throw new TaggedError(`Applying the db-file patch failed: ${(e as Error).message}`, necessary('db-patch', 'bad-patch'), 4);
      }
      throw e;
    }
    try {
      renameSync(`${dbFile}.new`, dbFile);
      fsyncDir(dirname(dbFile));
    } catch (e) {
      throw new TaggedError(`Renaming ${dbFile}.new to ${dbFile} failed: ${(e as Error).message}`,
        necessary('db-rename', 'bad-permissions', [`display-permissions("${dirname(resolve(dbFile))}")`]), 5);
    }
  } else {
    // Dry run (an empty patch) or local sync (the server owns the db-file): read and drop it.
    try {
      for await (const piece of reader.readBytes(size)) void piece;
    } catch (e) {
      if (e instanceof ProtocolError) throw patchWireError(e);
      throw e;
    }
  }
  try {
    await writer.line('DONE');
    await writer.end();
  } catch { /* the server has what it needs once our db is in place; it reports its own end */ }
  return size;
}

/** A wire failure while COMMIT is answered: the network (retry), or a server that broke the protocol. */
function patchWireError(e: ProtocolError): TaggedError {
  return e.kind === 'syntax' || e.kind === 'limit'
    ? new TaggedError(`The server sent a bad reply to COMMIT: ${e.message}`, necessary('receive-db-patch', 'hostile-or-broken-server'), 6)
    : new TaggedError(`Network error while receiving the db-file patch: ${e.message}`, retry('receive-db-patch', 'network'), 6);
}

/** The lines of a db-file, as latin1 ByteStrings. */
function linesOf(file: string): string[] {
  const out: string[] = [];
  forEachLine(file, (buf, s, e) => { out.push(buf.toString('latin1', s, e)); });
  return out;
}

/** The agreement with upstream syncmaildir: its xdelta3 patch, applied by xdelta3, the result checked. */
async function agreeUpstream(o: AgreementOptions, reader: WireReader, writer: WireWriter, expected: ExpectedDb): Promise<number> {
  const { dbFile, dryRun, localSync } = o;
  const patchFile = `${dbFile}.xdelta`;
  let size: number;
  try {
    await writer.line('COMMIT');
    await writer.flush();
    size = await reader.readChunkHeader(MAX_CHUNK);
    // Streamed to disk: xdelta3 reads it from there.
    const fd = openSync(patchFile, 'w', 0o600);
    try {
      for await (const piece of reader.readBytes(size)) for (let off = 0; off < piece.length;) off += writeSync(fd, piece, off);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    try { unlinkSync(patchFile); } catch { /* none */ }
    if (e instanceof ProtocolError) {
      throw e.kind === 'eof' || e.kind === 'timeout'
        ? new TaggedError(`Network error while receiving the db-file patch: ${e.message}`, retry('receive-db-patch', 'network'), 6)
        : new TaggedError(`The server sent a bad db-file patch: ${e.message}`, necessary('receive-db-patch', 'hostile-or-broken-server'), 6);
    }
    throw e;
  }
  try {
    if (!dryRun && !localSync && size > 0) {
      const out = `${dbFile}.new`;
      try {
        // A result can hold at most the old db-file and what the patch adds, which xdelta3 compresses (generously bounded).
        applyXdeltaPatch(dbFile, patchFile, out, statSync(dbFile).size + 64 * size + (1 << 20));
        const wrong = expected.check(linesOf(dbFile), linesOf(out));
        if (wrong !== null) throw new PatchError(`the patched db-file is not what the changes lead to: it has ${wrong}`);
        const fd = openSync(out, 'r+');
        try { fsyncSync(fd); } finally { closeSync(fd); }
      } catch (e) {
        try { unlinkSync(out); } catch { /* none */ }
        if (e instanceof PatchError || (e as NodeJS.ErrnoException).code !== undefined) {
          throw new TaggedError(`Applying the db-file patch failed: ${(e as Error).message}`, necessary('db-patch', 'bad-patch'), 4);
        }
        throw e;
      }
      try {
        renameSync(out, dbFile);
        fsyncDir(dirname(dbFile));
      } catch (e) {
        throw new TaggedError(`Renaming ${out} to ${dbFile} failed: ${(e as Error).message}`,
          necessary('db-rename', 'bad-permissions', [`display-permissions("${dirname(resolve(dbFile))}")`]), 5);
      }
    }
  } finally {
    try { unlinkSync(patchFile); } catch { /* none */ }
  }
  try {
    await writer.line('DONE');
    await writer.end();
  } catch { /* as above */ }
  return size;
}
