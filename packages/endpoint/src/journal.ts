/**
 * The run journal (`~/.smd/log/journal.<endpoint>.jsonl`): one JSON object
 * per line for every message a run changed, appended by smd-pull / smd-push
 * from the client's `JOURNAL:` lines, rotated by size. The records of the
 * last run alone are also in `run.<endpoint>.jsonl`, whose path post hooks
 * get in `SMD_RUN_JOURNAL`.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { isJournalEntry, type JournalEntry } from '@smd/protocol';
import type { SmdHome } from './home.js';
import { RotatingLog, rotatedName, type RotationPolicy } from './logfile.js';

export type SyncDirection = 'pull' | 'push';

/** A journal line: what the client reported, plus which run of which endpoint. */
export type JournalRecord = JournalEntry & {
  /** The run's start time (ISO 8601): every record of a run has the same. */
  readonly run: string;
  readonly endpoint: string;
  readonly direction: SyncDirection;
};

/** 4 × 8 MiB of history per endpoint (some 100,000 records). */
export const JOURNAL_ROTATION: RotationPolicy = { maxBytes: 8 * 1024 * 1024, keep: 3 };

/** Appends the records of one run to the journal and to the run's own file. */
export class JournalWriter {
  private journal: RotatingLog | null = null;
  private readonly runFd: number;
  private batch = '';
  count = 0;

  constructor(private readonly home: SmdHome, readonly endpoint: string, readonly direction: SyncDirection, readonly run: string = new Date().toISOString()) {
    // The run file is emptied at the start of every run: a hook of a run that changed nothing sees no record.
    this.runFd = openSync(home.runJournal(endpoint), 'w', 0o600);
  }

  get runFile(): string { return this.home.runJournal(this.endpoint); }

  append(e: JournalEntry): void {
    const r: JournalRecord = { run: this.run, endpoint: this.endpoint, direction: this.direction, ...e };
    this.batch += `${JSON.stringify(r)}\n`;
    this.count += 1;
    if (this.batch.length >= 64 * 1024) this.flush();
  }

  flush(): void {
    if (this.batch === '') return;
    const b = this.batch;
    this.batch = '';
    this.journal ??= new RotatingLog(this.home.journal(this.endpoint), JOURNAL_ROTATION);
    this.journal.write(b);
    try { writeSync(this.runFd, b); } catch { /* full disk: the sync goes on */ }
  }

  close(): void {
    this.flush();
    this.journal?.close();
    closeSync(this.runFd);
  }
}

export function isJournalRecord(v: unknown): v is JournalRecord {
  if (!isJournalEntry(v)) return false;
  const r = v as unknown as Record<string, unknown>;
  return typeof r.run === 'string' && typeof r.endpoint === 'string' && (r.direction === 'pull' || r.direction === 'push');
}

/** Parses journal text; malformed lines (a torn last line after a crash) are skipped. */
export function parseJournal(text: string): JournalRecord[] {
  const out: JournalRecord[] = [];
  for (const l of text.split('\n')) {
    if (l === '') continue;
    try {
      const v: unknown = JSON.parse(l);
      if (isJournalRecord(v)) out.push(v);
    } catch { /* torn line */ }
  }
  return out;
}

/** Every record of an endpoint's journal, oldest first (rotated files included). */
export function readJournal(home: SmdHome, endpoint: string): JournalRecord[] {
  const path = home.journal(endpoint);
  const files = [...Array.from({ length: JOURNAL_ROTATION.keep }, (_, i) => rotatedName(path, JOURNAL_ROTATION.keep - i)), path];
  const out: JournalRecord[] = [];
  for (const f of files) {
    let text: string;
    try { text = readFileSync(f, 'utf8'); } catch { continue; }
    for (const r of parseJournal(text)) out.push(r);
  }
  return out;
}
