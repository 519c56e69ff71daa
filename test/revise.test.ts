/**
 * reviseDbNew (protocol.md 5.1): the names a run skipped keep their previous
 * agreement in `<db>.new`, the stat cache stays consistent, and the next scan
 * reads those files again — checked with a real scan (diffMaildir) and an
 * independent oracle (the sorted lines).
 */
import t from 'tap';
import { existsSync, readFileSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { diffMaildir, formatCommand, loadStatCache, reviseDbNew, type DiffCommand } from '@smd/snapshot';
import { tempDir, sha1 } from './helpers/maildir-fixture.js';
import { deliver } from './helpers/sync-fixture.js';

function scan(dir: string, db: string): string[] {
  const prev = process.cwd();
  process.chdir(dir);
  try {
    const it = diffMaildir({ roots: ['Mail'], dbFile: db });
    const out: DiffCommand[] = [];
    for (let s = it.next(); s.done !== true; s = it.next()) out.push(s.value);
    return out.map(formatCommand);
  } finally {
    process.chdir(prev);
  }
}
const lines = (f: string): string[] => readFileSync(f, 'latin1').split('\n').filter((l) => l !== '').sort();
const commit = (db: string): void => {
  renameSync(`${db}.new`, db);
  renameSync(`${db}.mtime.new`, `${db}.mtime`);
  if (existsSync(`${db}.stat-cache.new`)) renameSync(`${db}.stat-cache.new`, `${db}.stat-cache`);
};

t.test('skipped names keep their old lines; the stat cache follows; the next scan sees the changes again', async (t) => {
  const d = tempDir(t, 'smd-revise-');
  const db = join(d, 'db.txt');
  const [a, b, c] = [deliver(d, 'Mail'), deliver(d, 'Mail'), deliver(d, 'Mail')];
  scan(d, db);
  commit(db);
  const agreed = lines(db);

  // b replaced in place (old mtime kept: only hashing would notice), c renamed, e new.
  writeFileSync(join(d, b), 'Subject: changed\n\nnew body\n');
  const old = new Date(Date.now() - 86_400_000);
  utimesSync(join(d, b), old, old);
  renameSync(join(d, c), join(d, `${c}S`));
  const e = deliver(d, 'Mail');
  const diff = scan(d, db);
  t.ok(diff.some((l) => l.startsWith(`REPLACE ${b} `)) && diff.some((l) => l.startsWith(`MOVE ${c} `)) && diff.some((l) => l.startsWith(`ADD ${e} `)), diff.join('\n'));
  const sha = sha1(readFileSync(`${db}.new`));
  const count = lines(`${db}.new`).length;
  t.ok(loadStatCache(db, sha, count) !== null, 'the scan wrote a stat cache for db.new');

  // The client skipped the REPLACE of b and the MOVE c → cS; the ADD of e went through.
  const changed = reviseDbNew(db, new Set([b, c, `${c}S`]));
  t.equal(changed, 4, 'two lines removed, two old lines brought back');
  const revised = lines(`${db}.new`);
  t.same(revised.filter((l) => !l.endsWith(` ${e}`)), agreed, 'for everything but e, db.new says what the old db-file said');
  t.ok(revised.some((l) => l.endsWith(` ${e}`)), 'the change that went through is kept');
  t.notOk(revised.some((l) => l.endsWith(` ${c}S`)), 'the skipped target is not claimed');
  const cache = loadStatCache(db, sha1(readFileSync(`${db}.new`)), revised.length);
  t.ok(cache !== null, 'the stat cache belongs to the revised db.new');
  t.equal([...cache!.ino].filter((x) => x === -1).length, 2, 'the lines brought back have an entry that matches no file');
  t.same(reviseDbNew(db, new Set(['Mail/cur/not-there'])), 0, 'a name in neither file changes nothing');

  commit(db);
  const next = scan(d, db);
  t.ok(next.some((l) => l.startsWith(`REPLACE ${b} `)), 'the skipped REPLACE is seen again (the file is read again despite its old mtime)');
  t.ok(next.some((l) => l.startsWith(`MOVE ${c} `) && l.endsWith(` TO ${c}S`)), 'the skipped MOVE is seen again');
  t.notOk(next.some((l) => l.includes(e)), 'the applied ADD is not');
  t.ok(existsSync(join(d, a)));
});

t.test('without a stat cache, .mtime.new becomes 0: no file is trusted by its mtime', async (t) => {
  const d = tempDir(t, 'smd-revise-');
  const db = join(d, 'db.txt');
  const a = deliver(d, 'Mail');
  writeFileSync(db, '');
  scan(d, db);
  for (const f of [`${db}.stat-cache.new`]) if (existsSync(f)) renameSync(f, `${f}.gone`);
  reviseDbNew(db, new Set([a]));
  t.equal(readFileSync(`${db}.mtime.new`, 'latin1'), '0');
  t.same(lines(`${db}.new`), [], 'the skipped ADD is not claimed');
});
