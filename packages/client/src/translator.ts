/**
 * The remote→local folder-name translator (spec 5.8): a long-running
 * `sh -c CMD`, one line in → one line out. `cat` is the identity without a
 * process. Results are cached per directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { ByteString } from '@smd/maildir';
import { TaggedError } from '@smd/protocol';

const bad = (msg: string): TaggedError =>
  new TaggedError(msg, { context: 'translate', probableCause: 'bad-translator', humanIntervention: 'necessary' }, 6);

export class Translator {
  private child: ChildProcess | null = null;
  private buf = '';
  private waiting: Array<(line: string | null) => void> = [];
  private lines: string[] = [];
  private ended = false;
  private stderr = '';
  private readonly cache = new Map<ByteString, ByteString>();
  /** Serialises requests: one line in, one line out. */
  private chain: Promise<unknown> = Promise.resolve();

  /**
   * `timeoutMs`: the longest wait for one answer (0: none); a translator that never answers must not hang the run.
   * `onTranslated` hears each folder the command (not `cat`) translates, once.
   */
  constructor(private readonly command: string, private readonly timeoutMs = 0, private readonly onTranslated?: (from: ByteString, to: ByteString) => void) {}

  get identity(): boolean {
    return this.command.trim() === 'cat';
  }

  private start(): ChildProcess {
    if (this.child !== null) return this.child;
    const c = spawn('sh', ['-c', this.command], { stdio: ['pipe', 'pipe', 'pipe'] });
    c.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
        this.push(this.buf.slice(0, nl));
        this.buf = this.buf.slice(nl + 1);
      }
    });
    c.stderr!.on('data', (d: Buffer) => { if (this.stderr.length < 4096) this.stderr += d.toString('utf8'); });
    const end = (): void => { this.ended = true; for (const w of this.waiting.splice(0)) w(null); };
    c.stdout!.on('end', end);
    c.on('error', end);
    c.stdin!.on('error', () => { /* reported as EOF on stdout */ });
    this.child = c;
    return c;
  }

  private push(line: string): void {
    const w = this.waiting.shift();
    if (w) w(line); else this.lines.push(line);
  }

  private next(): Promise<string | null> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const timer = this.timeoutMs > 0
        ? setTimeout(() => reject(bad(`The translator ${JSON.stringify(this.command)} gave no answer for ${Math.round(this.timeoutMs / 1000)} s ` +
          '(a translator must print one line per line it reads, and flush it)')), this.timeoutMs)
        : undefined;
      this.waiting.push((line) => { clearTimeout(timer); resolve(line); });
    });
  }

  /** The local name (relative to $HOME) of a remote directory name. Throws TaggedError. */
  async translate(dir: ByteString): Promise<ByteString> {
    const hit = this.cache.get(dir);
    if (hit !== undefined) return hit;
    let out: ByteString;
    if (this.identity) out = dir;
    else {
      const p = this.chain.then(async () => {
        const c = this.start();
        c.stdin!.write(Buffer.from(`${dir}\n`, 'latin1'));
        return this.next();
      });
      this.chain = p.catch(() => undefined);
      const line = await p;
      if (line === null || line === 'ERROR') {
        const rest = [...this.lines.splice(0), this.buf].filter((x) => x !== '').join('\n');
        throw bad(`The translator ${JSON.stringify(this.command)} failed on ${JSON.stringify(dir)}` +
          `${line === null ? ' (no output)' : ' (ERROR)'}${rest ? `: ${rest}` : ''}${this.stderr ? `; its stderr: ${this.stderr.trim()}` : ''}`);
      }
      out = line;
    }
    if (out === '' || out.startsWith('/') || /[\0\r\n]/.test(out) || out.split('/').some((s) => s === '..')) {
      throw bad(`The translator ${JSON.stringify(this.command)} turned ${JSON.stringify(dir)} into the unacceptable ${JSON.stringify(out)}`);
    }
    this.cache.set(dir, out);
    if (!this.identity) this.onTranslated?.(dir, out);
    return out;
  }

  close(): void {
    if (this.child !== null) {
      this.child.stdin!.end();
      this.child.kill('SIGTERM');
      this.child = null;
    }
  }
}
