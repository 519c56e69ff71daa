/**
 * ARCHITECTURE.md's rule, checked: every package imports only the @smd
 * packages it declares, each of them listed above it in the table
 * ("dependencies only point down this list", so no cycles), and the table's
 * "depends on" column says what the sources really import.
 */
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers/maildir-fixture.js';

const rows = readFileSync(join(ROOT, 'ARCHITECTURE.md'), 'utf8').split('\n')
  .map((l) => /^\| `@smd\/([a-z]+)` \|.*\| ([^|]+) \|$/.exec(l))
  .filter((m): m is RegExpExecArray => m !== null)
  .map((m) => ({ name: m[1], dependsOn: m[2].trim() }));
const order = rows.map((r) => r.name);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

t.test('the table lists every package once', async (t) => {
  t.same([...order].sort(), readdirSync(join(ROOT, 'packages')).sort());
});

for (const { name, dependsOn } of rows) {
  t.test(`@smd/${name}`, async (t) => {
    const dir = join(ROOT, 'packages', name);
    const declared = Object.keys((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {})
      .filter((d) => d.startsWith('@smd/')).map((d) => d.slice(5));
    const imported = new Set<string>();
    const src = join(dir, 'src');
    for (const f of statSync(src, { throwIfNoEntry: false })?.isDirectory() === true ? sources(src) : []) {
      for (const m of readFileSync(f, 'utf8').matchAll(/from '@smd\/([a-z]+)[^']*'|import\('@smd\/([a-z]+)[^']*'\)/g)) imported.add(m[1] ?? m[2]);
    }
    imported.delete(name);
    for (const d of imported) {
      t.ok(declared.includes(d), `imports @smd/${d}, declared in its package.json`);
      t.ok(order.indexOf(d) < order.indexOf(name), `@smd/${d} is above @smd/${name} in the table`);
    }
    if (dependsOn !== 'all') {
      const listed = dependsOn === '—' ? [] : dependsOn.split(',').map((s) => s.trim());
      t.same([...imported].sort(), [...listed].sort(), 'the "depends on" column is what the sources import');
    }
  });
}
