#!/usr/bin/env node
// `npm run mutation [-- stryker options]`: StrykerJS on the pure core (see
// stryker.config.mjs and TESTING.md). SMD_MUTATE=path,path narrows the files
// mutated (results are merged through the incremental file).
import { spawnSync } from 'node:child_process';

const run = (cmd, args) => spawnSync(cmd, args, { stdio: 'inherit' }).status ?? 1;
// A fresh build first: the sandbox copies dist/, so tsc -b there only rebuilds what is mutated.
const status = run('npx', ['tsc', '-b']);
process.exit(status !== 0 ? status : run('npx', ['stryker', 'run', ...process.argv.slice(2)]));
