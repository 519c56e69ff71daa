/**
 * Maildir names are byte strings: a JS string in which every char is one byte
 * (latin1). File names on disk are arbitrary bytes, and upstream's db-file and
 * wire format carry them raw, so decoding them as UTF-8 would be lossy.
 * Every fs call on a message name goes through `fsPath`.
 */
export type ByteString = string;

/** The Buffer path to hand to `fs` for a ByteString name. */
export function fsPath(name: ByteString): Buffer {
  return Buffer.from(name, 'latin1');
}

const ASCII = /^[\x00-\x7f]*$/;

/**
 * fsPath for hot paths: a pure-ASCII name is the same in latin1 and UTF-8, so
 * it goes to `fs` as the string itself (no Buffer per call).
 */
export function fsName(name: ByteString): string | Buffer {
  return ASCII.test(name) ? name : Buffer.from(name, 'latin1');
}

/** A ByteString from raw bytes. */
export function fromBytes(buf: Buffer | Uint8Array): ByteString {
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('latin1');
}

/** A ByteString from a normal (UTF-16) JS string, e.g. a command-line argument. */
export function fromUtf8(s: string): ByteString {
  return Buffer.from(s, 'utf8').toString('latin1');
}

/** A ByteString shown to a person (invalid UTF-8 becomes U+FFFD). */
export function toUtf8(s: ByteString): string {
  return Buffer.from(s, 'latin1').toString('utf8');
}
