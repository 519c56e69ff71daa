export { SmdHome, HomeError, type HookWhen, type HookWhat } from './home.js';
export {
  ConfigError, ConfigMissingError, CONFIG_VARIABLES, type ConfigVariable, type EndpointConfig, type ResolvedTranslator,
  type TransportKind, type LoadOptions, parseEndpointConfig, loadEndpointConfig, readConfigVariables, resolveTranslator,
  splitList, stripTrailingSlash, findOnPath, validateEndpointName,
} from './config.js';
export { parseShellAssignments, shellVariables, substituteCommand, type ShellAssignment } from './shell.js';
export { configTemplate, loopTemplate, hooksReadme, writeTemplate } from './templates.js';
export { Lock, LockBusyError, SYNC_LOCK_PROGRAMS, LOOP_LOCK_PROGRAMS, type AcquireOptions, isAlive, processArgs, isProgramRunning, runningProgram, readPid } from './lock.js';
export { runHooks, runHookDir, listHooks, describeHookFailure, type HookRun, type HookFailure, type HookDirOptions } from './hooks.js';
export {
  type Translator, IdentityTranslator, ProcessTranslator, type ProcessTranslatorOptions, TranslatorError, createTranslator, unsafeTranslation,
  translateName, TranslateError, TRANSLATE_MODES, type TranslateMode, type TranslateDirection,
} from './translator.js';
export { parseLoopConfig, LoopConfigError, type LoopEntry, type LoopJob, type LoopJobKind, loopJob } from './loop.js';
export { type JobOutcome, type Problem, classifyJob, problemOf, sameProblem, isTransientFailure, isLockBusy } from './loop-outcome.js';
export {
  type LoopSchedule, type ScheduledJob, type Paused, type LoopNote, BACKOFF_CAP_MINUTES, PROBE_MINUTES,
  startSchedule, dueJob, nextWake, nextSlot, backoff, probeInterval, observeClock, requestNow, recordOutcome,
} from './loop-schedule.js';
export {
  type RotationPolicy, RUN_LOG_ROTATION, LOOP_LOG_ROTATION, RotatingLog, rotateNow, rotateIfFull, rotatedName, runBanner,
} from './logfile.js';
export {
  type JournalRecord, type SyncDirection, JOURNAL_ROTATION, JournalWriter, isJournalRecord, parseJournal, readJournal,
} from './journal.js';
