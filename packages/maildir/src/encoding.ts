import type { ByteString } from './bytes.js';

/**
 * Upstream's name encoding on the wire and in mddiff output: only ' ' -> %20
 * and '%' -> %25 (upper-case hex). Everything else travels raw.
 */
export function encodeName(name: ByteString): ByteString {
  if (name.indexOf(' ') < 0 && name.indexOf('%') < 0) return name;
  return name.replace(/%/g, '%25').replace(/ /g, '%20');
}

export class NameEncodingError extends Error {
  constructor(readonly encoded: ByteString, readonly position: number) {
    super(`bad %-escape at byte ${position} of name '${encoded}'`);
    this.name = 'NameEncodingError';
  }
}

const HEX = /^[0-9A-Fa-f]{2}$/;

/**
 * Strict decoder for names received from a peer: every '%' must be followed by
 * two hex digits (upstream's client crashes on `%zz`; we raise a typed error).
 */
export function decodeName(encoded: ByteString): ByteString {
  if (encoded.indexOf('%') < 0) return encoded;
  let out = '';
  for (let i = 0; i < encoded.length; i++) {
    const c = encoded[i];
    if (c !== '%') { out += c; continue; }
    const hex = encoded.slice(i + 1, i + 3);
    if (!HEX.test(hex)) throw new NameEncodingError(encoded, i);
    out += String.fromCharCode(parseInt(hex, 16));
    i += 2;
  }
  return out;
}

/**
 * Lenient decoder used by mddiff for its PATH and --exclude arguments, as
 * upstream: '%' + two hex digits is a byte; anything else is kept as it is.
 */
export function decodeArgument(encoded: ByteString): ByteString {
  return encoded.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}
