import { parseCommandLine } from '../args/index.js';
import { SMD_PULL, SMD_PUSH } from '../args/specs.js';

export interface SyncOptions {
  endpoint: string;
  verbose: boolean;
  showTags: boolean;
  templateOnly: boolean;
  dryRun: boolean;
  noDelete: boolean;
  /** --allow-mass-delete: the mass-deletion brake lets this run's deletions through */
  allowMassDelete: boolean;
}

export type ParsedSyncArgs = { kind: 'run'; options: SyncOptions } | { kind: 'exit'; code: number };

/**
 * Upstream's grammar: `[-v] [-s] [-t] [-d] [-n] [ENDPOINT]`; -v implies -s,
 * -d implies -v and -s; any other option, or a second ENDPOINT, is a usage
 * error (exit 1).
 */
export async function parseSyncArgs(direction: 'pull' | 'push', argv: string[]): Promise<ParsedSyncArgs> {
  const a = await parseCommandLine(direction === 'pull' ? SMD_PULL : SMD_PUSH, argv);
  if (typeof a === 'number') return { kind: 'exit', code: a };
  const dryRun = a.flag('dry-run');
  const verbose = a.flag('verbose') || dryRun;
  return {
    kind: 'run',
    options: {
      endpoint: a.args[0] ?? 'default',
      verbose,
      showTags: verbose || a.flag('show-tags'),
      templateOnly: a.flag('template-only'),
      dryRun,
      noDelete: a.flag('no-delete'),
      allowMassDelete: a.flag('allow-mass-delete'),
    },
  };
}
