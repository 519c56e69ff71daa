/**
 * `--rename-only` (spec 5.11, used by smd-uniform-names): turn COPY+DELETE
 * pairs inside one cur/ or new/ directory into a shell script of renames.
 * Pure: commands in, script text (a ByteString) out.
 */
import type { ByteString } from '@smd/maildir';
import type { DiffCommand } from '@smd/snapshot';
import { baseOf, dirOf } from './names.js';

/** Single-quoted for sh (upstream used double quotes, which `$`/`"` in names break). */
export function shQuote(s: ByteString): ByteString {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * `localDir(d)`: the local absolute directory of remote directory `d`
 * ($HOME + the translated name). For every `COPY S TO T` whose S is also
 * DELETEd, in the same cur/ or new/ directory: `mv S T`; further COPYs of
 * the same S become `cp` lines at the top, so they run before the mv.
 */
export function renameOnlyScript(cmds: readonly DiffCommand[], localDir: (dir: ByteString) => ByteString): ByteString {
  const deleted = new Set<ByteString>();
  for (const c of cmds) if (c.op === 'DELETE') deleted.add(c.name);
  const used = new Set<ByteString>();
  const top: ByteString[] = [];
  const body: ByteString[] = [];
  for (const c of cmds) {
    if (c.op !== 'COPY' || !deleted.has(c.from)) continue;
    if (c.from.startsWith('/') || c.to.startsWith('/')) continue;
    const d = dirOf(c.from);
    if (d !== dirOf(c.to)) continue;
    const last = baseOf(d);
    if (last !== 'cur' && last !== 'new') continue;
    const ld = localDir(d);
    const s = shQuote(`${ld}/${baseOf(c.from)}`);
    const t = shQuote(`${ld}/${baseOf(c.to)}`);
    if (used.has(c.from)) top.unshift(`cp ${s} ${t}`);
    else { used.add(c.from); body.push(`mv ${s} ${t}`); }
  }
  return ['#!/bin/sh', ...top, ...body].join('\n') + '\n';
}
