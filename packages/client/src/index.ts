export { type ClientOptions, runClient } from './session.js';
export {
  type LocalState, type Decision, type PolicyContext, ABSENT, message, decide, namesOf, upstreamTmpName,
} from './policy.js';
export { checkMailboxRoot, refuseName, refuseCommand, folderOf, dirOf, baseOf } from './names.js';
export { renameOnlyScript, shQuote } from './rename-only.js';
export { Translator } from './translator.js';
