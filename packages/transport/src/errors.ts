import type { TransportFailureKind } from './failure.js';

/** What went wrong while starting (or keeping) a connection to the remote program. */
export type TransportErrorKind = TransportFailureKind;

export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(readonly kind: TransportErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
