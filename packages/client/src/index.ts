export { type ClientOptions, runClient } from './session.js';
export {
  type LocalState, type Decision, type PolicyContext, type Sibling, type Siblings, ABSENT, message, decide, namesOf, upstreamTmpName,
} from './policy.js';
export { type MessageName, splitMessageName, joinMessageName, mergeFlags, mergedName, sameMessage } from './flags.js';
export {
  type BrakeLimits, type BrakeVerdict, type FolderDeletions, DEFAULT_BRAKE, judgeDeletions, brakeRefusal, parseBrakePercent,
} from './brake.js';
export { countDbFolders } from './db-folders.js';
export { checkMailboxRoot, refuseName, refuseCommand, folderOf, dirOf, baseOf } from './names.js';
export { renameOnlyScript, shQuote } from './rename-only.js';
export { Translator } from './translator.js';
