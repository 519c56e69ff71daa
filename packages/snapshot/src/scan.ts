import { statSync, type Stats } from 'node:fs';
import {
  type ByteString, type Candidate, fsPath, toUtf8, MaildirWalkError, walkMaildir, walkMailFolders,
  findRenamed, readMessageFile, stripOneSlash,
} from '@smd/maildir';
import type { DiffCommand } from './command.js';
import { DbFileError, readDbFile, readDbMtime, writeDbNew } from './dbfile.js';
import { DiffEngine } from './diff.js';
import { loadStatCache, writeStatCache } from './statcache.js';

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
  /** Human-readable, e.g. "malformed file 'x', no header". */
  onWarning?: (message: string) => void;
  /** `-v` details, human-readable. */
  onDebug?: (message: string) => void;
}

export interface ScanResult {
  /** false if an ERROR command was yielded (then nothing was written). */
  readonly ok: boolean;
  /** Is this name a message of the current scan? */
  has(name: ByteString): boolean;
  readonly messages: number;
}

/** Thrown for problems that end a scan (turned into one ERROR command). */
export class ScanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScanError';
  }
}

/** `mddiff -l`: the cur/new folders of the roots, in walk order. Throws MaildirWalkError. */
export function listMailFolders(roots: ByteString[], excludes?: ByteString[]): Generator<ByteString> {
  return walkMailFolders(roots, { excludes });
}

const mtimeSec = (ms: number): number => Math.floor(ms / 1000);

/**
 * Streams the diff of the Maildir trees against the db-file: yields commands
 * in upstream order (spec 2.10); a fatal problem yields one `{op:'ERROR'}`
 * and ends (ok=false). Writes `<db>.new` and `<db>.mtime.new` (and the stat
 * cache) at the end unless dryRun or failed.
 */
export function* diffMaildir(opts: ScanOptions): Generator<DiffCommand, ScanResult, void> {
  const warn = opts.onWarning ?? (() => {});
  const debug = opts.onDebug;
  const current = new Set<ByteString>();
  const failed = (message: string): ScanResult => ({ ok: false, has: (n) => current.has(n), messages: current.size });
  let engine: DiffEngine;
  let lastcheck: number;
  let cache: ReturnType<typeof loadStatCache> = null;
  try {
    const db = readDbFile(opts.dbFile);
    if (db === null) warn(`no db file ${opts.dbFile}, this is the first run`);
    lastcheck = readDbMtime(opts.dbFile) ?? 0;
    if (db !== null && lastcheck === 0 && db.names.length > 0) warn(`no mtime file ${opts.dbFile}.mtime`);
    const prev = db ?? { names: [], headers: [], bodies: [] };
    if (db !== null && db.names.length > 0) cache = loadStatCache(opts.dbFile, db.sha1, db.names.length);
    engine = new DiffEngine(prev, { noDelete: opts.noDelete, noMove: opts.noMove }, (name) => {
      const st = statSync(fsPath(name), { throwIfNoEntry: false });
      return st !== undefined && st.isFile() && mtimeSec(st.mtimeMs) <= lastcheck;
    });
  } catch (e) {
    const msg = e instanceof DbFileError ? e.message : `${opts.dbFile}: ${(e as Error).message}`;
    yield { op: 'ERROR', message: msg };
    return failed(msg);
  }
  const now = Math.floor(Date.now() / 1000);
  // Stat of every entry of the new db (for the stat cache), by engine index.
  const sIno: number[] = [];
  const sSize: number[] = [];
  const sMtime: number[] = [];
  const record = (i: number, ino: number, size: number, mtimeMs: number): void => {
    sIno[i] = ino; sSize[i] = size; sMtime[i] = mtimeMs;
  };
  // Old entries by inode (only with a valid cache): renamed files are not re-read.
  let byIno: Map<number, number> | null = null;
  const inoIndex = (): Map<number, number> => {
    if (byIno === null) {
      byIno = new Map();
      const c = cache!;
      for (let i = 0; i < c.ino.length; i++) if (!Number.isNaN(c.ino[i])) byIno.set(c.ino[i], i);
    }
    return byIno;
  };

  /** Processes one candidate; returns a command or null. `retry`: may look for a renamed file. */
  const process = (c: Candidate, retry: boolean): DiffCommand | null => {
    const name = c.path;
    if (current.has(name)) return null;
    let st: Stats | undefined;
    try {
      st = statSync(fsPath(name), { throwIfNoEntry: false });
    } catch (e) {
      st = undefined;
    }
    const o = engine.lookup(name);
    if (st === undefined) return vanished(c, retry, o);
    if (o >= 0) {
      const cached = cache !== null && !Number.isNaN(cache.ino[o]);
      if (cached) {
        if (cache!.ino[o] === st.ino && cache!.size[o] === st.size && cache!.mtimeMs[o] === st.mtimeMs) {
          engine.unchanged(o);
          current.add(name);
          record(o, st.ino, st.size, st.mtimeMs);
          return null;
        }
        // Same name but another file or content (upstream bug B13): re-read it.
      } else if (lastcheck > mtimeSec(st.mtimeMs)) {
        engine.unchanged(o);
        current.add(name);
        record(o, st.ino, st.size, st.mtimeMs);
        return null;
      }
    } else if (cache !== null) {
      const j = inoIndex().get(st.ino);
      if (j !== undefined && cache.size[j] === st.size && cache.mtimeMs[j] === st.mtimeMs) {
        // A renamed file (flag change): same inode, size and mtime, same content.
        const cmd = engine.file(name, engine.headers[j], engine.bodies[j]);
        current.add(name);
        record(engine.current, st.ino, st.size, st.mtimeMs);
        return cmd;
      }
    }
    const f = readMessageFile(name);
    switch (f.kind) {
      case 'gone':
        return vanished(c, retry, o);
      case 'unreadable':
        if (o >= 0) {
          // Keep the old entry: skipping it would turn it into a DELETE.
          warn(`cannot read '${toUtf8(name)}' (${f.code}), keeping its previous state`);
          engine.unchanged(o);
          current.add(name);
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
        current.add(name);
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
        return process({ path: p, dir: p.slice(0, s), entry: p.slice(s + 1) }, false);
      }
    }
    debug?.(`'${toUtf8(c.path)}' vanished while scanning${o >= 0 ? '' : ', skipped'}`);
    return null;
  };

  try {
    const roots = opts.roots.map(stripOneSlash);
    for (const c of walkMaildir(roots, { excludes: opts.excludes, onWarning: warn, onDebug: debug })) {
      const cmd = process(c, true);
      if (cmd !== null) yield cmd;
    }
  } catch (e) {
    if (!(e instanceof MaildirWalkError)) throw e;
    yield { op: 'ERROR', message: e.message };
    return failed(e.message);
  }
  yield* engine.deletes();
  if (debug !== undefined) {
    const names = ['NOT_SEEN', 'SEEN', 'CHANGED', 'MOVED'];
    for (let i = 0; i < engine.oldCount; i++) debug(`STATUS ${names[engine.state[i]]} ${toUtf8(engine.names[i])}`);
  }
  if (!opts.dryRun) {
    try {
      const sha = writeDbNew(opts.dbFile, engine.dbLines(), now);
      const rows: Array<[number, number, number]> = [];
      for (const i of engine.survivors()) rows.push([sIno[i] ?? NaN, sSize[i] ?? NaN, sMtime[i] ?? NaN]);
      try {
        writeStatCache(opts.dbFile, sha, rows, rows.length);
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
