import { TransportError } from './errors.js';
import { joinWords } from '@smd/shell';
import { remoteWords } from './ssh-command.js';
import { spawnRemote } from './spawned.js';
import type { RemoteProcess, TransportSpec } from './types.js';

export { TransportError, type TransportErrorKind } from './errors.js';
export {
  classifyRemoteExit, describeFailure, sshFailureKind, isTransient,
  type TransportFailure, type TransportFailureKind, type FailureContext,
} from './failure.js';
export type { RemoteExit, RemoteProcess, TransportSpec } from './types.js';
export { remoteWords, remoteCommandLine, splitCommandWords, resolveSshCommand, findOnPath, isExecutableFile } from './ssh-command.js';
export { teeRemote, type TeeLogs, type TeedRemoteProcess } from './tee.js';
export { resolveSshHost, type SshHostConfig, type ResolveOptions } from './ssh-config.js';
export {
  fingerprintSha256, keyBlobType, knownHostsName, readKnownHosts, checkHostKey, hostFieldMatches,
  type KnownHostsEntry, type HostKeyVerdict,
} from './known-hosts.js';

/**
 * Starts the remote program `argv` (argv[0] = program path) through the
 * transport and resolves once it runs (ssh2: once the exec channel is open).
 * Rejects with a TransportError when it cannot be started.
 */
export async function startRemote(spec: TransportSpec, argv: string[]): Promise<RemoteProcess> {
  if (argv.length === 0) throw new TransportError('config', 'no remote command given');
  switch (spec.kind) {
    case 'local':
      return spawnRemote(argv[0]!, argv.slice(1), {
        cwd: spec.cwd, env: spec.env, description: joinWords(argv), what: 'the program',
      });
    case 'ssh': {
      if (spec.command.length === 0) throw new TransportError('config', 'empty ssh command');
      if (spec.host === '' || spec.host.startsWith('-')) {
        throw new TransportError('config', `bad ssh destination ${JSON.stringify(spec.host)} (it must not start with "-")`);
      }
      const words = remoteWords(argv);
      const args = [...spec.command.slice(1), spec.host, ...words];
      return spawnRemote(spec.command[0]!, args, {
        env: spec.env, failureCode: 255, description: `${joinWords([spec.command[0]!, ...spec.command.slice(1), spec.host])} ${words.join(' ')}`, what: 'ssh',
      });
    }
    case 'ssh2': {
      // ssh2 costs ~80 ms of start-up: loaded only by the runs that use it.
      const { startSsh2 } = await import('./ssh2-client.js');
      return startSsh2(spec, argv);
    }
    default: {
      const never: never = spec;
      throw new TransportError('config', `unknown transport ${JSON.stringify(never)}`);
    }
  }
}
