/** What went wrong while starting (or keeping) a connection to the remote program. */
export type TransportErrorKind =
  /** bad SSH/SMD_SSH value, unusable ~/.ssh/config, unsupported option, bad host name */
  | 'config'
  /** the program (ssh, or the local program) could not be started */
  | 'spawn'
  /** TCP connection, protocol or channel failure */
  | 'connect'
  /** the server refused every key we offered */
  | 'auth'
  /** the server's host key is unknown, changed or revoked */
  | 'hostkey';

export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(readonly kind: TransportErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
