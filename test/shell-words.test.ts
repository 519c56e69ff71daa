/**
 * @smd/shell: the one lexer and quoter of shell words (config files, ssh
 * command values, ssh_config arguments, smd-restricted-shell, remote commands).
 * The real sh is the oracle wherever it can be one.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import {
  joinWords, LITERAL_WORDS, percentEncodeUnsafe, quoteWord, readWord, ShellSyntaxError, splitFields, splitWords, strictWords, type WordRules,
} from '@smd/shell';

/** Words a naive command line would mangle or execute. */
const NASTY = [
  'plain', 'with space', "it's", '"double"', '$HOME', '${PATH}', 'a&b', 'x;touch /tmp/smd-pwned', '*', '`id`', '$(id)',
  '', '  ', 'line\nbreak', '-n', 'back\\slash', '~', '~/x', 'é ü', 'tab\there', '|', '>out', "'", "''", '#c', 'a#b',
];
const viaSh = (line: string): string[] => {
  const out = execFileSync('sh', ['-c', `printf '%s\\0' ${line}`]).toString('utf8');
  return out === '' ? [] : out.slice(0, -1).split('\0');
};
const refusal = (f: () => unknown): ShellSyntaxError | null => {
  try { f(); } catch (e) { if (e instanceof ShellSyntaxError) return e; throw e; }
  return null;
};

t.test('quoting: sh reads back exactly the words; plain words stay bare', async (t) => {
  t.same(viaSh(joinWords(NASTY)), NASTY);
  for (const w of ['Mail/cur', '/usr/bin/smd-server', '-v', '--exclude', 'Mail/.Trash%20Can', 'user@host', 'a=b,c:d+e']) {
    t.equal(quoteWord(w), w, `bare: ${w}`);
  }
  t.equal(quoteWord(''), "''");
  t.equal(quoteWord("it's"), "'it'\\''s'");
  t.equal(quoteWord('~/x'), "'~/x'", 'quoting is exact: no tilde expansion');
});

t.test('splitting agrees with sh where sh does not expand', async (t) => {
  const lines = [
    `a 'b c' "d\\"e" f\\ g "h\\\\i" 'j\\k' "l\\m" ''  ""`,
    `x"y"'z' "multi\nline" 'tab\there'`,
    `"\\$ and \\\` escaped" a\\$b`,
    `one\\\ntwo "three\\\nfour"`,
    `trailing\\`,
  ];
  for (const line of lines) t.same(splitWords(line, LITERAL_WORDS), viaSh(line), line);
  // and the round trip of quoting, with both rule sets (strict: no newline in the words)
  t.same(splitWords(joinWords(NASTY), LITERAL_WORDS), NASTY);
  const noNewline = NASTY.filter((w) => !w.includes('\n'));
  t.same(splitWords(joinWords(noNewline), strictWords('/h')), noNewline);
});

t.test('literal rules (ssh command values, ssh_config): $, backquotes and operators are characters', async (t) => {
  t.same(splitWords('ssh -C  -o ControlMaster=auto', LITERAL_WORDS), ['ssh', '-C', '-o', 'ControlMaster=auto']);
  t.same(splitWords(`ssh -o "ControlPath=/tmp/a b" -i 'k e y' x\\ y ""`, LITERAL_WORDS), ['ssh', '-o', 'ControlPath=/tmp/a b', '-i', 'k e y', 'x y', '']);
  t.same(splitWords('a;b $X `c` "$Y" ~/z #d', LITERAL_WORDS), ['a;b', '$X', '`c`', '$Y', '~/z', '#d']);
  t.match(refusal(() => splitWords('ssh "x', LITERAL_WORDS))?.message, /unterminated double quote/);
  t.equal(refusal(() => splitWords("a 'x", LITERAL_WORDS))?.offset, 2, 'the offset of the open quote');
});

t.test('strict rules (smd-restricted-shell): anything a shell would interpret is refused', async (t) => {
  const rules = strictWords('/h');
  t.same(splitWords(`smd-server --exclude 'a b*' "c\\"d" e\\ f ~/x ~ a~`, rules), ['smd-server', '--exclude', 'a b*', 'c"d', 'e f', '/h/x', '/h', 'a~']);
  t.same(splitWords(`'~/x' "~" '$HOME' 'a;b'`, rules), ['~/x', '~', '$HOME', 'a;b'], 'quoted: literal');
  const refused: [string, RegExp][] = [
    ['a; b', /";"/], ['a & b', /"&"/], ['a | b', /"\|"/], ['a > f', /">"/], ['a <f', /"<"/], ['(a)', /"\("/],
    ['$HOME', /"\$"/], ['a$', /"\$"/], ['`id`', /"`"/], ['"$x"', /inside double quotes/], ['"`id`"', /inside double quotes/],
    ['a\nb', /newline/], ["'a\nb'", /newline.*quoted/], ['"a\nb"', /newline.*quoted/], ['a\\\nb', /newline.*escaped/],
    ['"a\\\nb"', /newline.*escaped/], ['a\\', /backslash at the end/], ['# x', /comments/], ['a #x', /comments/],
    ["'open", /unterminated single quote/], ['"open', /unterminated double quote/],
  ];
  for (const [line, re] of refused) t.match(refusal(() => splitWords(line, rules))?.message, re, JSON.stringify(line));
  t.same(splitWords('~/x', strictWords(null)), ['~/x'], 'no HOME: ~ stays a character');
});

t.test('readWord for a parser: operators end a word, expansions are the caller\'s', async (t) => {
  const rules: WordRules = {
    expansions: {
      dollar: (text, at) => ({ value: `<${text[at + 1]}>`, end: at + 2 }),
      backquote: (text, at) => { const e = text.indexOf('`', at + 1); return { value: `[${text.slice(at + 1, e)}]`, end: e + 1 }; },
    },
    operators: 'end',
    strict: false,
    tilde: '/home/a',
  };
  t.same(readWord('~/m$x"$y`c`";rest', 0, rules), { value: '/home/a/m<x><y>[c]', end: 12 });
  t.same(readWord('~;', 0, rules), { value: '/home/a', end: 1 }, '~ before an operator');
  t.same(readWord('a|b', 0, rules), { value: 'a', end: 1 });
  t.same(readWord('"a\nb" c', 0, rules), { value: 'a\nb', end: 5 }, 'newlines inside quotes are kept');
  t.same(readWord('x\ny', 0, rules), { value: 'x', end: 1 }, 'an unquoted newline ends the word');
});

t.test('list variables split like an unquoted $VAR', async (t) => {
  t.same(splitFields('  Mail/ Other%20Box\t\n"q u"  '), ['Mail/', 'Other%20Box', '"q', 'u"']);
  t.same(splitFields(''), []);
  t.same(splitFields('Mail\r'), ['Mail'], 'a CRLF config file');
});

t.test('percent-encoding for %-decoded arguments: bare words, same meaning', async (t) => {
  const { decodeArgument, fromUtf8 } = await import('@smd/maildir');
  for (const g of ['Mail/.Spam*', 'Mail/.Trash%20Can', 'Mail/[ab]?x', "it's a & b", 'é/ü', 'Mail/.x\\y', '~/m']) {
    const e = percentEncodeUnsafe(g);
    t.equal(quoteWord(e), e, `${g} -> ${e} needs no quoting`);
    t.equal(decodeArgument(fromUtf8(e)), decodeArgument(fromUtf8(g)), `${g}: decoded the same`);
  }
  t.equal(percentEncodeUnsafe('Mail/.Spam*'), 'Mail/.Spam%2A');
});
