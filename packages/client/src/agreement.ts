/**
 * Phase 3, the agreement: COMMIT, receive and apply the db-file patch that
 * turns the db both sides agreed on into the server's new one, rename it
 * into place, then DONE. The client's db-file is renamed before DONE is
 * sent, so a crash in between is repaired by the next handshake (adopt-new).
 */
import { renameSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fsyncDir } from '@smd/maildir';
import { type WireReader, type WireWriter, MAX_CHUNK, PatchError, ProtocolError, TaggedError, applyDbPatch } from '@smd/protocol';
import { necessary, retry } from './errors.js';

export interface AgreementOptions {
  readonly dbFile: string;
  readonly dryRun: boolean;
  /** -l: the server owns the (shared) db-file: do not patch nor rename it. */
  readonly localSync: boolean;
}

/** Runs the agreement; resolves to the size of the patch received. */
export async function agree(o: AgreementOptions, reader: WireReader, writer: WireWriter): Promise<number> {
  const { dbFile, dryRun, localSync } = o;
  let patch: Buffer;
  try {
    await writer.line('COMMIT');
    await writer.flush();
    patch = await reader.readChunk(MAX_CHUNK);
  } catch (e) {
    if (e instanceof ProtocolError) {
      throw new TaggedError(`Network error while receiving the db-file patch: ${e.message}`, retry('receive-db-patch', 'network'), 6);
    }
    throw e;
  }
  if (!dryRun && !localSync) {
    try {
      applyDbPatch(dbFile, patch, `${dbFile}.new`);
    } catch (e) {
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
  }
  try {
    await writer.line('DONE');
    await writer.end();
  } catch { /* the server has what it needs once our db is in place; it reports its own end */ }
  return patch.length;
}
