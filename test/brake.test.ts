/**
 * The mass-deletion brake of smd-client (client/src/brake.ts), pure: every
 * rule at its boundary, the reasons and the refusal in full, the threshold
 * setting. The brake in a real run is in safety.test.ts.
 */
import t from 'tap';
import { judgeDeletions, brakeRefusal, parseBrakePercent, DEFAULT_BRAKE } from '@smd/client';

t.test('mass-deletion brake', async (t) => {
  const totals = new Map([['Mail', 100], ['Mail/.Work', 30], ['Mail/.Small', 4], ['Other', 10]]);
  const roots = ['Mail', 'Other'];
  const judge = (d: Record<string, number>, limits = DEFAULT_BRAKE) => judgeDeletions(new Map(Object.entries(d)), totals, roots, limits);
  t.equal(judge({}).held, false, 'nothing deleted');
  t.equal(judge({ Mail: 50 }).held, false, 'exactly half of a folder: allowed');
  t.equal(judge({ Mail: 51 }).held, true, 'more than half of a folder');
  t.equal(judge({ 'Mail/.Work': 16 }).held, true, 'more than half of a folder of 30');
  t.equal(judge({ 'Mail/.Small': 3 }).held, false, 'folders of fewer than 20 are not judged by percentage');
  t.equal(judge({ Mail: 40, 'Mail/.Work': 15, 'Other': 9 }).held, false, '64 of 144: under half everywhere');
  const all = judge({ Other: 10 });
  t.equal(all.held, true, 'every message of a root: held, whatever the size');
  t.match(all.reasons[0], /^every message of the mailbox Other \(10\): is its disk mounted/);
  t.equal(judge({ Other: 10 }, { percent: null, minMessages: 20 }).held, true, 'the root rule holds with the percentage off');
  t.equal(judge({ Mail: 90 }, { percent: null, minMessages: 20 }).held, false, 'percentage off');
  t.equal(judge({ Mail: 90 }, { percent: 95, minMessages: 20 }).held, false, 'a higher limit');
  const v = judge({ Mail: 90, 'Mail/.Work': 27 });
  t.equal(v.deletes, 117);
  t.same(v.folders.map((f) => [f.folder, f.deletes, f.total]), [['Mail', 90, 100], ['Mail/.Work', 27, 30]]);
  const r = brakeRefusal(v, new Map([['Mail', ['Mail/cur/a:2,S', 'Mail/cur/b', 'Mail/cur/c', 'Mail/cur/d']]]), (n) => n);
  t.match(r.message, /^Mass deletion held: this run would delete 117 of the 144 messages of the mailbox \(81%, more than 50%\); 90 of the 100 messages of Mail \(90%, more than 50%\); 27 of the 30 messages of Mail\/\.Work/);
  t.match(r.message, /  Mail: 90 of 100 \(e\.g\. a:2,S, b, c\)\n/, 'counts per folder, a few names');
  t.match(r.message, /@@COMMAND@@ --allow-mass-delete @@ENDPOINT@@/);
  t.match(r.message, /MASS_DELETE_THRESHOLD/);
  t.same(r.tags, { context: 'delete-messages', probableCause: 'mass-deletion', humanIntervention: 'necessary',
    suggestedActions: ['run(@@COMMAND@@ --allow-mass-delete @@ENDPOINT@@)'] });
  t.equal(parseBrakePercent('50'), 50);
  t.equal(parseBrakePercent('off'), null);
  t.equal(parseBrakePercent('101'), 'invalid');
  t.equal(parseBrakePercent('-1'), 'invalid');
});

t.test('mass-deletion brake: every rule at its boundary, every reason in full', async (t) => {
  const judge = (d: Record<string, number>, totals: Record<string, number>, roots: string[], limits = DEFAULT_BRAKE, show?: (n: string) => string) =>
    judgeDeletions(new Map(Object.entries(d)), new Map(Object.entries(totals)), roots, limits, show);
  const big = { Mail: 100, 'Mail/.Work': 30, Other: 10 };
  const none = judge({ Mail: 0, 'Mail/.Work': 0 }, big, ['Mail', 'Other']);
  t.same(none, { held: false, reasons: [], folders: [], deletes: 0, total: 140 }, 'folders with 0 deletions are no deletions');
  const few = judge({ Mail: 0, 'Mail/.Work': 3 }, big, ['Mail', 'Other']);
  t.same(few.folders, [{ folder: 'Mail/.Work', deletes: 3, total: 30 }], 'only folders that lose messages are listed');
  t.same([few.held, few.deletes, few.total, few.reasons], [false, 3, 140, []]);

  const order = judge({ 'Mail/.B': 2, 'Mail/.A': 2, Other: 5, 'Mail/.C': 3 }, big, ['Mail', 'Other']);
  t.same(order.folders.map((f) => f.folder), ['Other', 'Mail/.C', 'Mail/.A', 'Mail/.B'], 'most deletions first, then by name');
  const unknown = judge({ 'Mail/.New': 5 }, { Mail: 1 }, ['Mail']);
  t.same(unknown.folders, [{ folder: 'Mail/.New', deletes: 5, total: 5 }], 'a folder the db-file does not know holds at least what is deleted');
  t.equal(unknown.total, 5, 'and so does the mailbox');

  // The root rule: every message of a root, whatever the sizes; only under that root.
  const prefix = judge({ Mailbox: 5 }, { Mail: 5, Mailbox: 5 }, ['Mail', 'Mailbox']);
  t.same(prefix.reasons, ['every message of the mailbox Mailbox (5): is its disk mounted, its path right?'], 'a root named like the start of another is another root');
  const sub = judge({ 'Mail/.A': 3, 'Mail/.B': 2 }, { 'Mail/.A': 3, 'Mail/.B': 2, Other: 4 }, ['Mail', 'Other']);
  t.same(sub.reasons, ['every message of the mailbox Mail (5): is its disk mounted, its path right?'], 'a root empties through its folders');
  t.same(judge({ Other: 9 }, big, ['Mail', 'Other']).reasons, [], 'all but one of a small root: not held');
  t.same(judge({ Mail: 1 }, { Mail: 100 }, ['Mail', 'Empty']).reasons, [], 'a root that had nothing at the last sync is not emptied');
  t.same(judge({ Other: 10 }, big, ['Mail', 'Other'], DEFAULT_BRAKE, (n) => `<${n}>`).reasons,
    ['every message of the mailbox <Other> (10): is its disk mounted, its path right?'], 'names shown through show');

  // The percentage: more than p % of a folder or of the mailbox, folders of at least minMessages.
  const at20 = { Mail: 20, Other: 1000 };
  t.same(judge({ Mail: 11 }, at20, ['Mail', 'Other']).reasons, ['11 of the 20 messages of Mail (55%, more than 50%)'], 'a folder of exactly minMessages is judged');
  t.same(judge({ Mail: 10 }, at20, ['Mail', 'Other']).reasons, [], 'exactly half is allowed');
  t.same(judge({ Mail: 10 }, { Mail: 19, Other: 1000 }, ['Mail', 'Other']).reasons, [], 'a folder of minMessages - 1 is not');
  t.same(judge({ Mail: 12 }, { Mail: 19, Other: 1 }, ['Mail', 'Other'], { percent: 50, minMessages: 19 }).reasons,
    ['12 of the 20 messages of the mailbox (60%, more than 50%)', '12 of the 19 messages of Mail (63%, more than 50%)'], 'minMessages is a setting; the mailbox is judged as a whole');
  t.same(judge({ Mail: 12 }, { Mail: 19, Other: 1 }, ['Mail', 'Other'], { percent: 50, minMessages: 21 }).reasons, [], 'under minMessages everywhere');
  t.same(judge({ 'Mail/.W': 30, Mail: 0 }, { 'Mail/.W': 30, Mail: 100 }, ['Mail'], { percent: 20, minMessages: 20 }, (n) => `<${n}>`).reasons,
    ['30 of the 130 messages of the mailbox (23%, more than 20%)', '30 of the 30 messages of <Mail/.W> (100%, more than 20%)'], 'the percentage is a setting');
  t.same(judge({ Mail: 2 }, { Mail: 3, Other: 100 }, ['Mail', 'Other'], { percent: 50, minMessages: 0 }).reasons,
    ['2 of the 3 messages of Mail (67%, more than 50%)'], 'rounded percentages');
  t.same(judge({ Mail: 1 }, { Mail: 1000 }, ['Mail'], { percent: 0, minMessages: 20 }).reasons,
    ['1 of the 1000 messages of the mailbox (0%, more than 0%)', '1 of the 1000 messages of Mail (0%, more than 0%)'], '0 %: any deletion is held');
  t.same(judge({ Mail: 100 }, { Mail: 100, Other: 1 }, ['Mail', 'Other'], { percent: 100, minMessages: 20 }).reasons,
    ['every message of the mailbox Mail (100): is its disk mounted, its path right?'], '100 %: only the root rule');
  const v = judge({ Mail: 60 }, { Mail: 100 }, ['Mail', 'Other']);
  t.same(v, { held: true, reasons: ['60 of the 100 messages of the mailbox (60%, more than 50%)', '60 of the 100 messages of Mail (60%, more than 50%)'],
    folders: [{ folder: 'Mail', deletes: 60, total: 100 }], deletes: 60, total: 100 }, 'the whole verdict');
});

t.test('mass-deletion brake: the refusal and the threshold setting', async (t) => {
  const folders = Array.from({ length: 12 }, (_, i) => ({ folder: `Mail/.F${String(i).padStart(2, '0')}`, deletes: 30 - i, total: 40 }));
  const v = { held: true, reasons: ['r1', 'r2'], folders, deletes: 0, total: 0 };
  const examples = new Map([['Mail/.F00', ['Mail/.F00/cur/a:2,S', 'Mail/.F00/new/b', 'Mail/.F00/cur/c', 'Mail/.F00/cur/d']], ['Mail/.F01', ['bare']], ['Mail/.F02', []]]);
  const r = brakeRefusal(v, examples, (n) => n.toUpperCase());
  t.equal(r.message, [
    'Mass deletion held: this run would delete r1; r2.',
    'Nothing was deleted (the other changes were applied). What would have been deleted:',
    '  MAIL/.F00: 30 of 40 (e.g. A:2,S, B, C)',
    '  MAIL/.F01: 29 of 40 (e.g. BARE)',
    '  MAIL/.F02: 28 of 40',
    ...folders.slice(3, 10).map((f) => `  ${f.folder.toUpperCase()}: ${f.deletes} of 40`),
    '  ... and 2 more folder(s)',
    'If these deletions are wanted, let them through once with: @@COMMAND@@ --allow-mass-delete @@ENDPOINT@@',
    '(the limit is MASS_DELETE_THRESHOLD=<percent> in ~/.smd/config.@@ENDPOINT@@, default 50; -n never deletes anything).',
  ].join('\n'), 'the whole message: at most 10 folders, 3 names each, base names shown');
  const ten = brakeRefusal({ ...v, folders: folders.slice(0, 10) }, new Map(), (n) => n);
  t.notMatch(ten.message, /more folder/, 'exactly 10 folders: no "more" line');
  t.match(ten.message, /Mail\/\.F09: 21 of 40\n/);
  for (const [text, want] of [['0', 0], ['7', 7], ['100', 100], ['050', 50], ['off', null], ['101', 'invalid'], ['1000', 'invalid'], ['', 'invalid'],
    [' 50', 'invalid'], ['50 ', 'invalid'], ['x50', 'invalid'], ['50x', 'invalid'], ['5.5', 'invalid'], ['OFF', 'invalid'], ['-1', 'invalid']] as const) {
    t.equal(parseBrakePercent(text), want, `${JSON.stringify(text)} → ${String(want)}`);
  }
});
