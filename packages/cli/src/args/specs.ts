/**
 * The command line of every command. A new command: one defineCommand() here
 * and its entry in COMMAND_SPECS (the help test then checks it too).
 */
import { defineCommand, type OptionSpec } from './spec.js';

/** The flags smd-pull, smd-push and smd-check-conf share (upstream's smd-common). */
const verbose = { long: 'verbose', short: 'v', describe: 'verbose output (implies --show-tags)' } as const;
const showTags = { long: 'show-tags', short: 's', describe: 'print the machine-readable TAGS lines' } as const;
const templateOnly = { long: 'template-only', short: 't', describe: 'only write the config template if it is missing, then exit' } as const;

const ENDPOINT_TEXT = 'ENDPOINT defaults to "default" and is configured in ~/.smd/config.ENDPOINT.';

function syncSpec(direction: 'pull' | 'push') {
  const what = direction === 'pull' ? 'from the server to this host' : 'from this host to the server';
  return defineCommand({
    name: `smd-${direction}`,
    synopsis: '[-v] [-s] [-t] [-d] [-n] [ENDPOINT]',
    description: `Synchronizes the mailbox of ENDPOINT ${what}. ${ENDPOINT_TEXT}`,
    options: [
      verbose, showTags, templateOnly,
      { long: 'dry-run', short: 'd', describe: 'change nothing, report what would be done (implies -v)' },
      { long: 'no-delete', short: 'n', describe: 'do not propagate deletions (passes -n to smd-server)' },
      { long: 'allow-mass-delete', describe: 'apply deletions the mass-deletion brake would hold (this run only)' },
    ],
    args: { min: 0, max: 1, name: 'one ENDPOINT' },
    grammar: 'anywhere',
    usageExit: 1,
    errorsTo: 'stderr',
  });
}

export const SMD_PULL = syncSpec('pull');
export const SMD_PUSH = syncSpec('push');

export const MDDIFF = defineCommand({
  name: 'mddiff',
  synopsis: '[options] PATH...',
  description: 'Compares the Maildir trees PATH... with the db-file and prints the changes, one command per line.',
  options: [
    { long: 'max-mailno', value: 'N', describe: 'accepted for compatibility (a size hint upstream)' },
    { long: 'db-file', value: 'FILE', describe: 'the db-file (default: db.txt)' },
    { long: 'exclude', value: 'GLOB', repeatable: true, describe: 'skip the directories matching GLOB (%-encoded), repeatable' },
    { long: 'follow', value: 'DIR', repeatable: true, describe: 'a folder symlink may lead into DIR (%-encoded), repeatable' },
    { long: 'sha1sum', describe: 'print the SHA-1 of each file argument, like sha1sum' },
    { long: 'mkdir-p', describe: 'create each argument as a directory, with its parents' },
    { long: 'mkfifo', describe: 'create each argument as a fifo' },
    { long: 'list', short: 'l', describe: 'list the mail folders (cur/new) of PATH...' },
    { long: 'symlink', short: 's', describe: 'with a fifo argument: symlink server' },
    { long: 'verbose', short: 'v', describe: 'debug lines on stderr' },
    { long: 'dry-run', short: 'd', describe: 'do not write the .new db-files' },
    { long: 'no-delete', short: 'n', describe: 'do not report deleted messages' },
    { long: 'no-move', describe: 'report a renamed message as COPY + DELETE' },
  ],
  args: { min: 1, max: Infinity, name: 'PATH' },
  grammar: 'anywhere',
  usageExit: 1,
  errorsTo: 'stdout',
  epilogue: 'With a single fifo PATH: hash server (reads file names, prints their hashes).',
});

const LEADING_TEXT = 'As upstream, options are recognised only while more than two arguments remain, so a mailbox named like an option still works in last position.';

export const SMD_SERVER = defineCommand({
  name: 'smd-server',
  synopsis: '[options] ENDPOINT MAILBOX...',
  description: `Computes the changes of MAILBOX since the last sync with ENDPOINT and serves them, and the messages, to smd-client on stdin/stdout (see protocol.md). ${LEADING_TEXT}`,
  options: [
    { long: 'verbose', short: 'v', describe: 'log INFO and PROGRESS lines on stderr' },
    { long: 'dry-run', short: 'd', describe: 'change nothing (implies -v)' },
    { long: 'no-delete', short: 'n', describe: 'do not report deleted messages' },
    { long: 'no-move', describe: 'report a renamed message as COPY + DELETE' },
    { long: 'exclude', value: 'GLOB', repeatable: true, describe: 'skip folders matching GLOB (repeatable; %20 = space)' },
    { long: 'follow', value: 'DIR', repeatable: true, describe: 'a folder symlink may lead into DIR (repeatable; %20 = space; default: only into the mailboxes)' },
    { long: 'override-db', value: 'FILE', describe: 'use FILE as the db-file (~ is $HOME)' },
    { long: 'stop-after-diff', describe: 'exit after sending the changes' },
    { long: 'listen-first', describe: "read the client's protocol line before sending ours, and speak upstream's protocol 1.3 to an upstream smd-client (smd-push passes it to its local server)" },
    { long: 'get-mddiff-cmdline', describe: 'print the equivalent mddiff command line and exit' },
    { long: 'dump-stdin', value: 'FILE', describe: 'copy stdin to FILE (only under ~/.smd/) and exit' },
  ],
  args: { min: 2, max: Infinity, name: 'ENDPOINT and at least one MAILBOX' },
  grammar: 'leading',
  usageExit: 2,
  errorsTo: 'stderr',
});

export const SMD_CLIENT = defineCommand({
  name: 'smd-client',
  synopsis: '[options] ENDPOINT MAILBOX...',
  description: `Applies the changes sent by smd-server (on stdin) to the local MAILBOXes. ${LEADING_TEXT}`,
  options: [
    { long: 'verbose', short: 'v', describe: 'progress and information on stderr' },
    { long: 'dry-run', short: 'd', describe: 'change nothing, report what would be done (implies -v)' },
    { long: 'local-sync', short: 'l', describe: 'do not patch nor rename the db-file (the server owns it)' },
    { long: 'translator', short: 't', value: 'CMD', describe: 'remote-to-local folder name translator (workarea mode)' },
    { long: 'rename-only', describe: 'write ~/smd-rename.sh instead of synchronizing' },
    { long: 'override-db', value: 'FILE', describe: 'use FILE as the db-file (~ is the home directory)' },
    { long: 'listen-first', describe: "read the server's protocol line before sending ours, and speak upstream's protocol 1.3 to an upstream smd-server (smd-pull passes it to its local client)" },
    { long: 'follow', value: 'DIR', repeatable: true, describe: 'a folder symlink may lead into DIR (repeatable; %20 = space; default: only into the mailboxes)' },
    { long: 'allow-mass-delete', describe: 'apply deletions the mass-deletion brake would hold' },
    { long: 'mass-delete-threshold', value: 'P', describe: 'hold deletions of more than P% of a folder (default 50; off: only a whole mailbox root)' },
  ],
  args: { min: 2, max: Infinity, name: 'ENDPOINT and at least one MAILBOX' },
  grammar: 'leading',
  usageExit: 2,
  errorsTo: 'stderr',
});

export const SMD_LOOP = defineCommand({
  name: 'smd-loop',
  synopsis: '[-v] [-t] | --now [ENDPOINT]',
  description: 'Runs smd-pull and smd-push periodically, as configured in ~/.smd/loop.',
  options: [
    { long: 'verbose', short: 'v', describe: 'also print the log on stdout' },
    { long: 'template-only', short: 't', describe: 'write the template of ~/.smd/loop if missing, then exit' },
    { long: 'now', describe: 'make the running smd-loop sync ENDPOINT (default: every endpoint) now, as SIGUSR1 does, then exit' },
  ],
  args: { min: 0, max: 1, name: 'one ENDPOINT, with --now' },
  grammar: 'anywhere',
  usageExit: 1,
  errorsTo: 'stderr',
  epilogue: 'Environment: SMD_LOOP_MINUTE_SECONDS sets the length of a minute in seconds (default 60).',
});

export const SMD_CHECK_CONF = defineCommand({
  name: 'smd-check-conf',
  synopsis: '[-v] [-s] [-t] [-d] [-n] [ENDPOINT]',
  description: `Checks the configuration of ENDPOINT: lists the mail folders on both hosts and checks that TRANSLATOR_LR and TRANSLATOR_RL map every folder there and back to itself. ${ENDPOINT_TEXT}`,
  options: [
    { ...verbose, describe: 'also print the commands run (translators, remote listing)' },
    { ...showTags, describe: 'print the machine-readable TAGS line of a failure' },
    templateOnly,
    { long: 'dry-run', short: 'd', describe: 'accepted like smd-pull\'s (smd-check-conf changes nothing anyway)' },
    { long: 'no-delete', short: 'n', describe: 'accepted like smd-pull\'s (no effect here)' },
  ],
  args: { min: 0, max: 1, name: 'one ENDPOINT' },
  grammar: 'anywhere',
  usageExit: 1,
  errorsTo: 'stderr',
});

export const SMD_TRANSLATE = defineCommand({
  name: 'smd-translate',
  synopsis: '-m MODE -d DIRECTION ENDPOINT',
  description: 'Translates Maildir folder names, one per line, from stdin to stdout. The roots are MAILBOX_LOCAL and MAILBOX_REMOTE (or MAILBOX) of ~/.smd/config.ENDPOINT.',
  options: [
    { long: 'mode', short: 'm', value: 'MODE', describe: 'oimap-dovecot (= default), nodots, nodots2, move, cat' },
    { long: 'direction', short: 'd', value: 'DIR', describe: 'LR (local to remote) or RL (remote to local)' },
  ],
  args: { min: 1, max: 1, name: 'one ENDPOINT' },
  grammar: 'anywhere',
  usageExit: 1,
  errorsTo: 'translator',
  epilogue: 'On error prints ERROR and a message on stdout and exits 1.',
});

export const SMD_UNIFORM_NAMES = defineCommand({
  name: 'smd-uniform-names',
  synopsis: '[-v] [-s] [ENDPOINT]',
  description: 'For a first synchronization of ENDPOINT when both hosts already hold the same messages under different file names: writes ~/smd-rename.sh, which renames the local files to the names they have on the server. Inspect it, run it (sh ~/smd-rename.sh), then run smd-pull: it will not transfer those messages again. ' + ENDPOINT_TEXT,
  options: [
    { ...verbose, describe: 'verbose output (implies -s), -v to both programs' },
    showTags,
  ],
  args: { min: 0, max: 1, name: 'one ENDPOINT' },
  grammar: 'anywhere',
  usageExit: 1,
  errorsTo: 'stderr',
});

export const SMD_RESTRICTED_SHELL = defineCommand({
  name: 'smd-restricted-shell',
  synopsis: '',
  description: 'To be used as command="smd-restricted-shell" in ~/.ssh/authorized_keys. Runs $SSH_ORIGINAL_COMMAND only if it is smd-server or smd-client with options that cannot touch anything but the mailbox. The command line is split into words without a shell (no globbing, variables or substitutions): ; & | < > ( ) $ ` and newlines are refused, even quoted.',
  options: [] as OptionSpec<never>[],
  args: { min: 0, max: 0, name: 'no argument' },
  grammar: 'anywhere',
  usageExit: 1,
  errorsTo: 'stderr',
  epilogue: [
    'Allowed:',
    '  smd-server  -v -d -n --no-move --stop-after-diff --exclude GLOB,',
    '              --override-db / --dump-stdin only with ~/.smd/rename-db',
    '  smd-client  -v -d -l --allow-mass-delete --mass-delete-threshold N|off',
    '  both        --follow DIR, DIR relative and without ".."',
    '  ENDPOINT and MAILBOX arguments that are relative and contain no "..";',
    '  the program runs in $HOME',
    'Refused: anything else, e.g. smd-client -t (runs a command), --rename-only,',
    '--dump-stdin to another file, --get-mddiff-cmdline, other programs.',
  ].join('\n'),
});

/** Every command of the suite, by name. */
export const COMMAND_SPECS = {
  'mddiff': MDDIFF,
  'smd-server': SMD_SERVER,
  'smd-client': SMD_CLIENT,
  'smd-pull': SMD_PULL,
  'smd-push': SMD_PUSH,
  'smd-loop': SMD_LOOP,
  'smd-check-conf': SMD_CHECK_CONF,
  'smd-translate': SMD_TRANSLATE,
  'smd-uniform-names': SMD_UNIFORM_NAMES,
  'smd-restricted-shell': SMD_RESTRICTED_SHELL,
} as const;

export type CommandName = keyof typeof COMMAND_SPECS;
