/**
 * The few header fields a person recognizes a message by (Subject, From,
 * Date), decoded for display: unfolded (RFC 5322 2.2.3), encoded-words
 * decoded (RFC 2047), raw 8-bit text read as UTF-8 or else Windows-1252.
 * Pure: header bytes in, text out. Used by the run journal.
 */

import { TextDecoder } from 'node:util';

/** The fields of a message shown in the journal; null when absent. */
export interface MessageSummary {
  readonly subject: string | null;
  readonly from: string | null;
  readonly date: string | null;
}

/** Longest decoded field kept (a hostile header must not bloat a journal line). */
const MAX_FIELD = 300;

/** Where the header ends in `bytes` ("\n\n", else "\r\n\r\n", as the hashes split), or bytes.length. */
function headerEnd(bytes: Uint8Array): number {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lf = b.indexOf('\n\n');
  if (lf >= 0) return lf + 1;
  const crlf = b.indexOf('\r\n\r\n');
  return crlf >= 0 ? crlf + 2 : b.length;
}

/**
 * The raw (still encoded) value of the first occurrence of each wanted field,
 * unfolded, as a latin1 string (one char per byte). Field names are matched
 * case-insensitively. `bytes` may hold the whole message or just its start.
 */
export function rawHeaderFields(bytes: Uint8Array, wanted: readonly string[]): Map<string, string> {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, headerEnd(bytes)).toString('latin1');
  const want = new Set(wanted.map((w) => w.toLowerCase()));
  const out = new Map<string, string>();
  let current: string | null = null;
  let value = '';
  const finish = (): void => {
    if (current !== null && !out.has(current)) out.set(current, value.trim());
    current = null;
  };
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '') break;
    if (line[0] === ' ' || line[0] === '\t') {
      // Unfolding removes the line break only; the whitespace that starts the line stays.
      if (current !== null) value += line;
      continue;
    }
    finish();
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (want.has(name) && !out.has(name)) { current = name; value = line.slice(colon + 1); }
  }
  finish();
  return out;
}

const ENCODED_WORD = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;

function charsetDecoder(charset: string): TextDecoder | null {
  // RFC 2231 allows a language after '*': =?utf-8*en?Q?...?=
  const label = charset.split('*')[0].toLowerCase();
  try {
    return new TextDecoder(label === 'us-ascii' || label === 'ascii' ? 'windows-1252' : label);
  } catch {
    return null;
  }
}

function wordBytes(encoding: string, text: string): Buffer | null {
  if (encoding === 'b' || encoding === 'B') {
    if (!/^[A-Za-z0-9+/]*=*$/.test(text)) return null;
    return Buffer.from(text, 'base64');
  }
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '_') bytes.push(0x20);
    else if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) { bytes.push(parseInt(text.slice(i + 1, i + 3), 16)); i += 2; }
    else bytes.push(text.charCodeAt(i) & 0xff);
  }
  return Buffer.from(bytes);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const cp1252 = new TextDecoder('windows-1252');

/** Raw header text (latin1: one char per byte) that is not an encoded-word: UTF-8 if it is valid UTF-8, else Windows-1252. */
function decodeRaw(s: string): string {
  if (!/[\x80-\xff]/.test(s)) return s;
  const b = Buffer.from(s, 'latin1');
  try {
    return utf8.decode(b);
  } catch {
    return cp1252.decode(b);
  }
}

interface PendingWords { charset: string; decoder: TextDecoder; bytes: Buffer[] }

/**
 * Decodes the encoded-words of an unfolded header value given as latin1
 * (one char per byte). Whitespace between two adjacent encoded-words is
 * dropped (RFC 2047 6.2); bytes of consecutive words in the same charset
 * are joined before decoding, so a multi-byte character split across
 * words survives. An encoded-word in an unknown charset is left as is.
 */
export function decodeHeaderValue(raw: string): string {
  let out = '';
  let pos = 0;
  // Bytes of the last encoded-words of one charset, decoded together when the run ends.
  let pending: PendingWords | null = null;
  const flush = (): void => {
    if (pending !== null) { out += pending.decoder.decode(Buffer.concat(pending.bytes)); pending = null; }
  };
  for (const m of raw.matchAll(ENCODED_WORD)) {
    const start = m.index;
    const between = raw.slice(pos, start);
    const adjacent = pending !== null && /^[ \t]*$/.test(between);
    const decoder = charsetDecoder(m[1]);
    const bytes = decoder !== null ? wordBytes(m[2], m[3]) : null;
    if (decoder === null || bytes === null) {
      flush();
      out += decodeRaw(between) + m[0];
      pos = start + m[0].length;
      continue;
    }
    if (!adjacent) { flush(); out += decodeRaw(between); }
    const p = pending as PendingWords | null;
    if (p !== null && p.charset === m[1].toLowerCase()) p.bytes.push(bytes);
    else { flush(); pending = { charset: m[1].toLowerCase(), decoder, bytes: [bytes] }; }
    pos = start + m[0].length;
  }
  flush();
  out += decodeRaw(raw.slice(pos));
  return out;
}

/** Control characters (a decoded word may hold any byte) become spaces; runs of blanks shrink to one. */
function clean(s: string): string {
  // eslint-disable-next-line no-control-regex
  const t = s.replace(/[\x00-\x1f\x7f]+/g, ' ').replace(/[ \t]{2,}/g, ' ').trim();
  return t.length > MAX_FIELD ? `${t.slice(0, MAX_FIELD - 1)}…` : t;
}

/** Subject, From and Date of a message whose first bytes (at least the header, ideally) are `bytes`. */
export function messageSummary(bytes: Uint8Array): MessageSummary {
  const f = rawHeaderFields(bytes, ['subject', 'from', 'date']);
  const get = (k: string): string | null => {
    const v = f.get(k);
    return v === undefined ? null : clean(decodeHeaderValue(v));
  };
  return { subject: get('subject'), from: get('from'), date: get('date') };
}
