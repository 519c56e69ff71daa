/** The client's failures: TAGS helpers, the marker of an aborted session, and reply errors. */
import { type ErrorTags, ProtocolError, TaggedError } from '@smd/protocol';
import { type ByteString, toUtf8 } from '@smd/maildir';

/** A transient failure: smd-loop retries it. */
export const retry = (context: string, probableCause: string): ErrorTags =>
  ({ context, probableCause, humanIntervention: 'avoidable', suggestedActions: ['retry'] });

/** A failure a human must look at. */
export const necessary = (context: string, probableCause: string, suggestedActions?: string[]): ErrorTags =>
  ({ context, probableCause, humanIntervention: 'necessary', ...(suggestedActions ? { suggestedActions } : {}) });

/**
 * Thrown by work that notices the session already failed. It is never the
 * reason of a failure: the session reports the reason it recorded first.
 */
export class SessionAborted extends Error {
  override name = 'SessionAborted';
  constructor() { super('session aborted'); }
}

/** Maps wire errors while receiving `name` to tagged failures (exit 1, ABORT). */
export function replyError(e: unknown, name: ByteString): unknown {
  if (!(e instanceof ProtocolError)) return e;
  const n = toUtf8(name);
  switch (e.kind) {
    case 'eof': case 'timeout': return new TaggedError(`Network error while receiving ${n}: ${e.message}`, retry('receive', 'network'), 1);
    case 'abort': return new TaggedError(`The server could not send ${n} (it was probably modified or removed there meanwhile)`,
      retry('receive', 'simultaneous-mailbox-edit'), 1);
    default: return new TaggedError(`The server sent a bad reply for ${n}: ${e.message}`, necessary('receive', 'hostile-or-broken-server'), 1);
  }
}
