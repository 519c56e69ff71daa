import yargs from 'yargs';
import { VERSION } from '../launch.js';

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
 * -d implies -v and -s; a bare word names the endpoint (the last one wins);
 * any other option is a usage error (exit 1).
 */
export async function parseSyncArgs(direction: 'pull' | 'push', argv: string[]): Promise<ParsedSyncArgs> {
  const what = direction === 'pull' ? 'the server to this host' : 'this host to the server';
  let failed = false;
  const y = yargs(argv)
    .scriptName(`smd-${direction}`)
    .usage(`Usage: smd-${direction} [options] [ENDPOINT]\n\nSynchronizes the mailbox of ENDPOINT (default: "default", configured in ~/.smd/config.ENDPOINT) from ${what}.`)
    .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'verbose output (implies --show-tags)' })
    .option('show-tags', { alias: 's', type: 'boolean', default: false, describe: 'print the machine-readable TAGS lines' })
    .option('template-only', { alias: 't', type: 'boolean', default: false, describe: 'only write the config template if it is missing' })
    .option('dry-run', { alias: 'd', type: 'boolean', default: false, describe: 'change nothing, report what would be done (implies -v)' })
    .option('no-delete', { alias: 'n', type: 'boolean', default: false, describe: 'do not propagate deletions (passes -n to smd-server)' })
    .option('allow-mass-delete', { type: 'boolean', default: false, describe: 'apply deletions the mass-deletion brake would hold (this run only)' })
    .version(VERSION)
    .help('help').alias('help', 'h')
    .strictOptions()
    .parserConfiguration({ 'boolean-negation': false })
    .exitProcess(false)
    .fail((msg) => { failed = true; process.stderr.write(`smd-${direction}: ${msg}\n`); });
  const a = await y.parseAsync();
  if (failed) { process.stderr.write(await y.getHelp() + '\n'); return { kind: 'exit', code: 1 }; }
  if (a.help || a.version) return { kind: 'exit', code: 0 };
  const words = a._.map(String);
  const dryRun = a['dry-run'] as boolean;
  const verbose = (a.verbose as boolean) || dryRun;
  return {
    kind: 'run',
    options: {
      endpoint: words.length > 0 ? words[words.length - 1] : 'default',
      verbose,
      showTags: verbose || (a['show-tags'] as boolean),
      templateOnly: a['template-only'] as boolean,
      dryRun,
      noDelete: a['no-delete'] as boolean,
      allowMassDelete: a['allow-mass-delete'] as boolean,
    },
  };
}
