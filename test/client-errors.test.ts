/**
 * The real error, never "Internal error" (issue "Trust in daily use",
 * section 4): whatever the server sends after valid lines, the client reports
 * that line's problem with its own TAGS, and no stack trace.
 */
import t from 'tap';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAgainst, addLine } from './helpers/fake-server.js';

function home(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'smd-client-errors-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const msg = (i: number): string => `Subject: ${i}\n\nbody ${i}\n`;

t.test('valid lines, then a bad one: the bad line is what the user reads', async (t) => {
  const good = Array.from({ length: 300 }, (_, i) => addLine(`Mail/cur/${i}`, msg(i)));
  const files = new Map(Array.from({ length: 300 }, (_, i) => [`Mail/cur/${i}`, msg(i)] as [string, string]));
  const bad: Array<[string, string, RegExp, RegExp, number]> = [
    ['refused name', addLine('Mail/cur/../../x', msg(1)), /unacceptable name "Mail\/cur\/\.\.\/\.\.\/x"/, /context\(receive-delta\) probable-cause\(hostile-or-broken-server\) human-intervention\(necessary\)/, 6],
    ['malformed line', 'FROB Mail/cur/x', /malformed diff line/, /context\(receive-delta\) probable-cause\(hostile-or-broken-server\)/, 6],
    ['overlong line', `ADD ${'x'.repeat(20000)}`, /overlong diff line/, /context\(receive-delta\) probable-cause\(hostile-or-broken-server\)/, 6],
    ['an ERROR line', 'ERROR Unable to open directory Mail/.Gone: ENOENT', /mddiff failed: Unable to open directory/, /context\(mddiff\) probable-cause\(directory-disappeared\)/, 3],
  ];
  await Promise.all(bad.map(async ([what, line, message, tags, code]) => {
    for (const at of [0, 150, 300]) {
      const h = home(t);
      const diff = [...good.slice(0, at), line, ...good.slice(at)];
      const r = await runAgainst({ home: h, args: ['laptop', 'Mail'], script: { diff, files, replyDelayMs: at === 150 ? 1 : 0 } });
      t.equal(r.status, code, `${what} after ${at} valid lines: exit ${code}`);
      t.match(r.stderr, message, `${what} after ${at}: the message says what was wrong`);
      t.match(r.stderr, tags, `${what} after ${at}: its own TAGS`);
      t.notMatch(r.stderr, /Internal error|session aborted|\n\s+at /, `${what} after ${at}: no internal error, no stack trace`);
      t.notOk(r.requests.includes('COMMIT'), `${what} after ${at}: nothing committed`);
      t.notOk(existsSync(join(h, 'x')), `${what}: nothing written outside`);
    }
  }));
});
