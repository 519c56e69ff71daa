/**
 * The smd-client session (upstream spec 5): handshake, apply the diff as it
 * arrives with pipelined fetches, COMMIT, patch the db-file, DONE.
 *
 * Concurrency model (one input stream, three tasks):
 *  - the *reader* task reads diff lines until END into a command queue (it
 *    never waits for the applier, so the applier may block on a fetch whose
 *    reply can only come after END); after END it becomes the *pump*: it
 *    consumes the replies, in request order, for the requests the applier
 *    sent (write to a temp file while hashing, fsync, verify, put in place);
 *  - the *applier* takes commands in order, waits for pending work on the
 *    names a command involves (per-name promise map: correctness first),
 *    observes the local state, decides (policy.ts) and executes: local
 *    operations at once, fetches by sending a request and registering the
 *    pending work;
 *  - request lines are batched by the WireWriter and flushed on the next
 *    turn of the event loop (setImmediate) after they are queued, i.e. as
 *    soon as the applier has nothing more to do synchronously: a request
 *    never sits unsent while anybody waits.
 *
 * Window rule: at most `maxInFlight` (default 1,000) requests are
 * outstanding (sent, reply not yet fully consumed); each consumed reply frees
 * one slot at once (a sliding window, never batches that drain). Message
 * bytes never accumulate in memory (they stream to disk), so a count bound
 * is what limits the work the server has queued when we abort; the byte
 * size of a reply is only known from its chunk header, and a chunk above
 * `maxMessageBytes` is refused.
 */
import { mkdirSync, renameSync, symlinkSync, unlinkSync, readlinkSync, lstatSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { type ByteString, fsPath, fsyncDir, sha1, toUtf8 } from '@smd/maildir';
import {
  type ErrorTags, type SessionLog, ProtocolError, TaggedError, WireReader, WireWriter, MAX_CHUNK,
  applyDbPatch, PatchError, dbMismatchError, decideHandshake, formatStatsTags, formatTransferredTags,
  logFailure, receiveHandshake, sendHandshake,
} from '@smd/protocol';
import { type DiffCommand, CommandSyntaxError, dbFingerprint, parseCommand } from '@smd/snapshot';
import { type Decision, type LocalState, decide, namesOf } from './policy.js';
import { baseOf, checkMailboxRoot, dirOf, folderOf, refuseCommand } from './names.js';
import { Translator } from './translator.js';
import {
  DirtyDirs, TempFile, copyRange, exists, hashWithSplit, observe, placeNoClobber, placeOver, removeLiveTemps, removeStaleTemps,
} from './files.js';
import { AsyncQueue, Semaphore, deferred, type Deferred } from './queue.js';
import { renameOnlyScript } from './rename-only.js';

export interface ClientOptions {
  /** From the server. */
  readonly input: Readable;
  /** To the server. */
  readonly output: Writable;
  readonly log: SessionLog;
  readonly endpoint: string;
  /** Mailbox roots (ByteStrings, already %-decoded), relative to the cwd. */
  readonly mailboxes: readonly ByteString[];
  readonly dbFile: string;
  readonly dryRun: boolean;
  /** -l: the server owns the (shared) db-file: do not patch nor rename it. */
  readonly localSync: boolean;
  /** -t CMD: remote→local folder name translator (workarea mode), or null. */
  readonly translator: string | null;
  readonly renameOnly: boolean;
  readonly home: string;
  /** Requests outstanding at most (default 1000). */
  readonly maxInFlight?: number;
  /** Largest message accepted (default MAX_CHUNK, 1 GiB). */
  readonly maxMessageBytes?: number;
  /** PROGRESS lines every this many commands (default 5000). */
  readonly progressEvery?: number;
}

const MAX_HEADER = 16 * 1024 * 1024;
const MAX_PATCH = MAX_CHUNK;
const END = Symbol('END');
const STOP = Symbol('STOP');

const retry = (context: string, probableCause: string): ErrorTags =>
  ({ context, probableCause, humanIntervention: 'avoidable', suggestedActions: ['retry'] });
const necessary = (context: string, probableCause: string, suggestedActions?: string[]): ErrorTags =>
  ({ context, probableCause, humanIntervention: 'necessary', ...(suggestedActions ? { suggestedActions } : {}) });

interface Request {
  readonly line: string;
  /**
   * Consumes the reply from the input; may return a completion (fsync,
   * verify, place) that runs while the next reply is read.
   */
  readonly handle: () => Promise<{ readonly completion: Promise<void> } | undefined>;
  readonly done: Deferred<void>;
}

/** Runs one smd-client session; resolves to the exit code (spec 5.12). */
export async function runClient(opts: ClientOptions): Promise<number> {
  return new ClientSession(opts).run();
}

class ClientSession {
  private readonly reader: WireReader;
  private readonly writer: WireWriter;
  private readonly log: SessionLog;
  private roots: ByteString[] = [];
  private readonly translator: Translator | null;
  private readonly dirty = new DirtyDirs();
  private readonly pending = new Map<ByteString, Promise<void>>();
  private readonly window: Semaphore;
  /** Received messages waiting for their fsync (each holds an open fd): at most 64. */
  private readonly finishing = new Semaphore(64);
  private readonly requests = new AsyncQueue<Request | typeof STOP>();
  private readonly commands = new AsyncQueue<DiffCommand | typeof END>();
  private readonly folders = new Map<ByteString, Promise<void>>();
  private readonly localPaths = new Map<ByteString, ByteString>();
  private readonly failure = deferred<never>();
  private aborted = false;
  private handshakeDone = false;
  private flushScheduled = false;
  private readonly transferred: ByteString[] = [];
  private readonly stats = { newMails: 0, delMails: 0, bytesReceived: 0, xdeltaReceived: 0 };
  private fetchesSent = 0;
  private fetchesDone = 0;
  private bytesAnnounced = 0;
  private lastProgress = 0;
  private readerTask: Promise<void> | null = null;

  constructor(private readonly o: ClientOptions) {
    this.reader = new WireReader(o.input);
    this.writer = new WireWriter(o.output);
    this.log = o.log;
    this.window = new Semaphore(o.maxInFlight ?? 1000);
    this.translator = o.translator !== null ? new Translator(o.translator) : null;
  }

  async run(): Promise<number> {
    try {
      for (const m of this.o.mailboxes) {
        const r = checkMailboxRoot(m);
        if (!r.ok) {
          throw r.reason === 'absolute'
            ? new TaggedError(`The mailbox ${toUtf8(m)} is an absolute path: mailboxes are relative to the home directory`,
              necessary('main', 'mailbox-has--absolute-path'), 6)
            : new TaggedError(`The mailbox ${JSON.stringify(toUtf8(m))} is not a plain relative path (no "..", ".", empty components)`,
              necessary('main', 'mailbox-has-bad-path'), 6);
        }
        this.roots.push(r.root);
      }
      await this.handshake();
      if (this.o.renameOnly) return await this.renameOnly();
      await this.synchronize();
      return await this.agree();
    } catch (e) {
      return await this.fail(e);
    } finally {
      this.translator?.close();
    }
  }

  // ---------------------------------------------------------------- phase 0

  private async handshake(): Promise<void> {
    const { dbFile, dryRun } = this.o;
    this.log.progress('Phase 0: handshake');
    if (!dryRun) mkdirSync(dirname(dbFile), { recursive: true, mode: 0o700 });
    const mine = dbFingerprint(dbFile, { create: !dryRun });
    try {
      await sendHandshake(this.writer, mine);
    } catch (e) {
      if (e instanceof ProtocolError) throw new TaggedError(`Network error during the handshake: ${e.message}`, retry('handshake', 'network'), 6);
      throw e;
    }
    const peer = await receiveHandshake(this.reader);
    this.handshakeDone = true;
    const d = decideHandshake(mine, peer);
    if (d === 'mismatch') throw dbMismatchError(dbFile);
    if (d === 'adopt-new') {
      this.log.info(`The other side committed ${dbFile}.new last time but this side did not: using it`);
      if (!dryRun && !this.o.localSync) {
        renameSync(`${dbFile}.new`, dbFile);
        fsyncDir(dirname(dbFile));
      }
    }
  }

  // ------------------------------------------------------------- phase 1+2

  private async synchronize(): Promise<void> {
    this.log.progress('Phase 1: changes detection');
    this.readerTask = this.readDiffThenPump();
    this.readerTask.catch((e: unknown) => this.abort(e));
    const every = this.o.progressEvery ?? 5000;
    let n = 0;
    for (;;) {
      const c = await this.wait(this.commands.next());
      if (c === END) break;
      await this.apply(c);
      if (++n % every === 0) this.log.progress(`${n} commands applied`);
    }
    this.log.progress('Phase 2: synchronization');
    await this.wait(Promise.all([...this.pending.values()]));
    this.requests.push(STOP);
    await this.wait(this.readerTask);
    this.progress(true);
  }

  /** The reader task: diff lines until END, then the replies (the pump). */
  private async readDiffThenPump(): Promise<void> {
    for (;;) {
      let line: string | null;
      try {
        line = await this.reader.readLine();
      } catch (e) {
        if (e instanceof ProtocolError) {
          throw e.kind === 'limit'
            ? new TaggedError(`The server sent an overlong diff line: ${e.message}`, necessary('receive-delta', 'hostile-or-broken-server'), 6)
            : new TaggedError(`Network error while receiving the changes: ${e.message}`, retry('receive-delta', 'network'), 6);
        }
        throw e;
      }
      if (line === null) throw new TaggedError('Network error: the server closed the connection before the end of the changes', retry('receive-delta', 'network'), 6);
      if (this.aborted) return;
      if (line === 'END') break;
      let c: DiffCommand;
      try {
        c = parseCommand(line);
      } catch (e) {
        if (e instanceof CommandSyntaxError) {
          throw new TaggedError(`The server sent a ${e.message}`, necessary('receive-delta', 'hostile-or-broken-server'), 6);
        }
        throw e;
      }
      const bad = refuseCommand(c, this.roots);
      if (bad !== null) {
        throw new TaggedError(
          `The server sent an unacceptable name ${JSON.stringify(toUtf8(bad.name))} (${bad.reason}); the changes are refused. ` +
          `Accepted names are <mailbox>/.../cur|new/<file> under the mailboxes ${this.roots.map((r) => JSON.stringify(toUtf8(r))).join(', ')}`,
          necessary('receive-delta', 'hostile-or-broken-server'), 6);
      }
      this.commands.push(c);
    }
    this.commands.push(END);
    // The pump: replies come in request order.
    for (;;) {
      const r = await this.requests.next();
      if (r === STOP || this.aborted) return;
      let later: { readonly completion: Promise<void> } | undefined;
      try {
        later = await r.handle();
      } catch (e) {
        r.done.reject(e);
        this.window.release();
        throw e;
      }
      if (later === undefined) { r.done.resolve(); this.window.release(); continue; }
      later.completion.then(() => { r.done.resolve(); this.window.release(); },
        (e: unknown) => { r.done.reject(e); this.window.release(); this.abort(e); });
    }
  }

  /** Marks the session failed: every wait rejects; no file is placed after this. */
  private abort(e: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.failure.reject(e);
  }

  /** Awaits `p`, unless the session fails first. Flushes queued requests before blocking. */
  private wait<T>(p: Promise<T>): Promise<T> {
    this.flushSoon();
    return Promise.race([p, this.failure.promise]);
  }

  private checkAborted(): void {
    if (this.aborted) throw new Error('session aborted');
  }

  private flushSoon(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.writer.flush().catch((e: unknown) => this.abort(this.networkError(e)));
    });
  }

  private networkError(e: unknown): unknown {
    return e instanceof ProtocolError ? new TaggedError(`Network error while sending requests: ${e.message}`, retry('transmit', 'network'), 1) : e;
  }

  /** Queues a request line (flushed within one event-loop turn) and its reply handler. */
  private async request(line: string, names: ByteString[], handle: () => Promise<{ readonly completion: Promise<void> } | undefined>): Promise<void> {
    await this.wait(this.window.acquire());
    this.checkAborted();
    const done = deferred<void>();
    this.requests.push({ line, handle, done });
    for (const n of names) {
      this.pending.set(n, done.promise);
      done.promise.then(() => { if (this.pending.get(n) === done.promise) this.pending.delete(n); }, () => undefined);
    }
    await this.writer.line(line).catch((e: unknown) => { throw this.networkError(e); });
    this.flushSoon();
  }

  // ---------------------------------------------------------- local paths

  /** Where a remote name lives here: the name itself (relative to the cwd), or $HOME/<translated dir>/<file>. */
  private async localPath(name: ByteString): Promise<ByteString> {
    const hit = this.localPaths.get(name);
    if (hit !== undefined) return hit;
    let p = name;
    if (this.translator !== null) p = `${this.homeBytes()}/${await this.translator.translate(dirOf(name))}/${baseOf(name)}`;
    this.localPaths.set(name, p);
    return p;
  }

  private homeBytes(): ByteString {
    return Buffer.from(this.o.home, 'utf8').toString('latin1');
  }

  /** The local temp directory for a remote name (its folder's tmp/). */
  private async tmpDirOf(name: ByteString): Promise<ByteString> {
    const tmpRemote = `${folderOf(name)}/tmp`;
    if (this.translator === null) return tmpRemote;
    return `${this.homeBytes()}/${await this.translator.translate(tmpRemote)}`;
  }

  /**
   * Creates cur/, new/, tmp/ of the folder of a remote name (mode 0700), once
   * per run. With a translator: $HOME/<translated> plus the workarea symlink
   * <cwd>/<remote dir> → $HOME/<translated> (upstream's workarea layout).
   */
  private ensureFolder(name: ByteString): Promise<void> {
    const folder = folderOf(name);
    let p = this.folders.get(folder);
    if (p === undefined) {
      p = this.makeFolder(folder);
      this.folders.set(folder, p);
      p.catch(() => undefined);
    }
    return p;
  }

  private async makeFolder(folder: ByteString): Promise<void> {
    for (const sub of ['cur', 'new', 'tmp']) {
      const remote = `${folder}/${sub}`;
      let target = remote;
      if (this.translator !== null) target = `${this.homeBytes()}/${await this.translator.translate(remote)}`;
      try {
        mkdirSync(fsPath(target), { recursive: true, mode: 0o700 });
      } catch (e) {
        throw new TaggedError(`Unable to create the directory ${toUtf8(target)}: ${(e as Error).message}`,
          necessary('mkdir', 'wrong-permissions', [`display-permissions("${toUtf8(resolve(dirname(toUtf8(target))))}")`]), 6);
      }
      if (this.translator !== null) this.workareaLink(remote, target);
      if (sub === 'tmp' && !this.o.dryRun) {
        const n = removeStaleTemps(target);
        if (n > 0) this.log.info(`removed ${n} partial file(s) left in ${toUtf8(target)} by an interrupted run`);
      }
    }
  }

  private workareaLink(remote: ByteString, target: ByteString): void {
    const link = fsPath(remote);
    try {
      mkdirSync(fsPath(dirOf(remote)), { recursive: true, mode: 0o700 });
      let st: ReturnType<typeof lstatSync> | null = null;
      try { st = lstatSync(link); } catch { st = null; }
      if (st !== null) {
        if (st.isSymbolicLink() && readlinkSync(link, { encoding: 'buffer' }).equals(fsPath(target))) return;
        if (!st.isSymbolicLink()) throw new Error('exists and is not a symbolic link');
        unlinkSync(link);
      }
      symlinkSync(fsPath(target), link);
    } catch (e) {
      throw new TaggedError(`Unable to create the workarea link ${toUtf8(remote)} → ${toUtf8(target)}: ${(e as Error).message}`,
        necessary('mddiff-s', 'wrong-permissions'), 6);
    }
  }

  // ---------------------------------------------------------------- apply

  private async apply(c: DiffCommand): Promise<void> {
    const names = namesOf(c);
    for (const n of names) {
      const p = this.pending.get(n);
      if (p !== undefined) await this.wait(p);
    }
    this.checkAborted();
    const local = new Map<ByteString, LocalState>();
    for (const n of names) local.set(n, observe(await this.localPath(n)));
    const d = decide(c, (n) => local.get(n) ?? { kind: 'absent' }, {
      absolute: (n) => toUtf8(resolve(toUtf8(this.localPaths.get(n) ?? n))),
      show: (n) => toUtf8(n),
    });
    await this.execute(c, d);
  }

  private async execute(c: DiffCommand, d: Decision): Promise<void> {
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
        if (dry) { what(`would fetch ${toUtf8(d.name)}`); this.transferred.push(d.name); return; }
        what(`fetch ${toUtf8(d.name)}`);
        return this.fetch(d.name, d.header, d.body, d.replace);
      case 'unlink': {
        what(`delete ${toUtf8(d.name)}`);
        this.stats.delMails++;
        if (dry) return;
        const p = await this.localPath(d.name);
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
        await this.ensureFolder(d.to);
        const s = await this.localPath(d.from);
        const t = await this.localPath(d.to);
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
        await this.ensureFolder(d.to);
        const s = await this.localPath(d.from);
        const t = await this.localPath(d.to);
        let tmp: TempFile;
        try {
          tmp = new TempFile(await this.tmpDirOf(d.to));
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
    this.checkAborted();
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
    await this.ensureFolder(name);
    const target = await this.localPath(name);
    const tmpDir = await this.tmpDirOf(name);
    this.fetchesSent++;
    await this.request(`GET ${name}`, [name], async () => {
      const size = await this.chunkHeader(name, this.o.maxMessageBytes ?? MAX_CHUNK);
      this.bytesAnnounced += size;
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
          this.checkAborted();
          tmp.write(piece);
        }
      } catch (e) {
        tmp.discard();
        this.finishing.release();
        throw this.replyError(e, name);
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
        this.fetchesDone++;
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
    await this.ensureFolder(target);
    const src = await this.localPath(source);
    const dst = await this.localPath(target);
    const tmpDir = await this.tmpDirOf(target);
    const context = source === target ? 'header-replacement' : 'copy-body';
    await this.request(`GETHEADER ${name}`, source === target ? [target] : [source, target], async () => {
      const size = await this.chunkHeader(name, MAX_HEADER);
      const parts: Buffer[] = [];
      try {
        for await (const p of this.reader.readBytes(size)) parts.push(Buffer.from(p));
      } catch (e) { throw this.replyError(e, name); }
      this.checkAborted();
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
      throw this.replyError(e, name);
    }
  }

  /** Maps wire errors while receiving `name` to tagged failures (exit 1, ABORT). */
  private replyError(e: unknown, name: ByteString): unknown {
    if (!(e instanceof ProtocolError)) return e;
    const n = toUtf8(name);
    switch (e.kind) {
      case 'eof': return new TaggedError(`Network error while receiving ${n}: ${e.message}`, retry('receive', 'network'), 1);
      case 'abort': return new TaggedError(`The server could not send ${n} (it was probably modified or removed there meanwhile)`,
        retry('receive', 'simultaneous-mailbox-edit'), 1);
      default: return new TaggedError(`The server sent a bad reply for ${n}: ${e.message}`, necessary('receive', 'hostile-or-broken-server'), 1);
    }
  }

  private progress(final: boolean): void {
    if (this.o.dryRun || this.fetchesSent === 0) return;
    const now = Date.now();
    if (!final && now - this.lastProgress < 1000 && this.fetchesDone % 1000 !== 0) return;
    this.lastProgress = now;
    this.log.progress(`transfer ${this.fetchesDone}/${this.fetchesSent} messages, ${this.stats.bytesReceived}/${this.bytesAnnounced} bytes`);
  }

  // ---------------------------------------------------------------- phase 3

  private async agree(): Promise<number> {
    const { dbFile, dryRun, localSync } = this.o;
    this.log.progress('Phase 3: agreement');
    this.dirty.syncAll();
    let patch: Buffer;
    try {
      await this.writer.line('COMMIT');
      await this.writer.flush();
      patch = await this.reader.readChunk(MAX_PATCH);
    } catch (e) {
      if (e instanceof ProtocolError) {
        throw new TaggedError(`Network error while receiving the db-file patch: ${e.message}`, retry('receive-db-patch', 'network'), 6);
      }
      throw e;
    }
    this.stats.xdeltaReceived = patch.length;
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
      await this.writer.line('DONE');
      await this.writer.end();
    } catch { /* the server has what it needs once our db is in place; it reports its own end */ }
    if (dryRun) this.log.tags(formatTransferredTags(this.transferred.map(toUtf8)));
    this.log.tags(formatStatsTags(this.stats));
    return 0;
  }

  // ------------------------------------------------------------ rename-only

  private async renameOnly(): Promise<number> {
    const cmds: DiffCommand[] = [];
    for (;;) {
      const line = await this.reader.readLine().catch((e: unknown) => {
        throw new TaggedError(`Network error while receiving the changes: ${(e as Error).message}`, retry('receive-delta', 'network'), 6);
      });
      if (line === null) throw new TaggedError('Network error: the server closed the connection before the end of the changes', retry('receive-delta', 'network'), 6);
      if (line === 'END') break;
      let c: DiffCommand;
      try { c = parseCommand(line); } catch (e) {
        if (e instanceof CommandSyntaxError) throw new TaggedError(`The server sent a ${e.message}`, necessary('receive-delta', 'hostile-or-broken-server'), 6);
        throw e;
      }
      if (c.op === 'ERROR') {
        const d = decide(c, () => ({ kind: 'absent' }), { absolute: toUtf8, show: toUtf8 });
        if (d.kind === 'failure') throw new TaggedError(d.message, d.tags, 6);
      }
      const bad = refuseCommand(c, this.roots);
      if (bad !== null) {
        throw new TaggedError(`The server sent an unacceptable name ${JSON.stringify(toUtf8(bad.name))} (${bad.reason})`,
          necessary('receive-delta', 'hostile-or-broken-server'), 6);
      }
      cmds.push(c);
    }
    const dirs = new Map<ByteString, ByteString>();
    for (const c of cmds) {
      if (c.op !== 'COPY') continue;
      for (const n of [c.from, c.to]) {
        const d = dirOf(n);
        if (!dirs.has(d)) dirs.set(d, `${this.homeBytes()}/${this.translator !== null ? await this.translator.translate(d) : d}`);
      }
    }
    const script = renameOnlyScript(cmds, (d) => dirs.get(d) ?? d);
    const out = `${this.o.home}/smd-rename.sh`;
    if (!this.o.dryRun) writeFileSync(out, Buffer.from(script, 'latin1'), { mode: 0o700 });
    this.log.info(`Wrote ${out}`);
    return 0;
  }

  // --------------------------------------------------------------- failure

  private async fail(e: unknown): Promise<number> {
    this.abort(e);
    removeLiveTemps();
    let code: number;
    if (e instanceof TaggedError) {
      logFailure(this.log, e.message, e.tags);
      code = e.exitCode;
    } else if (e instanceof ProtocolError) {
      logFailure(this.log, `Network error: ${e.message}`, retry('network', 'network'));
      code = 6;
    } else {
      const err = e as Error;
      logFailure(this.log, `Internal error: ${err?.stack ?? String(e)}`, necessary('internal-error', 'unknown'));
      code = 6;
    }
    if (this.handshakeDone) {
      // We fix upstream's silence on exit 6: the server gets ABORT whenever the connection is usable.
      try {
        await Promise.race([
          (async () => { await this.writer.line('ABORT'); await this.writer.end(); })(),
          new Promise((r) => setTimeout(r, 2000).unref()),
        ]);
      } catch { /* connection gone */ }
    }
    return code;
  }
}
