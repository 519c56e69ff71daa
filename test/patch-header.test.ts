/**
 * The header of a db-file patch (@smd/protocol patch.ts) at its boundaries,
 * through every applier: the xdelta3 magic byte by byte, an empty first line,
 * the ops line's limit, MAX_DB_FILE written out. Written for the survivors of
 * the mutation run of patch.ts (TESTING.md), whose test files these are with
 * patch.test.ts.
 */
import t from 'tap';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PATCH_MAGIC } from '@smd/protocol';
import { dbl, patchOf, refusals, sha1 } from './helpers/db-patch-fixture.js';

const dirs: string[] = [];
t.teardown(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const tmp = (): string => { const d = mkdtempSync(join(tmpdir(), 'smd-patch-header-')); dirs.push(d); return d; };

t.test('the header at its boundaries: the xdelta3 magic byte by byte, an empty first line, the ops line, MAX_DB_FILE', async (t) => {
  const d = tmp();
  const old = Buffer.from(dbl(1), 'latin1');
  const from = sha1(old);
  const notSmd = (how: string): string => `not an smd db-file patch (${how}, expected "${PATCH_MAGIC}")`;
  const xdelta = 'this is an xdelta3 (VCDIFF) patch, as upstream syncmaildir sends, not an smd db-file patch';
  // Two bytes that are not the magic's start are refused at once, not waited for.
  t.same(await refusals(d, old, Buffer.from('xy'), 1), [notSmd('it starts with "xy"'), notSmd('it starts with "xy"'), notSmd('it starts with "x"')], 'two bytes of garbage');
  // The xdelta3 magic is D6 C3 C4: each byte is checked, and only the first ones are waited for.
  t.same(await refusals(d, old, Buffer.from([0x41, 0xc3, 0xc4, 0x0a]), 1),
    [notSmd('first line "A\u00c3\u00c4"'), notSmd('first line "A\u00c3\u00c4"'), notSmd('it starts with "A"')], 'its last two bytes after another first one: not xdelta3');
  t.same(await refusals(d, old, Buffer.from([0xd6, 0x41, 0xc4, 0x0a]), 1),
    [notSmd('first line "\u00d6A\u00c4"'), notSmd('first line "\u00d6A\u00c4"'), notSmd('it starts with "\u00d6A"')], 'its first and third bytes around another: not xdelta3, refused at the second byte');
  t.same(await refusals(d, old, Buffer.from([0xd6, 0x41]), 2), Array(3).fill(notSmd('it starts with "\u00d6A"')), 'D6 then another byte, whole: refused, not incomplete');
  t.same(await refusals(d, old, Buffer.from([0xd6, 0xc3, 0xc4]), 1), Array(3).fill(xdelta), 'the three bytes of the magic and nothing more: xdelta3');
  // An empty first line: said so, whatever follows it (the line is complete at byte 0).
  const emptyFirst = Buffer.from(`\n${'x'.repeat(250)}\n`, 'latin1');
  t.same(await refusals(d, old, emptyFirst), Array(3).fill(notSmd('first line ""')), 'an empty first line, then a long one');
  // The ops line has its limit too, and its name in the message.
  const to = sha1('x');
  t.same(await refusals(d, old, Buffer.from(`${PATCH_MAGIC}\nfrom ${from}\nto ${to} 1\nops ${'p'.repeat(197)}\n`)), Array(3).fill('malformed db-file patch: the ops line is longer than 200 bytes'), 'a 201-byte ops line');
  // MAX_DB_FILE is what one Buffer holds: 2^31 - 1, written out (the test must not take the product's constant for it).
  t.same((await refusals(d, old, patchOf(from, to, 2147483648, 'plain', Buffer.from('=1\n'))))[0],
    'the db-file patch announces a db-file of 2147483648 bytes, more than the 2147483647 a db-file may have: refused', '2^31 bytes: refused by the header');
  t.match((await refusals(d, old, patchOf(from, to, 2147483647, 'plain', Buffer.from('=1\n'))))[0], /cannot turn/, '2^31 - 1 bytes: past that check');
  t.same(readdirSync(d).sort(), ['db'], 'nothing written');
});
