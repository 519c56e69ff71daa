/**
 * What the db-file may say after a run, from what the client knows: the
 * lines both sides agreed on before, and the diff it applied. Upstream's
 * xdelta3 patch carries no checksum of its result, so the result is checked
 * against this instead (pure: lines in, verdict out).
 */
import type { ByteString } from '@smd/maildir';
import type { DiffCommand } from '@smd/snapshot';

/** `<header> <body>` of a db line. */
type Hashes = string;

export class ExpectedDb {
  /** Names the diff gave (new) hashes. */
  private readonly put = new Map<ByteString, Hashes>();
  /** Names the diff took away. */
  private readonly gone = new Set<ByteString>();

  /** Records a command of the diff (in order; a later command on a name wins). */
  note(c: DiffCommand): void {
    const set = (n: ByteString, h: string, b: string): void => { this.put.set(n, `${h} ${b}`); this.gone.delete(n); };
    const drop = (n: ByteString): void => { this.gone.add(n); this.put.delete(n); };
    switch (c.op) {
      case 'ADD': set(c.name, c.header, c.body); break;
      case 'COPY': set(c.to, c.header, c.body); break;
      case 'MOVE': drop(c.from); set(c.to, c.header, c.body); break;
      case 'COPYBODY': set(c.to, c.toHeader, c.body); break;
      case 'DELETE': drop(c.name); break;
      case 'REPLACEHEADER': set(c.name, c.newHeader, c.body); break;
      case 'REPLACE': set(c.name, c.newHeader, c.newBody); break;
      case 'ERROR': break;
    }
  }

  /**
   * Null if the new db-file (its lines) is one the run can lead to: every
   * name the diff set has exactly its new hashes, no name the diff removed
   * is there, every other line is a line of the old db-file (one may be
   * missing: `-n` drops vanished messages without a DELETE), no name twice.
   * Otherwise what is wrong.
   */
  check(oldLines: Iterable<ByteString>, newLines: Iterable<ByteString>): string | null {
    const old = new Map<ByteString, Hashes>();
    for (const l of oldLines) old.set(l.slice(82), l.slice(0, 81).toLowerCase());
    const seen = new Set<ByteString>();
    for (const l of newLines) {
      if (l.length < 83 || l[40] !== ' ' || l[81] !== ' ' || !/^[0-9a-fA-F]{40} [0-9a-fA-F]{40}$/.test(l.slice(0, 81))) {
        return `a malformed line ${JSON.stringify(l.slice(0, 100))}`;
      }
      const name = l.slice(82);
      const hashes = l.slice(0, 81).toLowerCase();
      if (seen.has(name)) return `${JSON.stringify(name)} twice`;
      seen.add(name);
      const want = this.put.get(name);
      if (want !== undefined) {
        if (want !== hashes) return `${JSON.stringify(name)} with other hashes than the changes announced`;
        continue;
      }
      if (this.gone.has(name)) return `${JSON.stringify(name)}, which the changes removed`;
      if (old.get(name) !== hashes) return `${JSON.stringify(name)}, which neither the old db-file nor the changes have`;
    }
    for (const n of this.put.keys()) if (!seen.has(n)) return `no line for ${JSON.stringify(n)}, which the changes added`;
    return null;
  }
}
