/**
 * Propagation: carries out the policy's decisions on the local Maildir —
 * local operations at once, fetches by sending a request whose reply the
 * pump hands to the handler registered here.
 */
import { renameSync, unlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { type ByteString, describeFsError, fsErrorCause, fsPath, isFsError, sha1, toUtf8 } from '@smd/maildir';
import { type SessionLog, ProtocolError, TaggedError, type WireReader, MAX_CHUNK } from '@smd/protocol';
import type { DiffCommand } from '@smd/snapshot';
import { type Decision, namesOf } from './policy.js';
import { baseOf, dirOf, folderOf } from './names.js';
import { splitMessageName } from './flags.js';
import { type ClientJournal, HEAD_BYTES, readHead } from './journal.js';
import { DirtyDirs, TempFile, TempFileSource, copyRange, exists, hashWithSplit, observe, placeNoClobber, placeOver } from './files.js';
import { Semaphore } from './queue.js';
import type { Durability } from './durable.js';
import type { RequestPipeline } from './pipeline.js';
import type { LocalMailbox } from './local.js';
import { necessary, replyError } from './errors.js';

const MAX_HEADER = 16 * 1024 * 1024;
/** Skipped messages named one by one in the log; the rest are counted. */
const SKIPS_SHOWN = 20;

/**
 * The local state of a command's names changed between the observation and
 * the action (the user's mail program renamed or changed a file): the
 * applier observes and decides again.
 */
export class LocalRace extends Error {
  override name = 'LocalRace';
}

/** A file-system failure as the user must see it: what failed, on which path, why, and where to look. */
export function fsFailure(context: string, what: string, dir: ByteString, e: unknown, exitCode: number): unknown {
  if (!isFsError(e)) return e;
  return new TaggedError(`${what}: ${describeFsError(e)}`,
    necessary(context, fsErrorCause(e), [`display-permissions("${toUtf8(resolve(toUtf8(dir)))}")`]), exitCode);
}

const gone = (e: unknown): boolean => (e as NodeJS.ErrnoException)?.code === 'ENOENT';
const show = (c: DiffCommand): string => 'name' in c ? toUtf8(c.name) : 'from' in c ? `${toUtf8(c.from)} → ${toUtf8(c.to)}` : c.op;

/** What a run did, for the stats TAGS line and the progress lines. */
export class RunStats {
  newMails = 0;
  delMails = 0;
  bytesReceived = 0;
  xdeltaReceived = 0;
  fetchesSent = 0;
  fetchesDone = 0;
  bytesAnnounced = 0;
  /** Commands left undone because their messages changed during the run. */
  skipped = 0;
  /** Dry run: the names that would have been fetched. */
  readonly transferred: ByteString[] = [];
}

export interface ExecutorOptions {
  readonly dryRun: boolean;
  /** Largest message accepted (default MAX_CHUNK, 1 GiB). */
  readonly maxMessageBytes?: number;
}

export class Executor {
  /** False with an upstream peer: it knows no SKIP, a command that cannot be done fails the run (as upstream). */
  canSkip = true;
  /** Received messages between their temp file's creation and their placement. */
  private readonly finishing: Semaphore;
  /** Where received messages are written first (created ahead). */
  readonly temps = new TempFileSource();
  private lastProgress = 0;

  constructor(
    private readonly o: ExecutorOptions,
    private readonly log: SessionLog,
    private readonly reader: WireReader,
    private readonly pipeline: RequestPipeline,
    private readonly local: LocalMailbox,
    private readonly stats: RunStats,
    readonly dirty: DirtyDirs,
    private readonly journal: ClientJournal,
    private readonly durability: Durability,
  ) {
    this.finishing = new Semaphore(durability.waitingLimit);
  }

  /** Where a remote name is (or would be) here, for the journal: its folder need not exist (dry run). */
  private async shown(name: ByteString): Promise<ByteString> {
    return `${await this.local.dir(dirOf(name))}/${baseOf(name)}`;
  }

  async execute(c: DiffCommand, d: Decision): Promise<void> {
    const dry = this.o.dryRun;
    const what = (s: string): void => this.log.info(`${c.op} ${show(c)}: ${s}`);
    switch (d.kind) {
      case 'ok':
        what(d.reason);
        return;
      case 'conflict':
      case 'failure':
        throw new TaggedError(d.message, d.tags, 3);
      case 'fetch': {
        const action = d.replace !== null ? 'replaced' : c.op === 'COPY' || c.op === 'COPYBODY' ? 'copied' : 'new';
        const previous = c.op === 'COPY' || c.op === 'COPYBODY' ? await this.shown(c.from) : undefined;
        if (dry) {
          what(`would fetch ${toUtf8(d.name)}`);
          this.stats.transferred.push(d.name);
          this.journal.record(action, await this.shown(d.name), { previous, note: d.note });
          return;
        }
        what(`fetch ${toUtf8(d.name)}`);
        return this.fetch(c, d.name, d.header, d.body, d.replace, (head, size) =>
          this.journal.record(action, this.local.known(d.name), { previous, note: d.note, head, size }));
      }
      case 'unlink': {
        what(`delete ${toUtf8(d.name)}`);
        const p = await this.local.path(d.name);
        // MOVE with both names here: the source is the stale copy of a message already at the target.
        const moved = c.op === 'MOVE' ? { to: await this.shown(c.to) } : null;
        if (dry) {
          this.stats.delMails++;
          if (moved !== null) this.journal.record('moved', moved.to, { previous: p }); else this.journal.record('deleted', p);
          return;
        }
        const before = readHead(p);
        try {
          unlinkSync(fsPath(p));
        } catch (e) {
          if (gone(e)) throw new LocalRace(`${toUtf8(p)} vanished before it could be deleted`);
          throw fsFailure('delete-message', `Failed to delete ${toUtf8(p)}`, dirOf(p), e, 3);
        }
        this.stats.delMails++;
        this.dirty.add(dirOf(p));
        if (moved !== null) this.journal.record('moved', moved.to, { previous: p });
        else this.journal.record('deleted', p, before !== null ? { head: before.head, size: before.size } : {});
        return;
      }
      case 'rename':
        what(`rename ${toUtf8(d.from)} → ${toUtf8(d.to)}`);
        return this.rename(d.from, d.to, this.flagChange(d.from, d.to));
      case 'merge-flags': {
        const flagsOf = (n: ByteString): string => splitMessageName(n)?.flags ?? '';
        const base = c.op === 'MOVE' ? flagsOf(c.from) || '-' : '?';
        const there = c.op === 'MOVE' ? flagsOf(c.to) || '-' : '?';
        const note = `merged: the flags changed on both sides, there ${base} → ${there}, here ${base} → ${d.flags.from || '-'}`;
        what(`${note}, rename ${toUtf8(d.from)} → ${toUtf8(d.to)}`);
        return this.rename(d.from, d.to, { ...this.flagChange(d.from, d.to), flags: d.flags, note });
      }
      case 'kept':
        what(d.note);
        this.journal.record('kept', await this.shown(d.name), { note: d.note });
        return;
      case 'copy': {
        what(`copy ${toUtf8(d.from)} → ${toUtf8(d.to)}`);
        if (dry) { this.journal.record('copied', await this.shown(d.to), { previous: await this.shown(d.from) }); return; }
        await this.local.ensureFolder(d.to);
        const s = await this.local.path(d.from);
        const t = await this.local.path(d.to);
        const failed = `Failed to copy ${toUtf8(s)} to ${toUtf8(t)}`;
        const tmpDir = await this.local.tmpDirOf(d.to);
        let tmp: TempFile;
        try {
          tmp = new TempFile(tmpDir);
        } catch (e) {
          throw fsFailure('copy-message', failed, tmpDir, e, 3);
        }
        try {
          try {
            copyRange(s, 0, (b) => tmp.write(b));
          } catch (e) {
            if (gone(e)) throw new LocalRace(`${toUtf8(s)} vanished before it could be copied`);
            throw fsFailure('copy-message', failed, tmpDir, e, 3);
          }
          let h;
          try { h = tmp.finish(); } catch (e) { throw fsFailure('copy-message', failed, tmpDir, e, 3); }
          if (h === null || h.header !== d.header || h.body !== d.body) throw new LocalRace(`${toUtf8(s)} changed while it was being copied`);
          this.place(tmp, t, d.header, d.body, null, 'copy-message', failed);
        } catch (e) {
          tmp.discard();
          throw e;
        }
        this.journal.record('copied', t, { previous: s });
        return;
      }
      case 'merge-header':
        if (dry) {
          what(`would fetch the new header of ${toUtf8(d.name)}`);
          this.journal.record('header', await this.shown(d.name));
          return;
        }
        what(`fetch the new header of ${toUtf8(d.name)}`);
        return this.fetchHeader(c, d.name, d.header, d.name, d.oldHeader, d.body, d.name,
          (head, size) => this.journal.record('header', this.local.known(d.name), { head, size }));
      case 'copy-then-merge': {
        const previous = await this.shown(d.from);
        if (dry) {
          what(`would copy the body of ${toUtf8(d.from)} and fetch the header of ${toUtf8(d.to)}`);
          this.journal.record('copied', await this.shown(d.to), { previous });
          return;
        }
        what(`copy the body of ${toUtf8(d.from)}, fetch the header of ${toUtf8(d.to)}`);
        return this.fetchHeader(c, d.to, d.header, d.from, null, d.body, d.to,
          (head, size) => this.journal.record('copied', this.local.known(d.to), { previous, head, size }));
      }
    }
  }

  /** The journal details of a rename: the flags before and after, when the unique name stays and they differ. */
  private flagChange(from: ByteString, to: ByteString): { flags?: { from: string; to: string } } {
    const a = splitMessageName(from);
    const b = splitMessageName(to);
    if (a === null || b === null || a.unique !== b.unique || (a.flags ?? '') === (b.flags ?? '')) return {};
    return { flags: { from: a.flags ?? '', to: b.flags ?? '' } };
  }

  /** Renames a local message (`to` must be absent) and records it: `flags` when only its flags changed, else `moved`. */
  private async rename(from: ByteString, to: ByteString, details: { flags?: { from: string; to: string }; note?: string }): Promise<void> {
    const action = folderOf(from) === folderOf(to) && details.flags !== undefined ? 'flags' : 'moved';
    if (this.o.dryRun) { this.journal.record(action, await this.shown(to), { ...details, previous: await this.shown(from) }); return; }
    const s = await this.local.path(from);
    await this.local.ensureFolder(to);
    const t = await this.local.path(to);
    if (exists(t)) throw new LocalRace(`${toUtf8(t)} appeared while ${toUtf8(s)} was being moved there`);
    try {
      renameSync(fsPath(s), fsPath(t));
    } catch (e) {
      if (gone(e) && !exists(s)) throw new LocalRace(`${toUtf8(s)} vanished before it could be moved`);
      throw fsFailure('move-message', `Failed to move ${toUtf8(s)} to ${toUtf8(t)}`, dirOf(t), e, 3);
    }
    this.dirty.add(dirOf(s));
    this.dirty.add(dirOf(t));
    this.journal.record(action, t, { ...details, previous: s });
  }

  /**
   * Leaves command `c` undone for this run: the server keeps the previous
   * agreement of its names in the db-file (SKIP lines, protocol.md 5.1), so
   * the next run sees the change again.
   */
  async skip(c: DiffCommand, why: string): Promise<void> {
    if (!this.canSkip) {
      throw new TaggedError(`${c.op} ${show(c)}: ${why}; the run stops (upstream syncmaildir cannot leave a change for the next run): retry`,
        { context: 'receive', probableCause: 'simultaneous-mailbox-edit', humanIntervention: 'avoidable', suggestedActions: ['retry'] }, 1);
    }
    this.stats.skipped++;
    for (const n of namesOf(c)) await this.pipeline.notice(`SKIP ${n}`);
    if (this.stats.skipped <= SKIPS_SHOWN) this.log.warn(`${c.op} ${show(c)}: skipped for this run (${why}); the next run takes it`);
    else this.log.info(`${c.op} ${show(c)}: skipped for this run (${why})`);
  }

  /**
   * Puts a finished, verified temp file at `target`. `replace` null: the
   * target must be absent (or empty): never clobbered. Otherwise the target
   * must still have those hashes. A target that already has the expected
   * hashes is fine (nothing to do).
   */
  private place(tmp: TempFile, target: ByteString, header: string, body: string,
    replace: { header: string; body: string } | null, context: string, failed: string): void {
    this.pipeline.check();
    const conflict = (): TaggedError => new TaggedError(
      `${toUtf8(target)} was modified locally while the new version was being received; it was left untouched`,
      necessary(context, 'concurrent-mailbox-edit', [`display-mail("${toUtf8(resolve(toUtf8(target)))}")`]), 3);
    try {
      if (replace === null && placeNoClobber(tmp, target) === 'placed') { this.dirty.add(dirOf(target)); return; }
      const now = observe(target);
      if (now.kind === 'message' && now.header === header && now.body === body) { tmp.discard(); return; }
      const replaceable = now.kind === 'absent' ||
        (replace !== null && now.kind === 'message' && now.header === replace.header && now.body === replace.body);
      if (!replaceable) throw conflict();
      placeOver(tmp, target);
    } catch (e) {
      throw fsFailure(context, failed, dirOf(target), e, 3);
    }
    this.dirty.add(dirOf(target));
  }

  /** GET `name` into place; `done(head, size)` runs once it is there (head: its first bytes, for the journal). */
  private async fetch(c: DiffCommand, name: ByteString, header: string, body: string, replace: { header: string; body: string } | null,
    done: (head: Buffer, size: number) => void): Promise<void> {
    await this.local.ensureFolder(name);
    const target = await this.local.path(name);
    const tmpDir = await this.local.tmpDirOf(name);
    const failed = `Failed to store the received message ${toUtf8(target)}`;
    this.stats.fetchesSent++;
    await this.pipeline.request(`GET ${name}`, namesOf(c), async () => {
      const size = await this.chunkHeader(name, this.o.maxMessageBytes ?? MAX_CHUNK);
      if (size === null) { this.fetchEnded(); await this.skip(c, 'the server could not send it: a mail program changed it there since the scan'); return undefined; }
      this.stats.bytesAnnounced += size;
      await this.finishing.acquire();
      let tmp: TempFile;
      try {
        tmp = await this.temps.take(tmpDir);
      } catch (e) {
        this.finishing.release();
        throw fsFailure('receive', `Unable to create a temporary file in ${toUtf8(tmpDir)}`, tmpDir, e, 1);
      }
      const head: Buffer[] = [];
      let headBytes = 0;
      try {
        for await (const piece of this.reader.readBytes(size)) {
          this.pipeline.check();
          try { tmp.write(piece); } catch (e) { throw fsFailure('receive', failed, tmpDir, e, 1); }
          if (headBytes < HEAD_BYTES) {
            const take = piece.subarray(0, HEAD_BYTES - headBytes);
            head.push(Buffer.from(take));
            headBytes += take.length;
          }
        }
      } catch (e) {
        tmp.discard();
        this.finishing.release();
        throw replyError(e, name);
      }
      // The reply is consumed: make it durable, verify and place while the pump reads the next one
      // (wrapped in an object: returning the promise itself would make the pump wait for it).
      return { completion: (async () => {
        let placed = false;
        try {
          let h;
          try { h = await this.durability.finish(tmp, tmpDir); } catch (e) { throw fsFailure('receive', failed, tmpDir, e, 1); }
          if (h !== null && h.header === header && h.body === body) {
            this.place(tmp, target, header, body, replace, replace === null ? 'mail-addition' : 'replace', failed);
            placed = true;
          } else {
            tmp.discard();
          }
        } catch (e) {
          tmp.discard();
          throw e;
        } finally {
          this.finishing.release();
        }
        this.fetchEnded();
        if (!placed) {
          await this.skip(c, 'the server sent other content than announced: a mail program probably changed it there since the scan');
          return;
        }
        this.stats.newMails++;
        this.stats.bytesReceived += size;
        done(Buffer.concat(head, headBytes), size);
      })() };
    });
  }

  private fetchEnded(): void {
    this.stats.fetchesDone++;
    this.progress(false);
  }

  /**
   * GETHEADER `name` (must hash to `header`) + the body of local `source`
   * (which must still have body `body`, and header `sourceHeader` if given)
   * → `target` (replacing source when they are the same name, never
   * clobbering otherwise). The result is verified: (header, body). Fixes B2:
   * the body bytes are copied exactly.
   */
  private async fetchHeader(c: DiffCommand, name: ByteString, header: string, source: ByteString, sourceHeader: string | null, body: string,
    target: ByteString, done: (head: Buffer, size: number) => void): Promise<void> {
    await this.local.ensureFolder(target);
    const src = await this.local.path(source);
    const dst = await this.local.path(target);
    const tmpDir = await this.local.tmpDirOf(target);
    const context = source === target ? 'header-replacement' : 'copy-body';
    const failed = `Failed to write the new header of ${toUtf8(dst)}`;
    await this.pipeline.request(`GETHEADER ${name}`, namesOf(c), async () => {
      const size = await this.chunkHeader(name, MAX_HEADER);
      if (size === null) { await this.skip(c, 'the server could not send its header: a mail program changed it there since the scan'); return undefined; }
      const parts: Buffer[] = [];
      try {
        for await (const p of this.reader.readBytes(size)) parts.push(Buffer.from(p));
      } catch (e) { throw replyError(e, name); }
      this.pipeline.check();
      const got = Buffer.concat(parts, size);
      if (sha1(got) !== header) {
        await this.skip(c, 'the server sent another header than announced: a mail program probably changed it there since the scan');
        return undefined;
      }
      let s: ReturnType<typeof hashWithSplit>;
      try {
        s = hashWithSplit(src);
      } catch (e) {
        // Renamed by a mail program here (a flag change): the next run sees where it went.
        if (gone(e)) { await this.skip(c, `${toUtf8(src)} was moved by a mail program here meanwhile`); return undefined; }
        s = null;
      }
      if (s === null || s.hashes.body !== body || (sourceHeader !== null && s.hashes.header !== sourceHeader)) {
        throw new TaggedError(`${toUtf8(src)} was modified locally during the synchronization; it was left untouched`,
          necessary(context, 'concurrent-mailbox-edit', [`display-mail("${toUtf8(resolve(toUtf8(src)))}")`]), 3);
      }
      let tmp: TempFile;
      try { tmp = new TempFile(tmpDir); } catch (e) { throw fsFailure(context, failed, tmpDir, e, 3); }
      try {
        let h;
        try {
          tmp.write(got);
          copyRange(src, s.headerLength, (b) => tmp.write(b));
          h = tmp.finish();
        } catch (e) {
          if (gone(e)) { tmp.discard(); await this.skip(c, `${toUtf8(src)} was moved by a mail program here meanwhile`); return undefined; }
          throw fsFailure(context, failed, tmpDir, e, 3);
        }
        if (h === null || h.header !== header || h.body !== body) {
          throw new TaggedError(`The new header of ${toUtf8(name)} does not combine with the local body into the announced message`,
            necessary(context, 'inconsistent-header'), 3);
        }
        this.place(tmp, dst, header, body, source === target ? { header: sourceHeader ?? '', body } : null, context, failed);
        done(got, tmp.size);
      } catch (e) {
        tmp.discard();
        throw e;
      }
      return undefined;
    });
  }

  /** The size of the reply's chunk; null when the server answered ABORT (it cannot send the message any more). */
  private async chunkHeader(name: ByteString, max: number): Promise<number | null> {
    try {
      return await this.reader.readChunkHeader(max);
    } catch (e) {
      if (e instanceof ProtocolError && e.kind === 'abort') return null;
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
