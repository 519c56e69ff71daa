/**
 * mddiff [options] PATH... (upstream spec 2.1–2.11)
 *
 * Diffs Maildir trees against a db-file and prints the change list, one
 * command per line; also the helper modes used by smd-client (hash server on
 * a fifo, symlink server, --sha1sum, --mkdir-p, --mkfifo) and `-l`.
 */
import { closeSync, constants, mkdirSync, openSync, readSync, statSync, symlinkSync, writeSync, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import {
  type ByteString, decodeArgument, fromUtf8, fsPath, toUtf8, MessageHasher, EMPTY_SHA1, MaildirWalkError,
} from '@smd/maildir';
import { diffMaildir, formatCommand, listMailFolders } from '@smd/snapshot';
import { parseCommandLine } from '../args/index.js';
import { MDDIFF } from '../args/specs.js';

/** Buffered latin1 output to a file descriptor-backed stream, with backpressure. */
class Out {
  private buf = Buffer.allocUnsafe(1 << 16);
  private used = 0;
  constructor(private readonly stream: NodeJS.WriteStream) {}
  /** Buffers a line; returns a promise only when the buffer had to be written out first. */
  line(s: ByteString): Promise<void> | undefined {
    const need = s.length + 1;
    if (this.used + need > this.buf.length) return this.lineAfterFlush(s);
    this.used += this.buf.write(s, this.used, 'latin1');
    this.buf[this.used++] = 0x0a;
    return undefined;
  }
  private async lineAfterFlush(s: ByteString): Promise<void> {
    await this.flush();
    if (s.length + 1 > this.buf.length) { await this.write(Buffer.from(s + '\n', 'latin1')); return; }
    this.used += this.buf.write(s, this.used, 'latin1');
    this.buf[this.used++] = 0x0a;
  }
  async flush(): Promise<void> {
    if (this.used === 0) return;
    const chunk = Buffer.from(this.buf.subarray(0, this.used));
    this.used = 0;
    await this.write(chunk);
  }
  private write(chunk: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const ok = this.stream.write(chunk, (err) => { if (err) reject(err); });
      if (ok) resolve();
      else this.stream.once('drain', resolve);
    });
  }
}

function stderr(kind: 'error' | 'warning' | 'debug', where: string, msg: string): void {
  process.stderr.write(`${kind} [${where}]: ${msg}\n`);
}

/** Fatal error: `error [where]: msg` on stderr, `ERROR msg` on stdout, exit 1. */
async function fatal(out: Out, where: string, msg: string): Promise<number> {
  stderr('error', where, msg);
  await out.line(`ERROR ${fromUtf8(msg)}`);
  await out.flush();
  return 1;
}

export async function main(argv: string[]): Promise<number> {
  const out = new Out(process.stdout);
  const parsed = await parseCommandLine(MDDIFF, argv);
  if (typeof parsed === 'number') return parsed;
  const a = {
    dbFile: parsed.value('db-file') ?? 'db.txt', exclude: parsed.values('exclude'), follow: parsed.values('follow'), paths: parsed.args,
    sha1sum: parsed.flag('sha1sum'), mkdirP: parsed.flag('mkdir-p'), mkfifo: parsed.flag('mkfifo'), list: parsed.flag('list'),
    symlink: parsed.flag('symlink'), verbose: parsed.flag('verbose'), dryRun: parsed.flag('dry-run'),
    noDelete: parsed.flag('no-delete'), noMove: parsed.flag('no-move'),
  };

  if (a.mkdirP) {
    for (const p of a.paths) {
      try { mkdirSync(fsPath(fromUtf8(p)), { recursive: true, mode: 0o770 }); } catch (e) { return fatal(out, 'mkdir_p', `unable to create directory ${p}: ${(e as Error).message}`); }
    }
    return 0;
  }
  if (a.sha1sum) return sha1sum(out, a.paths);
  if (a.mkfifo) {
    // Loaded here only: child_process (with net and streams) costs a scan ~4 ms of start-up.
    const { spawnSync } = await import('node:child_process');
    for (const p of a.paths) {
      const r = spawnSync('mkfifo', ['-m', '600', '--', p], { stdio: ['ignore', 'ignore', 'pipe'] });
      if (r.status !== 0) return fatal(out, 'mkfifo', `unable to create fifo ${p}: ${r.stderr?.toString().trim() || r.error?.message}`);
    }
    return 0;
  }

  const roots = a.paths.map((p) => decodeArgument(fromUtf8(p)));
  let st0: Stats;
  try { st0 = statSync(fsPath(roots[0])); } catch (e) { return fatal(out, 'main', `unable to stat ${toUtf8(roots[0])}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
  if (st0.isFIFO() && roots.length === 1) return a.symlink ? symlinkServer(out, roots[0]) : hashServer(out, roots[0]);
  for (const r of roots) {
    let st: Stats;
    try { st = statSync(fsPath(r)); } catch (e) { return fatal(out, 'main', `unable to stat ${toUtf8(r)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
    if (!st.isDirectory()) return fatal(out, 'main', `${toUtf8(r)} is not a directory`);
  }
  const excludes = a.exclude.map((g) => decodeArgument(fromUtf8(g)));
  const follow = a.follow.map((g) => decodeArgument(fromUtf8(g)));

  if (a.list) {
    try {
      for (const d of listMailFolders(roots, excludes, follow)) await out.line(d);
    } catch (e) {
      if (e instanceof MaildirWalkError) { await out.flush(); return fatal(out, 'list', e.message); }
      throw e;
    }
    await out.flush();
    return 0;
  }

  const gen = diffMaildir({
    roots, dbFile: a.dbFile, excludes, follow, dryRun: a.dryRun, noDelete: a.noDelete, noMove: a.noMove,
    onWarning: (m) => stderr('warning', 'mddiff', m),
    onDebug: a.verbose ? (m) => stderr('debug', 'mddiff', m) : undefined,
    // Tuning (bench/README.md): SMD_SCAN_THREADS=0 hashes on the main thread only; N > 0 uses N
    // worker threads, which with a big db-file also list + stat the folders.
    threads: process.env.SMD_SCAN_THREADS !== undefined ? Number(process.env.SMD_SCAN_THREADS) : undefined,
  });
  for (;;) {
    const r = gen.next();
    if (r.done) {
      await out.flush();
      return r.value.ok ? 0 : 1;
    }
    const c = r.value;
    if (c.op === 'ERROR') stderr('error', 'mddiff', toUtf8(c.message));
    const pending = out.line(formatCommand(c));
    if (pending !== undefined) await pending;
  }
}

async function sha1sum(out: Out, paths: readonly string[]): Promise<number> {
  const buf = Buffer.allocUnsafe(1 << 20);
  for (const p of paths) {
    const name = fromUtf8(p);
    let fd: number;
    try { fd = openSync(fsPath(name), constants.O_RDONLY); } catch (e) { return fatal(out, 'sha1sum', `unable to open ${p}: ${(e as NodeJS.ErrnoException).code}`); }
    try {
      const st = statSync(fsPath(name));
      if (!st.isFile()) return fatal(out, 'sha1sum', `${p} is not a regular file`);
      const h = createHash('sha1');
      for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
      await out.line(`${h.digest('hex')}  ${name}`);
    } finally {
      closeSync(fd);
    }
  }
  await out.flush();
  return 0;
}

/** Reads lines (latin1, without '\n') from a fifo, blocking; this process does nothing else. */
function* fifoLines(path: ByteString): Generator<ByteString> {
  const fd = openSync(fsPath(path), constants.O_RDONLY);
  const buf = Buffer.allocUnsafe(1 << 16);
  let pending = '';
  try {
    for (;;) {
      let n: number;
      try { n = readSync(fd, buf, 0, buf.length, null); } catch (e) { if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue; throw e; }
      if (n <= 0) break;
      pending += buf.toString('latin1', 0, n);
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        yield pending.slice(0, nl);
        pending = pending.slice(nl + 1);
      }
    }
    if (pending !== '') yield pending;
  } finally {
    closeSync(fd);
  }
}

function say(line: ByteString): void {
  const b = Buffer.from(line + '\n', 'latin1');
  let off = 0;
  while (off < b.length) {
    try { off += writeSync(1, b, off, b.length - off); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e; }
  }
}

function sayError(where: string, msg: string): number {
  stderr('error', where, msg);
  say(`ERROR ${fromUtf8(msg)}`);
  return 1;
}

/** `mddiff FIFO`: for each name read, `<hsha> <bsha>` (flushed); ERROR and exit on a bad file. */
async function hashServer(_out: Out, fifo: ByteString): Promise<number> {
  const buf = Buffer.allocUnsafe(1 << 20);
  for (const name of fifoLines(fifo)) {
    let fd: number;
    try { fd = openSync(fsPath(name), constants.O_RDONLY); } catch (e) { return sayError('hash', `unable to open ${toUtf8(name)}: ${(e as NodeJS.ErrnoException).code}`); }
    const h = new MessageHasher();
    try {
      for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
    } catch (e) {
      return sayError('hash', `unable to read ${toUtf8(name)}: ${(e as NodeJS.ErrnoException).code}`);
    } finally {
      closeSync(fd);
    }
    if (h.length === 0) { say(`${EMPTY_SHA1} ${EMPTY_SHA1}`); continue; }
    const d = h.digest();
    if (d === null) return sayError('hash', `malformed file '${toUtf8(name)}', no header`);
    say(`${d.header} ${d.body}`);
  }
  return 0;
}

/** `mddiff -s FIFO`: pairs of lines source, target → mkdir -p dirname(target); symlink; OK. */
async function symlinkServer(_out: Out, fifo: ByteString): Promise<number> {
  let source: ByteString | null = null;
  for (const line of fifoLines(fifo)) {
    if (source === null) { source = line; continue; }
    const target = line;
    try {
      const slash = target.lastIndexOf('/');
      if (slash > 0) mkdirSync(fsPath(target.slice(0, slash)), { recursive: true, mode: 0o770 });
      symlinkSync(fsPath(source), fsPath(target));
    } catch (e) {
      return sayError('symlink', `unable to symlink ${toUtf8(target)} -> ${toUtf8(source)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    say('OK');
    source = null;
  }
  return 0;
}
