export { type DiffCommand, type DiffOp, formatCommand, parseCommand, CommandSyntaxError } from './command.js';
export {
  type DbEntries, type LoadedDb, DbFileError, readDbFile, readDbMtime, writeDbNew, dbLine, commitDbFile, discardDbNew,
  dbFingerprint, dbFileName, forEachLine,
} from './dbfile.js';
export { type DiffOptions, type StillThere, type CurrentFile, DiffEngine, diff, NOT_SEEN, SEEN, CHANGED, MOVED } from './diff.js';
export { type ScanOptions, type ScanResult, diffMaildir, listMailFolders } from './scan.js';
export { type StatCache, loadStatCache, writeStatCache } from './statcache.js';
export { reviseDbNew } from './revise.js';
