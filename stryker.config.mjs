// Mutation testing of the pure core (`npm run mutation`; slow, never in CI).
// See TESTING.md for how to read and update the scores.
//
// - Sandbox with its own node_modules: the tests import the workspace
//   packages by name, and the checkout's node_modules/@smd links lead back
//   to the checkout's (unmutated) packages; scripts/mutation-sandbox.mjs (the
//   build command) links @smd/* to the sandbox packages instead and runs
//   `tsc -b` on the mutated sources.
// - No TypeScript checker: @stryker-mutator/typescript-checker needs the
//   TypeScript compiler API, which TypeScript 7 (ours) no longer has; mutants
//   that do not type-check run anyway and are killed or survive on behaviour.
// - The tap runner runs each test file as `node --import=tsx FILE`, and with
//   perTest coverage only the files that reach a mutant are run for it.
// Each module of the pure core and the test files that reach it in-process
// (a mutant only counts as covered by code the test process itself runs).
const testsOf = {
  'packages/client/src/policy.ts': ['test/client-policy.test.ts'],
  'packages/client/src/brake.ts': ['test/brake.test.ts'],
  'packages/client/src/flags.ts': ['test/flags.test.ts', 'test/client-policy.test.ts'],
  'packages/client/src/names.ts': ['test/client-policy.test.ts'],
  'packages/maildir/src/roots.ts': ['test/mailbox-roots.test.ts'],
  'packages/protocol/src/wire.ts': ['test/wire.test.ts'],
  'packages/protocol/src/patch.ts': ['test/patch.test.ts', 'test/patch-header.test.ts'],
  'packages/protocol/src/handshake.ts': ['test/wire.test.ts'],
  'packages/endpoint/src/loop-schedule.ts': ['test/loop-schedule.test.ts'],
  'packages/snapshot/src/diff.ts': ['test/snapshot.test.ts'],
  'packages/snapshot/src/dbfile.ts': ['test/dbfile.test.ts', 'test/dbfile-read.test.ts', 'test/dbfile-read-js.test.ts'],
};
// SMD_MUTATE=path,path narrows the modules (and so the test files run);
// SMD_MUTATE_TESTS=file,file overrides the test files.
const scope = process.env.SMD_MUTATE ? process.env.SMD_MUTATE.split(',') : Object.keys(testsOf);
const testFiles = process.env.SMD_MUTATE_TESTS
  ? process.env.SMD_MUTATE_TESTS.split(',')
  : [...new Set(scope.flatMap((m) => testsOf[m] ?? []))];
// Results (incremental file, reports) per scope: a narrowed run keeps only
// its own modules' results, so runs of different modules do not overwrite
// each other and may run side by side.
const runName = process.env.SMD_MUTATE
  ? scope.map((m) => m.replace(/^packages\/|\.ts$/g, '').replace(/\/src\//, '-').replace(/\//g, '-')).join('+')
  : 'all';
if (testFiles.length === 0) throw new Error(`no test files known for ${scope.join(', ')}: add them to testsOf or set SMD_MUTATE_TESTS`);

export default {
  packageManager: 'npm',
  plugins: ['@stryker-mutator/tap-runner'],
  testRunner: 'tap',
  tap: {
    testFiles,
    nodeArgs: ['--import=tsx'],
    forceBail: true,
  },
  buildCommand: 'node scripts/mutation-sandbox.mjs',
  symlinkNodeModules: false,
  // Stryker rewrites the sandbox tsconfig's project references with the
  // TypeScript API (absent from TypeScript 7); ours are relative and need no
  // rewrite, so it is pointed at a file that does not exist.
  tsconfigFile: 'no-tsconfig-rewrite.json',
  ignorePatterns: ['bench/out', 'reports', '.tap', 'tmp', '.stryker-tmp*'],
  mutate: scope,
  coverageAnalysis: 'perTest',
  incremental: true,
  incrementalFile: `reports/mutation/${runName}.incremental.json`,
  // 2 shared cores: SMD_MUTATE_CONCURRENCY=1 when the machine is busy.
  concurrency: Number(process.env.SMD_MUTATE_CONCURRENCY ?? 2),
  timeoutMS: 20000,
  timeoutFactor: 2,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${runName}.html` },
  jsonReporter: { fileName: `reports/mutation/${runName}.json` },
  clearTextReporter: { allowColor: false, logTests: false, reportMutants: false, reportScoreTable: true },
  thresholds: { high: 90, low: 85, break: null },
  // One level below the checkout (scripts/mutation-sandbox.mjs finds it at ../..), one per scope.
  tempDirName: `.stryker-tmp-${runName}`,
};
