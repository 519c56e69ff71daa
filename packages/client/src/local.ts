/**
 * Where the remote names live on this host, resolved under the local
 * mailbox roots (MailboxRoots, @smd/maildir): the name itself relative to
 * the cwd, or, with a translator, `$HOME/<translated dir>/<file>`. Every
 * path the client reads or writes comes from here; a name whose folder can
 * only be reached through a symbolic link leading out of the mailboxes is
 * refused before anything is written. Folders (cur/, new/, tmp/) are created
 * on demand, once per run.
 */
import { lstatSync, opendirSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { type ByteString, MailboxRoots, PathRefusal, describeFsError, fsPath, toUtf8 } from '@smd/maildir';
import { type SessionLog, DEFAULT_IDLE_TIMEOUT_MS, TaggedError } from '@smd/protocol';
import type { LocalState } from './policy.js';
import { baseOf, dirOf, folderOf } from './names.js';
import { Translator } from './translator.js';
import { observe, removeStaleTemps } from './files.js';
import { necessary } from './errors.js';

export interface LocalMailboxOptions {
  readonly translator: string | null;
  readonly home: string;
  readonly dryRun: boolean;
  readonly log: SessionLog;
  readonly idleTimeoutMs?: number;
  /** Directories a symbolic link inside the mailbox may lead into (--follow). */
  readonly follow?: readonly ByteString[];
}

/** Whether a directory has no entry (unreadable: not known to be empty). */
function isEmptyDir(d: ByteString): boolean {
  try {
    const dir = opendirSync(fsPath(d));
    try { return dir.readSync() === null; } finally { dir.closeSync(); }
  } catch {
    return false;
  }
}

export class LocalMailbox {
  private readonly translator: Translator | null;
  private readonly folders = new Map<ByteString, Promise<void>>();
  /** Remote directory name → its real local directory, where they differ (a translator, a symlink): per folder, not per message. */
  private readonly realDirs = new Map<ByteString, ByteString>();
  /**
   * Per remote directory name: whether it was missing or empty when this run
   * first looked. The names the diff brings into such a directory cannot be
   * there (a diff names each target once), so observing them needs no open
   * (an ENOENT lookup per message of a first pull, ~0.2 ms each on a busy
   * ext4); placement never clobbers (link/RENAME_NOREPLACE), whatever a mail
   * program put there meanwhile.
   */
  private readonly emptyAtStart = new Map<ByteString, boolean>();
  private readonly homeBytes: ByteString;
  private roots: MailboxRoots | null = null;

  constructor(private readonly o: LocalMailboxOptions) {
    // upstream's verbose lines (smd-pull -v prints the INFO lines of the client's log)
    this.translator = o.translator !== null
      ? new Translator(o.translator, o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, (from, to) => o.log.info(`translating: ${toUtf8(from)} -> ${toUtf8(to)}`))
      : null;
    this.homeBytes = Buffer.from(o.home, 'utf8').toString('latin1');
  }

  /**
   * Opens the local roots: the mailbox roots themselves; with a translator,
   * the top directory under $HOME of each translated folder, as it is met
   * (the translator is the user's: where it puts folders is the local
   * mailbox, e.g. MAILBOX_LOCAL).
   */
  open(remoteRoots: readonly ByteString[]): void {
    this.roots = new MailboxRoots(this.translator === null ? remoteRoots : [], { follow: this.o.follow });
  }

  get translated(): boolean { return this.translator !== null; }

  /** The local directory of a remote directory name (not resolved): itself, or $HOME/<translated>. */
  async dir(remoteDir: ByteString): Promise<ByteString> {
    return this.translator !== null ? `${this.homeBytes}/${await this.translator.translate(remoteDir)}` : remoteDir;
  }

  /** The real local directory of a remote directory name; null if it does not exist and `create` is false. */
  private async realDir(remoteDir: ByteString, create: boolean): Promise<ByteString | null> {
    const local = await this.dir(remoteDir);
    if (this.translator !== null) {
      const slash = local.indexOf('/', this.homeBytes.length + 1);
      this.roots!.addRoot(slash < 0 ? local : local.slice(0, slash));
    }
    try {
      return this.roots!.resolveDir(local, create)?.real ?? null;
    } catch (e) {
      if (!(e instanceof PathRefusal)) throw e;
      throw new TaggedError(`Refusing to use ${toUtf8(local)}: ${e.message}`,
        necessary('mailbox-path', e.link ? 'symlink-leaves-mailbox' : 'not-a-directory',
          [`display-permissions("${toUtf8(resolve(toUtf8(e.path)))}")`]), 3);
    }
  }

  /** What is at a remote name here (absent if its folder does not exist). */
  async observe(name: ByteString): Promise<LocalState> {
    const dir = dirOf(name);
    const d = await this.realDir(dir, false);
    let empty = this.emptyAtStart.get(dir);
    if (empty === undefined) { empty = d === null || isEmptyDir(d); this.emptyAtStart.set(dir, empty); }
    if (d === null) return { kind: 'absent' };
    const p = `${d}/${baseOf(name)}`;
    this.remember(name, d);
    return empty ? { kind: 'absent' } : observe(p);
  }

  /** Whether something is at a remote name here (an lstat, not a read: for counting). */
  async exists(name: ByteString): Promise<boolean> {
    const d = await this.realDir(dirOf(name), false);
    if (d === null) return false;
    const p = `${d}/${baseOf(name)}`;
    this.remember(name, d);
    try { lstatSync(fsPath(p)); return true; } catch { return false; }
  }

  /** The file names in a remote directory here (none if it does not exist). */
  async list(remoteDir: ByteString): Promise<ByteString[]> {
    const d = await this.realDir(remoteDir, false);
    if (d === null) return [];
    try { return readdirSync(fsPath(d), { encoding: 'latin1' }); } catch { return []; }
  }

  /** The local path of a remote name whose folder exists (observed, or made by ensureFolder). */
  async path(name: ByteString): Promise<ByteString> {
    const d = await this.realDir(dirOf(name), false);
    if (d === null) throw new Error(`internal: the folder of ${toUtf8(name)} does not exist`);
    const p = `${d}/${baseOf(name)}`;
    this.remember(name, d);
    return p;
  }

  /** The local path of a name already mapped (or the name itself): for messages. */
  known(name: ByteString): ByteString {
    const d = this.realDirs.get(dirOf(name));
    return d === undefined ? name : `${d}/${baseOf(name)}`;
  }

  /** Where the directory of `name` is here, kept per directory (per message, a first pull of a million messages held ~250 MB of paths). */
  private remember(name: ByteString, realDir: ByteString): void {
    const dir = dirOf(name);
    if (realDir === dir) this.realDirs.delete(dir); else this.realDirs.set(dir, realDir);
  }

  /** The local temp directory for a remote name (its folder's tmp/, which ensureFolder made). */
  async tmpDirOf(name: ByteString): Promise<ByteString> {
    return (await this.realDir(`${folderOf(name)}/tmp`, true))!;
  }

  /** Creates cur/, new/, tmp/ of the folder of a remote name (mode 0700), once per run. */
  ensureFolder(name: ByteString): Promise<void> {
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
      let target: ByteString;
      try {
        target = (await this.realDir(remote, true))!;
      } catch (e) {
        if (e instanceof TaggedError) throw e;
        const dir = await this.dir(remote);
        throw new TaggedError(`Unable to create the directory ${toUtf8(dir)}: ${describeFsError(e)}`,
          necessary('mkdir', 'wrong-permissions', [`display-permissions("${toUtf8(resolve(toUtf8(dirOf(dir))))}")`]), 6);
      }
      if (sub === 'tmp' && !this.o.dryRun) {
        const n = removeStaleTemps(target);
        if (n > 0) this.o.log.info(`removed ${n} partial file(s) left in ${toUtf8(target)} by an interrupted run`);
      }
    }
  }

  close(): void {
    this.translator?.close();
  }
}
