/** Test helpers for the wire tests. */
import type { Test } from 'tap';
import { ProtocolError } from '@smd/protocol';

/** `p` rejects with a ProtocolError of `kind`. */
export async function rejectsKind(t: Test, p: Promise<unknown>, kind: string, msg: string): Promise<void> {
  try {
    await p;
    t.fail(`${msg}: no error`);
  } catch (e) {
    t.ok(e instanceof ProtocolError, `${msg}: ProtocolError`);
    t.equal((e as ProtocolError).kind, kind, `${msg}: kind ${kind}`);
  }
}
