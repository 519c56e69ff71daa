/**
 * Programs under test without tap's process tracker. tap starts every test
 * file with `--import @tapjs/processinfo`, which hooks every spawn
 * (process-on-spawn) to put itself in the child's NODE_OPTIONS: each program
 * a test starts then loads it too, with a module-hooks worker thread. Measured
 * here: `smd-client --version` takes 1.0 s of CPU with it, 0.3 s without; and
 * a child whose parent dies while it starts waits forever in the hooks'
 * Atomics.wait. A spawn whose env has PLAIN_NODE set gets the env it was
 * given, without tap's additions (and without the marker).
 */
const MARK = 'SMD_TEST_PLAIN_NODE';

/** Add to a spawn's env: the program runs without tap's loader. */
export const PLAIN_NODE: Readonly<Record<string, string>> = { [MARK]: '1' };

interface SpawnOpts { env: Record<string, string> }
type State = { listeners: ((o: SpawnOpts) => void)[] };

const state = (globalThis as unknown as Record<symbol, State | undefined>)[Symbol.for('process-on-spawn@*:singletonId')];
const key = Symbol.for('smd-test-plain-node');
const g = globalThis as unknown as Record<symbol, boolean | undefined>;
// Once per process, after processinfo's own listener (which ran at start-up).
if (state !== undefined && g[key] !== true) {
  g[key] = true;
  state.listeners.push((o) => {
    if (o.env[MARK] !== '1') return;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(o.env)) {
      if (k === MARK || k.startsWith('_TAPJS_PROCESSINFO_')) continue;
      if (k === 'NODE_OPTIONS') {
        // Keep what the test itself put there; drop tap's --import/--loader and flags.
        const kept = v.split(/\s+/).filter((a) => a !== '' && !/tapjs|^--no-warnings|^--enable-source-maps/.test(a));
        if (kept.length > 0) env.NODE_OPTIONS = kept.join(' ');
        continue;
      }
      env[k] = v;
    }
    o.env = env;
  });
}
