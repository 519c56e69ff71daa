import { DEFAULT_IDLE_TIMEOUT_MS } from '@smd/protocol';

/**
 * `SMD_IDLE_TIMEOUT`: the longest the peer may stay silent while we wait for
 * it, in seconds (smd-pull/push set it from the endpoint's IDLE_TIMEOUT).
 * Unset: the default (300 s). Returns ms, or an error message.
 */
export function idleTimeoutFromEnv(env: NodeJS.ProcessEnv): number | string {
  const v = env.SMD_IDLE_TIMEOUT;
  if (v === undefined || v === '') return DEFAULT_IDLE_TIMEOUT_MS;
  if (!/^[0-9]+(\.[0-9]+)?$/.test(v) || Number(v) <= 0) return `SMD_IDLE_TIMEOUT must be a positive number of seconds, not ${JSON.stringify(v)}`;
  return Math.round(Number(v) * 1000);
}
