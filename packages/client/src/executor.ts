/**
 * Propagation: carries out the policy's decisions on the local Maildir —
 * local operations at once, fetches by sending a request whose reply the
 * pump hands to the handler registered here.
 */
import { renameSync, unlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { type ByteString, fsPath, sha1, toUtf8 } from '@smd/maildir';
import { type SessionLog, TaggedError, type WireReader, MAX_CHUNK } from '@smd/protocol';
import type { DiffCommand } from '@smd/snapshot';
import type { Decision } from './policy.js';
import { dirOf } from './names.js';
import { DirtyDirs, TempFile, copyRange, exists, hashWithSplit, observe, placeNoClobber, placeOver } from './files.js';
import { Semaphore } from './queue.js';
import type { RequestPipeline } from './pipeline.js';
import type { LocalMailbox } from './local.js';
import { necessary, replyError, retry } from './errors.js';

const MAX_HEADER = 16 * 1024 * 1024;

/** What a run did, for the stats TAGS line and the progress lines. */
export class RunStats {
  newMails = 0;
  delMails = 0;
  bytesReceived = 0;
  xdeltaReceived = 0;
  fetchesSent = 0;
  fetchesDone = 0;
  bytesAnnounced = 0;
  /** Dry run: the names that would have been fetched. */
  readonly transferred: ByteString[] = [];
}

export interface ExecutorOptions {
  readonly dryRun: boolean;
  /** Largest message accepted (default MAX_CHUNK, 1 GiB). */
  readonly maxMessageBytes?: number;
}

export class Executor {
  /** Received messages waiting for their fsync (each holds an open fd): at most 64. */
  private readonly finishing = new Semaphore(64);
  private lastProgress = 0;

  constructor(
    private readonly o: ExecutorOptions,
    private readonly log: SessionLog,
    private readonly reader: WireReader,
    private readonly pipeline: RequestPipeline,
    private readonly local: LocalMailbox,
    private readonly stats: RunStats,
    readonly dirty: DirtyDirs,
  ) {}

  async execute(c: DiffCommand, d: Decision): Promise<void> {
    const dry = this.o.dryRun;
    const what = (s: string): void => this.log.info(`${c.op} ${'name' in c ? toUtf8(c.name) : 'from' in c ? `${toUtf8(c.from)} → ${toUtf8(c.to)}` : ''}: ${s}`);
    switch (d.kind) {
      case 'ok':
        what(d.reason);
        return;
      case 'conflict':
      case 'failure':
        throw new TaggedError(d.message, d.tags, 3);
      case 'fetch':
        if (dry) { what(`would fetch ${toUtf8(d.name)}`); this.stats.transferred.push(d.name); return; }
        what(`fetch ${toUtf8(d.name)}`);
        return this.fetch(d.name, d.header, d.body, d.replace);
      case 'unlink': {
        what(`delete ${toUtf8(d.name)}`);
        this.stats.delMails++;
        if (dry) return;
        const p = await this.local.path(d.name);
        try {
          unlinkSync(fsPath(p));
          this.dirty.add(dirOf(p));
        } catch (e) {
          throw new TaggedError(`Deletion of ${toUtf8(p)} failed: ${(e as Error).message}`,
            necessary('delete-message', 'bad-directory-permission', [`display-permissions("${toUtf8(resolve(toUtf8(dirOf(p))))}")`]), 3);
        }
        return;
      }
      case 'rename': {
        what(`rename ${toUtf8(d.from)} → ${toUtf8(d.to)}`);
        if (dry) return;
        await this.local.ensureFolder(d.to);
        const s = await this.local.path(d.from);
        const t = await this.local.path(d.to);
        if (exists(t)) throw new TaggedError(`${toUtf8(t)} appeared while ${toUtf8(s)} was being moved there`, necessary('move-message', 'concurrent-mailbox-edit'), 3);
        try {
          renameSync(fsPath(s), fsPath(t));
          this.dirty.add(dirOf(s));
          this.dirty.add(dirOf(t));
        } catch (e) {
          throw new TaggedError(`Renaming ${toUtf8(s)} to ${toUtf8(t)} failed: ${(e as Error).message}`,
            necessary('move-message', 'bad-directory-permission', [`display-permissions("${toUtf8(resolve(toUtf8(dirOf(t))))}")`]), 3);
        }
        return;
      }
      case 'copy': {
        what(`copy ${toUtf8(d.from)} → ${toUtf8(d.to)}`);
        if (dry) return;
        await this.local.ensureFolder(d.to);
        const s = await this.local.path(d.from);
        const t = await this.local.path(d.to);
        let tmp: TempFile;
        try {
          tmp = new TempFile(await this.local.tmpDirOf(d.to));
        } catch (e) {
          throw new TaggedError(`Unable to write a copy of ${toUtf8(s)}: ${(e as Error).message}`,
            necessary('copy-message', 'bad-directory-permission'), 3);
        }
        try {
          copyRange(s, 0, (b) => tmp.write(b));
          const h = tmp.finish();
          if (h === null || h.header !== d.header || h.body !== d.body) {
            throw new TaggedError(`${toUtf8(s)} changed while it was being copied`, necessary('copy-message', 'concurrent-mailbox-edit'), 3);
          }
          this.place(tmp, t, d.header, d.body, null, 'copy-message');
        } catch (e) {
          tmp.discard();
          throw e;
        }
        return;
      }
      case 'merge-header':
        if (dry) { what(`would fetch the new header of ${toUtf8(d.name)}`); return; }
        what(`fetch the new header of ${toUtf8(d.name)}`);
        return this.fetchHeader(d.name, d.header, d.name, d.oldHeader, d.body, d.name);
      case 'copy-then-merge':
        if (dry) { what(`would copy the body of ${toUtf8(d.from)} and fetch the header of ${toUtf8(d.to)}`); return; }
        what(`copy the body of ${toUtf8(d.from)}, fetch the header of ${toUtf8(d.to)}`);
        return this.fetchHeader(d.to, d.header, d.from, null, d.body, d.to);
    }
  }

  /**
   * Puts a finished, verified temp file at `target`. `replace` null: the
   * target must be absent (or empty): never clobbered. Otherwise the target
   * must still have those hashes. A target that already has the expected
   * hashes is fine (nothing to do).
   */
  private place(tmp: TempFile, target: ByteString, header: string, body: string,
    replace: { header: string; body: string } | null, context: string): void {
    this.pipeline.check();
    const conflict = (): TaggedError => new TaggedError(
      `${toUtf8(target)} was modified locally while the new version was being received; it was left untouched`,
      necessary(context, 'concurrent-mailbox-edit', [`display-mail("${toUtf8(resolve(toUtf8(target)))}")`]), 3);
    if (replace === null && placeNoClobber(tmp, target) === 'placed') { this.dirty.add(dirOf(target)); return; }
    const now = observe(target);
    if (now.kind === 'message' && now.header === header && now.body === body) { tmp.discard(); return; }
    const replaceable = now.kind === 'absent' ||
      (replace !== null && now.kind === 'message' && now.header === replace.header && now.body === replace.body);
    if (!replaceable) throw conflict();
    placeOver(tmp, target);
    this.dirty.add(dirOf(target));
  }

  private async fetch(name: ByteString, header: string, body: string, replace: { header: string; body: string } | null): Promise<void> {
    await this.local.ensureFolder(name);
    const target = await this.local.path(name);
    const tmpDir = await this.local.tmpDirOf(name);
    this.stats.fetchesSent++;
    await this.pipeline.request(`GET ${name}`, [name], async () => {
      const size = await this.chunkHeader(name, this.o.maxMessageBytes ?? MAX_CHUNK);
      this.stats.bytesAnnounced += size;
      await this.finishing.acquire();
      let tmp: TempFile;
      try {
        tmp = new TempFile(tmpDir);
      } catch (e) {
        this.finishing.release();
        throw new TaggedError(`Unable to create a temporary file in ${toUtf8(tmpDir)}: ${(e as Error).message}`,
          necessary('receive', 'non-writeable-file', [`display-permissions("${toUtf8(resolve(toUtf8(tmpDir)))}")`]), 1);
      }
      try {
        for await (const piece of this.reader.readBytes(size)) {
          this.pipeline.check();
          tmp.write(piece);
        }
      } catch (e) {
        tmp.discard();
        this.finishing.release();
        throw replyError(e, name);
      }
      // The reply is consumed: fsync, verify and place while the pump reads the next one
      // (wrapped in an object: returning the promise itself would make the pump wait for it).
      return { completion: (async () => {
        try {
          const h = await tmp.finishAsync();
          if (h === null || h.header !== header || h.body !== body) {
            throw new TaggedError(`The server sent a different message for ${toUtf8(name)} than the one announced in the changes ` +
              `(it was probably modified on the server meanwhile)`, retry('receive-message', 'modify-while-update'), 1);
          }
          this.place(tmp, target, header, body, replace, replace === null ? 'mail-addition' : 'replace');
        } catch (e) {
          tmp.discard();
          throw e;
        } finally {
          this.finishing.release();
        }
        this.stats.newMails++;
        this.stats.bytesReceived += size;
        this.stats.fetchesDone++;
        this.progress(false);
      })() };
    });
  }

  /**
   * GETHEADER `name` (must hash to `header`) + the body of local `source`
   * (which must still have body `body`, and header `sourceHeader` if given)
   * → `target` (replacing source when they are the same name, never
   * clobbering otherwise). The result is verified: (header, body). Fixes B2:
   * the body bytes are copied exactly.
   */
  private async fetchHeader(name: ByteString, header: string, source: ByteString, sourceHeader: string | null, body: string, target: ByteString): Promise<void> {
    await this.local.ensureFolder(target);
    const src = await this.local.path(source);
    const dst = await this.local.path(target);
    const tmpDir = await this.local.tmpDirOf(target);
    const context = source === target ? 'header-replacement' : 'copy-body';
    await this.pipeline.request(`GETHEADER ${name}`, source === target ? [target] : [source, target], async () => {
      const size = await this.chunkHeader(name, MAX_HEADER);
      const parts: Buffer[] = [];
      try {
        for await (const p of this.reader.readBytes(size)) parts.push(Buffer.from(p));
      } catch (e) { throw replyError(e, name); }
      this.pipeline.check();
      const got = Buffer.concat(parts, size);
      if (sha1(got) !== header) {
        throw new TaggedError(`The server sent a different header for ${toUtf8(name)} than the one announced (it was probably modified on the server meanwhile)`,
          retry('receive-header', 'modify-while-update'), 1);
      }
      const s = (() => { try { return hashWithSplit(src); } catch { return null; } })();
      if (s === null || s.hashes.body !== body || (sourceHeader !== null && s.hashes.header !== sourceHeader)) {
        throw new TaggedError(`${toUtf8(src)} was modified locally during the synchronization; it was left untouched`,
          necessary(context, 'concurrent-mailbox-edit', [`display-mail("${toUtf8(resolve(toUtf8(src)))}")`]), 3);
      }
      const tmp = new TempFile(tmpDir);
      try {
        tmp.write(got);
        copyRange(src, s.headerLength, (b) => tmp.write(b));
        const h = tmp.finish();
        if (h === null || h.header !== header || h.body !== body) {
          throw new TaggedError(`The new header of ${toUtf8(name)} does not combine with the local body into the announced message`,
            necessary(context, 'inconsistent-header'), 3);
        }
        this.place(tmp, dst, header, body, source === target ? { header: sourceHeader ?? '', body } : null, context);
      } catch (e) {
        tmp.discard();
        throw e;
      }
      return undefined;
    });
  }

  private async chunkHeader(name: ByteString, max: number): Promise<number> {
    try {
      return await this.reader.readChunkHeader(max);
    } catch (e) {
      throw replyError(e, name);
    }
  }

  progress(final: boolean): void {
    const s = this.stats;
    if (this.o.dryRun || s.fetchesSent === 0) return;
    const now = Date.now();
    if (!final && now - this.lastProgress < 1000 && s.fetchesDone % 1000 !== 0) return;
    this.lastProgress = now;
    this.log.progress(`transfer ${s.fetchesDone}/${s.fetchesSent} messages, ${s.bytesReceived}/${s.bytesAnnounced} bytes`);
  }
}
