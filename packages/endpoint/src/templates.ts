import { writeFileSync } from 'node:fs';

/**
 * Text written to `~/.smd/config.<endpoint>` by `smd-pull -t` (and any tool) when the
 * file is missing. It is read by our own shell-subset parser (see config.ts), not
 * sourced by a shell.
 */
export function configTemplate(endpoint: string): string {
  return `# smd configuration file for the endpoint "${endpoint}".
#
# This file uses a small subset of the shell syntax: NAME=value assignments,
# 'single' and "double" quotes, $VAR and \${VAR} (earlier variables of this file,
# then the environment), ~ at the start of a value, and \`hostname\`.
# Other shell constructs (if, for, pipes, ;, other commands) are refused.
# Values that are lists are separated by spaces: write a space inside a name
# as %20.

# The host holding the other copy of the mailbox, as given to ssh. The best
# is an alias of ~/.ssh/config, for example:
#   Host smd-server-${endpoint}
#     BatchMode yes
#     Compression yes
#     Hostname your.real.server.name
#     User you
SERVERNAME=smd-server-${endpoint}

# A name identifying this client; it is part of the name of the db-file on
# both hosts, so every client of the same server must use a different one.
CLIENTNAME=\`hostname\`-${endpoint}

# The mailbox(es) to synchronize, relative to $HOME, with the same path on
# both hosts. Several roots are separated by spaces.
MAILBOX="Mail/"

# When the two hosts use different names for the folders, leave MAILBOX
# empty and set ALL FOUR of the following variables instead: the two roots
# and two translators (commands reading a folder name per line and writing
# the translated one; see smd-translate).
#MAILBOX=""
#MAILBOX_LOCAL="Mail/"
#MAILBOX_REMOTE="Maildir/"
#TRANSLATOR_LR="smd-translate -m oimap-dovecot -d LR ${endpoint}"
#TRANSLATOR_RL="smd-translate -m oimap-dovecot -d RL ${endpoint}"

# Folders or files to ignore, as shell-like patterns (fnmatch), separated by
# spaces, matched on both hosts. EXCLUDE_LOCAL and EXCLUDE_REMOTE override it
# for one side only (no translation is applied to them).
#EXCLUDE="Mail/.Spam Mail/.Trash"
#EXCLUDE_LOCAL="Mail/Spam"
#EXCLUDE_REMOTE="Maildir/.Spam"

# Extra options for the programs. SMDCLIENTOPTS="-l" together with
# SERVERNAME=localhost synchronizes two mailboxes of this same account
# without ssh; SMDSERVEROPTS="-n" never propagates deletions.
#SMDCLIENTOPTS=""
#SMDSERVEROPTS=""

# The ssh command (words separated by spaces) and the transport: "ssh" runs
# that command; "ssh2" uses the built-in SSH client instead.
#SSH="ssh"
#TRANSPORT=ssh

# A folder may be a symbolic link only to a place inside the mailbox; to
# keep a folder elsewhere (another disk) through a symbolic link, list the
# directories links may lead into, here and on the server (space separated,
# relative to $HOME or absolute, %20 for a space).
#FOLLOW_LOCAL="/mnt/archive/mail"
#FOLLOW_REMOTE=""

# IDLE_TIMEOUT: seconds to wait for a server that sends nothing before the
# run ends with a (retryable) network error. Default 300.
#IDLE_TIMEOUT=300

# How the other host runs smd-server and smd-client: by default the plain
# names, found on its PATH. Set a path when smd is not on that PATH, e.g.
# installed with npm install -g --prefix ~/.local (a relative path starts
# from the remote home directory, where ssh runs the command).
#REMOTESMDSERVER=.local/bin/smd-server
#REMOTESMDCLIENT=.local/bin/smd-client

# The mass-deletion brake: a run that would delete more than this
# percentage of the messages of the mailbox, or of a folder of at least 20,
# or every message of a mailbox root (an unmounted disk looks like that),
# deletes nothing and asks first. "off" keeps only the last rule; one run
# lets everything through with smd-pull/smd-push --allow-mass-delete.
#MASS_DELETE_THRESHOLD=50

# DEBUG=true logs the whole traffic (mails included!) in ~/.smd/log/.
#DEBUG=true
`;
}

/** Text of `~/.smd/loop` written by `smd-loop` when missing. */
export function loopTemplate(): string {
  return `# smd-loop configuration file
#
# Lines starting with # are comments. Each other line has three fields:
# how often (in minutes) to pull, how often to push, and the endpoint name.
# 0 disables that direction. Example: pull every 3 minutes, push every 10.
#
# pull-minutes push-minutes endpoint
3 10 default
`;
}

/** Text of `~/.smd/hooks/README`. */
export function hooksReadme(): string {
  return `smd hooks
=========

Every executable file in

  pre-pull.d/   post-pull.d/   pre-push.d/   post-push.d/

is run, in the order of its name (byte order; files whose name starts with a
dot are ignored), by smd-pull/smd-push as

  HOOK pre|post pull|push ENDPOINT STATUS

STATUS is 0 for pre hooks and the final status (0 success, 1 failure) for post
hooks. Their output goes to ~/.smd/log/client.ENDPOINT.log. Pre hooks run
after the configuration is read and the lock taken, before the transfer; post
hooks run before the final report.

Hooks should not fail: a failing hook aborts smd-pull/smd-push.

Every executable file in

  needs-human.d/

is run by smd-loop, once per problem, when a sync fails in a way that needs
you (a conflict, a broken configuration, ...), as

  HOOK ENDPOINT TAGS MESSAGE

TAGS is the error TAGS line without "TAGS: " (empty when there is none) and
MESSAGE the error lines. Use it to send a mail or a chat message. Its output
goes to ~/.smd/log/loop.log; it is killed after 60 seconds.
`;
}

/**
 * Writes a template to `path` unless the file exists (then returns false). The file is
 * created with mode 0600.
 */
export function writeTemplate(path: string, text: string): boolean {
  try {
    writeFileSync(path, text, { flag: 'wx', mode: 0o600 });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}
