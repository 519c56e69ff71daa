/**
 * The db-file as the scan reads it, with the JavaScript decoder (what runs
 * where the native addon is not built): SMD_NATIVE=0 for this process, set
 * before the packages are loaded. The cases are those of dbfile-read.test.ts
 * (helpers/dbfile-read-cases.ts).
 */
import t from 'tap';

process.env.SMD_NATIVE = '0';
const { nativeDbLineDecoder } = await import('@smd/native');
const { dbReadCases } = await import('./helpers/dbfile-read-cases.js');

t.test('the db-file as the scan reads it (JavaScript decoder): copies, entries, refusals', async (t) => {
  t.equal(nativeDbLineDecoder(), null, 'SMD_NATIVE=0: no native decoder');
  dbReadCases(t, 'js');
});
