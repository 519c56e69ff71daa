/**
 * The report smd-pull / smd-push print at the end (upstream 6.4), computed
 * from the two programs' logs. Pure: logs in, lines out.
 */
import { formatErrorTags } from '@smd/protocol';
import type { TransportFailure } from '@smd/transport';
import { type ActionCounts, describeCounts } from './summary.js';

export interface ReportInput {
  direction: 'pull' | 'push';
  endpoint: string;
  serverName: string;
  /** the run failed (a program, ssh or a hook) */
  failed: boolean;
  verbose: boolean;
  showTags: boolean;
  /** lines of the remote program's log (server.<endpoint>.log) */
  remoteLog: readonly string[];
  /** lines of the local program's log (client.<endpoint>.log) */
  localLog: readonly string[];
  /** the transport's failure (ssh could not reach or keep the remote program), classified */
  transport?: TransportFailure | null;
  /** how the remote side was reached, for the messages: `ssh`, `ssh2` */
  via?: string;
}

export interface Report {
  lines: string[];
  /** the stats TAGS line of the client, if any */
  stats: Stats | null;
}

export interface Stats {
  newMails: number;
  delMails: number;
  bytesReceived: number;
  patchBytes: number;
  /** messages left for the next run (they changed during this one) */
  skipped: number;
}

const SYNTHETIC_NETWORK_TAGS = 'TAGS: error::context(ssh) probable-cause(network) human-intervention(avoidable) suggested-actions(retry)';

export function programs(direction: 'pull' | 'push'): { local: string; remote: string; inverse: string } {
  return direction === 'pull'
    ? { local: 'smd-client', remote: 'smd-server', inverse: 'smd-push' }
    : { local: 'smd-server', remote: 'smd-client', inverse: 'smd-pull' };
}

export function parseStats(line: string): Stats | null {
  const m = /^TAGS: stats::new-mails\((\d+)\), del-mails\((\d+)\), bytes-received\((\d+)\), xdelta-received\((\d+)\)/.exec(line);
  return m ? { newMails: Number(m[1]), delMails: Number(m[2]), bytesReceived: Number(m[3]), patchBytes: Number(m[4]), skipped: 0 } : null;
}

/** `TAGS: stats::skipped-mails(N)` → N, else null. */
export function parseSkipped(line: string): number | null {
  const m = /^TAGS: stats::skipped-mails\((\d+)\)/.exec(line);
  return m ? Number(m[1]) : null;
}

/**
 * The TAGS of a transport failure: only network trouble is `avoidable` with a
 * `retry` (smd-loop retries it); a host key, a refused login or a missing smd
 * need the user.
 */
export function transportTags(t: TransportFailure, host: string): string {
  if (t.transient) return formatErrorTags({ context: 'ssh', probableCause: 'network', humanIntervention: 'avoidable', suggestedActions: ['retry'] });
  return formatErrorTags({
    context: 'ssh',
    probableCause: t.kind === 'unknown' ? 'ssh' : t.kind,
    humanIntervention: 'necessary',
    suggestedActions: t.kind === 'host-key-unknown' ? [`run(ssh ${host})`] : [],
  });
}

/**
 * Indexes of the lines a vanished peer caused: a TAGS line with
 * probable-cause(network) and the ERROR line just before it (logFailure writes
 * them together). Once the transport's own failure is known they only repeat
 * it, and their `retry` would make smd-loop retry a failure that needs the user.
 */
function networkConsequences(log: readonly string[]): Set<number> {
  const out = new Set<number>();
  log.forEach((l, i) => {
    if (!l.startsWith('TAGS:') || !l.includes('probable-cause(network)')) return;
    out.add(i);
    if (i > 0 && log[i - 1]!.startsWith('ERROR')) out.add(i - 1);
  });
  return out;
}

export function buildReport(r: ReportInput): Report {
  const p = programs(r.direction);
  const out: string[] = [];
  const subst = (l: string): string =>
    l.replaceAll('@@INVERSECOMMAND@@', p.inverse).replaceAll('@@COMMAND@@', `smd-${r.direction}`).replaceAll('@@ENDPOINT@@', r.endpoint);
  const t = r.failed ? r.transport ?? null : null;
  const via = r.via ?? 'ssh';
  const hideRemote = t !== null ? networkConsequences(r.remoteLog) : new Set<number>();
  const hideLocal = t !== null ? networkConsequences(r.localLog) : new Set<number>();
  if (r.verbose) {
    for (const l of [...r.remoteLog, ...r.localLog]) if (l.startsWith('INFO: ')) out.push(l.slice(6));
  }
  // Warnings (e.g. messages skipped because a mail program changed them during the run) are shown on success too.
  for (const l of r.remoteLog) if (l.startsWith('WARNING: ')) out.push(`${p.remote}: ${l}`);
  for (const l of r.localLog) if (l.startsWith('WARNING: ')) out.push(`${p.local}: ${l}`);
  if (r.failed) {
    if (t !== null) {
      out.push(`${p.remote}: ERROR: ${via}: ${t.summary}`);
      for (const d of t.details) out.push(`${p.remote}: ERROR: ${via} said: ${d}`);
      if (t.action !== null) out.push(`${p.remote}: ERROR: what to do: ${t.action}`);
    }
    r.remoteLog.forEach((l, i) => {
      if (hideRemote.has(i)) return;
      if (l.startsWith('ERROR')) out.push(`${p.remote}: ${subst(l)}`);
      else if (l.startsWith('ssh:') && t === null) out.push(`${p.remote}: ERROR: ${l}`);
    });
    r.localLog.forEach((l, i) => { if (!hideLocal.has(i) && l.startsWith('ERROR')) out.push(`${p.local}: ${subst(l)}`); });
  }
  const remoteTags = r.remoteLog.filter((l, i) => l.startsWith('TAGS:') && !hideRemote.has(i));
  const localTags = r.localLog.filter((l, i) => l.startsWith('TAGS:') && !hideLocal.has(i));
  if (r.showTags) {
    const remotePrefix = `${r.endpoint}: ${p.remote}@${r.serverName}: `;
    if (t !== null) {
      for (const l of remoteTags) out.push(`${remotePrefix}${subst(l)}`);
      for (const l of localTags) out.push(`${r.endpoint}: ${p.local}@localhost: ${subst(l)}`);
      out.push(`${remotePrefix}${transportTags(t, r.serverName)}`);
    } else if (remoteTags.length === 0 && localTags.length === 0) {
      for (const l of r.remoteLog) out.push(l);
      for (const l of r.localLog) out.push(l);
      out.push(`${remotePrefix}${SYNTHETIC_NETWORK_TAGS}`);
    } else {
      for (const l of remoteTags) out.push(`${remotePrefix}${subst(l)}`);
      for (const l of localTags) out.push(`${r.endpoint}: ${p.local}@localhost: ${subst(l)}`);
    }
  }
  const clientTags = r.direction === 'pull' ? localTags : remoteTags;
  let stats: Stats | null = null;
  let skipped = 0;
  for (const l of clientTags) { stats = parseStats(l) ?? stats; skipped = parseSkipped(l) ?? skipped; }
  if (stats !== null) stats.skipped = skipped;
  return { lines: out, stats };
}

export type Outcome = 'done' | 'failed' | 'interrupted';

/**
 * The one summary line every run ends with. `counts`: what the client's
 * journal says was applied (null: it sent none; the stats TAGS line counts
 * new and deleted messages then).
 */
export function summaryLine(direction: 'pull' | 'push', endpoint: string, outcome: Outcome, stats: Stats | null, seconds: number,
  counts: ActionCounts | null = null, dryRun = false): string {
  const who = `smd-${direction} ${endpoint}`;
  const secs = seconds.toFixed(1);
  const c = counts ?? (stats !== null ? { ...ZERO, new: stats.newMails, deleted: stats.delMails } : null);
  const did = c !== null ? describeCounts(c) : null;
  const changed = c !== null && Object.values(c).some((n) => n > 0);
  if (outcome === 'interrupted') {
    return `${who}: INTERRUPTED after ${secs} s${changed ? `; applied before stopping (each change complete): ${did}` : '; nothing was changed'}; the next run goes on from there`;
  }
  if (outcome === 'failed') {
    return `${who}: FAILED after ${secs} s (details above and in ~/.smd/log/)${changed ? `; applied before stopping: ${did}` : ''}`;
  }
  if (dryRun) return `${who}: dry run done in ${secs} s, nothing changed; it would apply: ${did ?? 'nothing'}`;
  if (did === null || stats === null) return `${who}: done in ${secs} s${did !== null ? `: ${did}` : ''}`;
  const skipped = stats.skipped > 0 ? `, ${stats.skipped} skipped (changed during the run; the next run takes them)` : '';
  return `${who}: done in ${secs} s: ${did}, ${formatBytes(stats.bytesReceived)} received${skipped}`;
}

const ZERO: ActionCounts = { new: 0, deleted: 0, moved: 0, flags: 0, copied: 0, header: 0, replaced: 0, kept: 0, held: 0 };

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}
