import { dirname, join } from 'node:path';
import { type EndpointConfig, type SmdHome } from '@smd/endpoint';
import { resolveSshCommand, type TransportSpec } from '@smd/transport';
import { OWN_BIN } from '../launch.js';

export { OWN_BIN };

/** The programs smd-pull, smd-push, smd-uniform-names and smd-check-conf run on the other host. */
export type RemoteProgram = 'smd-server' | 'smd-client' | 'mddiff';

/**
 * The first words of the command that runs `program` on the other host.
 * Like upstream, a plain name, found on the remote PATH (over ssh) — or, in
 * local mode, this installation's own program. `REMOTESMDSERVER` /
 * `REMOTESMDCLIENT` in the config replace it (words, like upstream's
 * unquoted variables); the remote mddiff is looked for next to
 * REMOTESMDSERVER. `SMD_REMOTE_BIN` (environment: a directory) wins over both.
 */
export function remoteCommand(program: RemoteProgram, config: EndpointConfig, env: NodeJS.ProcessEnv): string[] {
  const dir = env.SMD_REMOTE_BIN;
  if (dir !== undefined && dir !== '') return [join(dir, program)];
  const server = config.remoteSmdServer;
  const configured = program === 'smd-client' ? config.remoteSmdClient : program === 'smd-server' ? server : null;
  if (configured !== null) return configured;
  if (program === 'mddiff' && server !== null) {
    const last = server[server.length - 1]!;
    return [...server.slice(0, -1), last.includes('/') ? join(dirname(last), 'mddiff') : 'mddiff'];
  }
  return [config.localSync ? join(OWN_BIN, program) : program];
}

/** The transport an endpoint's configuration asks for. */
export function transportFor(config: EndpointConfig, home: SmdHome, env: NodeJS.ProcessEnv): TransportSpec {
  if (config.localSync) return { kind: 'local', cwd: home.home, env };
  if (config.transport === 'ssh2') return { kind: 'ssh2', host: config.serverName, home: home.home, env };
  return { kind: 'ssh', command: resolveSshCommand({ configValue: config.raw.SSH, env }), host: config.serverName, env };
}
