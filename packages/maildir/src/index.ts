export { type ByteString, fsPath, fsName, fromBytes, fromUtf8, toUtf8 } from './bytes.js';
export { encodeName, decodeName, decodeArgument, NameEncodingError } from './encoding.js';
export { type MessageHashes, MessageHasher, hashMessage, sha1, EMPTY_SHA1 } from './hash.js';
export { fnmatch, fnmatchToRegExp } from './fnmatch.js';
export {
  type Candidate, type WalkOptions, type MailFolderListing, MaildirWalkError, walkMaildir, walkMaildirFolders, walkMailFolders, findRenamed,
  stripOneSlash, isNotAMessageName, listDirectory, listDirectoryStat, type DirListing, type DirLister,
  prefetchMailFolders, type FolderPrefetch, findMailFolders, listerAhead,
} from './walk.js';
export { type MessageFile, readMessageFile } from './read.js';
export { HashPool } from './pool.js';
export { DirQueue } from './dir-queue.js';
export { AtomicFileWriter, writeFileAtomic, fsyncDir, fileSystemSync, renameNoReplace, removeStaleTemps, isProcessRunning } from './atomic.js';
export { describeFsError, fsErrorCause, isFsError } from './fs-error.js';
export { MailboxRoots, PathRefusal, type RealDir, type RootsOptions } from './roots.js';
export { type MessageSummary, messageSummary, decodeHeaderValue, rawHeaderFields } from './header-fields.js';
