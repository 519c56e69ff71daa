/**
 * The smd-client session (upstream spec 5): handshake, apply the diff as it
 * arrives with pipelined fetches, COMMIT, patch the db-file, DONE.
 *
 * One input stream, three tasks:
 *  - the *reader* task reads diff lines until END into a command queue (it
 *    never waits for the applier, so the applier may block on a fetch whose
 *    reply can only come after END); after END it becomes the *pump* of the
 *    RequestPipeline (pipeline.ts), which consumes the replies in order;
 *  - the *applier* takes commands in order, waits for pending work on the
 *    names a command involves, observes the local state, decides
 *    (policy.ts) and executes (executor.ts);
 *  - the agreement (agreement.ts) once every command is applied.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { type ByteString, describeFsError, fsErrorCause, fileSystemSync, fsyncDir, isFsError, toUtf8 } from '@smd/maildir';
import {
  type SessionLog, ProtocolError, TaggedError, WireReader, WireWriter,
  type DbFingerprint, type Dialect, dbMismatchError, decideHandshake, exchangeHandshake, formatSkippedTags, formatStatsTags, formatTransferredTags,
  logFailure, xdeltaUnavailable,
} from '@smd/protocol';
import { type DiffCommand, CommandSyntaxError, dbFingerprint, parseCommand } from '@smd/snapshot';
import { type LocalState, type Sibling, decide, namesOf } from './policy.js';
import { checkMailboxRoot, folderOf, refuseCommand } from './names.js';
import { DirtyDirs, removeLiveTemps } from './files.js';
import { Durability } from './durable.js';
import { LineQueue } from './queue.js';
import { renameOnlyScript } from './rename-only.js';
import { RequestPipeline } from './pipeline.js';
import { LocalMailbox } from './local.js';
import { Executor, LocalRace, RunStats } from './executor.js';
import { agree } from './agreement.js';
import { ExpectedDb } from './expected-db.js';
import { SessionAborted, necessary, retry } from './errors.js';
import { ClientJournal } from './journal.js';
import { SiblingFinder } from './siblings.js';
import { type BrakeLimits, DEFAULT_BRAKE, brakeRefusal, judgeDeletions } from './brake.js';
import { countDbFolders } from './db-folders.js';

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
  /** The longest wait for the server (or the translator), in ms (default DEFAULT_IDLE_TIMEOUT_MS; 0: none). */
  readonly idleTimeoutMs?: number;
  /** Directories a symbolic link inside the mailbox may lead into (--follow; the roots themselves always). */
  readonly follow?: readonly ByteString[];
  /** Read the server's protocol line before sending ours, and speak upstream's protocol to an upstream server (--listen-first). */
  readonly listenFirst?: boolean;
  /**
   * The mass-deletion brake (brake.ts): `allow` lets every deletion of this
   * run through; `percent` is the limit (default 50; null: only the "every
   * message of a mailbox root" rule).
   */
  readonly massDelete?: { readonly allow: boolean; readonly percent: number | null };
  /** Aborted on SIGINT/SIGTERM: the run stops cleanly (ABORT), unless the agreement already began. */
  readonly signal?: AbortSignal;
}

const END = Symbol('END');

/** Runs one smd-client session; resolves to the exit code (spec 5.12). */
export async function runClient(opts: ClientOptions): Promise<number> {
  return new ClientSession(opts).run();
}

class ClientSession {
  private readonly reader: WireReader;
  private readonly writer: WireWriter;
  private readonly log: SessionLog;
  private readonly roots: ByteString[] = [];
  private readonly pipeline: RequestPipeline;
  private readonly local: LocalMailbox;
  private readonly stats = new RunStats();
  private readonly executor: Executor;
  /** The diff lines read ahead of the applier (checked by readCommand; null: END). */
  private readonly commands: LineQueue;
  /** The line readCommand parsed last. */
  private lastLine = '';
  private readonly siblings: SiblingFinder;
  private readonly journal: ClientJournal;
  private handshakeDone = false;
  private dialect: Dialect = 'smd';
  /** Upstream's dialect: what the db-file may say after the run (its patch has no checksum of the result). */
  private expected: ExpectedDb | null = null;
  /** Once the agreement began an interrupt is not obeyed: it is short, and stopping it halfway would only cost a repair. */
  private agreeing = false;

  constructor(private readonly o: ClientOptions) {
    const wire = { idleTimeoutMs: o.idleTimeoutMs };
    this.reader = new WireReader(o.input, wire);
    this.writer = new WireWriter(o.output, wire);
    this.log = o.log;
    // 4,000: at 200 ms and 10 MB/s the bandwidth-delay product is 2 MB, 1,000 messages of 1-3 KB were
    // just that and the window, not the link, paced a first pull of small messages (bench/README.md).
    this.pipeline = new RequestPipeline(this.writer, o.maxInFlight ?? 4000);
    // Beyond 16 MiB (~120,000 lines) the queued diff waits in an unlinked file of the state dir.
    this.commands = new LineQueue(o.dryRun ? null : { dir: dirname(o.dbFile), chunksInMemory: 16 });
    this.local = new LocalMailbox(o);
    this.journal = new ClientJournal(this.log, o.home, o.dryRun);
    this.executor = new Executor(o, this.log, this.reader, this.pipeline, this.local, this.stats, new DirtyDirs(), this.journal,
      new Durability(o.dryRun ? null : fileSystemSync()));
    this.siblings = new SiblingFinder(this.local);
  }

  async run(): Promise<number> {
    const onInterrupt = (): void => {
      if (this.agreeing) return;
      const why = typeof this.o.signal?.reason === 'string' ? ` (${this.o.signal.reason})` : '';
      this.pipeline.abort(new TaggedError(`Interrupted${why}: stopped before the end; every change applied so far is complete, the rest is left for the next run`,
        { context: 'interrupted', probableCause: 'signal', humanIntervention: 'avoidable', suggestedActions: ['retry'] }, 6));
    };
    if (this.o.signal?.aborted === true) onInterrupt();
    this.o.signal?.addEventListener('abort', onInterrupt, { once: true });
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
      this.local.open(this.roots);
      await this.pipeline.wait(this.handshake());
      if (this.o.renameOnly) return await this.renameOnly();
      await this.synchronize();
      this.pipeline.check();
      // Unused spare temp files go before the agreement: a run killed from here on has nothing left to
      // fetch next time, so no later run would clean that tmp/ (the finally only covers failures).
      await this.executor.temps.close();
      this.agreeing = true;
      this.log.progress('Phase 3: agreement');
      this.executor.dirty.syncAll();
      this.stats.xdeltaReceived = await agree(this.o, this.reader, this.writer, this.dialect, this.expected ?? undefined);
      if (this.o.dryRun) this.log.tags(formatTransferredTags(this.stats.transferred.length));
      this.log.tags(formatStatsTags(this.stats));
      if (this.stats.skipped > 0) this.log.tags(formatSkippedTags(this.stats.skipped));
      return 0;
    } catch (e) {
      return await this.fail(e);
    } finally {
      this.o.signal?.removeEventListener('abort', onInterrupt);
      await this.executor.temps.close();
      this.commands.close();
      this.local.close();
    }
  }

  // ---------------------------------------------------------------- phase 0

  private async handshake(): Promise<void> {
    const { dbFile, dryRun } = this.o;
    this.log.progress('Phase 0: handshake');
    if (!dryRun) mkdirSync(dirname(dbFile), { recursive: true, mode: 0o700 });
    const mine = dbFingerprint(dbFile, { create: !dryRun });
    let peer: DbFingerprint;
    try {
      const needsPatch = !dryRun && !this.o.localSync;
      ({ peer, dialect: this.dialect } = await exchangeHandshake(this.reader, this.writer, mine,
        { listenFirst: this.o.listenFirst, upstreamUnavailable: () => (needsPatch ? xdeltaUnavailable() : null) }));
    } catch (e) {
      if (e instanceof ProtocolError) throw new TaggedError(`Network error during the handshake: ${e.message}`, retry('handshake', 'network'), 6);
      throw e;
    }
    this.handshakeDone = true;
    if (this.dialect === 'upstream') {
      this.log.info('The server is upstream syncmaildir 1.3: speaking its protocol (xdelta3 db-file patch, no SKIP)');
      this.expected = new ExpectedDb();
      this.executor.canSkip = false;
    }
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
    const readerTask = this.readDiffThenPump();
    readerTask.catch((e: unknown) => this.pipeline.abort(e));
    const every = this.o.progressEvery ?? 5000;
    const braked = this.o.massDelete?.allow !== true;
    // The DELETEs come last in a diff: held until END, they are judged all together.
    const held: DiffCommand[] = [];
    let n = 0;
    for (;;) {
      const line = await this.pipeline.wait(this.commands.next());
      if (line === null) break;
      const c = parseCommand(line); // checked when it was read
      if (c.op === 'DELETE' && braked) { held.push(c); continue; }
      await this.apply(c);
      if (++n % every === 0) this.log.progress(`${n} commands applied`);
    }
    if (held.length > 0) await this.releaseDeletions(held);
    // Every fetch is requested now: the transfer line carries the total before the phase changes.
    this.executor.progress(true);
    this.log.progress('Phase 2: synchronization');
    await this.pipeline.allDone();
    this.pipeline.stop();
    await this.pipeline.wait(readerTask);
    this.executor.progress(true);
  }

  /** The next diff command, or END; every refusal is a tagged failure (exit 6). */
  private async readCommand(): Promise<DiffCommand | typeof END> {
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
    if (line === 'END') return END;
    this.lastLine = line;
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
    return c;
  }

  /** The reader task: diff lines until END, then the replies (the pump). */
  private async readDiffThenPump(): Promise<void> {
    for (;;) {
      const c = await this.readCommand();
      if (this.pipeline.aborted) return;
      this.commands.push(c === END ? null : this.lastLine);
      if (c === END) break;
    }
    await this.pipeline.pump();
  }

  /**
   * The mass-deletion brake: the held DELETEs of files still here, counted
   * per folder against the db-file, are applied in order, or none is and the
   * run fails (after everything else is in place) asking a person.
   */
  private async releaseDeletions(held: readonly DiffCommand[]): Promise<void> {
    const deletes = new Map<ByteString, number>();
    const examples = new Map<ByteString, ByteString[]>();
    const present: DiffCommand[] = [];
    for (const c of held) {
      if (c.op !== 'DELETE' || !(await this.local.exists(c.name))) continue;
      present.push(c);
      const f = folderOf(c.name);
      deletes.set(f, (deletes.get(f) ?? 0) + 1);
      const ex = examples.get(f);
      if (ex === undefined) examples.set(f, [c.name]); else if (ex.length < 3) ex.push(c.name);
    }
    const limits: BrakeLimits = { ...DEFAULT_BRAKE, percent: this.o.massDelete !== undefined ? this.o.massDelete.percent : DEFAULT_BRAKE.percent };
    const verdict = present.length === 0 ? null : judgeDeletions(deletes, countDbFolders(this.o.dbFile), this.roots, limits, toUtf8);
    if (verdict === null || !verdict.held) {
      for (const c of held) await this.apply(c);
      return;
    }
    const refusal = brakeRefusal(verdict, examples, toUtf8);
    if (this.o.dryRun) {
      for (const l of refusal.message.split('\n')) this.log.info(l);
      for (const c of present) if (c.op === 'DELETE') this.journal.record('held', this.local.known(c.name), { note: 'the mass-deletion brake would hold it' });
      return;
    }
    // Everything but the deletions is applied and complete before the run stops.
    await this.pipeline.allDone();
    throw new TaggedError(refusal.message, refusal.tags, 3);
  }

  private async apply(c: DiffCommand): Promise<void> {
    const names = namesOf(c);
    for (const n of names) {
      const p = this.pipeline.pendingOn(n);
      if (p !== undefined) await this.pipeline.wait(p);
    }
    // A mail program may change a file between our look and our action: look and decide once more, then let it be.
    for (let attempt = 1; ; attempt++) {
      this.pipeline.check();
      const local = new Map<ByteString, LocalState>();
      for (const n of names) local.set(n, await this.local.observe(n));
      const absent = (n: ByteString): boolean => local.get(n)?.kind === 'absent';
      // A missing name may be a message renamed here (its flags changed): its siblings tell.
      let siblings: Sibling[] = [];
      if (c.op === 'MOVE' && absent(c.from) && absent(c.to)) siblings = await this.siblings.of(c.from);
      else if (c.op === 'DELETE' && absent(c.name)) siblings = await this.siblings.of(c.name);
      const d = decide(c, (n) => local.get(n) ?? { kind: 'absent' }, {
        absolute: (n) => toUtf8(resolve(toUtf8(this.local.known(n)))),
        show: (n) => toUtf8(n),
      }, () => siblings);
      try {
        this.expected?.note(c);
        await this.executor.execute(c, d);
        return;
      } catch (e) {
        if (!(e instanceof LocalRace)) throw e;
        if (attempt === 2) { await this.executor.skip(c, e.message); return; }
        this.log.info(`${c.op}: ${e.message}; looking again`);
      }
    }
  }

  // ------------------------------------------------------------ rename-only

  private async renameOnly(): Promise<number> {
    const cmds: DiffCommand[] = [];
    for (;;) {
      const c = await this.readCommand();
      if (c === END) break;
      if (c.op === 'ERROR') {
        const d = decide(c, () => ({ kind: 'absent' }), { absolute: toUtf8, show: toUtf8 });
        if (d.kind === 'failure') throw new TaggedError(d.message, d.tags, 6);
      }
      cmds.push(c);
    }
    const home = Buffer.from(this.o.home, 'utf8').toString('latin1');
    const dirs = new Map<ByteString, ByteString>();
    for (const c of cmds) {
      if (c.op !== 'COPY') continue;
      for (const n of [c.from, c.to]) {
        const d = n.slice(0, n.lastIndexOf('/'));
        if (!dirs.has(d)) dirs.set(d, this.local.translated ? await this.local.dir(d) : `${home}/${d}`);
      }
    }
    const script = renameOnlyScript(cmds, (d) => dirs.get(d) ?? d);
    const out = `${this.o.home}/smd-rename.sh`;
    if (!this.o.dryRun) writeFileSync(out, Buffer.from(script, 'latin1'), { mode: 0o700 });
    this.log.info(`Wrote ${out}`);
    return 0;
  }

  // --------------------------------------------------------------- failure

  private async fail(thrown: unknown): Promise<number> {
    // Work that noticed the failure late throws SessionAborted: report the reason recorded first.
    const e = thrown instanceof SessionAborted && this.pipeline.reason !== null ? this.pipeline.reason : thrown;
    this.pipeline.abort(e);
    removeLiveTemps();
    let code: number;
    if (e instanceof TaggedError) {
      logFailure(this.log, e.message, e.tags);
      code = e.exitCode;
    } else if (e instanceof ProtocolError) {
      logFailure(this.log, `Network error: ${e.message}`, retry('network', 'network'));
      code = 6;
    } else if (isFsError(e)) {
      // A file-system failure no specific handler named: still what, where and why, never a stack trace.
      const err = e as NodeJS.ErrnoException;
      logFailure(this.log, `Failed to ${err.syscall}${err.path !== undefined ? ` ${err.path}` : ''}: ${describeFsError(e)}`,
        necessary('filesystem', fsErrorCause(e)));
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
