export { ProtocolError } from './errors.js';
export { WireReader, WireWriter, type WireOptions, MAX_LINE, MAX_CHUNK, DEFAULT_IDLE_TIMEOUT_MS } from './wire.js';
export {
  type ErrorTags, type StatsTags, TaggedError,
  formatErrorTags, formatStatsTags, formatSkippedTags, formatTransferredTags, isRetryable,
} from './tags.js';
export {
  PROTOCOL_VERSION, UPSTREAM_PROTOCOL_VERSION, type DbFingerprint, type HandshakeDecision, type Dialect, type HandshakeOptions,
  decideHandshake, sendHandshake, receiveHandshake, exchangeHandshake, dbMismatchError,
} from './handshake.js';
export { type SessionLog, streamLog, logFailure } from './log.js';
export {
  PatchError, PATCH_MAGIC, EMPTY_PATCH, isEmptyPatch, applyDbPatch, applyDbPatchStream, applyDbPatchToBuffer, parseDbPatch,
  type DbPatchHeader, type DbPatchOptions, MAX_DB_FILE, maxOpsBytes,
} from './patch.js';
export { REORDER_FASTDIFF_MAX, type DbPatch, type CreateOptions, type Fingerprint, openDbPatch, createDbPatch, createDbPatchFromBuffers } from './patch-create.js';
export { xdeltaUnavailable, createXdeltaPatch, applyXdeltaPatch } from './xdelta.js';
export {
  type JournalAction, type JournalEntry, JOURNAL_ACTIONS, JOURNAL_PREFIX, formatJournalLine, parseJournalLine, isJournalEntry,
} from './journal.js';
