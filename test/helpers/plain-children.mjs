/**
 * Loaded into every test process (.taprc node-arg, after tap's own imports):
 * programs the tests start run without tap's process tracker. tap starts
 * each test file with `--import @tapjs/processinfo`, which hooks every spawn
 * (process-on-spawn) to put itself in the child's NODE_OPTIONS, so each
 * program under test — and every Node program it starts in turn — loads it
 * too, with a module-hooks worker thread: `smd-client --version` takes 1.0 s
 * of CPU with it and 0.3 s without, an smd-pull starts three such processes,
 * and a child whose parent dies while it starts can wait forever in the
 * hooks' Atomics.wait. Coverage is off (.taprc), so nothing needs it.
 * What a test itself puts in NODE_OPTIONS is kept.
 */
const state = globalThis[Symbol.for('process-on-spawn@*:singletonId')];
const once = Symbol.for('smd-test-plain-children');
if (state !== undefined && globalThis[once] !== true) {
  globalThis[once] = true;
  state.listeners.push((o) => {
    const env = {};
    for (const [k, v] of Object.entries(o.env)) {
      if (k === 'SMD_TEST_PLAIN_NODE' || k.startsWith('_TAPJS_PROCESSINFO_')) continue;
      if (k === 'NODE_OPTIONS') {
        const kept = v.split(/\s+/).filter((a) => a !== '' && !/tapjs|^--no-warnings|^--enable-source-maps/.test(a));
        if (kept.length > 0) env.NODE_OPTIONS = kept.join(' ');
        continue;
      }
      env[k] = v;
    }
    o.env = env;
  });
}
