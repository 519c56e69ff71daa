/** Shared by the db-file patch tests (patch.test.ts and patch-header.test.ts, the fast cases; protocol.test.ts, the heavy ones). */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDbPatchFromBuffers, applyDbPatch, applyDbPatchStream, applyDbPatchToBuffer, PatchError, PATCH_MAGIC } from '@smd/protocol';

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

/** A patch with the given header and ops, made by hand. */
export const patchOf = (from: string, to: string, size: number, enc: 'plain' | 'deflate', ops: Buffer): Buffer =>
  Buffer.concat([Buffer.from(`${PATCH_MAGIC}\nfrom ${from}\nto ${to} ${size}\nops ${enc} ${ops.length}\n`, 'latin1'), ops]);

/** `b` cut into pieces of `n` bytes. */
export function splitEvery(b: Buffer, n: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += n) out.push(b.subarray(i, i + n));
  return out;
}

/** An async iterable over the pieces of several lists, in order. */
export async function* concat(...lists: Buffer[][]): AsyncGenerator<Buffer> {
  for (const l of lists) for (const p of l) yield p;
}

/**
 * The PatchError message (or 'applied') of applying `patch` to `old` through each applier: in memory,
 * file (`d`/db), stream (pieces of `piece` bytes).
 */
export async function refusals(d: string, old: Buffer, patch: Buffer, piece = 7): Promise<string[]> {
  const out: string[] = [];
  const why = (e: unknown): string => (e instanceof PatchError ? e.message : `not a PatchError: ${String(e)}`);
  writeFileSync(join(d, 'db'), old);
  try { applyDbPatchToBuffer(old, patch); out.push('applied'); } catch (e) { out.push(why(e)); }
  try { applyDbPatch(join(d, 'db'), patch, join(d, 'db.new')); out.push('applied'); } catch (e) { out.push(why(e)); }
  try { await applyDbPatchStream(join(d, 'db'), concat(splitEvery(patch, piece)), join(d, 'db.new')); out.push('applied'); } catch (e) { out.push(why(e)); }
  return out;
}
