import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EndpointConfig, SmdHome } from '@smd/endpoint';
import { resolveSshCommand, type TransportSpec } from '@smd/transport';

/** Our own bin directory: local programs are started from it. */
export const OWN_BIN = fileURLToPath(new URL('../../../../bin/', import.meta.url));

/**
 * Where the remote host has smd installed. Like upstream, the same prefix as
 * here (the directory this command was started from); SMD_REMOTE_BIN overrides.
 */
export function remoteBinDir(env: NodeJS.ProcessEnv): string {
  return env.SMD_REMOTE_BIN ?? dirname(process.argv[1] ?? join(OWN_BIN, 'smd-pull'));
}

/** The transport an endpoint's configuration asks for. */
export function transportFor(config: EndpointConfig, home: SmdHome, env: NodeJS.ProcessEnv): TransportSpec {
  if (config.localSync) return { kind: 'local', cwd: home.home, env };
  if (config.transport === 'ssh2') return { kind: 'ssh2', host: config.serverName, home: home.home, env };
  return { kind: 'ssh', command: resolveSshCommand({ configValue: config.raw.SSH, env }), host: config.serverName, env };
}
