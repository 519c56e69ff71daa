#!/usr/bin/env node
// The fuzz of test/hostile-fuzz.test.ts without its bounds: mutated recordings of a real
// session fed to the client and server sessions, seed after seed, until a case fails or
// the cases or the time run out. Needs tsx (the engine is test/helpers/fuzz.ts):
//
//   npm run build
//   node --import tsx bench/fuzz.mjs [--seed N] [--cases N] [--minutes M] [--side client|server|both] [--symlinks]
//
// --cases is per side and per seed (default 5000); without --minutes it runs one seed.
// A failure prints its seed and case index: `--seed S` with `--cases I+1` replays it.
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    cases: { type: 'string', default: '5000' },
    minutes: { type: 'string' },
    side: { type: 'string', default: 'both' },
    symlinks: { type: 'boolean', default: false },
  },
});
const { prepareWorld, fuzz } = await import('../test/helpers/fuzz.ts');
const sides = values.side === 'both' ? ['client', 'server'] : [values.side];
const cases = Number(values.cases);
const until = values.minutes !== undefined ? Date.now() + Number(values.minutes) * 60_000 : 0;
const world = await prepareWorld(values.symlinks);
let seed = Number(values.seed);
let tried = 0;
let failures = 0;
try {
  do {
    for (const side of sides) {
      const r = await fuzz(world, side, seed, cases, {
        onFailure: (f) => console.log(`FAIL ${f.side} seed ${f.seed} case ${f.index}: ${f.why}\n  mutations: ${f.mutations.join('; ')}`),
      });
      tried += r.tried;
      failures += r.failures.length;
      console.log(`seed ${seed} ${side}: ${r.tried} cases in ${(r.ms / 1000).toFixed(1)} s, ${r.failures.length} failures, exits ${JSON.stringify(r.exits)}`);
    }
    seed += 1;
  } while (Date.now() < until);
} finally {
  world.dispose();
}
console.log(`total: ${tried} cases tried, ${failures} failures`);
process.exit(failures > 0 ? 1 : 0);
