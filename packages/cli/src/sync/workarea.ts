import { lstatSync, mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { decodeArgument, encodeName, fromUtf8, fsPath, toUtf8, type ByteString } from '@smd/maildir';
import { listMailFolders } from '@smd/snapshot';
import { createTranslator, unsafeTranslation, type EndpointConfig, type SmdHome } from '@smd/endpoint';

/**
 * Empties `~/.smd/workarea` for a new run. It only ever holds directories and
 * symbolic links; anything else was put there by hand and is not ours to
 * delete: the error message names it. Returns an error message, or null.
 */
export function resetWorkarea(home: SmdHome): string | null {
  const cruft = firstFile(home.workarea);
  if (cruft !== null) return `Some files are left in ${home.workarea} (e.g. ${cruft}): remove them by hand, smd only keeps symbolic links there`;
  rmSync(home.workarea, { recursive: true, force: true });
  mkdirSync(home.workarea, { recursive: true, mode: 0o700 });
  return null;
}

function firstFile(dir: string): string | null {
  let names: string[];
  try { names = readdirSync(dir); } catch { return null; }
  for (const n of names) {
    const p = join(dir, n);
    const st = lstatSync(p);
    if (st.isSymbolicLink()) continue;
    if (st.isDirectory()) { const f = firstFile(p); if (f !== null) return f; continue; }
    return p;
  }
  return null;
}

/**
 * The local mailbox seen under the server's folder names, as upstream's
 * smd-push builds it: every local cur/new folder is translated
 * (TRANSLATOR_LR) and linked from the workarea (`workarea/<remote name>` ->
 * `$HOME/<local name>`). The cwd must be $HOME. `onTranslated` hears every
 * folder a translator (not `cat`) renamed. Returns an error message, or null.
 */
export async function linkLocalFolders(home: SmdHome, config: EndpointConfig, onTranslated?: (local: ByteString, remote: ByteString) => void): Promise<string | null> {
  const roots = config.mailboxLocal.map((m) => decodeArgument(m));
  const excludes = config.excludeLocal.map((g) => decodeArgument(fromUtf8(g)));
  const translator = createTranslator(config.translatorLR.command, { cwd: home.home });
  try {
    let folders: ByteString[];
    try {
      folders = [...listMailFolders(roots, excludes, config.followLocal.map((f) => decodeArgument(f)))];
    } catch (e) {
      return `cannot list the local mailbox: ${(e as Error).message}`;
    }
    for (const dir of folders) {
      let target: ByteString;
      try {
        target = await translator.translate(dir);
      } catch (e) {
        return `Error translating ${toUtf8(dir)}: ${(e as Error).message}`;
      }
      const unsafe = unsafeTranslation(target);
      if (unsafe !== null) return `Error translating ${toUtf8(dir)}: ${unsafe} (${toUtf8(target)})`;
      if (!translator.identity) onTranslated?.(dir, target);
      const link = Buffer.concat([Buffer.from(`${home.workarea}/`), fsPath(target)]);
      mkdirSync(Buffer.from(dirname(link.toString('latin1')), 'latin1'), { recursive: true, mode: 0o700 });
      symlinkSync(Buffer.concat([Buffer.from(`${home.home}/`), fsPath(dir)]), link);
    }
    return null;
  } finally {
    await translator.close();
  }
}

/** `p` (a %-encoded directory of the config) as an absolute path: relative ones are under $HOME. */
export function underHome(home: SmdHome, p: ByteString): ByteString {
  return p.startsWith('/') ? p : `${encodeName(fromUtf8(home.home))}/${p}`;
}

/**
 * Where a local program may follow folder symlinks (%-encoded, absolute: it
 * runs in the workarea): FOLLOW_LOCAL, plus the local mailbox when it scans
 * it through the workarea links (`viaWorkarea`).
 */
export function localFollowDirs(home: SmdHome, config: EndpointConfig, viaWorkarea: boolean): ByteString[] {
  return [...(viaWorkarea ? config.mailboxLocal : []), ...config.followLocal].map((p) => underHome(home, p));
}

/** `--follow DIR` for each directory (a command-line word: its bytes as UTF-8 text, see argvWord). */
export function followArgs(dirs: readonly ByteString[]): string[] {
  return dirs.flatMap((d) => ['--follow', argvWord(d)]);
}

/**
 * A name of the config (a ByteString: the bytes of the UTF-8 file) as a
 * command-line word: spawn encodes a JS string as UTF-8, so the word must be
 * the text, not the bytes (else "Maïl" reaches the program as "MaÃ¯l").
 */
export function argvWord(name: ByteString): string {
  return toUtf8(name);
}

/** `translating: A -> B`, as upstream's verbose runs print it. */
export function translatingLine(from: ByteString, to: ByteString): string {
  return `translating: ${toUtf8(from)} -> ${toUtf8(to)}`;
}

/** Gives the other side of a finished program a grace period to finish too, then stops it. */
export function killLater(kill: () => void): void {
  const t = setTimeout(kill, 30_000);
  t.unref();
}
