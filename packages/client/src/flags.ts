/**
 * Maildir flags (the `:2,FLAGS` end of a message file name) and how two
 * concurrent flag changes of one message merge (pure). A message keeps its
 * unique part (before `:`) when a mail program changes its flags or moves
 * it from new/ to cur/; only the info part changes.
 */
import type { ByteString } from '@smd/maildir';

/** A message file name split: `Mail/.Work/cur/1700.M1P2.host:2,RS`. */
export interface MessageName {
  /** `Mail/.Work` */
  readonly folder: ByteString;
  /** `cur` or `new` */
  readonly sub: ByteString;
  /** `1700.M1P2.host` */
  readonly unique: ByteString;
  /** `RS`, or null when the name has no `:2,` info (usual in new/). */
  readonly flags: ByteString | null;
}

const INFO = ':2,';

/** Splits an accepted name (`<folder>/<cur|new>/<file>`), or null if it is not of that form. */
export function splitMessageName(name: ByteString): MessageName | null {
  const i = name.lastIndexOf('/');
  const j = name.lastIndexOf('/', i - 1);
  if (i < 0 || j < 0) return null;
  const sub = name.slice(j + 1, i);
  if (sub !== 'cur' && sub !== 'new') return null;
  const file = name.slice(i + 1);
  const k = file.lastIndexOf(INFO);
  return k > 0
    ? { folder: name.slice(0, j), sub, unique: file.slice(0, k), flags: file.slice(k + INFO.length) }
    : { folder: name.slice(0, j), sub, unique: file, flags: null };
}

/** The flags of a split name as a set (no info: none). */
const flagSet = (flags: ByteString | null): Set<string> => new Set(flags ?? '');

/**
 * Three-way merge of one message's flags: `base` is what both sides agreed
 * on at the last sync, `theirs` and `mine` what each side has now. A flag
 * changed (added or removed) on one side takes that side's value; a flag
 * changed the same way on both sides, or on neither, keeps it. So additions
 * are united and a flag removed on one side and untouched on the other is
 * removed. The result is in ASCII order, as the Maildir spec wants.
 */
export function mergeFlags(base: ByteString, theirs: ByteString, mine: ByteString): ByteString {
  const b = flagSet(base);
  const t = flagSet(theirs);
  const m = flagSet(mine);
  const out: string[] = [];
  for (const f of new Set([...b, ...t, ...m])) {
    const keep = t.has(f) !== b.has(f) ? t.has(f) : m.has(f);
    if (keep) out.push(f);
  }
  return out.sort().join('');
}

/** The name a message gets from its split parts (flags null: no info; then it stays in its sub-folder). */
export function joinMessageName(n: MessageName): ByteString {
  return n.flags === null ? `${n.folder}/${n.sub}/${n.unique}` : `${n.folder}/${n.sub}/${n.unique}${INFO}${n.flags}`;
}

/**
 * Where a message goes when the other side renamed it `src` → `dst` while
 * this side renamed `src` → `mine` (the same message: same unique part):
 * `dst`'s folder and unique part, the merged flags. A message with flags is
 * in cur/ (a flagged message in new/ would not be a valid Maildir message).
 * Null when the names are not message names of the same unique part.
 */
export function mergedName(src: ByteString, dst: ByteString, mine: ByteString): { name: ByteString; from: ByteString; to: ByteString } | null {
  const s = splitMessageName(src);
  const d = splitMessageName(dst);
  const m = splitMessageName(mine);
  if (s === null || d === null || m === null || m.unique !== s.unique || m.folder !== s.folder) return null;
  const flags = mergeFlags(s.flags ?? '', d.flags ?? '', m.flags ?? '');
  const noInfo = flags === '' && d.flags === null;
  const name = joinMessageName({ folder: d.folder, sub: noInfo ? d.sub : 'cur', unique: d.unique, flags: noInfo ? null : flags });
  return { name, from: m.flags ?? '', to: flags };
}

/** Whether two names are the same message in the same folder (same unique part), whatever their flags. */
export function sameMessage(a: ByteString, b: ByteString): boolean {
  const x = splitMessageName(a);
  const y = splitMessageName(b);
  return x !== null && y !== null && x.folder === y.folder && x.unique === y.unique;
}
