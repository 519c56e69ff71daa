import type { Readable, Writable } from 'node:stream';

/** How the remote program ended. */
export interface RemoteExit {
  /**
   * The remote program's exit code; with system ssh, 255 also means that ssh
   * itself failed (see `connectionFailed`). null when it died of a signal.
   */
  readonly code: number | null;
  /** The signal that ended it (e.g. 'SIGTERM' / 'TERM'), or null. */
  readonly signal: string | null;
  /**
   * true when the connection failed rather than the program: system ssh
   * exited 255 (OpenSSH's "connection failed" status; a remote program that
   * itself exits 255 cannot be told apart), or the ssh2 connection broke /
   * closed without an exit status (then `code` is 255 too).
   */
  readonly connectionFailed: boolean;
}

/** The remote program, seen from here: a duplex byte pipe plus its stderr. */
export interface RemoteProcess {
  /** Bytes from the remote program (its stdout). */
  readonly stdout: Readable;
  /** Bytes to the remote program (its stdin); end() it to send EOF. */
  readonly stdin: Writable;
  /** Its stderr, plus the transport's own errors (ssh's messages), for the log. */
  readonly stderr: Readable;
  /**
   * Settles when the program (system ssh: the ssh process) has exited. Never
   * rejects. It does not wait for stdout/stderr to drain: read those to
   * their end yourself (a ControlMaster ssh may keep stderr open longer).
   */
  readonly exit: Promise<RemoteExit>;
  /** A printable description of what runs, for logs (`ssh host 'smd-server' ...`). */
  readonly description: string;
  /** Asks the program to stop (SIGTERM / ssh signal + disconnect). Idempotent. */
  kill(): void;
}

export type TransportSpec =
  /**
   * System ssh: runs `<command...> <host> <remote words...>` (see `remoteWords`).
   * `command` is the result of `resolveSshCommand` (`['ssh']`, `['ssh', '-C']`, ...).
   */
  | { kind: 'ssh'; command: string[]; host: string; env?: NodeJS.ProcessEnv }
  /**
   * Built-in ssh2 client: `~/.ssh/config` for the alias, the agent and key
   * files for authentication, `~/.ssh/known_hosts` for the host key.
   * `home` (default env.HOME, then the account's home) is where `.ssh/` is
   * read; `env` (default process.env) gives SSH_AUTH_SOCK.
   */
  | {
    kind: 'ssh2';
    host: string;
    home?: string;
    env?: NodeJS.ProcessEnv;
    /** System-wide client config read after the user's; default /etc/ssh/ssh_config; null: none. */
    systemConfig?: string | null;
    /** Default 20 s (or ConnectTimeout from the config). */
    readyTimeoutMs?: number;
  }
  /** No ssh: the program runs on this machine, directly (no shell), in `cwd`. */
  | { kind: 'local'; cwd: string; env?: NodeJS.ProcessEnv };
