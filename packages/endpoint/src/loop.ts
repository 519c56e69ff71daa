/** smd-loop's configuration: the `~/.smd/loop` file (upstream 6.7) and the jobs it names. */

export class LoopConfigError extends Error {
  override name = 'LoopConfigError';
  constructor(readonly file: string, readonly line: number | null, readonly reason: string) {
    super(line === null ? `${file}: ${reason}` : `${file}:${line}: ${reason}`);
  }
}

export interface LoopEntry {
  /** minutes between pulls (0: never) */
  pull: number;
  /** minutes between pushes (0: never) */
  push: number;
  endpoint: string;
  line: number;
}

export type LoopJobKind = 'pull' | 'push';

export interface LoopJob {
  kind: LoopJobKind;
  endpoint: string;
  /** program and arguments: `smd-pull -s <endpoint>` / `smd-push -s <endpoint>` */
  program: 'smd-pull' | 'smd-push';
  args: string[];
  /** the command line, for the log */
  key: string;
}

/**
 * Parses `~/.smd/loop`: lines whose first non-blank character is `#` and blank lines are
 * ignored; other lines are `pull-minutes push-minutes endpoint`. A file where nothing is
 * ever scheduled is an error (upstream would spin without sleeping, B9).
 */
export function parseLoopConfig(text: string, file: string): LoopEntry[] {
  const entries: LoopEntry[] = [];
  const lines = text.split('\n');
  for (let k = 0; k < lines.length; k++) {
    const l = lines[k].trim();
    if (l === '' || l.startsWith('#')) continue;
    const f = l.split(/\s+/);
    if (f.length !== 3) throw new LoopConfigError(file, k + 1, `expected "pull-minutes push-minutes endpoint", got "${l}"`);
    const [p, q, endpoint] = f;
    if (!/^[0-9]+$/.test(p) || !/^[0-9]+$/.test(q)) throw new LoopConfigError(file, k + 1, `minutes must be whole numbers (0 disables): "${l}"`);
    if (endpoint.includes('/') || endpoint === '.' || endpoint === '..') throw new LoopConfigError(file, k + 1, `invalid endpoint name "${endpoint}"`);
    entries.push({ pull: Number(p), push: Number(q), endpoint, line: k + 1 });
  }
  if (!entries.some((e) => e.pull > 0 || e.push > 0)) throw new LoopConfigError(file, null, 'nothing to do: no line schedules a pull or a push (all frequencies are 0)');
  return entries;
}

/** The job running `smd-pull -s <endpoint>` / `smd-push -s <endpoint>`. */
export function loopJob(kind: LoopJobKind, endpoint: string): LoopJob {
  const program = kind === 'pull' ? 'smd-pull' : 'smd-push';
  return { kind, endpoint, program, args: ['-s', endpoint], key: `${program} -s ${endpoint}` };
}
