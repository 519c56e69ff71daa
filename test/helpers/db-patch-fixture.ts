/** Shared by the db-file patch tests (patch.test.ts, the fast cases; protocol.test.ts, the heavy ones). */
import { createHash } from 'node:crypto';
import { createDbPatchFromBuffers, applyDbPatchToBuffer } from '@smd/protocol';

export const sha1 = (b: Buffer | string): string => createHash('sha1').update(typeof b === 'string' ? Buffer.from(b, 'latin1') : b).digest('hex');

/** A db-file line like mddiff writes. */
export const dbl = (i: number, name = `Mail/cur/${i}.host:2,S`): string => `${sha1(`h${i}`)} ${sha1(`b${i}`)} ${name}\n`;

/** The patch from `a` to `b` (latin1), failing `t` when applying it does not give `b` back. */
export function roundTrip(t: { fail(message: string): void }, a: string, b: string, what: string): Buffer {
  const A = Buffer.from(a, 'latin1');
  const B = Buffer.from(b, 'latin1');
  const p = createDbPatchFromBuffers(A, B);
  const out = applyDbPatchToBuffer(A, p);
  if (!out.equals(B)) t.fail(`${what}: round trip differs`);
  return p;
}
