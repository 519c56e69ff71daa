import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { ByteString } from '@smd/maildir';

/** A translator failed: `ERROR`, EOF, an unsafe result, or it could not start. */
export class TranslatorError extends Error {
  override name = 'TranslatorError';
  constructor(readonly command: string, readonly input: ByteString, readonly kind: 'error' | 'eof' | 'unsafe' | 'spawn' | 'bad-input', detail: string) {
    super(`translator "${command}" failed on "${input}": ${detail}`);
  }
}

/** Maps directory names (ByteStrings) one at a time. */
export interface Translator {
  readonly command: string;
  /** true for `cat`: names are unchanged and no process runs */
  readonly identity: boolean;
  translate(name: ByteString): Promise<ByteString>;
  close(): Promise<void>;
}

/**
 * A translated name must stay relative and below its root: no `..` path component, not
 * absolute, not empty. (Upstream refuses any `..` substring; a component such as `..a.b`,
 * which nodots2 produces, is an ordinary directory name and is allowed.)
 */
export function unsafeTranslation(name: ByteString): string | null {
  if (name === '') return 'empty result';
  if (name.startsWith('/')) return 'absolute path';
  if (name.split('/').includes('..')) return 'result contains ..';
  return null;
}

/** `cat`: identity. */
export class IdentityTranslator implements Translator {
  readonly command = 'cat';
  readonly identity = true;
  async translate(name: ByteString): Promise<ByteString> { return name; }
  async close(): Promise<void> { /* nothing */ }
}

export interface ProcessTranslatorOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** where the translator's stderr goes (default: ignored) */
  onStderr?: (chunk: Buffer) => void;
}

/**
 * A long-running `sh -c CMD`, fed one name per line; each answer is one line. Started
 * lazily at the first name. Requests are answered in order (several may be in flight).
 * After a failure every further call fails.
 */
export class ProcessTranslator implements Translator {
  readonly identity = false;
  private child: ChildProcessWithoutNullStreams | null = null;
  private buf: Buffer = Buffer.alloc(0);
  private readonly waiting: { input: ByteString; resolve: (s: ByteString) => void; reject: (e: Error) => void }[] = [];
  private failed: TranslatorError | null = null;
  private exited = false;
  private exitPromise: Promise<void> | null = null;

  constructor(readonly command: string, private readonly opts: ProcessTranslatorOptions = {}) {}

  private start(): ChildProcessWithoutNullStreams {
    const child = spawn('sh', ['-c', this.command], { cwd: this.opts.cwd, env: this.opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.exitPromise = new Promise((resolve) => child.once('close', () => { this.exited = true; this.failAll('eof', 'the translator ended (EOF)'); resolve(); }));
    child.on('error', (e) => this.failAll('spawn', e.message));
    child.stdin.on('error', () => { /* EPIPE: reported through EOF */ });
    child.stdout.on('data', (d: Buffer) => this.onData(d));
    child.stderr.on('data', (d: Buffer) => this.opts.onStderr?.(d));
    this.child = child;
    return child;
  }

  private failAll(kind: TranslatorError['kind'], detail: string): void {
    while (this.waiting.length > 0) {
      const w = this.waiting.shift()!;
      const err = new TranslatorError(this.command, w.input, kind, detail);
      this.failed ??= err;
      w.reject(err);
    }
    this.failed ??= new TranslatorError(this.command, '', kind, detail);
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    let nl: number;
    while ((nl = this.buf.indexOf(0x0a)) >= 0) {
      const line = this.buf.subarray(0, nl).toString('latin1');
      this.buf = this.buf.subarray(nl + 1);
      const w = this.waiting.shift();
      if (w === undefined) continue; // unsolicited output: ignored
      if (line === 'ERROR') {
        const rest = this.buf.toString('latin1').trim();
        const err = new TranslatorError(this.command, w.input, 'error', `it answered ERROR${rest === '' ? '' : `: ${rest}`}`);
        this.failed = err;
        w.reject(err);
        this.failAll('error', 'an earlier name failed');
        this.child?.stdin.end();
        return;
      }
      const why = unsafeTranslation(line);
      if (why !== null) {
        const err = new TranslatorError(this.command, w.input, 'unsafe', `${why}: "${line}"`);
        this.failed = err;
        w.reject(err);
        this.failAll('unsafe', 'an earlier name failed');
        this.child?.stdin.end();
        return;
      }
      w.resolve(line);
    }
  }

  translate(name: ByteString): Promise<ByteString> {
    if (name.includes('\n')) return Promise.reject(new TranslatorError(this.command, name, 'bad-input', 'a name containing a newline cannot be translated'));
    if (this.failed !== null) return Promise.reject(new TranslatorError(this.command, name, this.failed.kind, this.failed.message));
    const child = this.child ?? this.start();
    return new Promise((resolve, reject) => {
      this.waiting.push({ input: name, resolve, reject });
      child.stdin.write(Buffer.from(`${name}\n`, 'latin1'));
    });
  }

  /** Closes stdin and waits for the process to end. */
  async close(): Promise<void> {
    if (this.child === null) return;
    if (!this.exited) this.child.stdin.end();
    await this.exitPromise;
  }
}

/** `cat` → IdentityTranslator, anything else → ProcessTranslator. */
export function createTranslator(command: string, opts: ProcessTranslatorOptions = {}): Translator {
  return command.trim() === 'cat' || command.trim() === '' ? new IdentityTranslator() : new ProcessTranslator(command, opts);
}

// ---------------------------------------------------------------------------------------
// Built-in translations of smd-translate (upstream 6.9), as pure functions.

export const TRANSLATE_MODES = ['oimap-dovecot', 'default', 'nodots', 'nodots2', 'move', 'cat'] as const;
export type TranslateMode = (typeof TRANSLATE_MODES)[number];
export type TranslateDirection = 'LR' | 'RL';

/** A name that the mode cannot translate. */
export class TranslateError extends Error {
  override name = 'TranslateError';
}

const MAILDIR_LEAF = new Set(['cur', 'new', 'tmp']);

/** `root` or `root/...` → the part after `root/` ('' for root itself); null if not under root. */
function under(name: ByteString, root: ByteString): ByteString | null {
  if (name === root) return '';
  if (root === '') return name;
  if (name.startsWith(`${root}/`)) return name.slice(root.length + 1);
  return null;
}

const join2 = (root: ByteString, rest: ByteString): ByteString => (rest === '' ? root : root === '' ? rest : `${root}/${rest}`);

/** `a/b/cur` → ['a/b', 'cur']; `cur` → ['', 'cur']; `a/b` → ['a/b', null]. */
function splitLeaf(rest: ByteString): [ByteString, ByteString | null] {
  const k = rest.lastIndexOf('/');
  const leaf = k < 0 ? rest : rest.slice(k + 1);
  if (!MAILDIR_LEAF.has(leaf)) return [rest, null];
  return [k < 0 ? '' : rest.slice(0, k), leaf];
}

const withLeaf = (folder: ByteString, leaf: ByteString | null): ByteString => (leaf === null ? folder : folder === '' ? leaf : `${folder}/${leaf}`);

/**
 * Translates one directory name. `local`/`remote` are the roots (MAILBOX_LOCAL /
 * MAILBOX_REMOTE, decoded, without trailing `/`). LR: local name → remote name; RL: the
 * reverse.
 */
export function translateName(mode: TranslateMode, dir: TranslateDirection, name: ByteString, local: ByteString, remote: ByteString): ByteString {
  if (mode === 'cat') return name;
  const [from, to] = dir === 'LR' ? [local, remote] : [remote, local];
  const rest = under(name, from);
  if (rest === null) throw new TranslateError(`"${name}" is not under "${from}"`);
  switch (mode) {
    case 'move':
      return join2(to, rest);
    case 'oimap-dovecot':
    case 'default': {
      if (dir === 'LR') {
        // L/cur|new|tmp → R/...; L/<x> → R/.<x>
        if (rest === '' || MAILDIR_LEAF.has(rest)) return join2(to, rest);
        return join2(to, `.${rest}`);
      }
      // R... → L..., then L/.x → L/x
      return join2(to, rest.startsWith('.') ? rest.slice(1) : rest);
    }
    case 'nodots': {
      const [folder, leaf] = splitLeaf(rest);
      if (folder === '') return join2(to, withLeaf('', leaf));
      if (dir === 'LR') {
        // L/a/b/cur → R/.a.b/cur
        if (folder.includes('.')) throw new TranslateError(`"${name}": a folder name containing a dot cannot be translated by nodots`);
        return join2(to, withLeaf(`.${folder.split('/').join('.')}`, leaf));
      }
      // R/.a.b/cur → L/a/b/cur
      if (!folder.startsWith('.') || folder.includes('/')) throw new TranslateError(`"${name}": not a dotted folder (.a.b)`);
      const parts = folder.slice(1).split('.');
      if (parts.some((p) => p === '')) throw new TranslateError(`"${name}": empty folder name component`);
      return join2(to, withLeaf(parts.join('/'), leaf));
    }
    case 'nodots2': {
      // local L/..a.b/cur ↔ remote R/a/b/cur (what upstream's code does)
      const [folder, leaf] = splitLeaf(rest);
      if (folder === '') return join2(to, withLeaf('', leaf));
      if (dir === 'LR') {
        if (!folder.startsWith('..') || folder.includes('/')) throw new TranslateError(`"${name}": not a ..a.b folder`);
        const parts = folder.slice(2).split('.');
        if (parts.some((p) => p === '')) throw new TranslateError(`"${name}": empty folder name component`);
        return join2(to, withLeaf(parts.join('/'), leaf));
      }
      if (folder.split('/').some((p) => p.includes('.') || p === '')) throw new TranslateError(`"${name}": a folder name containing a dot cannot be translated by nodots2`);
      return join2(to, withLeaf(`..${folder.split('/').join('.')}`, leaf));
    }
  }
  throw new TranslateError(`unknown mode ${String(mode)}`);
}
