/**
 * An independent oracle of Maildir durability from `strace -f -y` output:
 * every temp file placed under its name (renameat2 or link of a
 * `.smd-part`) must have been made durable first — an fsync of it that
 * ended before the placement, or a syncfs that started after the file was
 * closed and ended before the placement. The order is the order of the
 * trace lines (strace serializes the events of all threads: a call another
 * thread interrupts shows as `<unfinished ...>` at its entry and
 * `<... resumed>` at its exit).
 */
export interface PlacementCheck {
  placed: number;
  /** Placements not preceded by a sync that covers them, with why. */
  undurable: string[];
  syncfs: number;
  fsync: number;
}

const LINE = /^(\d+)\s+(?:(\w+)\((.*)|<\.\.\. (\w+) resumed>(.*))$/;
const FD_PATH = /^\d+<([^>]*)>/;

export function checkPlacements(trace: string, marker = '.smd-part'): PlacementCheck {
  const closedAt = new Map<string, number>();
  const fsyncedAt = new Map<string, number>();
  const syncfs: Array<[number, number]> = [];
  const pending = new Map<number, { call: string; args: string; at: number }>();
  const placements: Array<{ path: string; at: number }> = [];
  let fsync = 0;
  const lines = trace.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = LINE.exec(lines[i]);
    if (m === null) continue;
    const tid = Number(m[1]);
    let call: string;
    let args: string;
    let start: number;
    let rest: string;
    if (m[2] !== undefined) {
      call = m[2];
      if (m[3].endsWith('<unfinished ...>')) { pending.set(tid, { call, args: m[3], at: i }); continue; }
      args = m[3];
      start = i;
      rest = m[3];
    } else {
      const p = pending.get(tid);
      pending.delete(tid);
      if (p === undefined || p.call !== m[4]) continue;
      call = p.call;
      args = p.args;
      start = p.at;
      rest = m[5];
    }
    const ok = / = 0(?:<[^>]*>)?\s*$/.test(rest);
    const fdPath = FD_PATH.exec(args)?.[1];
    switch (call) {
      case 'close': if (fdPath?.endsWith(marker)) closedAt.set(fdPath, i); break;
      case 'fsync': case 'fdatasync': if (ok && fdPath?.endsWith(marker)) { fsyncedAt.set(fdPath, i); fsync++; } break;
      case 'syncfs': if (ok) syncfs.push([start, i]); break;
      case 'renameat2': case 'link': case 'rename': {
        const from = /"([^"]*)"/.exec(args)?.[1];
        if (ok && from?.endsWith(marker)) placements.push({ path: from, at: start });
        break;
      }
    }
  }
  const undurable: string[] = [];
  for (const { path, at } of placements) {
    const f = fsyncedAt.get(path);
    if (f !== undefined && f < at) continue;
    const closed = closedAt.get(path);
    if (closed !== undefined && closed < at && syncfs.some(([s, e]) => s > closed && e < at)) continue;
    undurable.push(`${path}: placed at line ${at + 1}, closed at ${closed === undefined ? 'never' : closed + 1}, no fsync or later syncfs before`);
  }
  return { placed: placements.length, undurable, syncfs: syncfs.length, fsync };
}
