/**
 * DiffEngine.lookup: a cursor in db order answers a scan that meets the
 * names in that order (an unchanged mailbox) without building a name Map;
 * any other order or a name not in the db falls back to the Map, and the
 * cursor resynchronises after it. The answers are the same either way.
 */
import t from 'tap';
import { DiffEngine } from '@smd/snapshot';

const H = 'a'.repeat(40);
const names = Array.from({ length: 1000 }, (_, i) => `Mail/cur/${i}:2,S`);
const engine = (): DiffEngine => new DiffEngine({ names, headers: names.map(() => H), bodies: names.map(() => H) });
const mapOf = (e: DiffEngine): unknown => (e as unknown as { byName: unknown }).byName;

t.test('in db order: every name found by the cursor, no Map built', async (t) => {
  const e = engine();
  const got = names.map((n) => e.lookup(`${n.slice(0, 9)}${n.slice(9)}`)); // names built anew, as the scan does
  t.same(got, names.map((_, i) => i));
  t.equal(mapOf(e), null, 'no Map for an unchanged mailbox');
});

t.test('out of order, new names, repeated lookups: the same answers as a Map', async (t) => {
  const e = engine();
  const order = [0, 1, 2, 500, 501, 3, 999, 999, 998, 4, 5];
  const asked = [...order.map((i) => names[i]), 'Mail/cur/new-one', 'Mail/new/0:2,S', names[6], names[7]];
  const expected = [...order, -1, -1, 6, 7];
  t.same(asked.map((n) => e.lookup(n)), expected);
  t.not(mapOf(e), null, 'the Map was built at the first miss');
  const e2 = engine();
  t.equal(e2.lookup('Mail/cur/not-there'), -1, 'a name not in the db');
  t.equal(e2.lookup(names[0]), 0, 'then the cursor still starts at the first entry');
  t.equal(e2.lookup(names[1]), 1);
  const empty = new DiffEngine({ names: [], headers: [], bodies: [] });
  t.equal(empty.lookup('x'), -1, 'an empty db');
});
