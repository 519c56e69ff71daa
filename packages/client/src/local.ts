/**
 * Where the remote names live on this host: the name itself relative to the
 * cwd, or, with a translator, `$HOME/<translated dir>/<file>`; and the
 * folders (cur/, new/, tmp/) created on demand, once per run.
 */
import { lstatSync, mkdirSync, readlinkSync, symlinkSync, unlinkSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type ByteString, fsPath, toUtf8 } from '@smd/maildir';
import { type SessionLog, DEFAULT_IDLE_TIMEOUT_MS, TaggedError } from '@smd/protocol';
import { baseOf, dirOf, folderOf } from './names.js';
import { Translator } from './translator.js';
import { removeStaleTemps } from './files.js';
import { necessary } from './errors.js';

export class LocalMailbox {
  private readonly translator: Translator | null;
  private readonly folders = new Map<ByteString, Promise<void>>();
  private readonly paths = new Map<ByteString, ByteString>();
  private readonly homeBytes: ByteString;

  constructor(private readonly o: {
    readonly translator: string | null; readonly home: string; readonly dryRun: boolean; readonly log: SessionLog; readonly idleTimeoutMs?: number;
  }) {
    this.translator = o.translator !== null ? new Translator(o.translator, o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS) : null;
    this.homeBytes = Buffer.from(o.home, 'utf8').toString('latin1');
  }

  get translated(): boolean { return this.translator !== null; }

  /** Where a remote name lives here: the name itself (relative to the cwd), or $HOME/<translated dir>/<file>. */
  async path(name: ByteString): Promise<ByteString> {
    const hit = this.paths.get(name);
    if (hit !== undefined) return hit;
    let p = name;
    if (this.translator !== null) p = `${this.homeBytes}/${await this.translator.translate(dirOf(name))}/${baseOf(name)}`;
    this.paths.set(name, p);
    return p;
  }

  /** The local path of a name already mapped (or the name itself): for messages. */
  known(name: ByteString): ByteString {
    return this.paths.get(name) ?? name;
  }

  /** The local directory of a remote directory name, relative to $HOME when translated. */
  async dir(remoteDir: ByteString): Promise<ByteString> {
    return this.translator !== null ? `${this.homeBytes}/${await this.translator.translate(remoteDir)}` : remoteDir;
  }

  /** The local temp directory for a remote name (its folder's tmp/). */
  tmpDirOf(name: ByteString): Promise<ByteString> {
    return this.dir(`${folderOf(name)}/tmp`);
  }

  /**
   * Creates cur/, new/, tmp/ of the folder of a remote name (mode 0700), once
   * per run. With a translator: $HOME/<translated> plus the workarea symlink
   * <cwd>/<remote dir> → $HOME/<translated> (upstream's workarea layout).
   */
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
      const target = await this.dir(remote);
      try {
        mkdirSync(fsPath(target), { recursive: true, mode: 0o700 });
      } catch (e) {
        throw new TaggedError(`Unable to create the directory ${toUtf8(target)}: ${(e as Error).message}`,
          necessary('mkdir', 'wrong-permissions', [`display-permissions("${toUtf8(resolve(dirname(toUtf8(target))))}")`]), 6);
      }
      if (this.translator !== null) this.workareaLink(remote, target);
      if (sub === 'tmp' && !this.o.dryRun) {
        const n = removeStaleTemps(target);
        if (n > 0) this.o.log.info(`removed ${n} partial file(s) left in ${toUtf8(target)} by an interrupted run`);
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

  close(): void {
    this.translator?.close();
  }
}
