/**
 * A seeded, bounded fuzz run (test/helpers/fuzz.ts): mutated recordings of
 * a real session fed to the client and the server sessions. No stack
 * trace, no hang, nothing written outside, nothing of the sentinel sent.
 * `SMD_FUZZ_SEED` / `SMD_FUZZ_CASES` change the seed and the number of
 * cases; bench/fuzz.mjs runs it without bounds.
 */
import t from 'tap';
import { type FuzzReport, fuzz, prepareWorld } from './helpers/fuzz.js';

const seed = Number(process.env.SMD_FUZZ_SEED ?? 20261201);
const scale = Number(process.env.SMD_FUZZ_CASES ?? 1);
/** Each side's share, sized for the CI budget (about a minute on 2 cores). */
const CLIENT_CASES = Math.round(1500 * scale);
const SERVER_CASES = Math.round(1000 * scale);
const SYMLINK_CASES = Math.round(300 * scale);

const describe = (r: FuzzReport): string => `${r.tried} cases in ${(r.ms / 1000).toFixed(1)} s, ${r.failures.length} failures; exits ${JSON.stringify(r.exits)}`;

const world = await prepareWorld(false);
t.teardown(() => world.dispose());

t.test(`client: ${CLIENT_CASES} mutated server streams (seed ${seed})`, async (t) => {
  const r = await fuzz(world, 'client', seed, CLIENT_CASES);
  t.comment(`fuzz client: ${describe(r)}`);
  t.equal(r.tried, CLIENT_CASES, 'every case ran');
  t.same(r.failures.slice(0, 5), [], 'no failure (the first ones, with their seed and case index)');
  t.ok(Object.keys(r.exits).length > 2, 'the mutations reach several outcomes');
});

t.test(`server: ${SERVER_CASES} mutated client streams (seed ${seed})`, async (t) => {
  const r = await fuzz(world, 'server', seed, SERVER_CASES);
  t.comment(`fuzz server: ${describe(r)}`);
  t.equal(r.tried, SERVER_CASES, 'every case ran');
  t.same(r.failures.slice(0, 5), [], 'no failure (the first ones, with their seed and case index)');
  t.ok(Object.keys(r.exits).length > 2, 'the mutations reach several outcomes');
});

t.test(`client with symlinks leading out of its mailbox: ${SYMLINK_CASES} cases`, async (t) => {
  const w = await prepareWorld(true);
  try {
    const r = await fuzz(w, 'client', seed + 1, SYMLINK_CASES);
    t.comment(`fuzz client with symlinks: ${describe(r)}`);
    t.same(r.failures.slice(0, 5), [], 'no failure');
  } finally {
    w.dispose();
  }
});
