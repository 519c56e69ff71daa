/**
 * Maildir flags and the three-way flag merge of smd-client (client/src/flags.ts),
 * pure. The merge inside the policy is client-policy.test.ts; in real runs,
 * hostile-concurrency.test.ts.
 */
import t from 'tap';
import { mergeFlags, mergedName, splitMessageName, joinMessageName, sameMessage } from '@smd/client';

t.test('flags: three-way merge', async (t) => {
  t.equal(mergeFlags('S', 'RS', 'FS'), 'FRS', 'both added a flag: union');
  t.equal(mergeFlags('FS', 'FRS', 'S'), 'RS', 'added there, removed here: both changes kept');
  t.equal(mergeFlags('FS', 'FS', 'S'), 'S', 'removed here, untouched there: removed');
  t.equal(mergeFlags('FS', 'S', 'FS'), 'S', 'removed there, untouched here: removed');
  t.equal(mergeFlags('S', 'RS', 'RS'), 'RS', 'the same change on both sides');
  t.equal(mergeFlags('', 'S', 'F'), 'FS', 'from new/ (no flags)');
  t.equal(mergeFlags('S', 'TS', 'ab'), 'Tab', 'ASCII order, keywords (lower case) too');
  t.equal(mergeFlags('S', 'S', 'S'), 'S');
});

t.test('flags: names', async (t) => {
  t.same(splitMessageName('Mail/.W/cur/17.M1.h:2,RS'), { folder: 'Mail/.W', sub: 'cur', unique: '17.M1.h', flags: 'RS' });
  t.same(splitMessageName('Mail/new/17.M1.h'), { folder: 'Mail', sub: 'new', unique: '17.M1.h', flags: null });
  t.equal(splitMessageName('Mail/x'), null);
  t.same(mergedName('Mail/cur/u:2,S', 'Mail/cur/u:2,RS', 'Mail/cur/u:2,FS'), { name: 'Mail/cur/u:2,FRS', from: 'FS', to: 'FRS' });
  t.same(mergedName('Mail/new/u', 'Mail/cur/u:2,S', 'Mail/cur/u:2,F'), { name: 'Mail/cur/u:2,FS', from: 'F', to: 'FS' }, 'read there, flagged here');
  t.same(mergedName('Mail/cur/u:2,S', 'Mail/.A/cur/u:2,S', 'Mail/cur/u:2,FS'), { name: 'Mail/.A/cur/u:2,FS', from: 'FS', to: 'FS' },
    'moved to another folder there, flagged here: the flag follows the message');
  t.equal(mergedName('Mail/cur/u:2,S', 'Mail/cur/u:2,RS', 'Mail/cur/v:2,FS'), null, 'another message');
  t.equal(mergedName('Mail/cur/u:2,S', 'Mail/cur/u:2,RS', 'Mail/.B/cur/u:2,FS'), null, 'another folder here');
});

t.test('flags: message names, edge cases', async (t) => {
  t.equal(splitMessageName('cur/x'), null, 'no folder');
  t.equal(splitMessageName('x'), null, 'no slash at all');
  t.equal(splitMessageName('Mail/tmp/x'), null, 'tmp/ is no message place');
  t.equal(splitMessageName('Mail/curx/x'), null);
  t.same(splitMessageName('Mail/cur/:2,S'), { folder: 'Mail', sub: 'cur', unique: ':2,S', flags: null }, 'an info part needs a unique part before it');
  t.same(splitMessageName('Mail/cur/u:2,'), { folder: 'Mail', sub: 'cur', unique: 'u', flags: '' }, 'info with no flags');
  t.same(splitMessageName('Mail/cur/u:2,a:2,S'), { folder: 'Mail', sub: 'cur', unique: 'u:2,a', flags: 'S' }, 'the last info part');
  t.same(splitMessageName('a/b/.F/new/u:2,S'), { folder: 'a/b/.F', sub: 'new', unique: 'u', flags: 'S' });
  t.equal(joinMessageName({ folder: 'M', sub: 'new', unique: 'u', flags: null }), 'M/new/u');
  t.equal(joinMessageName({ folder: 'M', sub: 'cur', unique: 'u', flags: '' }), 'M/cur/u:2,');
  t.equal(joinMessageName({ folder: 'M', sub: 'cur', unique: 'u', flags: 'RS' }), 'M/cur/u:2,RS');

  t.same(mergedName('Mail/new/u', 'Mail/.A/new/u', 'Mail/cur/u:2,'), { name: 'Mail/.A/new/u', from: '', to: '' }, 'no flags anywhere: stays in new/, without info');
  t.same(mergedName('Mail/new/u', 'Mail/.A/new/u', 'Mail/cur/u:2,S'), { name: 'Mail/.A/cur/u:2,S', from: 'S', to: 'S' }, 'a flag here: to cur/');
  t.same(mergedName('Mail/new/u', 'Mail/.A/cur/u:2,', 'Mail/new/u'), { name: 'Mail/.A/cur/u:2,', from: '', to: '' }, 'their empty info is kept');
  t.same(mergedName('Mail/cur/u:2,S', 'Mail/cur/w:2,S', 'Mail/cur/u:2,FS'), { name: 'Mail/cur/w:2,FS', from: 'FS', to: 'FS' }, 'their unique part');
  t.equal(mergedName('Mail/x', 'Mail/cur/u:2,S', 'Mail/cur/u:2,F'), null, 'not a message name: source');
  t.equal(mergedName('Mail/cur/u:2,S', 'Mail/x', 'Mail/cur/u:2,F'), null, 'not a message name: target');
  t.equal(mergedName('Mail/cur/u:2,S', 'Mail/cur/u:2,R', 'Mail/x'), null, 'not a message name: mine');

  t.ok(sameMessage('Mail/cur/u:2,S', 'Mail/new/u'), 'same folder and unique part, other flags and sub-folder');
  t.notOk(sameMessage('Mail/cur/u:2,S', 'Mail/cur/v:2,S'), 'another unique part');
  t.notOk(sameMessage('Mail/cur/u:2,S', 'Mail/.A/cur/u:2,S'), 'another folder');
  t.notOk(sameMessage('Mail/x', 'Mail/x'), 'not message names');
  t.notOk(sameMessage('Mail/cur/u', 'Mail/x'));
  t.notOk(sameMessage('Mail/x', 'Mail/cur/u'));
  t.equal(mergeFlags('RS', '', ''), '', 'everything removed on both sides');
  t.equal(mergeFlags('RS', 'S', 'RST'), 'ST', 'removed there, added here');
  t.equal(mergeFlags('', '', ''), '');
});
