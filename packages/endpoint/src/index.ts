export { SmdHome, HomeError, type HookWhen, type HookWhat } from './home.js';
export {
  ConfigError, ConfigMissingError, CONFIG_VARIABLES, type ConfigVariable, type EndpointConfig, type ResolvedTranslator,
  type TransportKind, type LoadOptions, parseEndpointConfig, loadEndpointConfig, readConfigVariables, resolveTranslator,
  splitList, stripTrailingSlash, findOnPath, validateEndpointName,
} from './config.js';
export { parseShellAssignments, shellVariables, substituteCommand, type ShellAssignment } from './shell.js';
export { configTemplate, loopTemplate, hooksReadme, writeTemplate } from './templates.js';
export { Lock, LockBusyError, SYNC_LOCK_PROGRAMS, LOOP_LOCK_PROGRAMS, type AcquireOptions, isAlive, processArgs, isProgramRunning } from './lock.js';
export { runHooks, listHooks, describeHookFailure, type HookRun, type HookFailure } from './hooks.js';
export {
  type Translator, IdentityTranslator, ProcessTranslator, type ProcessTranslatorOptions, TranslatorError, createTranslator, unsafeTranslation,
  translateName, TranslateError, TRANSLATE_MODES, type TranslateMode, type TranslateDirection,
} from './translator.js';
export {
  parseLoopConfig, LoopConfigError, type LoopEntry, type LoopJob, type LoopJobKind, jobsForPass, planPass, type PassPlan,
  isTransientFailure, decideFailure, type FailureDecision,
} from './loop.js';
export {
  type RotationPolicy, RUN_LOG_ROTATION, LOOP_LOG_ROTATION, RotatingLog, rotateNow, rotateIfFull, rotatedName, runBanner,
} from './logfile.js';
export {
  type JournalRecord, type SyncDirection, JOURNAL_ROTATION, JournalWriter, isJournalRecord, parseJournal, readJournal,
} from './journal.js';
