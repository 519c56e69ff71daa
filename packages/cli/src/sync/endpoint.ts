import {
  SmdHome, loadEndpointConfig, ConfigMissingError, ConfigError, configTemplate, writeTemplate, validateEndpointName,
  Lock, LockBusyError, SYNC_LOCK_PROGRAMS, type EndpointConfig,
} from '@smd/endpoint';
import { describeFsError, fsErrorCause, isFsError } from '@smd/maildir';
import { formatErrorTags } from '@smd/protocol';

export const say = (line: string): void => { process.stdout.write(`${line}\n`); };

export interface OpenedEndpoint {
  home: SmdHome;
  config: EndpointConfig;
  lock: Lock;
}

export interface OpenOptions {
  /** the program, for messages (`smd-pull`, ...) */
  program: string;
  endpoint: string;
  /** -t: only write the template if missing; exit 0 */
  templateOnly?: boolean;
  /** print the TAGS line of a lock failure */
  showTags?: boolean;
  /** a last check before the lock is taken: an error message, or null */
  check?: (home: SmdHome, config: EndpointConfig) => string | null;
}

/**
 * What smd-pull, smd-push and smd-uniform-names do first (upstream's
 * smd-common): `~/.smd` created, the config read (the template written when
 * it is missing), the lock taken. Resolves to the endpoint, or to an exit code.
 */
export function openEndpoint(o: OpenOptions, env: NodeJS.ProcessEnv = process.env): OpenedEndpoint | number {
  const badName = validateEndpointName(o.endpoint);
  if (badName !== null) { say(`ERROR: ${badName}`); return 1; }
  let home: SmdHome;
  try {
    home = SmdHome.fromEnv(env);
    home.ensure();
  } catch (e) {
    say(`ERROR: ${(e as Error).message}`);
    return 1;
  }
  let config: EndpointConfig;
  try {
    config = loadEndpointConfig(home, o.endpoint, { env });
  } catch (e) {
    if (e instanceof ConfigMissingError) {
      try {
        writeTemplate(home.config(o.endpoint), configTemplate(o.endpoint));
      } catch (w) {
        if (!isFsError(w)) throw w;
        return fsFailure(o, 'config', `cannot write the configuration template ${home.config(o.endpoint)}`, home.dir, w);
      }
      say(`No config file found for endpoint "${o.endpoint}": a template was written to ${home.config(o.endpoint)}.`);
      say(`Edit it, then run ${o.program}${o.endpoint === 'default' ? '' : ` ${o.endpoint}`} again.`);
      return o.templateOnly === true ? 0 : 1;
    }
    if (e instanceof ConfigError) { say(`ERROR: ${e.message}`); return 1; }
    throw e;
  }
  if (o.templateOnly === true) return 0;
  const refused = o.check?.(home, config) ?? null;
  if (refused !== null) { say(`ERROR: ${refused}`); return 1; }
  try {
    return { home, config, lock: Lock.acquire(home.lock, { programs: SYNC_LOCK_PROGRAMS }) };
  } catch (e) {
    if (e instanceof LockBusyError) {
      say(`ERROR: ${e.message}`);
      if (o.showTags === true) say(`${o.endpoint}: ${o.program}@localhost: ${e.tags}`);
      return 1;
    }
    // ~/.smd not writable, a full disk...: the environment, not a bug.
    if (isFsError(e)) return fsFailure(o, 'locking', `cannot take the lock ${home.lock}`, home.dir, e);
    throw e;
  }
}

/** An environment fault before the run starts: what failed, strerror, the directory to look at; exit 1. */
function fsFailure(o: OpenOptions, context: string, what: string, dir: string, e: unknown): number {
  say(`ERROR: ${what}: ${describeFsError(e)}`);
  say(`ERROR: check the permissions and free space of ${dir}`);
  if (o.showTags === true) {
    say(`${o.endpoint}: ${o.program}@localhost: ${formatErrorTags({
      context, probableCause: fsErrorCause(e), humanIntervention: 'necessary', suggestedActions: [`display-permissions("${dir}")`],
    })}`);
  }
  return 1;
}
