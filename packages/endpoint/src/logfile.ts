/**
 * Log files under ~/.smd/log/ that are appended to and rotated by size
 * (`x.log` → `x.log.1` → ... → `x.log.<keep>`, the oldest dropped), so a
 * run never erases the previous one's log and no file grows without bound.
 * Writes are synchronous: a log line must be on disk before a crash.
 */
import { closeSync, fstatSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';

export interface RotationPolicy {
  /** A file reaching this size is rotated before the next write. */
  readonly maxBytes: number;
  /** How many rotated files are kept besides the current one. */
  readonly keep: number;
}

/** client.*.log, server.*.log: several runs per file, the last few MiB of history. */
export const RUN_LOG_ROTATION: RotationPolicy = { maxBytes: 1024 * 1024, keep: 3 };
/** loop.log: smd-loop runs for weeks. */
export const LOOP_LOG_ROTATION: RotationPolicy = { maxBytes: 1024 * 1024, keep: 3 };

/** `path.<n>` */
export function rotatedName(path: string, n: number): string {
  return `${path}.${n}`;
}

/** Shifts `path` → `path.1` → ... now (`path.<keep>` is dropped). */
export function rotateNow(path: string, keep: number): void {
  try { unlinkSync(rotatedName(path, keep)); } catch { /* absent */ }
  for (let i = keep - 1; i >= 1; i--) {
    try { renameSync(rotatedName(path, i), rotatedName(path, i + 1)); } catch { /* absent */ }
  }
  if (keep >= 1) {
    try { renameSync(path, rotatedName(path, 1)); } catch { /* absent */ }
  } else {
    try { unlinkSync(path); } catch { /* absent */ }
  }
}

/** Rotates `path` if it has reached `policy.maxBytes`. Returns whether it did. */
export function rotateIfFull(path: string, policy: RotationPolicy): boolean {
  let size: number;
  try { size = statSync(path).size; } catch { return false; }
  if (size < policy.maxBytes) return false;
  rotateNow(path, policy.keep);
  return true;
}

/**
 * An appending log file, rotated when it reaches `maxBytes` (checked when
 * opened and after every write). A write error (full disk) is swallowed:
 * logging must never break a sync.
 */
export class RotatingLog {
  private fd: number;
  private size: number;

  constructor(readonly path: string, private readonly policy: RotationPolicy = RUN_LOG_ROTATION) {
    rotateIfFull(path, policy);
    this.fd = openSync(path, 'a', 0o600);
    this.size = fstatSync(this.fd).size;
  }

  write(text: string): void {
    if (this.fd < 0) return;
    try {
      this.size += writeSync(this.fd, text);
    } catch { /* full disk: the sync goes on */ }
    if (this.size >= this.policy.maxBytes) this.reopen();
  }

  line(l: string): void {
    this.write(`${l}\n`);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private reopen(): void {
    closeSync(this.fd);
    rotateNow(this.path, this.policy.keep);
    this.fd = openSync(this.path, 'a', 0o600);
    this.size = 0;
  }
}

/** The line that starts each run's part of a shared log file. */
export function runBanner(program: string, endpoint: string, when: Date = new Date()): string {
  return `=== ${program} ${endpoint} ${when.toISOString()} (pid ${process.pid}) ===`;
}
