/**
 * MailboxRoots (@smd/maildir roots.ts) as a unit, on real temporary trees:
 * the one way from a folder name to a directory, every refusal with its
 * message, the path it names and whether it is about a link. In-process and
 * fast (the mutation run of roots.ts uses this file); the real smd-client
 * and smd-server through such links are in roots.test.ts.
 */
import t, { type Test } from 'tap';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailboxRoots, PathRefusal } from '@smd/maildir';
import { listing, temp } from './helpers/tree-listing.js';


/** The PathRefusal `f` throws (fails the test if it throws nothing or something else). */
function refusal(t: Test, f: () => unknown, what: string): PathRefusal {
  try {
    f();
  } catch (e) {
    if (e instanceof PathRefusal) return e;
    t.fail(`${what}: not a PathRefusal: ${String(e)}`);
    throw e;
  }
  t.fail(`${what}: nothing refused`);
  return new PathRefusal('', '', false);
}

t.test('MailboxRoots: the one way from a folder name to a directory', async (t) => {
  const d = temp(t);
  const M = join(d, 'home', 'Mail');
  const out = join(d, 'outside');
  for (const p of [join(M, 'cur'), join(M, '.Real', 'cur'), join(out, 'cur'), join(d, 'data', 'Mail2', 'cur')]) mkdirSync(p, { recursive: true });
  symlinkSync(out, join(M, '.Link'));
  symlinkSync('../../outside', join(M, '.Rel'));
  symlinkSync('.Real', join(M, '.Alias'));
  symlinkSync(join(out, 'cur'), join(M, '.Real', 'new'));
  symlinkSync(join(d, 'data', 'Mail2'), join(d, 'home', 'Mail2'));
  symlinkSync(join(d, 'nowhere'), join(M, '.Dangling'));
  writeFileSync(join(M, 'file'), 'x');
  const before = listing(out);
  const r = new MailboxRoots(['Mail', 'Mail2'], { cwd: join(d, 'home') });

  t.equal(r.resolveDir('Mail/cur', false)?.real, join(M, 'cur'), 'a real folder');
  t.equal(r.resolveDir('Mail', false)?.real, M, 'the root itself');
  t.equal(r.resolveDir('Mail/.Alias/cur', false)?.real, join(M, '.Real', 'cur'), 'a link inside the mailbox is followed to where it really is');
  t.equal(r.resolveDir('Mail2/cur', false)?.real, join(d, 'data', 'Mail2', 'cur'), 'a root that is itself a link is the user\'s choice');
  t.equal(r.resolveDir('Mail/.New/cur', false), null, 'missing, not created: null');
  t.notOk(existsSync(join(M, '.New')), 'and nothing made for it');
  t.equal(r.resolveDir('Mail/.New/cur', true)?.real, join(M, '.New', 'cur'), 'created on the way');
  t.equal(statSync(join(M, '.New')).mode & 0o777, 0o700, 'mode 0700 (each directory made on the way)');
  t.equal(statSync(join(M, '.New', 'cur')).mode & 0o777, 0o700, 'mode 0700');
  for (const [dir, what] of [['Mail/.Link/cur', '.Link'], ['Mail/.Rel/cur', '.Rel'], ['Mail/.Real/new', '.Real/new'], ['Mail/.Link/.Deeper/cur', '.Link']]) {
    for (const create of [false, true]) {
      let err: unknown = null;
      try { r.resolveDir(dir, create); } catch (e) { err = e; }
      t.ok(err instanceof PathRefusal && err.link && err.path === `Mail/${what}` &&
        /is a symbolic link to .*outside.*, outside the mailboxes: it is not followed/.test(err.message), `${dir} (create=${create}) refused, naming the link: ${String(err)}`);
    }
  }
  const link = refusal(t, () => r.resolveDir('Mail/.Link/cur', false), '.Link');
  t.equal(link.message, `Mail/.Link is a symbolic link to ${out}, outside the mailboxes: it is not followed ` +
    '(a folder kept elsewhere through a symbolic link must be allowed with FOLLOW_LOCAL or FOLLOW_REMOTE in ~/.smd/config.ENDPOINT)', 'the whole message, with the way out');
  t.equal(link.name, 'PathRefusal');
  const dangling = refusal(t, () => r.resolveDir('Mail/.Dangling/cur', true), 'dangling');
  t.same([dangling.message, dangling.path, dangling.link], ['Mail/.Dangling is a dangling symbolic link', 'Mail/.Dangling', true], 'a dangling link is refused for writing');
  t.equal(refusal(t, () => r.resolveDir('Mail/.Dangling/cur', false), 'dangling, reading').path, 'Mail/.Dangling', 'and for reading');
  const file = refusal(t, () => r.resolveDir('Mail/file/cur', true), 'file');
  t.same([file.message, file.path, file.link], ['Mail/file is not a directory', 'Mail/file', false], 'a file in the way');
  const other = refusal(t, () => r.resolveDir('Other/cur', true), 'other root');
  t.same([other.message, other.path, other.link], ['Other/cur is not under the mailboxes Mail, Mail2', 'Other/cur', false], 'another root');
  t.equal(refusal(t, () => r.resolveDir('Mailx/cur', false), 'a longer name').path, 'Mailx/cur', 'a name that only starts like a root is not under it');
  t.notOk(existsSync(join(d, 'home', 'Other')), 'nothing made for a name under no root');
  t.same(listing(out), before, 'nothing was created outside');

  const allowed = new MailboxRoots(['Mail'], { cwd: join(d, 'home'), follow: [out] });
  t.equal(allowed.resolveDir('Mail/.Link/cur', false)?.real, join(out, 'cur'), 'FOLLOW: the user allowed that target');
  t.equal(allowed.resolveDir('Mail/.Rel/cur', false)?.real, join(out, 'cur'), 'relative link to an allowed place');
  t.equal(allowed.resolveDir('Mail/.Link', false)?.real, out, 'the allowed directory itself');
  const relative = new MailboxRoots(['Mail'], { cwd: join(d, 'home'), follow: ['../outside'] });
  t.equal(relative.resolveDir('Mail/.Link/cur', false)?.real, join(out, 'cur'), 'a relative FOLLOW directory is relative to cwd');
  const missing = new MailboxRoots(['Mail'], { cwd: join(d, 'home'), follow: [join(d, 'nowhere')] });
  t.equal(refusal(t, () => missing.resolveDir('Mail/.Link/cur', false), 'missing follow').path, 'Mail/.Link', 'a FOLLOW directory that does not exist allows nothing');
});

t.test('MailboxRoots: a link is judged by where it really leads, not by how its path starts', async (t) => {
  const d = temp(t);
  const M = join(d, 'Mail');
  mkdirSync(join(M, 'cur'), { recursive: true });
  mkdirSync(join(d, 'Mail-other', 'cur'), { recursive: true });
  mkdirSync(join(d, 'allowedx', 'cur'), { recursive: true });
  mkdirSync(join(d, 'allowed', 'cur'), { recursive: true });
  symlinkSync(join(d, 'Mail-other'), join(M, '.Sibling'));
  symlinkSync(join(d, 'allowedx'), join(M, '.Prefix'));
  symlinkSync(join(d, 'allowed'), join(M, '.Allowed'));
  symlinkSync(join(M, 'cur'), join(M, '.Inside'));
  symlinkSync('cur/../cur', join(M, '.Dots'));
  writeFileSync(join(M, 'cur', 'msg'), 'x');
  symlinkSync(join(M, 'cur', 'msg'), join(M, '.ToFile'));
  const r = new MailboxRoots([M], { follow: [join(d, 'allowed')] });

  t.equal(refusal(t, () => r.resolveDir(`${M}/.Sibling/cur`, false), 'sibling').path, `${M}/.Sibling`,
    'a directory whose path starts with the root\'s path (Mail-other) is outside it');
  t.equal(refusal(t, () => r.resolveDir(`${M}/.Prefix/cur`, false), 'prefix').path, `${M}/.Prefix`,
    'a directory whose path starts with an allowed one (allowedx) is not allowed');
  t.equal(r.resolveDir(`${M}/.Allowed/cur`, false)?.real, join(d, 'allowed', 'cur'), 'the allowed directory');
  t.equal(r.resolveDir(`${M}/.Inside`, false)?.real, join(M, 'cur'), 'a link to a folder of the root');
  t.equal(r.resolveDir(`${M}/.Dots`, false)?.real, join(M, 'cur'), 'a relative link with .. that stays inside');
  const toFile = refusal(t, () => r.resolveDir(`${M}/.ToFile/cur`, true), 'link to a file');
  t.same([toFile.message, toFile.path, toFile.link], [`${M}/.ToFile is a symbolic link to ${join(M, 'cur', 'msg')}, which is not a directory`, `${M}/.ToFile`, true],
    'a link to a file inside the mailbox');
  t.ok(r.allows(M) && r.allows(join(M, 'cur')) && r.allows(join(d, 'allowed')) && r.allows(join(d, 'allowed', 'x')), 'allows: the roots and the allowed directories, and below');
  t.notOk(r.allows(join(d, 'Mail-other')) || r.allows(join(d, 'allowedx')) || r.allows(d), 'but not a path that only starts like one, nor above');

  const everything = new MailboxRoots([M], { follow: ['/'] });
  t.equal(everything.resolveDir(`${M}/.Sibling/cur`, false)?.real, join(d, 'Mail-other', 'cur'), 'FOLLOW=/ allows everything (a tree that ends with /)');
  t.ok(everything.allows('/etc'));
});

t.test('MailboxRoots: roots (longest match, absolute or relative, added later, missing until created)', async (t) => {
  const d = temp(t);
  mkdirSync(join(d, 'Mail', '.Sub', 'cur'), { recursive: true });
  mkdirSync(join(d, 'elsewhere', 'cur'), { recursive: true });
  symlinkSync(join(d, 'elsewhere'), join(d, 'Mail', '.Nested'));
  const r = new MailboxRoots(['Mail', 'Mail/.Nested', 'Mail/.Nested'], { cwd: d });
  t.equal(r.rootOf('Mail/.Nested/cur'), 'Mail/.Nested', 'the longest root that matches');
  t.equal(r.rootOf('Mail/.Nested'), 'Mail/.Nested', 'a root itself');
  t.equal(r.rootOf('Mail/.Nestedx/cur'), 'Mail', 'not a root that the name only starts like');
  t.equal(r.rootOf('Mail'), 'Mail');
  t.equal(r.rootOf('Mai'), null);
  t.equal(r.rootOf('Other/Mail'), null);
  t.equal(r.resolveDir('Mail/.Nested/cur', false)?.real, join(d, 'elsewhere', 'cur'), 'a nested root that is a link: the user\'s choice');
  t.equal(r.resolveDir('Mail/.Sub/cur', false)?.real, join(d, 'Mail', '.Sub', 'cur'));
  t.equal(refusal(t, () => r.resolveDir('Nope', false), 'nope').message, 'Nope is not under the mailboxes Mail, Mail/.Nested', 'a root given twice is one root');

  const reversed = new MailboxRoots(['Mail/.Nested', 'Mail'], { cwd: d });
  t.equal(reversed.rootOf('Mail/.Nested/cur'), 'Mail/.Nested', 'the longest root, whatever the order');
  t.equal(reversed.rootOf('Mail/.Sub/cur'), 'Mail');
  writeFileSync(join(d, 'afile'), 'x');
  const underFile = new MailboxRoots(['afile/Mail'], { cwd: d });
  t.equal(underFile.resolveDir('afile/Mail/cur', false), null, 'a root below a file does not exist (ENOTDIR is "missing")');
  symlinkSync('.Loop', join(d, 'Mail', '.Loop'));
  t.throws(() => r.resolveDir('Mail/.Loop/cur', false), { code: 'ELOOP' }, 'a link loop is an error of its own, not a missing directory');

  const later = new MailboxRoots(['Mail'], { cwd: d });
  t.equal(refusal(t, () => later.resolveDir('Mail/.Nested/cur', false), 'before addRoot').path, 'Mail/.Nested', 'a link out of the root');
  t.equal(later.rootOf('Translated/cur'), null);
  later.addRoot('Translated');
  later.addRoot('Translated');
  t.equal(later.rootOf('Translated/cur'), 'Translated', 'addRoot: one more root');
  t.equal(later.resolveDir('Translated/cur', false), null, 'missing root, not created: null');
  t.notOk(existsSync(join(d, 'Translated')), 'nothing made for it');
  t.equal(later.resolveDir('Translated/cur', true)?.real, join(d, 'Translated', 'cur'), 'created when asked');
  t.equal(statSync(join(d, 'Translated')).mode & 0o777, 0o700, 'a created root is 0700');
  t.ok(later.allows(join(d, 'Translated', 'x')), 'a root created late is a tree links may lead into');
  symlinkSync(join(d, 'Translated', 'cur'), join(d, 'Mail', '.ToTranslated'));
  t.equal(later.resolveDir('Mail/.ToTranslated', false)?.real, join(d, 'Translated', 'cur'), 'so a link from another root into it is followed');
  t.equal(refusal(t, () => later.resolveDir('Nope', false), 'nope').message, 'Nope is not under the mailboxes Mail, Translated', 'the message lists every root once');

  const deep = new MailboxRoots([join(d, 'a', 'b', 'Mail')]);
  t.equal(deep.resolveDir(`${join(d, 'a', 'b', 'Mail')}/cur`, true)?.real, join(d, 'a', 'b', 'Mail', 'cur'), 'an absolute root is made with its parents');
  t.equal(statSync(join(d, 'a', 'b', 'Mail')).mode & 0o777, 0o700);

  // Names are ByteStrings: a folder name in latin1 bytes (not UTF-8) is that directory on disk; messages show it as UTF-8.
  const cafe = 'Mail/.Caf\xc3\xa9';
  t.equal(r.resolveDir(`${cafe}/cur`, true)?.real, `${Buffer.from(d, 'utf8').toString('latin1')}/${cafe}/cur`, 'the real path is a ByteString');
  t.ok(existsSync(join(d, 'Mail', '.Café', 'cur')), 'made with those bytes');
  symlinkSync(join(d, 'elsewhere'), Buffer.from(join(d, `Mail/.L\xe9`), 'latin1'));
  // realpath(3) sees those bytes: the JS realpathSync decoded them as UTF-8 and found nothing (a "dangling" link).
  t.equal(r.resolveDir('Mail/.L\xe9/cur', false)?.real, join(d, 'elsewhere', 'cur'), 'a link named in latin1 bytes into a root is followed');
  symlinkSync(join(d, 'Mail', '.Café'), join(d, 'Mail', '.ToCafe'));
  t.equal(r.resolveDir('Mail/.ToCafe/cur', false)?.real, `${d}/${cafe}/cur`, 'a link to a folder named in UTF-8: its real path in the same bytes');
  const bad = refusal(t, () => new MailboxRoots(['Mail'], { cwd: d }).resolveDir('Mail/.L\xe9/cur', false), 'latin1 link');
  t.equal(bad.path, 'Mail/.L\xe9', 'the path is the ByteString');
  t.ok(bad.message.startsWith(`Mail/.L\ufffd is a symbolic link to ${join(d, 'elsewhere')}, outside the mailboxes`), `the message shows it as text: ${bad.message}`);
});

t.test('MailboxRoots: a name is resolved once (what every later read and write uses)', async (t) => {
  const d = temp(t);
  mkdirSync(join(d, 'Mail', '.F', 'cur'), { recursive: true });
  mkdirSync(join(d, 'outside', 'cur'), { recursive: true });
  const r = new MailboxRoots(['Mail'], { cwd: d });
  const first = r.resolveDir('Mail/.F/cur', false);
  t.equal(first?.real, join(d, 'Mail', '.F', 'cur'));
  rmSync(join(d, 'Mail', '.F'), { recursive: true });
  symlinkSync(join(d, 'outside'), join(d, 'Mail', '.F'));
  t.equal(r.resolveDir('Mail/.F/cur', false), first, 'the same answer, not a new walk through the new link');
  t.equal(refusal(t, () => new MailboxRoots(['Mail'], { cwd: d }).resolveDir('Mail/.F/cur', false), 'fresh').path, 'Mail/.F', 'a fresh walk refuses the link');
  t.equal(r.resolveDir('Mail/.G/cur', false), null, 'a missing folder');
  mkdirSync(join(d, 'Mail', '.G', 'cur'), { recursive: true });
  t.equal(r.resolveDir('Mail/.G/cur', false)?.real, join(d, 'Mail', '.G', 'cur'), 'null is not remembered: it is there once made');

  const cwd = process.cwd();
  process.chdir(d);
  t.teardown(() => process.chdir(cwd));
  t.equal(new MailboxRoots(['Mail']).resolveDir('Mail/.G/cur', false)?.real, join(d, 'Mail', '.G', 'cur'), 'relative to the current directory by default');
});
