#!/usr/bin/env node
// Runs the tap suite and ends with the line CI reads: "N passed, N failed".
// Extra arguments go to tap (e.g. a test file to run alone).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

// tap compiles its plugin list into node_modules: after `npm ci` it must be
// rebuilt once, or the .taprc plugin change (no TypeScript plugin) is ignored.
const stamp = 'node_modules/.smd-tap-build-stamp';
const stale = !existsSync(stamp) || statSync(stamp).mtimeMs < statSync('.taprc').mtimeMs;
if (stale) {
  const b = spawnSync('npx', ['tap', 'build'], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (b.status !== 0) { process.stdout.write('tap build failed\n0 passed, 1 failed\n'); process.exit(1); }
  writeFileSync(stamp, '');
}

const args = ['tap', '--reporter=tap', ...process.argv.slice(2)];
const child = spawn('npx', args, { stdio: ['ignore', 'pipe', 'inherit'] });
let summary = null;
const rl = createInterface({ input: child.stdout });
rl.on('line', (line) => {
  process.stdout.write(line + '\n');
  const m = /^# \{ (.*) \}$/.exec(line.trim());
  if (m && /total:/.test(m[1])) {
    summary = Object.fromEntries(m[1].split(', ').map((kv) => kv.split(': ')).map(([k, v]) => [k, Number(v)]));
  }
});
child.on('close', (code) => {
  const s = summary ?? { total: 0, pass: 0, fail: 0 };
  const failed = (s.fail ?? 0) + (s.todo ? 0 : 0);
  const skipped = (s.skip ?? 0) + (s.todo ?? 0);
  const failCount = failed > 0 || code === 0 ? failed : Math.max(1, failed);
  process.stdout.write(`${s.pass ?? 0} passed, ${failCount} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  process.exit(code === 0 && failCount === 0 ? 0 : 1);
});
