/**
 * What the user sees while a sync runs. With -v the client's PROGRESS lines
 * are echoed (prefix stripped), as upstream. On a terminal, without TAGS, a
 * single status line is redrawn from the client's `PROGRESS: transfer ...`
 * lines (messages and bytes done / to do, rate). Otherwise: silence.
 */
export class ProgressView {
  private readonly live: boolean;
  private shown = false;
  private readonly started = Date.now();

  constructor(private readonly direction: 'pull' | 'push', private readonly verbose: boolean, showTags: boolean,
    private readonly out: NodeJS.WriteStream = process.stdout) {
    this.live = ProgressView.wanted(verbose, showTags, out);
  }

  /** Whether a live progress line will be drawn (the client must then log PROGRESS lines). */
  static wanted(verbose: boolean, showTags: boolean, out: NodeJS.WriteStream = process.stdout): boolean {
    return !verbose && !showTags && out.isTTY === true;
  }

  line(l: string): void {
    if (!l.startsWith('PROGRESS: ')) return;
    const text = l.slice(10);
    if (this.verbose) { this.out.write(`${text}\n`); return; }
    if (!this.live) return;
    const m = /^transfer (\d+)\/(\d+) messages, (\d+)\/(\d+) bytes/.exec(text);
    if (!m) return;
    const secs = Math.max(0.001, (Date.now() - this.started) / 1000);
    const mib = (n: number): string => (n / 1048576).toFixed(1);
    const rate = Number(m[3]) / 1048576 / secs;
    const status = `smd-${this.direction}: ${m[1]}/${m[2]} messages, ${mib(Number(m[3]))}/${mib(Number(m[4]))} MiB, ${rate.toFixed(1)} MiB/s`;
    this.out.write(`\r\x1b[K${status}`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) { this.out.write('\r\x1b[K'); this.shown = false; }
  }
}
