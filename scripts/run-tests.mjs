#!/usr/bin/env node
// Runs the tap suite and ends with the line CI reads: "N passed, N failed".
// Extra arguments go to tap (e.g. a test file to run alone).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

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
