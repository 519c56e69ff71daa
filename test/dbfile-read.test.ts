/**
 * The db-file as the scan reads it, with the native decoder as built (see
 * helpers/dbfile-read-cases.ts; dbfile-read-js.test.ts runs the same cases
 * with the JavaScript decoder).
 */
import t from 'tap';
import { dbReadCases } from './helpers/dbfile-read-cases.js';

t.test('the db-file as the scan reads it (native decoder as built): copies, entries, refusals', async (t) => {
  dbReadCases(t, process.env.SMD_NATIVE === '0' ? 'js (SMD_NATIVE=0)' : 'native');
});
