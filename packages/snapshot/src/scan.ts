import { statSync, type Stats } from 'node:fs';
import {
  type ByteString, type Candidate, type DirLister, fsName, toUtf8, MaildirWalkError, walkMaildirFolders, walkMailFolders,
  findRenamed, readMessageFile, stripOneSlash, HashPool, type MessageFile,
  prefetchMailFolders, type FolderPrefetch, type MailFolderListing, findMailFolders, listerAhead,
} from '@smd/maildir';
import type { DiffCommand } from './command.js';
import { DbFileError, DbLineCopier, type DbLayout, readDbFileBinary, readDbMtime, writeDbNewFrom } from './dbfile.js';
import { DiffEngine, HASHES } from './diff.js';
import { loadStatCache, writeStatCacheFrom } from './statcache.js';

export interface ScanOptions {
  /** As given by the user, already %-decoded; one trailing '/' is stripped here. */
  roots: ByteString[];
  /** Path of the db-file. */
  dbFile: string;
  /** fnmatch globs, already %-decoded. */
  excludes?: ByteString[];
  dryRun?: boolean;
  noDelete?: boolean;
  noMove?: boolean;
  /** Directories (besides the roots) a folder symlink may lead into (see WalkOptions.follow). */
  follow?: readonly ByteString[];
  /** Human-readable, e.g. "malformed file 'x', no header". */
  onWarning?: (message: string) => void;
  /** `-v` details, human-readable. */
  onDebug?: (message: string) => void;
  /**
   * 0: list, stat and hash on this thread only. N > 0: N worker threads hash
   * the files to read, and with a big db-file they also list + stat the mail
   * folders (with this thread). Default: folders listed on this thread, files
   * hashed on min(4, CPUs) workers once there are more than 48 to read.
   */
  threads?: number;
}

export interface ScanResult {
  /** false if an ERROR command was yielded (then nothing was written). */
  readonly ok: boolean;
  /** Is this name a message of the current scan? */
  has(name: ByteString): boolean;
  readonly messages: number;
}

/** `mddiff -l`: the cur/new folders of the roots, in walk order. Throws MaildirWalkError. */
export function listMailFolders(roots: ByteString[], excludes?: ByteString[], follow?: readonly ByteString[]): Generator<ByteString> {
  return walkMailFolders(roots, { excludes, follow });
}

const mtimeSec = (ms: number): number => Math.floor(ms / 1000);
/** One native thread lists ahead: the scanning thread needs the other core of a 2-vCPU machine. */
const PREFETCH_THREADS = 1;
/** db-files from this size on (~750 messages) make the scan list + stat ahead. */
const DIR_POOL_DB_BYTES = 100_000;

/**
 * Streams the diff of the Maildir trees against the db-file: yields commands
 * in upstream order (spec 2.10); a fatal problem yields one `{op:'ERROR'}`
 * and ends (ok=false). Writes `<db>.new` and `<db>.mtime.new` (and the stat
 * cache) at the end unless dryRun or failed.
 */
export function* diffMaildir(opts: ScanOptions): Generator<DiffCommand, ScanResult, void> {
  const warn = opts.onWarning ?? (() => {});
  const debug = opts.onDebug;
  // The names of this scan: old entries are flagged by index (no second copy of
  // a million names), only names new to the db go in a Set.
  let walked = new Uint8Array(0);
  // Upstream stats each MOVE source to see if it is still there. The scan knows better
  // and cheaper: old entries found in a listing (`listed`), and the folders whose whole
  // listing it has seen; an entry of such a folder that was not in it is gone.
  let listed = new Uint8Array(0);
  const listedFolders = new Set<ByteString>();
  // The listing being walked: its old entries are marked in `listed` before it is walked.
  let walking: MailFolderListing | null = null;
  /** Is the old entry i (`name`) known to be missing from this scan's listing of its folder? */
  const notListed = (name: ByteString, i: number): boolean => {
    if (listed[i] === 1) return false;
    const folder = name.slice(0, name.lastIndexOf('/'));
    // Every piece of its folder was walked, or the last one is being walked (its old entries are marked).
    return listedFolders.has(folder) || (walking !== null && walking.last && walking.dir === folder);
  };
  const newNames = new Set<ByteString>();
  let count = 0;
  const current = {
    has(name: ByteString, at?: number): boolean {
      const i = at ?? (engine === undefined ? -1 : engine.lookup(name));
      return i >= 0 ? walked[i] === 1 : newNames.has(name);
    },
    add(name: ByteString, at?: number): void {
      const i = at ?? engine.lookup(name);
      if (i >= 0) this.addOld(i);
      else if (!newNames.has(name)) { newNames.add(name); count++; }
    },
    /** The old entry i is a message of this scan. */
    addOld(i: number): void {
      if (walked[i] === 1) return;
      walked[i] = 1;
      count++;
    },
    get size(): number { return count; },
  };
  const failed = (message: string): ScanResult => ({ ok: false, has: (n) => current.has(n), messages: current.size });
  let engine!: DiffEngine;
  let lastcheck: number;
  let cache: ReturnType<typeof loadStatCache> = null;
  const threads = opts.threads ?? HashPool.defaultThreads();
  const usePool = threads > 0 && (opts.threads !== undefined || HashPool.defaultThreads() > 1);
  let pool: HashPool | null = null;
  let dbBytes = 0;
  try { dbBytes = statSync(opts.dbFile).size; } catch { /* no db */ }
  const roots = opts.roots.map(stripOneSlash);
  // A big db-file: most files will only be stat'ed. List + stat the mail folders ahead
  // while the db is read: on native threads (@smd/native), or on the worker pool when
  // threads > 0 asks for it (on the 2-vCPU machine of bench/README.md a worker stat'ing
  // beside this thread made the warm scan slower: Node's stat did not scale).
  const dirPool = usePool && dbBytes >= DIR_POOL_DB_BYTES && opts.threads !== undefined;
  let lister: DirLister | undefined;
  let prefetch: FolderPrefetch | null = null;
  if (dirPool) {
    const folders = findMailFolders(roots, opts.excludes, opts.follow);
    if (folders !== null) {
      // This thread lists too while it waits.
      pool = new HashPool(threads);
      debug?.(`listing ${folders.length} mail folders on ${threads} worker thread(s)`);
      const queue = pool.listDirs(folders, true);
      lister = listerAhead(folders, (i) => queue.list(i));
    }
  } else if (dbBytes >= DIR_POOL_DB_BYTES) {
    prefetch = prefetchMailFolders(roots, { excludes: opts.excludes, follow: opts.follow, onDebug: debug }, PREFETCH_THREADS);
    lister = prefetch ?? undefined;
  }
  let needStat = false;
  let loaded: DbLayout | null = null;
  try {
    let db = readDbFileBinary(opts.dbFile);
    // Keep only where its lines are (not its names and hashes: the engine has them).
    if (db !== null) loaded = { file: db.file, lineStart: db.lineStart, copyable: db.copyable, identity: db.identity };
    if (db === null) warn(`no db file ${opts.dbFile}, this is the first run`);
    lastcheck = readDbMtime(opts.dbFile) ?? 0;
    if (db !== null && lastcheck === 0 && db.names.length > 0) warn(`no mtime file ${opts.dbFile}.mtime`);
    needStat = db !== null && db.names.length > 0;
    if (needStat) cache = loadStatCache(opts.dbFile, db!.sha1, db!.names.length);
    // The engine takes the names and hashes as they were read (a million entries: ~100 MB not copied).
    engine = new DiffEngine(db ?? { names: [], hashes: Buffer.alloc(0) }, { noDelete: opts.noDelete, noMove: opts.noMove, adopt: true }, (name, i) => {
      // Not in its folder's listing of this scan: gone (no ENOENT stat per MOVE).
      if (notListed(name, i)) return false;
      const st = statSync(fsName(name), { throwIfNoEntry: false });
      return st !== undefined && st.isFile() && mtimeSec(st.mtimeMs) <= lastcheck;
    });
    db = null;
    walked = new Uint8Array(engine.oldCount);
    listed = new Uint8Array(engine.oldCount);
  } catch (e) {
    (pool as HashPool | null)?.close();
    prefetch?.close();
    const msg = e instanceof DbFileError ? e.message : `${opts.dbFile}: ${(e as Error).message}`;
    yield { op: 'ERROR', message: msg };
    return failed(msg);
  }
  const now = Math.floor(Date.now() / 1000);
  // The stat of every entry of the new db (for the next stat cache), by engine index (NaN: unknown).
  // Old entries: in the loaded cache's arrays, updated in place (an entry's stat is only ever
  // replaced by one its hashes are valid for, or by NaN), so the cache is not held twice.
  const old = engine.oldCount;
  const nanArray = (n: number): Float64Array => new Float64Array(n).fill(NaN);
  const oIno: Float64Array = cache?.ino ?? nanArray(old);
  const oSize: Float64Array = cache?.size ?? nanArray(old);
  const oMtime: Float64Array = cache?.mtimeMs ?? nanArray(old);
  // New entries (index - oldCount): in chunks of STAT_CHUNK entries (inode, size, mtime each), never
  // copied as they grow (a first scan of a million messages appends them all).
  const STAT_CHUNK = 1 << 15;
  const added: Float64Array[] = [];
  const record = (i: number, ino: number, size: number, mtimeMs: number): void => {
    if (i < old) { oIno[i] = ino; oSize[i] = size; oMtime[i] = mtimeMs; return; }
    const k = i - old;
    const c = Math.floor(k / STAT_CHUNK);
    while (added.length <= c) added.push(nanArray(3 * STAT_CHUNK));
    const at = 3 * (k % STAT_CHUNK);
    const a = added[c];
    a[at] = ino; a[at + 1] = size; a[at + 2] = mtimeMs;
  };
  /** Column `col` (0 inode, 1 size, 2 mtime) of new entry k. */
  const addedStat = (k: number, col: number): number => {
    const a = added[Math.floor(k / STAT_CHUNK)];
    return a === undefined ? NaN : a[3 * (k % STAT_CHUNK) + col];
  };
  // Old entries by inode (only with a valid cache): renamed files are not re-read.
  // Open addressing over the cache's inode array: 4-8 bytes per entry, built on first use.
  let inoTable: Int32Array | null = null;
  // Inode numbers come in dense runs: mix the bits (murmur3's finalizer), or runs pile up into long probe chains.
  const inoSlot = (ino: number, mask: number): number => {
    let h = (ino >>> 0) ^ Math.imul((ino / 0x100000000) >>> 0, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) & mask;
  };
  const findIno = (ino: number): number => {
    const c = cache!;
    if (inoTable === null) {
      let size = 16;
      while (size < c.ino.length * 2) size *= 2;
      const table = new Int32Array(size);
      for (let i = 0; i < c.ino.length; i++) {
        const v = c.ino[i];
        if (Number.isNaN(v)) continue;
        let slot = inoSlot(v, size - 1);
        while (table[slot] !== 0) slot = (slot + 1) & (size - 1);
        table[slot] = i + 1;
      }
      inoTable = table;
    }
    const mask = inoTable.length - 1;
    for (let slot = inoSlot(ino, mask); inoTable[slot] !== 0; slot = (slot + 1) & mask) {
      const i = inoTable[slot] - 1;
      if (c.ino[i] === ino) return i;
    }
    return -1;
  };

  type Prepared =
    | { readonly k: 'unchanged'; readonly o: number; readonly ino: number; readonly size: number; readonly mtimeMs: number }
    | { readonly k: 'known'; readonly j: number; readonly ino: number; readonly size: number; readonly mtimeMs: number }
    | { readonly k: 'gone'; readonly o: number }
    | { readonly k: 'file'; readonly o: number; f: MessageFile | null; readonly ticket: number };

  // Files read on this thread before the worker pool is worth starting.
  let inline = 0;

  /** Decides what a candidate needs (does not depend on the diff state, so it can run ahead). */
  const prepare = (c: Candidate, mayPool: boolean): Prepared => {
    const name = c.path;
    const o = engine.lookup(name);
    if (o >= 0 || cache !== null) {
      let ino: number;
      let size: number;
      let mtimeMs: number;
      if (c.ino !== undefined) {
        // Stat'ed while listing (on the pool).
        ino = c.ino; size = c.size!; mtimeMs = c.mtimeMs!;
        if (Number.isNaN(ino)) return { k: 'gone', o };
      } else {
        let st: Stats | undefined;
        try { st = statSync(fsName(name), { throwIfNoEntry: false }); } catch { st = undefined; }
        if (st === undefined) return { k: 'gone', o };
        ino = st.ino; size = st.size; mtimeMs = st.mtimeMs;
      }
      if (o >= 0) {
        if (cache !== null && !Number.isNaN(cache.ino[o])) {
          if (cache.ino[o] === ino && cache.size[o] === size && cache.mtimeMs[o] === mtimeMs) {
            return { k: 'unchanged', o, ino, size, mtimeMs };
          }
          // Same name but another file or content (upstream bug B13): re-read it.
        } else if (lastcheck > mtimeSec(mtimeMs)) {
          return { k: 'unchanged', o, ino, size, mtimeMs };
        }
      } else if (cache !== null) {
        const j = findIno(ino);
        if (j >= 0 && cache.size[j] === size && cache.mtimeMs[j] === mtimeMs) {
          // A renamed file (flag change): same inode, size and mtime, same content.
          return { k: 'known', j, ino, size, mtimeMs };
        }
      }
    }
    if (mayPool && usePool && (pool !== null || ++inline > 48)) {
      pool ??= new HashPool(threads);
      return { k: 'file', o, f: null, ticket: pool.submit(name) };
    }
    return { k: 'file', o, f: readMessageFile(name), ticket: -1 };
  };

  /** A file new to the db that is the cached old entry j renamed (same inode, size, mtime): its hashes are j's. */
  const settleRenamed = (name: ByteString, j: number, ino: number, size: number, mtimeMs: number): DiffCommand | null => {
    const cmd = engine.fileAt(name, engine.hashes, j * HASHES, -1);
    current.add(name, -1);
    record(engine.current, ino, size, mtimeMs);
    return cmd;
  };

  /** Applies a prepared candidate to the diff, in walk order. */
  const finish = (c: Candidate, p: Prepared, retry: boolean): DiffCommand | null => {
    const name = c.path;
    if (current.has(name, p.k === 'known' ? -1 : p.o)) return null;
    switch (p.k) {
      case 'unchanged':
        engine.unchanged(p.o);
        current.add(name, p.o);
        record(p.o, p.ino, p.size, p.mtimeMs);
        return null;
      case 'known':
        return settleRenamed(name, p.j, p.ino, p.size, p.mtimeMs);
      case 'gone':
        return vanished(c, retry, p.o);
      case 'file':
        break;
    }
    const f = p.f ?? pool!.result(p.ticket);
    const o = p.o;
    switch (f.kind) {
      case 'gone':
        return vanished(c, retry, o);
      case 'unreadable':
        if (o >= 0) {
          // Keep the old entry: skipping it would turn it into a DELETE.
          warn(`cannot read '${toUtf8(name)}' (${f.code}), keeping its previous state`);
          engine.unchanged(o);
          current.add(name, o);
          record(o, NaN, NaN, NaN);
        } else {
          warn(`cannot read '${toUtf8(name)}' (${f.code}), skipped`);
        }
        return null;
      case 'empty':
        debug?.(`skipping empty file '${toUtf8(name)}'`);
        return null;
      case 'noheader':
        warn(`malformed file '${toUtf8(name)}', no header`);
        return null;
      case 'message': {
        const cmd = engine.file(name, f.hashes.header, f.hashes.body);
        current.add(name, o);
        record(engine.current, f.ino, f.size, f.mtimeMs);
        return cmd;
      }
    }
  };
  const vanished = (c: Candidate, retry: boolean, o: number): DiffCommand | null => {
    if (retry) {
      for (const p of findRenamed(c)) {
        if (current.has(p)) continue;
        debug?.(`'${toUtf8(c.path)}' vanished, found '${toUtf8(p)}'`);
        const s = p.lastIndexOf('/');
        const c2 = { path: p, dir: p.slice(0, s), entry: p.slice(s + 1) };
        return finish(c2, prepare(c2, false), false);
      }
    }
    debug?.(`'${toUtf8(c.path)}' vanished while scanning${o >= 0 ? '' : ', skipped'}`);
    return null;
  };

  // Candidates are prepared ahead (hashing runs on the pool) and finished in walk order.
  const WINDOW = 1024;
  const qc: Candidate[] = [];
  const qp: Prepared[] = [];
  let head = 0;
  try {
    try {
      const known = engine.oldCount > 0;
      for (const l of walkMaildirFolders(roots, {
        excludes: opts.excludes, follow: opts.follow, onWarning: warn, onDebug: debug, lister, statIfCheap: needStat,
      })) {
        const { dir, entries, stats } = l;
        walking = l;
        // The old entries of this piece, looked up before it is walked: then a MOVE source
        // missing from its folder's last piece is known to be gone as soon as it is met.
        let olds: Int32Array | null = null;
        if (known) {
          olds = new Int32Array(entries.length);
          for (let k = 0; k < entries.length; k++) {
            const o = engine.lookup(`${dir}/${entries[k]}`);
            olds[k] = o;
            if (o >= 0) listed[o] = 1;
          }
        }
        for (let k = 0; k < entries.length; k++) {
          const entry = entries[k];
          let c: Candidate;
          if (olds !== null) {
            // The usual case, without queueing: a known file whose stat says it did not change.
            const o = olds[k];
            let ino = NaN;
            let size = NaN;
            let mtimeMs = NaN;
            if (stats !== null) {
              ino = stats[3 * k]; size = stats[3 * k + 1]; mtimeMs = stats[3 * k + 2];
            } else if (o >= 0 || cache !== null) {
              let st: Stats | undefined;
              try { st = statSync(fsName(`${dir}/${entry}`), { throwIfNoEntry: false }); } catch { st = undefined; }
              if (st !== undefined) { ino = st.ino; size = st.size; mtimeMs = st.mtimeMs; }
            }
            if (o >= 0 && !Number.isNaN(ino)) {
              const same = cache !== null && !Number.isNaN(cache.ino[o])
                ? cache.ino[o] === ino && cache.size[o] === size && cache.mtimeMs[o] === mtimeMs
                : lastcheck > mtimeSec(mtimeMs);
              if (same) {
                if (walked[o] === 0) {
                  engine.unchanged(o);
                  current.addOld(o);
                  record(o, ino, size, mtimeMs);
                }
                continue;
              }
            }
            const path = `${dir}/${entry}`;
            if (o < 0 && cache !== null && head === qc.length && !Number.isNaN(ino) && !current.has(path, -1)) {
              // A renamed file (flag change) with nothing queued before it: settled here too.
              const j = findIno(ino);
              if (j >= 0 && cache.size[j] === size && cache.mtimeMs[j] === mtimeMs) {
                const cmd = settleRenamed(path, j, ino, size, mtimeMs);
                if (cmd !== null) yield cmd;
                continue;
              }
            }
            c = stats !== null || o >= 0 || cache !== null ? { path, dir, entry, ino, size, mtimeMs } : { path, dir, entry };
          } else {
            c = { path: `${dir}/${entry}`, dir, entry };
          }
          qc.push(c);
          qp.push(prepare(c, true));
          if (qc.length - head >= WINDOW) {
            const cmd = finish(qc[head], qp[head], true);
            head++;
            if (head >= 4096) { qc.splice(0, head); qp.splice(0, head); head = 0; }
            if (cmd !== null) yield cmd;
          }
        }
        if (l.last) listedFolders.add(dir);
        walking = null;
      }
      (pool as HashPool | null)?.flush();
      for (; head < qc.length; head++) {
        const cmd = finish(qc[head], qp[head], true);
        if (cmd !== null) yield cmd;
      }
    } catch (e) {
      if (!(e instanceof MaildirWalkError)) throw e;
      yield { op: 'ERROR', message: e.message };
      return failed(e.message);
    }
  } finally {
    (pool as HashPool | null)?.close();
    prefetch?.close();
  }
  yield* engine.deletes();
  if (debug !== undefined) {
    const names = ['NOT_SEEN', 'SEEN', 'CHANGED', 'MOVED'];
    for (let i = 0; i < engine.oldCount; i++) debug(`STATUS ${names[engine.state[i]]} ${toUtf8(engine.names[i])}`);
  }
  if (!opts.dryRun) {
    try {
      // Unchanged lines are copied from the previous db-file rather than rebuilt.
      const copier = loaded === null ? null : DbLineCopier.open(loaded);
      let sha: string;
      try {
        sha = writeDbNewFrom(opts.dbFile, (sink) => engine.writeDb(sink, copier === null ? undefined : (a, b) => copier.copy(a, b, sink)), now);
      } finally {
        copier?.close();
      }
      // The stat cache, in the order of the new db's lines, written column by column.
      const count = engine.survivorCount();
      const olds = [oIno, oSize, oMtime] as const;
      try {
        writeStatCacheFrom(opts.dbFile, sha, count, (c, emit) => {
          const o = olds[c];
          for (const i of engine.survivors()) emit(i < old ? o[i] : addedStat(i - old, c));
        });
      } catch (e) {
        warn(`cannot write the stat cache: ${(e as Error).message}`);
      }
    } catch (e) {
      const msg = `cannot write ${opts.dbFile}.new: ${(e as Error).message}`;
      yield { op: 'ERROR', message: msg };
      return failed(msg);
    }
  }
  return { ok: true, has: (n) => current.has(n), messages: current.size };
}
