/**
 * The peer broke the protocol: bad line, lying size, early EOF, ... A
 * `timeout` is a peer that sent nothing (or read nothing) for the idle
 * timeout: a network failure like `eof`.
 */
export class ProtocolError extends Error {
  constructor(message: string, readonly kind: 'eof' | 'syntax' | 'limit' | 'abort' | 'timeout' = 'syntax') {
    super(message);
    this.name = 'ProtocolError';
  }
}
