/** The peer broke the protocol: bad line, lying size, early EOF, ... */
export class ProtocolError extends Error {
  constructor(message: string, readonly kind: 'eof' | 'syntax' | 'limit' | 'abort' = 'syntax') {
    super(message);
    this.name = 'ProtocolError';
  }
}
