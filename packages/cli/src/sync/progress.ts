/**
 * What the user sees while a sync runs. With -v the client's PROGRESS lines
 * are echoed (prefix stripped), as upstream. On a terminal, without -v/-s,
 * one status line is redrawn from the client's PROGRESS lines: "scanning…"
 * while the server still sends changes (the number of messages to fetch is
 * not known yet, and no total is made up), then messages done / total,
 * percentage, bytes, the current rate (over the last seconds, not the
 * average since the start) and an ETA. The line never wraps: it is cut to
 * the terminal's width. Not a terminal: silence.
 */

export interface ProgressState {
  /** `scanning` until the client has all the changes, then `transfer`, then `finishing`. */
  readonly phase: 'scanning' | 'transfer' | 'finishing';
  readonly done: number;
  /** Messages requested so far (the total once phase is not `scanning`). */
  readonly requested: number;
  readonly bytes: number;
}

export interface RateSample { readonly at: number; readonly bytes: number; readonly done: number }

/** Samples older than this do not count for the current rate. */
const RATE_WINDOW_MS = 5000;

/** Bytes and messages per second over the samples of the last RATE_WINDOW_MS (null: not enough samples). */
export function currentRate(samples: readonly RateSample[], now: number): { bytes: number; messages: number } | null {
  const recent = samples.filter((s) => now - s.at <= RATE_WINDOW_MS);
  if (recent.length === 0) return samples.length > 0 ? { bytes: 0, messages: 0 } : null;
  // The window starts at the last sample before it (or its first sample): rates over at least one interval.
  const older = samples.filter((s) => now - s.at > RATE_WINDOW_MS);
  const first = older.length > 0 ? older[older.length - 1] : recent[0];
  const last = samples[samples.length - 1];
  const secs = (now - first.at) / 1000;
  if (secs < 0.5) return null;
  return { bytes: (last.bytes - first.bytes) / secs, messages: (last.done - first.done) / secs };
}

const mib = (n: number): string => (n >= 1024 * 1024 * 1024 ? `${(n / 1024 ** 3).toFixed(2)} GiB` : `${(n / 1048576).toFixed(1)} MiB`);

function clock(secs: number): string {
  const s = Math.round(secs);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** The status line (without width limit); the least useful parts last, as a narrow terminal cuts the end. */
export function statusLine(who: string, st: ProgressState, rate: { bytes: number; messages: number } | null): string {
  const at = rate !== null ? ` at ${mib(rate.bytes)}/s` : '';
  if (st.phase === 'scanning') {
    return st.done === 0 && st.requested === 0
      ? `${who}: scanning…`
      : `${who}: scanning… ${st.done} messages received, ${mib(st.bytes)}${at}`;
  }
  if (st.requested === 0) return `${who}: nothing to fetch, finishing…`;
  if (st.phase === 'finishing') return `${who}: ${st.done}/${st.requested} messages, ${mib(st.bytes)}, finishing…`;
  const pct = Math.floor((100 * st.done) / st.requested);
  let eta = '';
  if (rate !== null) eta = rate.messages > 0 ? `, ETA ${clock((st.requested - st.done) / rate.messages)}` : ', stalled';
  return `${who}: ${st.done}/${st.requested} messages (${pct}%)${eta}, ${mib(st.bytes)}${at}`;
}

/** Cut to fit `columns` (one column left free: writing the last one wraps on some terminals). */
export function fit(line: string, columns: number | undefined): string {
  const max = Math.max(10, (columns !== undefined && columns > 0 ? columns : 80) - 1);
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}

const TRANSFER = /^transfer (\d+)\/(\d+) messages, (\d+)\/(\d+) bytes/;

export class ProgressView {
  private readonly live: boolean;
  private shown = false;
  private state: { phase: ProgressState['phase']; done: number; requested: number; bytes: number } = { phase: 'scanning', done: 0, requested: 0, bytes: 0 };
  private samples: RateSample[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly who: string;

  constructor(direction: 'pull' | 'push', endpoint: string, private readonly verbose: boolean, showTags: boolean,
    private readonly out: NodeJS.WriteStream = process.stdout, private readonly now: () => number = Date.now) {
    this.live = ProgressView.wanted(verbose, showTags, out);
    this.who = `smd-${direction} ${endpoint}`;
  }

  /** Whether a live progress line will be drawn (the client must then log PROGRESS lines). */
  static wanted(verbose: boolean, showTags: boolean, out: NodeJS.WriteStream = process.stdout): boolean {
    return !verbose && !showTags && out.isTTY === true;
  }

  /** Draws "scanning…" and keeps the line current (the rate decays when nothing arrives). */
  start(): void {
    if (!this.live) return;
    this.draw();
    this.timer = setInterval(() => this.draw(), 1000);
    this.timer.unref();
  }

  /** A stderr line of the program that runs smd-client. */
  line(l: string): void {
    if (!l.startsWith('PROGRESS: ')) return;
    const text = l.slice(10);
    if (this.verbose) { this.out.write(`${text}\n`); return; }
    if (!this.live) return;
    const m = TRANSFER.exec(text);
    if (m !== null) {
      this.state.done = Number(m[1]);
      this.state.requested = Number(m[2]);
      this.state.bytes = Number(m[3]);
      this.samples.push({ at: this.now(), bytes: this.state.bytes, done: this.state.done });
      const cutoff = this.now() - 2 * RATE_WINDOW_MS;
      while (this.samples.length > 2 && this.samples[1].at < cutoff) this.samples.shift();
    } else if (text.startsWith('Phase 2')) {
      this.state.phase = 'transfer';
    } else if (text.startsWith('Phase 3')) {
      this.state.phase = 'finishing';
    } else {
      return;
    }
    this.draw();
  }

  private draw(): void {
    if (!this.live) return;
    const status = statusLine(this.who, this.state, currentRate(this.samples, this.now()));
    this.out.write(`\r\x1b[K${fit(status, this.out.columns)}`);
    this.shown = true;
  }

  clear(): void {
    if (this.timer !== null) { clearInterval(this.timer); this.timer = null; }
    if (this.shown) { this.out.write('\r\x1b[K'); this.shown = false; }
  }
}
