/** File-system errors as a user reads them (upstream printed strerror: "Permission denied"). */
import { getSystemErrorMap } from 'node:util';

let messages: Map<number, [string, string]> | null = null;

/** `Permission denied`, `No space left on device`, ... (the message of an errno error, capitalised), else its message. */
export function describeFsError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.errno === 'number') {
    messages ??= getSystemErrorMap();
    const m = messages.get(err.errno);
    if (m !== undefined) return m[1].charAt(0).toUpperCase() + m[1].slice(1);
  }
  return err?.code ?? err?.message ?? String(e);
}

/** The TAGS probable-cause of a file-system error: what the user has to look at. */
export function fsErrorCause(e: unknown): string {
  switch ((e as NodeJS.ErrnoException)?.code) {
    case 'EACCES': case 'EPERM': case 'EROFS': return 'bad-directory-permission';
    case 'ENOSPC': case 'EDQUOT': return 'disk-full';
    case 'EMFILE': case 'ENFILE': return 'too-many-open-files';
    case 'EIO': return 'io-error';
    default: return 'filesystem-error';
  }
}

/** Is this an errno error of the file system (not a bug)? */
export function isFsError(e: unknown): boolean {
  return typeof (e as NodeJS.ErrnoException)?.code === 'string' && typeof (e as NodeJS.ErrnoException)?.syscall === 'string';
}
