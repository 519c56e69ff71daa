#!/usr/bin/env node
// Stryker's build command, run inside its sandbox copy of the project
// (<root>/.stryker-tmp/sandbox-*): gives the sandbox its own node_modules in
// which @smd/* point to the SANDBOX packages (the checkout's node_modules/@smd
// links resolve to the checkout's packages, which are not mutated), every
// other entry linking to the checkout's, then compiles the mutated sources.
import { existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';

const sandbox = process.cwd();
const origin = resolve(sandbox, '..', '..');
const nm = join(sandbox, 'node_modules');
if (!existsSync(nm)) {
  mkdirSync(nm);
  for (const e of readdirSync(join(origin, 'node_modules'))) {
    if (e !== '@smd') symlinkSync(join(origin, 'node_modules', e), join(nm, e));
  }
  mkdirSync(join(nm, '@smd'));
  for (const p of readdirSync(join(origin, 'node_modules', '@smd'))) symlinkSync(join('..', '..', 'packages', p), join(nm, '@smd', p));
}
const r = spawnSync(join(origin, 'node_modules', '.bin', 'tsc'), ['-b'], { stdio: 'inherit' });
process.exit(r.status ?? 1);
