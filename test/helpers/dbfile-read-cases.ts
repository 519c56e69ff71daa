/**
 * How the scan reads a db-file (readDbFileBinary, the line copier), asserted
 * through a real scan in-process: run by dbfile-read.test.ts with the native
 * decoder as built and by dbfile-read-js.test.ts with SMD_NATIVE=0 (the
 * JavaScript decoder, what runs where the addon is not built). The same
 * entries, refusals and copies either way. Written for the survivors of the
 * mutation run of dbfile.ts (TESTING.md).
 */
import { readFileSync, writeFileSync, existsSync, rmSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { diffMaildir, formatCommand, forEachLine, readDbFile } from '@smd/snapshot';
import type { Test } from 'tap';
import { tempDir, sha1, makeMaildir, writeMessage } from './maildir-fixture.js';

/** A real scan in-process (what mddiff runs) in `dir`: its commands, result and warnings; `between` runs after the last DELETE, before the db-file is written (also used by dbfile.test.ts). */
export function scanIn(dir: string, dbFile: string, between?: () => void): { cmds: string[]; ok: boolean; warnings: string[] } {
  const prev = process.cwd();
  process.chdir(dir);
  const warnings: string[] = [];
  try {
    const it = diffMaildir({ roots: ['Mail'], dbFile, threads: 0, onWarning: (w) => warnings.push(w) });
    const cmds: string[] = [];
    let s = it.next();
    for (; s.done !== true; s = it.next()) {
      cmds.push(formatCommand(s.value));
      if (s.value.op === 'DELETE') between?.();
    }
    return { cmds, ok: s.value.ok, warnings };
  } finally {
    process.chdir(prev);
  }
}

export function dbReadCases(t: Test, decoder: string): void {
  const d = tempDir(t, 'smd-dbread-');
  const F = join(d, 'db.txt');
  const msg = (n: string): { h: string; b: string } => ({ h: sha1(`Subject: ${n}\n\n`), b: sha1(`body ${n}\n`) });
  makeMaildir(d, 'Mail');
  for (const n of ['a', 'b']) writeMessage(d, `Mail/cur/${n}`, { header: `Subject: ${n}`, body: `body ${n}\n` });
  writeFileSync(`${F}.mtime`, String(Math.floor(Date.now() / 1000)));
  const line = (n: string, h = msg(n).h, b = msg(n).b): string => `${h} ${b} Mail/cur/${n}\n`;
  /** A line of a file that is not in the Maildir (a DELETE), named `name` whole. */
  const gone = (i: number, name: string, upper: 'h' | 'b' | '' = ''): string =>
    `${upper === 'h' ? sha1(`h${i}`).toUpperCase() : sha1(`h${i}`)} ${upper === 'b' ? sha1(`b${i}`).toUpperCase() : sha1(`b${i}`)} ${name}\n`;
  const del = (i: number, name: string): string => `DELETE ${name} ${sha1(`h${i}`)} ${sha1(`b${i}`)}`;
  const kept = line('a') + line('b');
  const scan = (text: string, between?: () => void): ReturnType<typeof scanIn> => {
    writeFileSync(F, text, 'latin1');
    rmSync(`${F}.stat-cache`, { force: true });
    rmSync(`${F}.new`, { force: true });
    return scanIn(d, F, between);
  };
  /**
   * Whether the scan copied the kept lines from the db-file rather than
   * rebuilt them: between reading and writing, the file gets other bytes of
   * the same size and mtime (it looks unchanged, so a copyable file is copied).
   */
  const copies = (text: string): boolean => {
    const when = Math.floor(Date.now() / 1000) - 100;
    writeFileSync(F, text, 'latin1');
    utimesSync(F, when, when);
    rmSync(`${F}.stat-cache`, { force: true });
    rmSync(`${F}.new`, { force: true });
    const r = scanIn(d, F, () => { writeFileSync(F, text.toUpperCase(), 'latin1'); utimesSync(F, when, when); });
    t.ok(r.ok, `${decoder}: the scan succeeds`);
    const written = readFileSync(`${F}.new`, 'latin1');
    if (written === kept) return false;
    t.equal(written, kept.toUpperCase(), `${decoder}: copied, or rebuilt as read`);
    return true;
  };

  // Canonical files are copied; the shortest line (a one-byte name, 83 bytes) is canonical too.
  t.equal(copies(line('a') + gone(1, 'x') + line('b') + gone(2, 'Mail/cur/gone')), true, `${decoder}: canonical, an 83-byte line among them: copied`);
  t.equal(copies(gone(1, 'x') + kept + gone(2, 'y')), true, `${decoder}: canonical, 83-byte lines first and last: copied`);
  // Hashes of zeros only: every digit decodes to 0, which is not an error.
  t.equal(copies(kept + `${'0'.repeat(40)} ${'0'.repeat(40)} zero\n`), true, `${decoder}: hashes of zeros: canonical, copied`);
  // Not canonical: rebuilt from what was read.
  t.equal(copies(kept + gone(1, 'x', 'h')), false, `${decoder}: an upper-case header hash: rebuilt`);
  t.equal(copies(kept + gone(1, 'x', 'b')), false, `${decoder}: an upper-case body hash: rebuilt`);
  t.equal(copies(kept + gone(1, 'x').slice(0, -1)), false, `${decoder}: no final newline: rebuilt`);

  // Upper-case hex, anywhere in a line and the file: the same entries, lower case.
  let r = scan(gone(1, 'Mail/cur/g1') + gone(2, 'Mail/cur/g2', 'h') + line('a', msg('a').h.toUpperCase()) + gone(3, 'x', 'b') + line('b', undefined, msg('b').b.toUpperCase()) + gone(4, 'y', 'h'));
  t.same(r.cmds, [del(1, 'Mail/cur/g1'), del(2, 'Mail/cur/g2'), del(3, 'x'), del(4, 'y')], `${decoder}: upper-case header or body hashes, 83-byte lines among them`);
  t.equal(readFileSync(`${F}.new`, 'latin1'), kept, `${decoder}: the kept lines written in lower case (the file ends with a newline: only the case makes it not copyable)`);

  // Refusals: the exact message, nothing written.
  const refused = (text: string, message: string, what: string): void => {
    r = scan(text);
    t.same(r.cmds, [`ERROR ${message}`], `${decoder}: ${what}`);
    t.notOk(existsSync(`${F}.new`), `${decoder}: ${what}: nothing written`);
  };
  const { h, b } = msg('a');
  refused(`${kept}${h} ${b} \n`, `${F}: malformed line 3: 2 != 3 fields. Please remove this db file.`, '82 bytes, no name, after other lines');
  refused(`${kept}${h.toUpperCase()} ${b} \n`, `${F}: malformed line 3: 2 != 3 fields. Please remove this db file.`, '82 bytes, upper case, after other lines');
  refused(`${kept}${h.slice(0, 39)}: ${b} x\n`, `${F}: malformed line 3: invalid SHA-1. Please remove this db file.`, 'a colon (the byte after 9) in a hash');
  refused(`${kept}${h} ${b.slice(0, 39)}: x\n`, `${F}: malformed line 3: invalid SHA-1. Please remove this db file.`, 'a colon in the body hash');
  refused(`${kept}${h} ${b.slice(0, 39)}@ x\n`, `${F}: malformed line 3: invalid SHA-1. Please remove this db file.`, 'the byte before A in a hash');
  refused(`${kept}${h} ${b.slice(0, 39)}\` x\n`, `${F}: malformed line 3: invalid SHA-1. Please remove this db file.`, 'the byte before a in a hash');
  refused(`\n${kept}`, `${F}: malformed line 1: 0 != 3 fields. Please remove this db file.`, 'an empty first line');

  // More lines than the first guess of the tables (size / 100): every entry's hashes across the growth.
  const many = Array.from({ length: 1500 }, (_, i) => gone(i, `Mail/cur/${i}`)).join('');
  r = scan(kept + many);
  t.same(r.cmds.filter((c) => c.startsWith('DELETE')), Array.from({ length: 1500 }, (_, i) => del(i, `Mail/cur/${i}`)), `${decoder}: 1500 short lines, every hash`);
  // As many lines as the first guess, nearly: no spare room for the engine to take the hashes in place, so it copies them.
  const full = Array.from({ length: 1010 }, (_, i) => gone(i, `Mail/cur/${i}`)).join('');
  t.ok(full.length / 100 < 1024, 'the first guess is 1024 entries');
  r = scan(full);
  t.same(r.cmds.filter((c) => c.startsWith('DELETE')), Array.from({ length: 1010 }, (_, i) => del(i, `Mail/cur/${i}`)), `${decoder}: 1010 lines, every hash`);

  // The db-file gone between reading and writing: the scan rebuilds the kept lines from what it read.
  r = scan(kept + gone(1, 'x'), () => rmSync(F));
  t.same(r.cmds, [del(1, 'x')], `${decoder}: the db-file removed before the write`);
  t.ok(r.ok, `${decoder}: not an error`);
  t.equal(readFileSync(`${F}.new`, 'latin1'), kept, `${decoder}: rebuilt`);

  // readDbFile and forEachLine (no decoder of their own): the same refusals; an empty line at offset 0.
  for (const [text, line, why] of [[`${kept}${h} ${b} \n`, 3, '2 != 3 fields'], [`${kept}${h.slice(0, 39)}: ${b} x\n`, 3, 'invalid SHA-1'], [`\n${kept}`, 1, '0 != 3 fields']] as const) {
    writeFileSync(F, text, 'latin1');
    t.throws(() => readDbFile(F), { name: 'DbFileError', line, message: `${F}: malformed line ${line}: ${why}. Please remove this db file.` }, `readDbFile: ${why}, line ${line}`);
  }
  writeFileSync(F, '\nab\n\n', 'latin1');
  const seen: string[] = [];
  forEachLine(F, (buf, s, e, no, off) => seen.push(`${no}@${off}:${buf.toString('latin1', s, e)}`));
  t.same(seen, ['1@0:', '2@1:ab', '3@4:'], 'forEachLine: an empty first line is a line');
}
