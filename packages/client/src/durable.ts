/**
 * Durability of received messages before they are placed (Maildir: a
 * message is on disk before it becomes visible under its name).
 *
 * With a file-system sync (syncfs(2), native helper): group commit. A temp
 * file is written and closed; the sync that starts after it covers it. A
 * sync starts when 128 files wait or the oldest waited 20 ms, and never
 * while another runs, so one journal commit covers a batch where an fsync
 * per file costs a commit each
 * (bench/README.md "Batched placement"). Without, or on a file system not
 * known to make syncfs as strong as fsync (FUSE before Linux 5.15 syncs
 * nothing of its daemon's; network file systems): an fsync per file on the
 * thread pool, several in flight.
 */
import { statSync, statfsSync } from 'node:fs';
import { type ByteString, fsPath, type MessageHashes } from '@smd/maildir';
import type { TempFile } from './files.js';

/** Syncs the whole file system holding a directory (its path as bytes). */
export type FileSystemSync = (dir: Buffer) => Promise<void>;

/** statfs f_type of the local disk file systems where syncfs commits what fsync would: ext2/3/4, XFS, Btrfs, F2FS, tmpfs. */
const SYNCFS_FILE_SYSTEMS = new Set([0xef53, 0x58465342, 0x9123683e, 0xf2f52010, 0x01021994]);

interface Waiter { readonly dir: ByteString; resolve(): void; reject(e: unknown): void }

export class Durability {
  /**
   * How many received messages may wait for their sync: with fsync each
   * holds an open file; with group commit it is the batch size bound (256
   * was the knee on ext4 here), each holding its journal head (<= 64 KiB).
   */
  readonly waitingLimit: number;
  private pending: Waiter[] = [];
  private syncing = false;
  /** Per temp directory seen: its device (one sync per file system in a batch), null when syncfs is not used there. */
  private readonly devices = new Map<ByteString, number | null>();
  /** Whether files closed from now on wait for a file-system sync (false: fsync each). */
  private grouping: boolean;
  /** Syncs done and files they covered (for the bench and tests). */
  syncs = 0;
  synced = 0;

  /**
   * Options: `slowMs`, a sync that takes longer makes the rest of the run
   * fsync each file (syncfs writes back everything dirty on the file system,
   * so a big copy running beside it — a download, a VM image — would make
   * every batch wait for it, where an fsync waits only for its own file's
   * commit); `batch` and `delayMs`, a sync starts once that many files wait
   * or the oldest has waited that long (started at once, each sync covered
   * 1-2 files when the receiving thread was the bottleneck: a commit per
   * message again).
   */
  constructor(private readonly sync: FileSystemSync | null, opts: { slowMs?: number; batch?: number; delayMs?: number } = {}) {
    this.waitingLimit = sync === null ? 64 : 256;
    this.grouping = sync !== null;
    this.slowMs = opts.slowMs ?? 2000;
    this.batch = opts.batch ?? 128;
    this.delayMs = opts.delayMs ?? 20;
  }

  private readonly slowMs: number;
  private readonly batch: number;
  private readonly delayMs: number;
  /** When the oldest waiting file was closed. */
  private oldestAt = 0;
  private timer: NodeJS.Timeout | null = null;

  get grouped(): boolean { return this.grouping; }

  /** Flushes and closes `tmp` (in `tmpDir`); resolves with its hashes once it is durable. */
  async finish(tmp: TempFile, tmpDir: ByteString): Promise<MessageHashes | null> {
    if (!this.grouping || this.deviceOf(tmpDir) === null) return tmp.finishAsync();
    const hashes = tmp.close();
    await new Promise<void>((resolve, reject) => {
      if (this.pending.length === 0) this.oldestAt = Date.now();
      this.pending.push({ dir: tmpDir, resolve, reject });
      this.next();
    });
    return hashes;
  }

  /** Starts a sync of the waiting files if none runs and enough wait, or they waited long enough; else arms the timer. */
  private next(): void {
    if (this.syncing || this.pending.length === 0) return;
    const waited = Date.now() - this.oldestAt;
    if (this.pending.length < this.batch && waited < this.delayMs) {
      if (this.timer === null) {
        this.timer = setTimeout(() => { this.timer = null; this.next(); }, this.delayMs - waited);
      }
      return;
    }
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    const batch = this.pending;
    this.pending = [];
    this.syncing = true;
    const started = Date.now();
    void this.syncAll(batch).then(
      () => {
        this.syncs++;
        this.synced += batch.length;
        if (Date.now() - started > this.slowMs) this.grouping = false;
        for (const w of batch) w.resolve();
      },
      (e: unknown) => { for (const w of batch) w.reject(e); },
    ).finally(() => { this.syncing = false; this.next(); });
  }

  private async syncAll(batch: Waiter[]): Promise<void> {
    const byDevice = new Map<number, ByteString>();
    for (const w of batch) {
      const dev = this.deviceOf(w.dir)!;
      if (!byDevice.has(dev)) byDevice.set(dev, w.dir);
    }
    for (const dir of byDevice.values()) await this.sync!(fsPath(dir));
  }

  private deviceOf(dir: ByteString): number | null {
    let dev = this.devices.get(dir);
    if (dev === undefined) {
      const p = fsPath(dir);
      dev = SYNCFS_FILE_SYSTEMS.has(statfsSync(p).type) ? statSync(p).dev : null;
      this.devices.set(dir, dev);
    }
    return dev;
  }
}
