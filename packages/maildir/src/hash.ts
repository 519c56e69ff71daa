import { createHash, type Hash } from 'node:crypto';

/** SHA-1 (40 lower-case hex digits) of a message's header and of its body. */
export interface MessageHashes {
  readonly header: string;
  readonly body: string;
}

/** SHA-1 of the empty string: the body hash of a message with no body. */
export const EMPTY_SHA1 = 'da39a3ee5e6b4b0d3255bfef95601890afd80709';

const NL = 0x0a;
const CR = 0x0d;

/**
 * Incremental header/body splitter and hasher.
 *
 * The header is every byte up to and including the first "\n\n" (upstream
 * mddiff's rule, so digests match upstream's for every file it accepts). A
 * file without "\n\n" but with "\r\n\r\n" (a pure CRLF message, which
 * upstream skips) splits after the first "\r\n\r\n". Anything else has no
 * header and is not a message. Bytes are fed in pieces of any size, so a
 * message is never held in memory whole.
 */
export class MessageHasher {
  private readonly header: Hash = createHash('sha1');
  private body: Hash | null = null;
  /** Header digest if the message turns out to split at "\r\n\r\n". */
  private crlfHeader: string | null = null;
  private crlfBody: Hash | null = null;
  /** Last (up to) 3 bytes seen while still looking for the separator. */
  private tail: number[] = [];
  private size = 0;
  private headerSize = -1;

  update(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.size += chunk.length;
    if (this.body !== null) { this.body.update(chunk); return; }
    const nn = this.findLfLf(chunk);
    if (nn >= 0) {
      this.header.update(chunk.subarray(0, nn));
      this.body = createHash('sha1');
      this.body.update(chunk.subarray(nn));
      this.headerSize = this.size - chunk.length + nn;
      this.crlfBody = null;
      this.crlfHeader = null;
      return;
    }
    if (this.crlfBody === null) {
      const e = this.findCrlfCrlf(chunk);
      if (e >= 0) {
        this.header.update(chunk.subarray(0, e));
        this.crlfHeader = this.header.copy().digest('hex');
        this.header.update(chunk.subarray(e));
        this.crlfBody = createHash('sha1');
        this.crlfBody.update(chunk.subarray(e));
        this.headerSize = this.size - chunk.length + e;
        this.remember(chunk);
        return;
      }
    } else {
      this.crlfBody.update(chunk);
    }
    this.header.update(chunk);
    this.remember(chunk);
  }

  /** Hashes of the message, or null if it has no header (or is empty). */
  digest(): MessageHashes | null {
    if (this.size === 0) return null;
    if (this.body !== null) return { header: this.header.digest('hex'), body: this.body.digest('hex') };
    if (this.crlfBody !== null && this.crlfHeader !== null) {
      return { header: this.crlfHeader, body: this.crlfBody.digest('hex') };
    }
    return null;
  }

  /** Byte length of the header (separator included), -1 if not found (yet). */
  get headerLength(): number {
    return this.headerSize;
  }

  get length(): number {
    return this.size;
  }

  /** End offset (exclusive) in `chunk` of the first "\n\n", or -1. */
  private findLfLf(chunk: Uint8Array): number {
    const t = this.tail;
    if (t.length > 0 && t[t.length - 1] === NL && chunk[0] === NL) return 1;
    const i = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).indexOf('\n\n');
    return i < 0 ? -1 : i + 2;
  }

  /** End offset (exclusive) in `chunk` of the first "\r\n\r\n", or -1. */
  private findCrlfCrlf(chunk: Uint8Array): number {
    const pat = [CR, NL, CR, NL];
    const t = this.tail;
    // Matches that start in the tail and end in this chunk.
    for (let k = Math.min(3, t.length); k >= 1; k--) {
      let ok = chunk.length >= 4 - k;
      for (let j = 0; ok && j < 4; j++) {
        const b = j < k ? t[t.length - k + j] : chunk[j - k];
        if (b !== pat[j]) ok = false;
      }
      if (ok) return 4 - k;
    }
    const i = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).indexOf('\r\n\r\n');
    return i < 0 ? -1 : i + 4;
  }

  private remember(chunk: Uint8Array): void {
    const n = chunk.length;
    if (n >= 3) { this.tail = [chunk[n - 3], chunk[n - 2], chunk[n - 1]]; return; }
    this.tail = [...this.tail, ...chunk].slice(-3);
  }
}

/** Hashes of a message held in memory, or null if it has no header. */
export function hashMessage(data: Uint8Array): MessageHashes | null {
  const h = new MessageHasher();
  h.update(data);
  return h.digest();
}

/** SHA-1 hex of some bytes. */
export function sha1(data: Uint8Array | string): string {
  return createHash('sha1').update(data).digest('hex');
}
