import type { ByteString } from './bytes.js';
import { type DirListing, listDirectoryStat } from './walk.js';

/** A listing posted by a worker: the listing, or the errno of the failure. */
export type DirResult =
  | { queue: number; index: number; names: ByteString[]; kinds: Uint8Array; stats: Float64Array | null }
  | { queue: number; index: number; error: { code?: string; message: string } };

/** Lists directory `dirs[index]` for a queue (on any thread); never throws. */
export function listQueued(queue: number, dirs: ByteString[], index: number, stat: boolean): DirResult {
  try {
    const l = listDirectoryStat(dirs[index], stat);
    return { queue, index, names: l.names, kinds: l.kinds, stats: l.stats };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { queue, index, error: { code: err?.code, message: err?.message ?? String(e) } };
  }
}

/** The directories of one `HashPool.listDirs` call. */
export class DirQueue {
  /** Next directory to take (shared with the workers). */
  readonly counter = new Int32Array(new SharedArrayBuffer(4));
  private readonly done: (DirResult | undefined)[];

  constructor(readonly id: number, private readonly dirs: ByteString[], private readonly stat: boolean, private readonly wait: () => void) {
    this.done = new Array<DirResult | undefined>(dirs.length);
  }

  put(r: DirResult): void { this.done[r.index] = r; }

  /** The listing of `dirs[i]`; throws (with the errno `code`) if it could not be listed. */
  list(i: number): DirListing {
    for (;;) {
      const r = this.done[i];
      if (r !== undefined) {
        this.done[i] = undefined;
        if ('error' in r) throw Object.assign(new Error(r.error.message), { code: r.error.code });
        return r;
      }
      // Rather than wait, list the next directory nobody has taken yet.
      const j = Atomics.add(this.counter, 0, 1);
      if (j < this.dirs.length) this.put(listQueued(this.id, this.dirs, j, this.stat));
      else this.wait();
    }
  }
}
