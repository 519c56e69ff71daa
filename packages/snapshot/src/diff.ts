import type { ByteString } from '@smd/maildir';
import type { DiffCommand } from './command.js';
import type { DbEntries } from './dbfile.js';

/** State of an entry during one diff run (upstream's NOT_SEEN/SEEN/CHANGED/MOVED). */
export const NOT_SEEN = 0;
export const SEEN = 1;
export const CHANGED = 2;
export const MOVED = 3;

export interface DiffOptions {
  /** `-n`: vanished messages are not DELETEd. */
  readonly noDelete?: boolean;
  /** `--no-move`: a rename is COPY + DELETE. */
  readonly noMove?: boolean;
}

/**
 * Upstream's "does o still exist under its old name with mtime <= lastcheck"
 * check (step 5), injected so the core does no I/O.
 */
export type StillThere = (name: ByteString) => boolean;

/**
 * The diff of upstream mddiff (spec 2.5), as an incremental, I/O-free engine:
 * feed it the current files in walk order (`file` or `unchanged`), get the
 * non-DELETE commands back one at a time, then `deletes()` and the new db
 * lines (`dbLines()`).
 *
 * Entries live in one table: indexes [0, oldCount) are the previous
 * snapshot in db order, then the files of this run in walk order.
 */
export class DiffEngine {
  readonly names: ByteString[];
  readonly headers: string[];
  readonly bodies: string[];
  readonly state: number[];
  /** Index of the last file given to `file`/`unchanged` (-1 if it was not a message). */
  current = -1;
  readonly oldCount: number;
  private readonly byName = new Map<ByteString, number>();
  private bodyHead: Map<string, number> | null = null;
  private bodyNext: number[] = [];

  constructor(previous: DbEntries, private readonly opts: DiffOptions = {}, private readonly stillThere: StillThere = () => false) {
    this.names = previous.names.slice();
    this.headers = previous.headers.slice();
    this.bodies = previous.bodies.slice();
    this.oldCount = this.names.length;
    this.state = new Array<number>(this.oldCount).fill(NOT_SEEN);
    for (let i = 0; i < this.oldCount; i++) this.byName.set(this.names[i], i);
  }

  /** Index of the previous-snapshot entry with this name, or -1. */
  lookup(name: ByteString): number {
    const i = this.byName.get(name);
    return i === undefined ? -1 : i;
  }

  /** The mtime shortcut (step 2): the old entry `i` is unchanged, it was not read. */
  unchanged(i: number): void {
    this.state[i] = SEEN;
    this.current = i;
  }

  /** Steps 4–6 for the file `name` with the given hashes. */
  file(name: ByteString, header: string, body: string): DiffCommand | null {
    const o = this.lookup(name);
    if (o >= 0) {
      if (this.bodies[o] === body) {
        if (this.headers[o] === header) {
          this.state[o] = SEEN;
          this.current = o;
          return null;
        }
        this.state[o] = CHANGED;
        this.append(name, header, body);
        return { op: 'REPLACEHEADER', name, header: this.headers[o], body, newHeader: header };
      }
      this.state[o] = CHANGED;
      this.append(name, header, body);
      return { op: 'REPLACE', name, header: this.headers[o], body: this.bodies[o], newHeader: header, newBody: body };
    }
    const head = this.bodyIndex().get(body);
    if (head !== undefined) {
      for (let m = head; m >= 0; m = this.bodyNext[m]) {
        if (this.headers[m] !== header) continue;
        const from = this.names[m];
        if (this.state[m] === SEEN || (this.state[m] === NOT_SEEN && this.checkStillThere(m)) || this.opts.noMove) {
          if (this.state[m] === NOT_SEEN) this.state[m] = MOVED;
          this.append(name, header, body);
          return { op: 'COPY', from, header, body, to: name };
        }
        this.state[m] = MOVED;
        const n = this.append(name, header, body);
        this.bodyNext[n] = head;
        this.bodyHead!.set(body, n);
        return { op: 'MOVE', from, header, body, to: name };
      }
      this.append(name, header, body);
      return { op: 'COPYBODY', from: this.names[head], body, to: name, toHeader: header };
    }
    this.append(name, header, body);
    return { op: 'ADD', name, header, body };
  }

  /** Step 7: DELETE commands in db order. */
  *deletes(): Generator<DiffCommand> {
    const { noDelete, noMove } = this.opts;
    for (let i = 0; i < this.oldCount; i++) {
      const s = this.state[i];
      if ((s === NOT_SEEN && !noDelete) || (s === MOVED && noMove)) {
        yield { op: 'DELETE', name: this.names[i], header: this.headers[i], body: this.bodies[i] };
      }
    }
  }

  /** Indexes of the entries of the new db, in upstream's order (surviving old ones, then new ones). */
  *survivors(): Generator<number> {
    for (let i = 0; i < this.oldCount; i++) if (this.state[i] === SEEN) yield i;
    for (let i = this.oldCount; i < this.names.length; i++) yield i;
  }

  /** The lines of the new db-file. */
  *dbLines(): Generator<ByteString> {
    for (const i of this.survivors()) yield `${this.headers[i]} ${this.bodies[i]} ${this.names[i]}\n`;
  }

  private checkStillThere(m: number): boolean {
    if (m >= this.oldCount || !this.stillThere(this.names[m])) return false;
    this.state[m] = SEEN;
    return true;
  }

  private append(name: ByteString, header: string, body: string): number {
    const n = this.names.length;
    this.names.push(name);
    this.headers.push(header);
    this.bodies.push(body);
    this.state.push(SEEN);
    this.current = n;
    return n;
  }

  /** body hash → most recently inserted entry; built on first use (a no-change run never needs it). */
  private bodyIndex(): Map<string, number> {
    if (this.bodyHead === null) {
      const head = new Map<string, number>();
      const next = this.bodyNext;
      for (let i = 0; i < this.oldCount; i++) {
        const h = head.get(this.bodies[i]);
        next[i] = h === undefined ? -1 : h;
        head.set(this.bodies[i], i);
      }
      this.bodyHead = head;
    }
    return this.bodyHead;
  }
}

/** A current file for `diff`: its hashes, or `unchanged` (the mtime shortcut: trust the old entry). */
export type CurrentFile =
  | { readonly name: ByteString; readonly header: string; readonly body: string }
  | { readonly name: ByteString; readonly unchanged: true };

/**
 * The pure diff: previous snapshot + current files in walk order → commands
 * in upstream order (non-DELETEs as files come, DELETEs last in db order).
 */
export function* diff(previous: DbEntries, current: Iterable<CurrentFile>, opts: DiffOptions = {}, stillThere?: StillThere): Generator<DiffCommand, DiffEngine, void> {
  const e = new DiffEngine(previous, opts, stillThere);
  for (const f of current) {
    if ('unchanged' in f) {
      const i = e.lookup(f.name);
      if (i >= 0) { e.unchanged(i); continue; }
      throw new Error(`unchanged file ${f.name} is not in the previous snapshot`);
    }
    const c = e.file(f.name, f.header, f.body);
    if (c !== null) yield c;
  }
  yield* e.deletes();
  return e;
}
