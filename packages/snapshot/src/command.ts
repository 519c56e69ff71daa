import { type ByteString, encodeName, decodeName } from '@smd/maildir';

/**
 * One line of mddiff output / of the diff the server streams to the client.
 * Names are raw ByteStrings here; they are %-encoded only on the wire.
 * `header`/`body` are the 40-hex SHA-1 digests.
 */
export type DiffCommand =
  | { readonly op: 'ADD'; readonly name: ByteString; readonly header: string; readonly body: string }
  | { readonly op: 'COPY'; readonly from: ByteString; readonly header: string; readonly body: string; readonly to: ByteString }
  | { readonly op: 'MOVE'; readonly from: ByteString; readonly header: string; readonly body: string; readonly to: ByteString }
  | { readonly op: 'COPYBODY'; readonly from: ByteString; readonly body: string; readonly to: ByteString; readonly toHeader: string }
  | { readonly op: 'DELETE'; readonly name: ByteString; readonly header: string; readonly body: string }
  | { readonly op: 'REPLACEHEADER'; readonly name: ByteString; readonly header: string; readonly body: string; readonly newHeader: string }
  | { readonly op: 'REPLACE'; readonly name: ByteString; readonly header: string; readonly body: string; readonly newHeader: string; readonly newBody: string }
  | { readonly op: 'ERROR'; readonly message: string };

export type DiffOp = DiffCommand['op'];

/** The command as one output line, without the trailing newline. */
export function formatCommand(c: DiffCommand): ByteString {
  switch (c.op) {
    case 'ADD':
    case 'DELETE':
      return `${c.op} ${encodeName(c.name)} ${c.header} ${c.body}`;
    case 'COPY':
    case 'MOVE':
      return `${c.op} ${encodeName(c.from)} ${c.header} ${c.body} TO ${encodeName(c.to)}`;
    case 'COPYBODY':
      return `COPYBODY ${encodeName(c.from)} ${c.body} TO ${encodeName(c.to)} ${c.toHeader}`;
    case 'REPLACEHEADER':
      // Upstream prints this name raw (its bug B1); its client decodes it, so encoding is compatible.
      return `REPLACEHEADER ${encodeName(c.name)} ${c.header} ${c.body} WITH ${c.newHeader}`;
    case 'REPLACE':
      return `REPLACE ${encodeName(c.name)} ${c.header} ${c.body} WITH ${c.newHeader} ${c.newBody}`;
    case 'ERROR':
      return `ERROR ${c.message}`;
  }
}

export class CommandSyntaxError extends Error {
  constructor(readonly line: ByteString, readonly reason: string) {
    super(`malformed diff line (${reason}): ${JSON.stringify(line.length > 200 ? line.slice(0, 200) + '...' : line)}`);
    this.name = 'CommandSyntaxError';
  }
}

const SHA = /^[0-9a-f]{40}$/;

/**
 * Parses one diff line. Syntax only: names are decoded and must be non-empty
 * and free of NUL/CR/LF; whether a name is acceptable for a mailbox is the
 * client's decision. Throws CommandSyntaxError.
 */
export function parseCommand(line: ByteString): DiffCommand {
  const sp = line.indexOf(' ');
  const op = sp < 0 ? line : line.slice(0, sp);
  if (op === 'ERROR') return { op: 'ERROR', message: sp < 0 ? '' : line.slice(sp + 1) };
  const f = sp < 0 ? [] : line.slice(sp + 1).split(' ');
  const bad = (reason: string): never => { throw new CommandSyntaxError(line, reason); };
  const sha = (s: string | undefined): string => (s !== undefined && SHA.test(s) ? s : bad('bad SHA-1'));
  const name = (s: string | undefined): ByteString => {
    if (s === undefined || s === '') return bad('missing name');
    let n: ByteString;
    try { n = decodeName(s); } catch { return bad('bad %-escape in name'); }
    if (n === '' || /[\0\r\n]/.test(n)) bad('name contains NUL, CR or LF');
    return n;
  };
  const count = (k: number): void => { if (f.length !== k) bad(`${op} takes ${k} fields, got ${f.length}`); };
  const word = (i: number, w: string): void => { if (f[i] !== w) bad(`expected ${w}`); };
  switch (op) {
    case 'ADD':
    case 'DELETE':
      count(3);
      return { op, name: name(f[0]), header: sha(f[1]), body: sha(f[2]) };
    case 'COPY':
    case 'MOVE':
      count(5); word(3, 'TO');
      return { op, from: name(f[0]), header: sha(f[1]), body: sha(f[2]), to: name(f[4]) };
    case 'COPYBODY':
      count(5); word(2, 'TO');
      return { op, from: name(f[0]), body: sha(f[1]), to: name(f[3]), toHeader: sha(f[4]) };
    case 'REPLACEHEADER': {
      // An upstream server sends this name unencoded (it may contain spaces): parse from the right.
      if (f.length < 5) bad('REPLACEHEADER takes 5 fields');
      const k = f.length;
      if (f[k - 2] !== 'WITH') bad('expected WITH');
      const raw = f.slice(0, k - 4).join(' ');
      let n: ByteString;
      try { n = decodeName(raw); } catch { n = raw; }
      if (n === '' || /[\0\r\n]/.test(n)) bad('bad name');
      return { op, name: n, header: sha(f[k - 4]), body: sha(f[k - 3]), newHeader: sha(f[k - 1]) };
    }
    case 'REPLACE':
      count(6); word(3, 'WITH');
      return { op, name: name(f[0]), header: sha(f[1]), body: sha(f[2]), newHeader: sha(f[4]), newBody: sha(f[5]) };
    default:
      return bad(`unknown command ${JSON.stringify(op)}`);
  }
}
