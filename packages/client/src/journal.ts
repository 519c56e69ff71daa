/**
 * What the client tells about each action it applied: one `JOURNAL:` line
 * (protocol.md section 11) with the message's Subject, From and Date taken
 * from bytes it has anyway (the start of a message it received, or of the
 * local file it renamed or deleted: one small read, no transfer).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { type ByteString, fsPath, messageSummary, toUtf8 } from '@smd/maildir';
import type { JournalAction, JournalEntry, SessionLog } from '@smd/protocol';
import { folderOf } from './names.js';

/** The first bytes of a message read for its summary: headers beyond this are not looked at. */
export const HEAD_BYTES = 64 * 1024;

/** The start of a local message and its size, or null if it cannot be read. */
export function readHead(path: ByteString): { head: Buffer; size: number } | null {
  let fd: number;
  try { fd = openSync(fsPath(path), 'r'); } catch { return null; }
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.allocUnsafe(Math.min(size, HEAD_BYTES));
    let got = 0;
    while (got < head.length) {
      const n = readSync(fd, head, got, head.length - got, got);
      if (n <= 0) break;
      got += n;
    }
    return { head: head.subarray(0, got), size };
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

export interface JournalDetails {
  /** Local path it came from (moves, flag changes, copies). */
  readonly previous?: ByteString;
  readonly flags?: { readonly from: string; readonly to: string };
  readonly note?: string;
  /** The message's first bytes, if at hand; otherwise the file at the path is read (not in a dry run). */
  readonly head?: Uint8Array;
  readonly size?: number;
}

export class ClientJournal {
  private readonly home: ByteString;

  constructor(private readonly log: SessionLog, home: string, private readonly dryRun: boolean) {
    this.home = `${Buffer.from(home, 'utf8').toString('latin1')}/`;
  }

  /** A local path as the journal shows it: relative to the home directory. */
  private shown(p: ByteString): string {
    return toUtf8(p.startsWith(this.home) ? p.slice(this.home.length) : p);
  }

  /** Records `action` on the local file `path` (already applied, or, in a dry run, what would be). */
  record(action: JournalAction, path: ByteString, d: JournalDetails = {}): void {
    let head = d.head;
    let size = d.size;
    if (head === undefined && !this.dryRun) {
      const h = readHead(path);
      if (h !== null) { head = h.head; size ??= h.size; }
    }
    const s = head !== undefined ? messageSummary(head) : null;
    const e: JournalEntry = {
      time: new Date().toISOString(),
      action,
      path: this.shown(path),
      folder: this.shown(folderOf(path)),
      ...(d.previous !== undefined ? { previous: this.shown(d.previous) } : {}),
      ...(d.flags !== undefined ? { flags: d.flags } : {}),
      ...(s?.subject != null ? { subject: s.subject } : {}),
      ...(s?.from != null ? { sender: s.from } : {}),
      ...(s?.date != null ? { date: s.date } : {}),
      ...(size !== undefined ? { size } : {}),
      ...(d.note !== undefined ? { note: d.note } : {}),
      ...(this.dryRun ? { dryRun: true } : {}),
    };
    this.log.journal(e);
  }
}
